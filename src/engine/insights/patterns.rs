//! Skill patterns of a scope grouped by department, team, role or archetype: per-cell
//! sums, category levels and trends, before any privacy rule is applied.

use std::collections::{BTreeMap, HashMap};

use super::archetypes::ArchetypeView;
use crate::analytics::proficiency::Evidence;
use crate::domain::{
    Assessment, Level, Person, PersonId, SkillCategory, SkillId, TeamId, Timestamp,
};
use crate::engine::Snapshot;
use crate::store::Scored;

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

impl GroupBy {
    /// Every grouping, in the order the server precomputes them (departments first).
    pub const ALL: [GroupBy; 4] = [
        GroupBy::Department,
        GroupBy::Role,
        GroupBy::Archetype,
        GroupBy::Team,
    ];
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

/// A group's cells by skill column (of `PatternData::skills`), kept only for the skills
/// someone in the group has evidence in: a 13-person team has some in a few dozen of an
/// organisation's 500 skills, and 7,700 teams × 500 dense cells took 185 MB per result.
/// A missing column reads as zero sums.
#[derive(Clone, Debug, Default)]
pub struct Cells(Vec<(u32, CellSums)>);

impl Cells {
    /// The sums of `column` (zero when nobody has evidence in it).
    pub fn get(&self, column: usize) -> CellSums {
        self.position(column)
            .ok()
            .map_or_else(CellSums::default, |i| self.0[i].1)
    }

    /// The sums of `column`, to update (added at zero when missing).
    pub fn entry(&mut self, column: usize) -> &mut CellSums {
        let i = match self.position(column) {
            Ok(i) => i,
            Err(i) => {
                let key = u32::try_from(column).unwrap_or(u32::MAX);
                self.0.insert(i, (key, CellSums::default()));
                i
            }
        };
        &mut self.0[i].1
    }

    /// The columns kept, in column order, with their sums.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &CellSums)> {
        self.0.iter().map(|(c, s)| (*c as usize, s))
    }

    fn position(&self, column: usize) -> Result<usize, usize> {
        let key = u32::try_from(column).unwrap_or(u32::MAX);
        self.0.binary_search_by_key(&key, |(c, _)| *c)
    }
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
    pub cells: Cells,
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
    /// What the sums were computed from, so that one person's share can be taken out
    /// exactly (`without`): the grouping, the scope, the time levels are taken at, the
    /// trend period, the evidence bound and the archetypes used.
    pub basis: PatternBasis,
}

/// The inputs of a `PatternData` that a person's share depends on.
#[derive(Clone, Debug)]
pub struct PatternBasis {
    /// Grouping.
    pub group_by: GroupBy,
    /// Team subtree (everyone when `None`).
    pub scope: Option<TeamId>,
    /// Levels are effective levels at this time.
    pub now: Timestamp,
    /// Trend period in days.
    pub trend_days: u32,
    /// Evidence of batches numbered below this was read.
    pub evidence_batches: u64,
    /// The archetypes people were grouped and counted by.
    pub archetypes: Option<std::sync::Arc<ArchetypeView>>,
    /// The directory people were grouped by (teams and roles as they were then).
    pub directory: std::sync::Arc<crate::domain::Directory>,
}

impl CellSums {
    fn add(&mut self, other: &Self) {
        self.level += other.level;
        self.known += other.known;
        self.proficient += other.proficient;
        self.self_gap += other.self_gap;
        self.self_gap_cells += other.self_gap_cells;
        self.trend += other.trend;
        self.trend_cells += other.trend_cells;
    }

    fn subtract(&mut self, other: &Self) {
        self.level -= other.level;
        self.known = self.known.saturating_sub(other.known);
        self.proficient = self.proficient.saturating_sub(other.proficient);
        self.self_gap -= other.self_gap;
        self.self_gap_cells = self.self_gap_cells.saturating_sub(other.self_gap_cells);
        self.trend -= other.trend;
        self.trend_cells = self.trend_cells.saturating_sub(other.trend_cells);
        // Nothing left: exactly zero, not rounding residue.
        if self.known == 0 {
            self.level = 0.0;
        }
        if self.self_gap_cells == 0 {
            self.self_gap = 0.0;
        }
        if self.trend_cells == 0 {
            self.trend = 0.0;
        }
    }
}

