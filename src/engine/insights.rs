//! Organisation-wide insights — archetypes and skill patterns — computed off the request
//! path and cached by data version, plus mentor matching over one snapshot.
//!
//! A cached result is served at once while data has changed since (the response says how
//! stale it is) and its successor is computed in the background; a query waits only when
//! nothing usable exists. A result computed before an erasure is never served: erasing a
//! person clears every cache, and results computed on older snapshots are discarded.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arc_swap::ArcSwap;
use ndarray::{Array1, Array2};

use super::cache::{Cache, Fresh, Want};
use super::jobs::Cancel;
use super::{Engine, Snapshot};
use crate::analytics::archetypes::{ArchetypeParams, ArchetypeSet, find_archetypes};
use crate::analytics::kmeans::KMeansError;
use crate::analytics::mentors::{
    MentorRules, Need, Plan, PlanProblem, plan_greedy, plan_optimal, similarity,
};
use crate::analytics::proficiency::Evidence;
use crate::domain::{
    Assessment, Level, Person, PersonId, Role, SkillCategory, SkillId, TeamId, Timestamp,
};
use crate::error::{Error, Result};

/// Archetypes by (scope, k).
type ArchetypeCache = Cache<(Option<TeamId>, Option<usize>), ArchetypeView>;
/// Patterns by (grouping, scope, trend days).
type PatternCache = Cache<(GroupBy, Option<TeamId>, u32), PatternData>;

/// Mentoring plans by (scope, capacity per mentor, mentors per mentee, same team).
type PlanCache = Cache<(Option<TeamId>, u32, u32, bool), MentoringPlan>;

/// The insight caches of an engine.
pub(super) struct Insights {
    archetypes: Arc<ArchetypeCache>,
    patterns: Arc<PatternCache>,
    plans: Arc<PlanCache>,
}

impl Insights {
    pub(super) fn new(snapshot: &Arc<ArcSwap<Snapshot>>) -> Self {
        let data = |s: &Snapshot| s.data_version;
        // A plan also depends on the mentoring relationships, which move only `version`.
        let any = |s: &Snapshot| s.version;
        Self {
            archetypes: Arc::new(Cache::new(Arc::clone(snapshot), data)),
            patterns: Arc::new(Cache::new(Arc::clone(snapshot), data)),
            plans: Arc::new(Cache::new(Arc::clone(snapshot), any)),
        }
    }

    pub(super) fn clear(&self) {
        self.archetypes.clear();
        self.patterns.clear();
        self.plans.clear();
    }
}

/// Archetypes of the people of a scope.
#[derive(Debug)]
pub struct ArchetypeView {
    /// The clustering.
    pub set: ArchetypeSet,
    /// Person of each clustered row (people with evidence, in id order).
    pub people: Vec<PersonId>,
    /// Skill columns.
    pub skills: Vec<SkillId>,
    /// Per archetype: `(department, members)`, most members first.
    pub departments: Vec<Vec<(TeamId, u32)>>,
    /// Level assumed without evidence.
    pub unknown_level: f32,
}

/// The people of `scope` (a team subtree; everyone when `None`), in id order.
pub fn people_in<'a>(snapshot: &'a Snapshot, scope: Option<&TeamId>) -> Result<Vec<&'a Person>> {
    let directory = &snapshot.directory;
    match scope {
        None => Ok(directory.people().values().collect()),
        Some(team) => {
            let teams = directory
                .subtree(team.as_str())
                .ok_or(Error::NotFound { kind: "team" })?;
            Ok(directory
                .people()
                .values()
                .filter(|p| teams.contains(&p.team))
                .collect())
        }
    }
}

