//! Skill patterns of a scope grouped by department, team, role or archetype: per-cell
//! sums, category levels and trends, before any privacy rule is applied.

use std::collections::{BTreeMap, HashMap};

use super::archetypes::ArchetypeView;
use crate::analytics::proficiency::Evidence;
use crate::domain::{
    Assessment, Level, Person, PersonId, SkillCategory, SkillId, TeamId, Timestamp,
};
use crate::engine::Snapshot;

/// How people are grouped for skill patterns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupBy {
    /// Units directly under a root of the org tree.
    Department,
    /// A person's own team; reported under its department.
    Team,
    /// Role.
    Role,
    /// Skill archetype (automatic k).
    Archetype,
}

/// Sums over the cells of one (group, skill).
#[derive(Clone, Copy, Debug, Default)]
pub struct CellSums {
    /// Σ effective level over known cells.
    pub level: f64,
    /// Known cells.
    pub known: u32,
    /// Cells at or above proficient.
    pub proficient: u32,
    /// Σ (self-rating − level from other evidence).
    pub self_gap: f64,
    /// Cells with both self and other evidence.
    pub self_gap_cells: u32,
    /// Σ (level now − level at the start of the trend period).
    pub trend: f64,
    /// Cells known at both ends of the period.
    pub trend_cells: u32,
}

/// One group's aggregates, before suppression.
#[derive(Clone, Debug, Default)]
pub struct GroupData {
    /// Group id (team, role or archetype index).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Parent group id (department of a team), empty for the scope.
    pub parent: String,
    /// People.
    pub size: usize,
    /// Per skill column of `PatternData::skills`.
    pub cells: Vec<CellSums>,
    /// Members per archetype of the scope.
    pub archetypes: Vec<u32>,
}

/// Skill patterns of a scope by one grouping.
#[derive(Debug)]
pub struct PatternData {
    /// Groups in id order.
    pub groups: Vec<GroupData>,
    /// The whole scope.
    pub total: GroupData,
    /// Skill columns, with their categories.
    pub skills: Vec<(SkillId, SkillCategory)>,
    /// Archetype labels of the scope.
    pub archetype_labels: Vec<String>,
    /// Data version of the archetypes used (`None`: none could be computed).
    pub archetypes_version: Option<u64>,
}

/// The patterns of the people of `scope` in `snapshot`, reading their evidence as of the
/// snapshot (batches stored after it are left out) — the body of a patterns job.
#[allow(clippy::too_many_arguments)] // one job's inputs, each different
pub fn patterns_at(
    snapshot: &Snapshot,
    reader: &crate::store::EvidenceReader,
    scope: Option<&crate::domain::TeamId>,
    group_by: GroupBy,
    archetypes: Option<(&ArchetypeView, u64)>,
    trend_days: u32,
    now: Timestamp,
    cancel: &crate::engine::Cancel,
) -> crate::error::Result<PatternData> {
    let people = super::people_in(snapshot, scope)?;
    let ids: Vec<PersonId> = people.iter().map(|p| p.id.clone()).collect();
    let evidence = reader.assessments_about_many_before(&ids, snapshot.evidence_batches)?;
    cancel.check()?;
    Ok(compute_patterns(
        snapshot, &people, group_by, &evidence, archetypes, trend_days, now,
    ))
}