/// One person's share of the sums: per skill column, what their evidence adds.
fn person_cells(
    model: &crate::analytics::proficiency::ProficiencyModel,
    evidence: &[Scored],
    now: Timestamp,
    then: Timestamp,
) -> Vec<(usize, CellSums)> {
    let mut cells: BTreeMap<usize, Vec<Evidence>> = BTreeMap::new();
    for e in evidence {
        cells.entry(e.column).or_default().push(Evidence {
            score: e.score.value(),
            source: e.source,
            at: e.at,
        });
    }
    cells
        .into_iter()
        .filter_map(|(c, evidence)| {
            let now_level = model.effective_level(&evidence, now)?;
            let mut sums = CellSums {
                level: f64::from(now_level.level),
                known: 1,
                proficient: u32::from(now_level.level >= Level::PROFICIENT),
                ..CellSums::default()
            };
            if let Some(g) = model.self_gap(&evidence, now) {
                sums.self_gap = f64::from(g);
                sums.self_gap_cells = 1;
            }
            if let Some(b) = model.effective_level(&evidence, then) {
                sums.trend = f64::from(now_level.level - b.level);
                sums.trend_cells = 1;
            }
            Some((c, sums))
        })
        .collect()
}

/// The group a person falls in: (id, name, parent).
fn group_of(
    directory: &crate::domain::Directory,
    person: &Person,
    group_by: GroupBy,
    archetype: Option<usize>,
    labels: &[String],
) -> (String, String, String) {
    let team_name = |t: &TeamId| {
        directory
            .teams()
            .get(t)
            .map_or_else(|| t.to_string(), |t| t.name.as_str().to_owned())
    };
    match group_by {
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
        GroupBy::Archetype => match archetype {
            Some(a) => (format!("archetype-{a}"), labels[a].clone(), String::new()),
            None => ("unassessed".into(), "No evidence yet".into(), String::new()),
        },
    }
}

impl PatternData {
    /// These patterns without `person`'s share, taken out exactly as it was summed
    /// (their team, role and archetype as they were then, levels at `basis.now`):
    /// `evidence` is their assessments in batches below `basis.evidence_batches`, `model`
    /// the proficiency model. `None` when they were not counted (not in the scope).
    /// Sums differ from a recomputation without them by float rounding only; counts
    /// are exact.
    pub fn without(
        &self,
        person: &PersonId,
        model: &crate::analytics::proficiency::ProficiencyModel,
        evidence: &[Assessment],
    ) -> Option<Self> {
        let directory = &*self.basis.directory;
        let person = directory.person(person.as_str())?;
        if let Some(scope) = &self.basis.scope {
            directory
                .subtree(scope.as_str())
                .filter(|teams| teams.contains(&person.team))?;
        }
        let archetype = self.basis.archetypes.as_ref().and_then(|a| {
            a.people
                .binary_search(&person.id)
                .ok()
                .map(|row| a.set.assignments[row])
        });
        let (id, _, _) = group_of(
            directory,
            person,
            self.basis.group_by,
            archetype,
            &self.archetype_labels,
        );
        let column: HashMap<&SkillId, usize> = self
            .skills
            .iter()
            .enumerate()
            .map(|(i, (s, _))| (s, i))
            .collect();
        let scored: Vec<Scored> = evidence
            .iter()
            .filter_map(|a| {
                column.get(&a.skill).map(|&c| Scored {
                    column: c,
                    score: a.score,
                    source: a.source,
                    at: a.assessed_at,
                })
            })
            .collect();
        let then = Timestamp::from_unix_millis(
            self.basis.now.unix_millis() - i64::from(self.basis.trend_days) * 86_400_000,
        );
        let share = person_cells(model, &scored, self.basis.now, then);
        let mut out = Self {
            groups: self.groups.clone(),
            total: self.total.clone(),
            skills: self.skills.clone(),
            archetype_labels: self.archetype_labels.clone(),
            archetypes_version: self.archetypes_version,
            basis: self.basis.clone(),
        };
        let at = out.groups.iter().position(|g| g.id == id)?;
        for target in [&mut out.groups[at], &mut out.total] {
            target.size = target.size.saturating_sub(1);
            if let Some(count) = archetype.and_then(|a| target.archetypes.get_mut(a)) {
                *count = count.saturating_sub(1);
            }
            for (c, sums) in &share {
                target.cells.entry(*c).subtract(sums);
            }
        }
        if out.groups[at].size == 0 {
            out.groups.remove(at);
        }
        Some(out)
    }
}