/// Clusters the people of `scope` who have any evidence, over the skills anyone of them
/// has evidence in.
pub fn compute_archetypes(
    snapshot: &Snapshot,
    scope: Option<&TeamId>,
    k: Option<usize>,
    cancel: &Cancel,
) -> Result<ArchetypeView> {
    let capability = &snapshot.capability;
    let axis = capability.axis();
    let rows: Vec<(&Person, &ndarray::Array1<f32>)> = people_in(snapshot, scope)?
        .into_iter()
        .filter_map(|p| {
            let row = capability.row(&p.id)?;
            row.levels
                .iter()
                .any(|v| !v.is_nan())
                .then_some((p, &row.levels))
        })
        .collect();
    let columns: Vec<usize> = (0..axis.len())
        .filter(|&c| rows.iter().any(|(_, levels)| !levels[c].is_nan()))
        .collect();
    if rows.len() < 2 || columns.is_empty() {
        return Err(Error::FailedPrecondition(
            "archetypes need at least two people with evidence in the scope",
        ));
    }
    if let Some(k) = k
        && k > rows.len()
    {
        return Err(Error::InvalidArgument(vec![
            crate::domain::FieldViolation::new(
                "k",
                format!("more archetypes than people with evidence ({})", rows.len()),
            ),
        ]));
    }
    let profiles =
        Array2::from_shape_fn((rows.len(), columns.len()), |(i, j)| rows[i].1[columns[j]]);
    let skills: Vec<SkillId> = columns.iter().map(|&c| axis.skills()[c].clone()).collect();
    let names: Vec<&str> = skills
        .iter()
        .map(|s| {
            snapshot
                .directory
                .skills()
                .get(s)
                .map_or(s.as_str(), |skill| skill.name.as_str())
        })
        .collect();
    let params = ArchetypeParams {
        k,
        stop: Some(cancel.flag()),
        ..ArchetypeParams::default()
    };
    let started = std::time::Instant::now();
    let set = find_archetypes(profiles.view(), &names, &params).map_err(|e| match e {
        KMeansError::Stopped => Error::Cancelled,
        e => Error::Internal(format!("clustering failed: {e}")),
    })?;
    tracing::info!(
        people = rows.len(),
        skills = columns.len(),
        k = set.archetypes.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "archetypes computed"
    );
    let mut departments: Vec<BTreeMap<TeamId, u32>> = vec![BTreeMap::new(); set.archetypes.len()];
    for ((person, _), &a) in rows.iter().zip(&set.assignments) {
        let department = snapshot.directory.department_of(&person.team);
        *departments[a].entry(department.clone()).or_default() += 1;
    }
    let departments = departments
        .into_iter()
        .map(|d| {
            let mut d: Vec<(TeamId, u32)> = d.into_iter().collect();
            d.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            d
        })
        .collect();
    Ok(ArchetypeView {
        people: rows.iter().map(|(p, _)| p.id.clone()).collect(),
        skills,
        departments,
        unknown_level: params.unknown_level,
        set,
    })
}

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
}

/// Aggregates the people of a scope by `group_by` from their evidence.
pub fn compute_patterns(
    snapshot: &Snapshot,
    people: &[&Person],
    group_by: GroupBy,
    evidence: &[(PersonId, Vec<Assessment>)],
    archetypes: Option<&ArchetypeView>,
    trend_days: u32,
    now: Timestamp,
) -> PatternData {
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
                cells.entry(c).or_default().push(Evidence {
                    score: a.score.value(),
                    source: a.source,
                    at: a.assessed_at,
                });
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
    }
}

/// One skill a mentor can help with.
#[derive(Clone, Debug)]
pub struct MentorSkillView {
    /// Skill.
    pub skill: SkillId,
    /// Mentee's level.
    pub mentee_level: Option<f32>,
    /// Mentor's level.
    pub mentor_level: f32,
    /// Confidence in the mentor's level.
    pub confidence: f32,
    /// Level to reach.
    pub target: Option<f32>,
    /// Expected gain (weighted).
    pub gain: f32,
}

/// A suggested mentor.
#[derive(Clone, Debug)]
pub struct MentorView {
    /// The mentor.
    pub mentor: Person,
    /// Σ confidence × gain.
    pub gain: f32,
    /// Profile similarity.
    pub similarity: f32,
    /// Ranking score.
    pub score: f32,
    /// What they can help with.
    pub skills: Vec<MentorSkillView>,
    /// Why.
    pub rationale: String,
    /// Mentees they have now.
    pub current_mentees: usize,
}

