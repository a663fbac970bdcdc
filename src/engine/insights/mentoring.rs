//! Mentor matching over one snapshot: a mentee's needs, ranked mentors with their
//! rationale, and the organisation-wide plan (optimal assignment beside the greedy one).

use ndarray::Array1;

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use rayon::prelude::*;

use crate::analytics::mentors::{
    MentorRules, Need, PlanProblem, SolvedPlan, plan_best, plan_greedy, similarity,
};
use crate::domain::{Person, PersonId, Role, SkillId, TeamId};
use crate::engine::{Cancel, Snapshot};
use crate::error::{Error, Result};

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
    /// No plan over the candidate pairs has a greater total (equal to `total` when the
    /// plan is proven optimal).
    pub upper_bound: f64,
    /// Solved exactly (min-cost flow) rather than by the auction.
    pub exact: bool,
    /// The greedy baseline's total.
    pub greedy_total: f64,
    /// Mentees with at least one candidate pair.
    pub mentees_with_options: u32,
    /// Candidate pairs considered.
    pub candidate_pairs: u32,
}

impl MentoringPlan {
    /// The plan without the pairs of `person`, mentee or mentor, and their gain. It is no
    /// longer proven optimal for what remains; `upper_bound` still bounds it (fewer people
    /// never allow more). `None` when the person is in no pair.
    pub fn without(&self, person: &PersonId) -> Option<Self> {
        let involved = |p: &PlannedPair| p.mentee == *person || p.mentor == *person;
        if !self.pairs.iter().any(involved) {
            return None;
        }
        let was_mentee = self.pairs.iter().any(|p| p.mentee == *person);
        let pairs: Vec<PlannedPair> = self
            .pairs
            .iter()
            .filter(|p| !involved(p))
            .cloned()
            .collect();
        Some(Self {
            total: pairs.iter().fold(0.0, |t, p| t + p.gain),
            pairs,
            exact: false,
            mentees_with_options: self.mentees_with_options - u32::from(was_mentee),
            ..self.clone()
        })
    }
}

/// Candidate pairs kept per mentee, best first: bounds the flow network's size.
pub const PAIRS_PER_MENTEE: usize = 25;

/// Mentors considered per skill a mentee needs: the strongest this many qualified ones
/// (level, then confidence), and as many more taken from a place in the rest that
/// differs per mentee. Keeps a plan's cost linear in the organisation's size while the
/// candidates still spread over every qualified mentor's capacity.
pub const MENTORS_PER_SKILL: usize = 1_000;

/// Mentors who qualify in a skill at all (level at least `min_level`), by level then
/// confidence, highest first, as `(mentor, level, confidence)`.
fn qualified_by_skill(
    snapshot: &Snapshot,
    mentors: &[&Person],
    rules: &MentorRules,
) -> Vec<Vec<(u32, f32, f32)>> {
    let capability = &snapshot.capability;
    let mut by_skill = vec![Vec::new(); capability.axis().len()];
    for (j, mentor) in mentors.iter().enumerate() {
        let Some(row) = capability.row(&mentor.id) else {
            continue;
        };
        for (column, (&level, &confidence)) in row.levels.iter().zip(&row.confidence).enumerate() {
            if level >= rules.min_level {
                by_skill[column].push((j as u32, level, confidence));
            }
        }
    }
    for list in &mut by_skill {
        list.sort_by(|a, b| {
            b.1.total_cmp(&a.1)
                .then(b.2.total_cmp(&a.2))
                .then(a.0.cmp(&b.0))
        });
    }
    by_skill
}

/// What candidate search knows of the mentors, by index.
struct MentorPool<'a> {
    people: Vec<&'a Person>,
    /// Team of each mentor, as a number.
    team: Vec<u32>,
    /// Team numbers.
    teams: HashMap<&'a TeamId, u32>,
    /// Mentor index of a person.
    index: HashMap<&'a PersonId, u32>,
    /// Qualified mentors by skill column.
    by_skill: Vec<Vec<(u32, f32, f32)>>,
}

impl<'a> MentorPool<'a> {
    fn new(snapshot: &Snapshot, mentors: Vec<&'a Person>, rules: &MentorRules) -> Self {
        let mut teams = HashMap::new();
        let team = mentors
            .iter()
            .map(|m| {
                let next = teams.len() as u32;
                *teams.entry(&m.team).or_insert(next)
            })
            .collect();
        let index = mentors
            .iter()
            .enumerate()
            .map(|(j, m)| (&m.id, j as u32))
            .collect();
        let by_skill = qualified_by_skill(snapshot, &mentors, rules);
        Self {
            people: mentors,
            team,
            teams,
            index,
            by_skill,
        }
    }
}