/// The patterns of the people of `scope` in `snapshot`, reading their evidence as of the
/// snapshot (batches stored after it are left out) — the body of a patterns job.
#[allow(clippy::too_many_arguments)] // one job's inputs, each different
pub fn patterns_at(
    snapshot: &Snapshot,
    reader: &crate::store::EvidenceReader,
    scope: Option<&crate::domain::TeamId>,
    group_by: GroupBy,
    archetypes: Option<(&std::sync::Arc<ArchetypeView>, u64)>,
    trend_days: u32,
    now: Timestamp,
    cancel: &crate::engine::Cancel,
) -> crate::error::Result<PatternData> {
    let people = super::people_in(snapshot, scope)?;
    let evidence = read_scored(snapshot, reader, &people, snapshot.evidence_batches)?;
    cancel.check()?;
    Ok(compute_patterns(
        snapshot, &people, scope, group_by, &evidence, archetypes, trend_days, now,
    ))
}

/// The skills of `snapshot` in the order patterns number them (their columns).
fn skill_columns(snapshot: &Snapshot) -> Vec<(SkillId, SkillCategory)> {
    snapshot
        .directory
        .skills()
        .values()
        .map(|s| (s.id.clone(), s.category))
        .collect()
}

/// The evidence of `people` (in their order) from the first `batches` evidence batches,
/// skills numbered as patterns number them: what `compute_patterns` reads.
pub fn read_scored(
    snapshot: &Snapshot,
    reader: &crate::store::EvidenceReader,
    people: &[&Person],
    batches: u64,
) -> crate::error::Result<Vec<Vec<Scored>>> {
    let skills = skill_columns(snapshot);
    let column: ahash::AHashMap<&str, usize> = skills
        .iter()
        .enumerate()
        .map(|(i, (s, _))| (s.as_str(), i))
        .collect();
    let ids: Vec<PersonId> = people.iter().map(|p| p.id.clone()).collect();
    reader.scored_about_many_before(&ids, batches, |s| column.get(s).copied())
}