/// What `person` should grow: the skills given (targets from `role` where it has
/// them), or else `role`'s requirements they fall short of.
pub fn mentee_needs(
    snapshot: &Snapshot,
    person: &Person,
    role: Option<&Role>,
    skills: &[SkillId],
) -> Vec<(SkillId, Need)> {
    let capability = &snapshot.capability;
    let axis = capability.axis();
    let row = capability.row(&person.id);
    let level_of = |c: usize| row.map(|r| r.levels[c]).filter(|l| !l.is_nan());
    let requirement = |s: &SkillId| {
        role.and_then(|r| r.requirements.iter().find(|q| q.skill == *s))
            .map(|q| (q.level.value(), q.weight.value()))
    };
    let wanted: Vec<SkillId> = if skills.is_empty() {
        role.map(|r| r.requirements.iter().map(|q| q.skill.clone()).collect())
            .unwrap_or_default()
    } else {
        skills.to_vec()
    };
    wanted
        .into_iter()
        .filter_map(|skill| {
            let column = axis.column(skill.as_str())?;
            let level = level_of(column);
            let (target, weight) = match requirement(&skill) {
                Some((t, w)) => (Some(t), w),
                None => (None, 1.0),
            };
            // From the role: only requirements not yet met.
            if skills.is_empty() && target.is_some_and(|t| level.unwrap_or(0.0) >= t) {
                return None;
            }
            Some((
                skill,
                Need {
                    column,
                    level,
                    target,
                    weight,
                },
            ))
        })
        .collect()
}

/// Expected gain of `mentor` for `needs`, skill by skill (confidence-weighted).
fn mentor_gains(
    snapshot: &Snapshot,
    rules: &MentorRules,
    needs: &[(SkillId, Need)],
    mentor: &Person,
) -> Vec<MentorSkillView> {
    let Some(row) = snapshot.capability.row(&mentor.id) else {
        return Vec::new();
    };
    needs
        .iter()
        .filter_map(|(skill, need)| {
            let level = row.levels[need.column];
            let gain = rules.gain(need, level)?;
            let confidence = row.confidence[need.column];
            Some(MentorSkillView {
                skill: skill.clone(),
                mentee_level: need.level,
                mentor_level: level,
                confidence,
                target: need.target,
                gain: gain * confidence,
            })
        })
        .filter(|s| s.gain > 0.0)
        .collect()
}

/// Mentors among `pool` for `mentee`'s `needs`, best first. Mentors who already have
/// `capacity` mentees, or already mentor this mentee, are left out.
pub fn find_mentors<'a>(
    snapshot: &Snapshot,
    mentee: &Person,
    needs: &[(SkillId, Need)],
    pool: impl Iterator<Item = &'a Person>,
    allow_same_team: bool,
    capacity: usize,
    limit: usize,
) -> Vec<MentorView> {
    let mentoring = &snapshot.mentorships;
    let rules = MentorRules::default();
    let capability = &snapshot.capability;
    let width = capability.axis().len();
    let unknown = Array1::from_elem(width, f32::NAN);
    let mentee_row = capability
        .row(&mentee.id)
        .map_or(unknown.view(), |r| r.levels.view());
    let mut found: Vec<MentorView> = pool
        .filter(|p| p.id != mentee.id && (allow_same_team || p.team != mentee.team))
        .filter(|p| mentoring.load(&p.id) < capacity && mentoring.get(&mentee.id, &p.id).is_none())
        .filter_map(|mentor| {
            let skills = mentor_gains(snapshot, &rules, needs, mentor);
            if skills.is_empty() {
                return None;
            }
            let gain: f32 = skills.iter().map(|s| s.gain).sum();
            let sim = capability
                .row(&mentor.id)
                .map_or(0.0, |r| similarity(mentee_row, r.levels.view()));
            Some(MentorView {
                rationale: rationale(snapshot, &skills, sim),
                mentor: mentor.clone(),
                gain,
                similarity: sim,
                score: gain * (0.8 + 0.2 * sim),
                skills,
                current_mentees: mentoring.load(&mentor.id),
            })
        })
        .collect();
    found.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.mentor.id.cmp(&b.mentor.id))
    });
    found.truncate(limit);
    found
}

