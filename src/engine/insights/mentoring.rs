//! Mentor matching over one snapshot: a mentee's needs, ranked mentors with their
//! rationale, and the organisation-wide plan (optimal assignment beside the greedy one).

use ndarray::Array1;

use crate::analytics::mentors::{
    MentorRules, Need, Plan, PlanProblem, plan_greedy, plan_optimal, similarity,
};
use crate::domain::{Person, PersonId, Role, SkillId};
use crate::engine::Snapshot;

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