/// Aggregates the people of a scope by `group_by` from their evidence.
pub fn compute_patterns(
    snapshot: &Snapshot,
    people: &[&Person],
    group_by: GroupBy,
    evidence: &[(PersonId, Vec<Assessment>)],
    archetypes: Option<(&ArchetypeView, u64)>,
    trend_days: u32,
    now: Timestamp,
) -> PatternData {
    let archetypes_version = archetypes.map(|(_, v)| v);
    let archetypes = archetypes.map(|(a, _)| a);
    let directory = &snapshot.directory;
    let model = snapshot.capability.model();
    let skills: Vec<(SkillId, SkillCategory)> = directory
        .skills()
        .values()
        .map(|s| (s.id.clone(), s.category))
        .collect();
    let column: HashMap<&SkillId, usize> = skills
        .iter()
        .enumerate()
        .map(|(i, (s, _))| (s, i))
        .collect();
    let by_person: HashMap<&PersonId, &Vec<Assessment>> =
        evidence.iter().map(|(p, a)| (p, a)).collect();
    let archetype_of: HashMap<&PersonId, usize> = archetypes
        .map(|a| {
            a.people
                .iter()
                .zip(&a.set.assignments)
                .map(|(p, &c)| (p, c))
                .collect()
        })
        .unwrap_or_default();
    let labels: Vec<String> = archetypes
        .map(|a| a.set.archetypes.iter().map(|x| x.label.clone()).collect())
        .unwrap_or_default();
    let then = Timestamp::from_unix_millis(now.unix_millis() - i64::from(trend_days) * 86_400_000);
    let empty = |id: String, name: String, parent: String| GroupData {
        id,
        name,
        parent,
        size: 0,
        cells: vec![CellSums::default(); skills.len()],
        archetypes: vec![0; labels.len()],
    };
    let mut groups: BTreeMap<String, GroupData> = BTreeMap::new();
    let mut total = empty(String::new(), "Scope".into(), String::new());
    let team_name = |t: &TeamId| {
        directory
            .teams()
            .get(t)
            .map_or_else(|| t.to_string(), |t| t.name.as_str().to_owned())
    };
    for person in people {
        let (id, name, parent) = match group_by {
            GroupBy::Department => {
                let d = directory.department_of(&person.team);
                (d.to_string(), team_name(d), String::new())
            }
            GroupBy::Team => {
                let d = directory.department_of(&person.team);
                (
                    person.team.to_string(),
                    team_name(&person.team),
                    d.to_string(),
                )
            }
            GroupBy::Role => (
                person.role.to_string(),
                directory
                    .roles()
                    .get(&person.role)
                    .map_or_else(|| person.role.to_string(), |r| r.name.as_str().to_owned()),
                String::new(),
            ),
            GroupBy::Archetype => match archetype_of.get(&person.id) {
                Some(&a) => (format!("archetype-{a}"), labels[a].clone(), String::new()),
                None => ("unassessed".into(), "No evidence yet".into(), String::new()),
            },
        };
        let group = groups
            .entry(id.clone())
            .or_insert_with(|| empty(id, name, parent));
        let mut cells: BTreeMap<usize, Vec<Evidence>> = BTreeMap::new();
        for a in by_person.get(&person.id).into_iter().flat_map(|v| v.iter()) {
            if let Some(&c) = column.get(&a.skill) {
                cells.entry(c).or_default().push(Evidence::from(a));
            }
        }
        for target in [&mut *group, &mut total] {
            target.size += 1;
            if let Some(&a) = archetype_of.get(&person.id) {
                target.archetypes[a] += 1;
            }
        }
        for (c, evidence) in cells {
            let Some(now_level) = model.effective_level(&evidence, now) else {
                continue;
            };
            let before = model.effective_level(&evidence, then);
            let self_gap = model.self_gap(&evidence, now);
            for target in [&mut *group, &mut total] {
                let cell = &mut target.cells[c];
                cell.level += f64::from(now_level.level);
                cell.known += 1;
                if now_level.level >= Level::PROFICIENT {
                    cell.proficient += 1;
                }
                if let Some(g) = self_gap {
                    cell.self_gap += f64::from(g);
                    cell.self_gap_cells += 1;
                }
                if let Some(b) = before {
                    cell.trend += f64::from(now_level.level - b.level);
                    cell.trend_cells += 1;
                }
            }
        }
    }
    PatternData {
        groups: groups.into_values().collect(),
        total,
        skills,
        archetype_labels: labels,
        archetypes_version,
    }
}