fn rationale(snapshot: &Snapshot, skills: &[MentorSkillView], sim: f32) -> String {
    let mut best: Vec<&MentorSkillView> = skills.iter().collect();
    best.sort_by(|a, b| b.gain.total_cmp(&a.gain));
    let parts: Vec<String> = best
        .iter()
        .take(3)
        .map(|s| {
            let name = snapshot
                .directory
                .skills()
                .get(&s.skill)
                .map_or(s.skill.as_str(), |k| k.name.as_str());
            let mentee = s
                .mentee_level
                .map_or_else(|| "no evidence".to_owned(), |l| format!("{l:.1}"));
            format!("{name} {:.1} (mentee {mentee})", s.mentor_level)
        })
        .collect();
    let relatable = if sim >= 0.8 {
        "very similar profile"
    } else if sim >= 0.6 {
        "similar profile"
    } else {
        "different profile"
    };
    format!("Can teach {}; {relatable} ({sim:.2}).", parts.join(", "))
}

/// One pair of an organisation-wide mentoring plan.
#[derive(Clone, Debug)]
pub struct PlannedPair {
    /// Mentee.
    pub mentee: PersonId,
    /// Mentor.
    pub mentor: PersonId,
    /// Expected gain.
    pub gain: f64,
    /// Skills it is for.
    pub skills: Vec<SkillId>,
}

/// An organisation-wide mentoring plan.
#[derive(Clone, Debug, Default)]
pub struct MentoringPlan {
    /// Chosen pairs, by mentee then mentor.
    pub pairs: Vec<PlannedPair>,
    /// Total expected gain.
    pub total: f64,
    /// The greedy baseline's total.
    pub greedy_total: f64,
    /// Mentees with at least one candidate pair.
    pub mentees_with_options: u32,
    /// Candidate pairs considered.
    pub candidate_pairs: u32,
}

/// Candidate pairs kept per mentee, best first: bounds the flow network's size.
pub const PAIRS_PER_MENTEE: usize = 25;

/// The best assignment of mentors to mentees among `people` (each grows against their
/// role), under the capacities. Active mentoring relationships count: a mentor's
/// capacity is what their current mentees leave, a mentee's limit likewise, and pairs
/// already mentoring are not proposed again.
pub fn plan_mentoring(
    snapshot: &Snapshot,
    people: &[&Person],
    capacity: u32,
    max_mentors: u32,
    allow_same_team: bool,
) -> MentoringPlan {
    let rules = MentorRules::default();
    let directory = &snapshot.directory;
    let capability = &snapshot.capability;
    let mentoring = &snapshot.mentorships;
    let spare = |p: &Person| (capacity as usize).saturating_sub(mentoring.load(&p.id)) as u32;
    // Mentors: people with room for a mentee and any level at the mentoring threshold.
    let mentors: Vec<&Person> = people
        .iter()
        .copied()
        .filter(|p| spare(p) > 0)
        .filter(|p| {
            capability
                .row(&p.id)
                .is_some_and(|r| r.levels.iter().any(|&l| l >= rules.min_level))
        })
        .collect();
    let mut mentee_limits: Vec<u32> = Vec::new();
    let mut mentees: Vec<(&Person, Vec<(SkillId, Need)>)> = Vec::new();
    let mut pairs: Vec<(usize, usize, f64)> = Vec::new();
    let mut pair_skills: Vec<Vec<SkillId>> = Vec::new();
    for person in people {
        let role = directory.roles().get(&person.role);
        let limit = (max_mentors as usize).saturating_sub(mentoring.mentors_of(&person.id)) as u32;
        let needs = mentee_needs(snapshot, person, role, &[]);
        if needs.is_empty() || limit == 0 {
            continue;
        }
        let mut options: Vec<(usize, f64, Vec<SkillId>)> = mentors
            .iter()
            .enumerate()
            .filter(|(_, m)| m.id != person.id && (allow_same_team || m.team != person.team))
            .filter(|(_, m)| mentoring.get(&person.id, &m.id).is_none())
            .filter_map(|(j, m)| {
                let skills = mentor_gains(snapshot, &rules, &needs, m);
                let gain: f64 = skills.iter().map(|s| f64::from(s.gain)).sum();
                (gain > 0.0).then(|| (j, gain, skills.into_iter().map(|s| s.skill).collect()))
            })
            .collect();
        if options.is_empty() {
            continue;
        }
        options.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        options.truncate(PAIRS_PER_MENTEE);
        let mentee = mentees.len();
        for (j, gain, skills) in options {
            pairs.push((mentee, j, gain));
            pair_skills.push(skills);
        }
        mentees.push((person, needs));
        mentee_limits.push(limit);
    }
    let problem = PlanProblem {
        mentees: mentees.len(),
        capacity: mentors.iter().map(|m| spare(m)).collect(),
        max_mentors: mentee_limits,
        pairs,
    };
    let best: Plan = plan_optimal(&problem);
    let greedy = plan_greedy(&problem);
    let mut chosen: Vec<PlannedPair> = best
        .chosen
        .iter()
        .map(|&p| {
            let (mentee, mentor, gain) = problem.pairs[p];
            PlannedPair {
                mentee: mentees[mentee].0.id.clone(),
                mentor: mentors[mentor].id.clone(),
                gain,
                skills: pair_skills[p].clone(),
            }
        })
        .collect();
    chosen.sort_by(|a, b| {
        a.mentee
            .cmp(&b.mentee)
            .then_with(|| a.mentor.cmp(&b.mentor))
    });
    MentoringPlan {
        pairs: chosen,
        total: best.total,
        greedy_total: greedy.total,
        mentees_with_options: mentees.len() as u32,
        candidate_pairs: problem.pairs.len() as u32,
    }
}