/// Aggregates the people of a scope by `group_by` from their evidence (`evidence[i]`
/// is `people[i]`'s, as `read_scored` numbers skills).
#[allow(clippy::too_many_arguments)] // the inputs of one computation, each different
pub fn compute_patterns(
    snapshot: &Snapshot,
    people: &[&Person],
    scope: Option<&TeamId>,
    group_by: GroupBy,
    evidence: &[Vec<Scored>],
    archetypes: Option<(&std::sync::Arc<ArchetypeView>, u64)>,
    trend_days: u32,
    now: Timestamp,
) -> PatternData {
    let archetypes_version = archetypes.map(|(_, v)| v);
    let basis = PatternBasis {
        group_by,
        scope: scope.cloned(),
        now,
        trend_days,
        evidence_batches: snapshot.evidence_batches,
        archetypes: archetypes.map(|(a, _)| std::sync::Arc::clone(a)),
        directory: std::sync::Arc::clone(&snapshot.directory),
    };
    let archetypes = archetypes.map(|(a, _)| &**a);
    let directory = &snapshot.directory;
    let model = snapshot.capability.model();
    let skills = skill_columns(snapshot);
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
        cells: Cells::default(),
        archetypes: vec![0; labels.len()],
    };
    let mut groups: BTreeMap<String, GroupData> = BTreeMap::new();
    let mut total = empty(String::new(), "Scope".into(), String::new());
    for (person, evidence) in people.iter().zip(evidence) {
        let archetype = archetype_of.get(&person.id).copied();
        let (id, name, parent) = group_of(directory, person, group_by, archetype, &labels);
        let group = groups
            .entry(id.clone())
            .or_insert_with(|| empty(id, name, parent));
        let share = person_cells(model, evidence, now, then);
        for target in [&mut *group, &mut total] {
            target.size += 1;
            if let Some(a) = archetype {
                target.archetypes[a] += 1;
            }
            for (c, sums) in &share {
                target.cells.entry(*c).add(sums);
            }
        }
    }
    PatternData {
        groups: groups.into_values().collect(),
        total,
        skills,
        archetype_labels: labels,
        archetypes_version,
        basis,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::cache::Want;
    use crate::service::demo_engine;

    /// Two pattern results agree: same groups, sizes and counts; sums within `tolerance`.
    fn assert_same(a: &PatternData, b: &PatternData, tolerance: f64, what: &str) {
        let ids = |d: &PatternData| d.groups.iter().map(|g| g.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(a), ids(b), "{what}: groups");
        for (x, y) in a
            .groups
            .iter()
            .chain([&a.total])
            .zip(b.groups.iter().chain([&b.total]))
        {
            assert_eq!(x.size, y.size, "{what}: size of {}", x.id);
            assert_eq!(x.archetypes, y.archetypes, "{what}: archetypes of {}", x.id);
            for c in 0..a.skills.len() {
                let (p, q) = (&x.cells.get(c), &y.cells.get(c));
                let counts =
                    |s: &CellSums| (s.known, s.proficient, s.self_gap_cells, s.trend_cells);
                assert_eq!(
                    counts(p),
                    counts(q),
                    "{what}: counts of {} column {c}",
                    x.id
                );
                for (u, v) in [
                    (p.level, q.level),
                    (p.self_gap, q.self_gap),
                    (p.trend, q.trend),
                ] {
                    assert!(
                        (u - v).abs() <= tolerance,
                        "{what}: {} column {c}: {u} vs {v}",
                        x.id
                    );
                }
            }
        }
    }

    #[tokio::test]
    async fn after_an_erasure_cached_patterns_come_at_once_without_the_person_as_a_recomputation_gives()
     {
        let (_dir, engine) = demo_engine(300).await;
        let groupings = [
            GroupBy::Department,
            GroupBy::Team,
            GroupBy::Role,
            GroupBy::Archetype,
        ];
        for group_by in groupings {
            engine
                .patterns(group_by, None, 90, Want::Current)
                .await
                .unwrap();
        }
        // Someone with evidence, in a team of their own department.
        let before = engine.snapshot();
        let victim = before
            .directory
            .people()
            .keys()
            .find(|p| before.capability.row(p).is_some())
            .unwrap()
            .clone();
        engine.delete_person(victim.clone()).await.unwrap();
        let after = engine.snapshot();
        let reader = engine.evidence();
        for group_by in groupings {
            // At once: the cached result without them, stale while a new one is computed.
            let served = engine
                .patterns(group_by, None, 90, Want::Latest)
                .await
                .unwrap();
            assert!(
                served.computed_version < served.current_version,
                "{group_by:?}: stale"
            );
            let data = &served.value;
            assert_eq!(data.total.size, before.directory.people().len() - 1);
            // What a computation on the data without them gives, at the same time, evidence
            // bound and archetypes.
            let people: Vec<&Person> = after.directory.people().values().collect();
            let evidence =
                read_scored(&after, &reader, &people, data.basis.evidence_batches).unwrap();
            if group_by == GroupBy::Archetype {
                assert!(data.basis.archetypes.is_some(), "grouped by archetypes");
            }
            let expected = compute_patterns(
                &after,
                &people,
                None,
                group_by,
                &evidence,
                data.basis
                    .archetypes
                    .as_ref()
                    .map(|v| (v, data.archetypes_version.unwrap_or(0))),
                90,
                data.basis.now,
            );
            assert_same(data, &expected, 1e-9, &format!("{group_by:?}"));
        }
    }
}