/// Per-worker scratch space: every mentor's summed gain for the current mentee.
struct Tally {
    gain: Vec<f64>,
    touched: Vec<u32>,
    options: Vec<(usize, f64)>,
}

/// Spreads equally good candidates over mentors: a fixed pseudo-random order per
/// mentee, so that ties do not send every mentee to the same few mentors.
fn tie_break(mentee: usize, mentor: usize) -> u64 {
    let mut x = ((mentee as u64) << 32 | mentor as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 29;
    x.wrapping_mul(0xbf58_476d_1ce4_e5b9)
}

/// `mentee`'s best `PAIRS_PER_MENTEE` mentors with their summed gain, best first (ties in
/// a fixed order per mentee). Gains are summed skill by skill in the order of `needs`,
/// over the mentors considered for each (see `MENTORS_PER_SKILL`), exactly as
/// `mentor_gains` sums them.
fn best_mentors(
    snapshot: &Snapshot,
    rules: &MentorRules,
    pool: &MentorPool,
    (position, mentee): (usize, &Person),
    needs: &[(SkillId, Need)],
    allow_same_team: bool,
    tally: &mut Tally,
) -> Vec<(usize, f64)> {
    for (_, need) in needs {
        let lowest = rules
            .min_level
            .max(need.level.unwrap_or(0.0) + rules.min_lead);
        let qualified = &pool.by_skill[need.column];
        let qualified = &qualified[..qualified.partition_point(|q| q.1 >= lowest)];
        let (strongest, rest) = qualified.split_at(qualified.len().min(MENTORS_PER_SKILL));
        let spread = match rest.len() > MENTORS_PER_SKILL {
            true => {
                let start = (tie_break(position, need.column) % rest.len() as u64) as usize;
                let (tail, head) = rest.split_at(start);
                let from_head = head.len().min(MENTORS_PER_SKILL);
                head[..from_head]
                    .iter()
                    .chain(&tail[..MENTORS_PER_SKILL - from_head])
            }
            false => rest.iter().chain(&rest[..0]),
        };
        for &(j, level, confidence) in strongest.iter().chain(spread) {
            let Some(gain) = rules.gain(need, level) else {
                continue;
            };
            let gain = gain * confidence;
            if gain > 0.0 {
                let sum = &mut tally.gain[j as usize];
                if *sum == 0.0 {
                    tally.touched.push(j);
                }
                *sum += f64::from(gain);
            }
        }
    }
    let mentoring = &snapshot.mentorships;
    let own_team = pool.teams.get(&mentee.team).copied();
    let itself = pool.index.get(&mentee.id).copied();
    let has_mentors = mentoring.mentors_of(&mentee.id) > 0;
    let Tally {
        gain,
        touched,
        options,
    } = tally;
    options.clear();
    options.extend(
        touched
            .drain(..)
            .map(|j| (j, std::mem::take(&mut gain[j as usize])))
            .filter(|&(j, _)| {
                Some(j) != itself
                    && (allow_same_team || Some(pool.team[j as usize]) != own_team)
                    && !(has_mentors
                        && mentoring
                            .get(&mentee.id, &pool.people[j as usize].id)
                            .is_some())
            })
            .map(|(j, gain)| (j as usize, gain)),
    );
    let by_gain = |a: &(usize, f64), b: &(usize, f64)| {
        b.1.total_cmp(&a.1)
            .then_with(|| tie_break(position, a.0).cmp(&tie_break(position, b.0)))
    };
    if options.len() > PAIRS_PER_MENTEE {
        options.select_nth_unstable_by(PAIRS_PER_MENTEE - 1, by_gain);
        options.truncate(PAIRS_PER_MENTEE);
    }
    options.sort_by(by_gain);
    // A copy of the few kept: the scratch buffer stays with the worker.
    options.to_vec()
}

/// The best assignment of mentors to mentees among `people` (each grows against their
/// role), under the capacities. Active mentoring relationships count: a mentor's
/// capacity is what their current mentees leave, a mentee's limit likewise, and pairs
/// already mentoring are not proposed again.
///
/// Candidates come from a per-skill index of qualified mentors (each mentee touches only
/// the mentors who can teach one of its needs), in parallel; the plan is exact up to
/// `EXACT_PAIRS` candidate pairs and otherwise the auction's, with a proven bound on how
/// far it is from the best (see `plan_best`). `Error::Cancelled` once `cancel` is set.
pub fn plan_mentoring(
    snapshot: &Snapshot,
    people: &[&Person],
    capacity: u32,
    max_mentors: u32,
    allow_same_team: bool,
    cancel: &Cancel,
) -> Result<MentoringPlan> {
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
    let pool = MentorPool::new(snapshot, mentors, &rules);
    let stop = cancel.flag();
    type Found = Option<(u32, Vec<(SkillId, Need)>, Vec<(usize, f64)>)>;
    let found: Vec<Found> = people
        .par_iter()
        .enumerate()
        .with_min_len(256)
        .map_init(
            || Tally {
                gain: vec![0.0; pool.people.len()],
                touched: Vec::new(),
                options: Vec::new(),
            },
            |tally, (position, person)| {
                if stop.load(Ordering::Relaxed) {
                    return None;
                }
                let role = directory.roles().get(&person.role);
                let limit =
                    (max_mentors as usize).saturating_sub(mentoring.mentors_of(&person.id)) as u32;
                let needs = mentee_needs(snapshot, person, role, &[]);
                if needs.is_empty() || limit == 0 {
                    return None;
                }
                let options = best_mentors(
                    snapshot,
                    &rules,
                    &pool,
                    (position, person),
                    &needs,
                    allow_same_team,
                    tally,
                );
                (!options.is_empty()).then_some((limit, needs, options))
            },
        )
        .collect();
    cancel.check()?;
    let mut mentee_limits: Vec<u32> = Vec::new();
    let mut mentees: Vec<(&Person, Vec<(SkillId, Need)>)> = Vec::new();
    let mut pairs: Vec<(usize, usize, f64)> = Vec::new();
    for (person, found) in people.iter().zip(found) {
        let Some((limit, needs, options)) = found else {
            continue;
        };
        let mentee = mentees.len();
        pairs.extend(options.into_iter().map(|(j, gain)| (mentee, j, gain)));
        mentees.push((person, needs));
        mentee_limits.push(limit);
    }
    let problem = PlanProblem {
        mentees: mentees.len(),
        capacity: pool.people.iter().map(|m| spare(m)).collect(),
        max_mentors: mentee_limits,
        pairs,
    };
    let mut solved: SolvedPlan = plan_best(&problem, &stop).ok_or(Error::Cancelled)?;
    let greedy = plan_greedy(&problem);
    // The auction is within its ε of the optimum, which greedy could in principle beat.
    if greedy.total > solved.plan.total {
        solved.plan = greedy.clone();
    }
    let mut chosen: Vec<PlannedPair> = solved
        .plan
        .chosen
        .iter()
        .map(|&p| {
            let (mentee, mentor, gain) = problem.pairs[p];
            let (person, needs) = &mentees[mentee];
            let skills = mentor_gains(snapshot, &rules, needs, pool.people[mentor]);
            PlannedPair {
                mentee: person.id.clone(),
                mentor: pool.people[mentor].id.clone(),
                gain,
                skills: skills.into_iter().map(|s| s.skill).collect(),
            }
        })
        .collect();
    chosen.sort_by(|a, b| {
        a.mentee
            .cmp(&b.mentee)
            .then_with(|| a.mentor.cmp(&b.mentor))
    });
    Ok(MentoringPlan {
        pairs: chosen,
        total: solved.plan.total,
        upper_bound: solved.upper_bound,
        exact: solved.exact,
        greedy_total: greedy.total,
        mentees_with_options: mentees.len() as u32,
        candidate_pairs: problem.pairs.len() as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(mentee: &str, mentor: &str, gain: f64) -> PlannedPair {
        PlannedPair {
            mentee: PersonId::parse(mentee).unwrap(),
            mentor: PersonId::parse(mentor).unwrap(),
            gain,
            skills: Vec::new(),
        }
    }

    #[test]
    fn without_a_person_a_plan_loses_their_pairs_and_their_gain() {
        let plan = MentoringPlan {
            pairs: vec![
                pair("a", "m", 1.5),
                pair("b", "m", 2.0),
                pair("c", "n", 0.5),
            ],
            total: 4.0,
            upper_bound: 4.2,
            exact: true,
            greedy_total: 3.5,
            mentees_with_options: 5,
            candidate_pairs: 40,
        };
        let id = |s: &str| PersonId::parse(s).unwrap();
        let no_mentor = plan.without(&id("m")).unwrap();
        assert_eq!(no_mentor.pairs.len(), 1);
        assert_eq!(no_mentor.total, 0.5);
        assert_eq!(no_mentor.mentees_with_options, 5, "m was no mentee");
        assert!(!no_mentor.exact && no_mentor.upper_bound >= no_mentor.total);
        let no_mentee = plan.without(&id("b")).unwrap();
        assert_eq!((no_mentee.total, no_mentee.mentees_with_options), (2.0, 4));
        assert!(plan.without(&id("z")).is_none(), "not in the plan");
    }
}