impl Engine {
    /// Archetypes of `scope` (everyone when `None`), from the cache when possible.
    pub async fn archetypes(
        self: &Arc<Self>,
        scope: Option<TeamId>,
        k: Option<usize>,
        want: Want,
    ) -> Result<Fresh<ArchetypeView>> {
        let key = (scope.clone(), k);
        let engine = Arc::clone(self);
        self.insights
            .archetypes
            .get(key, want, move |snapshot, cancel| {
                Box::pin(async move {
                    engine
                        .jobs
                        .run(cancel, move |cancel| {
                            compute_archetypes(&snapshot, scope.as_ref(), k, cancel)
                        })
                        .await
                })
            })
            .await
    }

    /// Skill patterns of `scope` grouped by `group_by`, from the cache when possible.
    pub async fn patterns(
        self: &Arc<Self>,
        group_by: GroupBy,
        scope: Option<TeamId>,
        trend_days: u32,
        want: Want,
    ) -> Result<Fresh<PatternData>> {
        let key = (group_by, scope.clone(), trend_days);
        let engine = Arc::clone(self);
        self.insights
            .patterns
            .get(key, want, move |snapshot, cancel| {
                Box::pin(async move {
                    // Archetype mix is reported for every grouping; a scope where they
                    // cannot be computed (too few people with evidence) has none.
                    let archetypes =
                        match engine.archetypes(scope.clone(), None, Want::Current).await {
                            Ok(a) => Some(a.value),
                            Err(Error::FailedPrecondition(_)) => None,
                            Err(e) => return Err(e),
                        };
                    let reader = engine.evidence();
                    engine
                        .jobs
                        .run(cancel, move |cancel| {
                            let people = people_in(&snapshot, scope.as_ref())?;
                            let ids: Vec<PersonId> = people.iter().map(|p| p.id.clone()).collect();
                            let evidence = reader.assessments_about_many(&ids)?;
                            cancel.check()?;
                            Ok(compute_patterns(
                                &snapshot,
                                &people,
                                group_by,
                                &evidence,
                                archetypes.as_deref(),
                                trend_days,
                                Timestamp::now(),
                            ))
                        })
                        .await
                })
            })
            .await
    }

    /// A mentoring plan for `scope`, from the cache when possible.
    pub async fn mentoring_plan(
        self: &Arc<Self>,
        scope: Option<TeamId>,
        capacity: u32,
        max_mentors: u32,
        allow_same_team: bool,
        want: Want,
    ) -> Result<Fresh<MentoringPlan>> {
        let key = (scope.clone(), capacity, max_mentors, allow_same_team);
        let engine = Arc::clone(self);
        self.insights
            .plans
            .get(key, want, move |snapshot, cancel| {
                Box::pin(async move {
                    engine
                        .jobs
                        .run(cancel, move |_| {
                            let people = people_in(&snapshot, scope.as_ref())?;
                            Ok(plan_mentoring(
                                &snapshot,
                                &people,
                                capacity,
                                max_mentors,
                                allow_same_team,
                            ))
                        })
                        .await
                })
            })
            .await
    }
}
