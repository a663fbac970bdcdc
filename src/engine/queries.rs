//! Read queries over one snapshot: they gather what a question needs from the capability
//! index and the directory into ndarray matrices and hand them to `analytics`.

use std::collections::BTreeMap;

use ndarray::Array2;

use super::Snapshot;
use crate::analytics::gaps::{Candidate, Gap, Ranked, rank_experts};
use crate::analytics::matrix::{ColumnRequirement, TeamSummary, readiness, team_summary};
use crate::analytics::proficiency::{Evidence, Proficiency, ProficiencyModel, calibration};
use crate::domain::{Assessment, Person, PersonId, Role, SkillId, TeamId, Timestamp};
use crate::error::{Error, Result};

/// A team's capability as of one snapshot.
#[derive(Clone, Debug)]
pub struct TeamCapabilityView {
    /// Skills of the matrix, in column order.
    pub skills: Vec<SkillId>,
    /// Members in id order.
    pub members: Vec<Person>,
    /// `cells[m][s]`: member `m`'s proficiency in skill `s`, if known.
    pub cells: Vec<Vec<Option<Proficiency>>>,
    /// Statistics, requirements and readiness.
    pub summary: TeamSummary,
    /// Snapshot version it was computed from.
    pub version: u64,
}

/// The capability of `team` (and its subteams if asked) over `skills`, or over every
/// skill a member's role requires or a member has evidence for when `skills` is empty.
pub fn team_capability(
    snapshot: &Snapshot,
    team: &TeamId,
    include_subteams: bool,
    skills: &[SkillId],
    now: Timestamp,
) -> Result<TeamCapabilityView> {
    let capability = &snapshot.capability;
    team_view(
        snapshot,
        team,
        include_subteams,
        skills,
        |person, column| {
            capability
                .row(&person.id)
                .and_then(|r| r.proficiency(capability.model(), column, now))
        },
    )
}

/// The members of `team` (and subteams), in id order.
pub fn team_members(
    snapshot: &Snapshot,
    team: &TeamId,
    include_subteams: bool,
) -> Result<Vec<Person>> {
    let directory = &snapshot.directory;
    let teams = match include_subteams {
        true => directory.subtree(team.as_str()),
        false => directory
            .teams()
            .contains_key(team)
            .then(|| [team.clone()].into()),
    }
    .ok_or(Error::NotFound { kind: "team" })?;
    let mut members: Vec<Person> = teams
        .iter()
        .flat_map(|t| directory.members(t.as_str()))
        .filter_map(|id| directory.person(id.as_str()).cloned())
        .collect();
    members.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(members)
}

/// The same question at a past date `as_of`, from each member's raw evidence: levels as
/// they were then; members and roles as they are now.
pub fn team_capability_as_of(
    snapshot: &Snapshot,
    team: &TeamId,
    include_subteams: bool,
    skills: &[SkillId],
    as_of: Timestamp,
    evidence: &[(PersonId, Vec<Assessment>)],
) -> Result<TeamCapabilityView> {
    let model = snapshot.capability.model();
    let axis = snapshot.capability.axis();
    let by_person: BTreeMap<&PersonId, &Vec<Assessment>> =
        evidence.iter().map(|(p, items)| (p, items)).collect();
    team_view(
        snapshot,
        team,
        include_subteams,
        skills,
        |person, column| {
            let skill = &axis.skills()[column];
            let items: Vec<Evidence> = by_person
                .get(&person.id)?
                .iter()
                .filter(|a| a.skill == *skill)
                .map(Evidence::from)
                .collect();
            model.effective_level(&items, as_of)
        },
    )
}

fn team_view(
    snapshot: &Snapshot,
    team: &TeamId,
    include_subteams: bool,
    skills: &[SkillId],
    cell: impl Fn(&Person, usize) -> Option<Proficiency>,
) -> Result<TeamCapabilityView> {
    let directory = &snapshot.directory;
    let capability = &snapshot.capability;
    let axis = capability.axis();
    let members = team_members(snapshot, team, include_subteams)?;

    let role_requirements = |person: &Person| {
        directory
            .roles()
            .get(&person.role)
            .map(|role| role.requirements.clone())
            .unwrap_or_default()
    };
    let columns: Vec<usize> = if skills.is_empty() {
        let mut wanted = vec![false; axis.len()];
        for person in &members {
            for requirement in role_requirements(person) {
                if let Some(c) = axis.column(requirement.skill.as_str()) {
                    wanted[c] = true;
                }
            }
            if let Some(row) = capability.row(&person.id) {
                row.levels
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| !l.is_nan())
                    .for_each(|(c, _)| wanted[c] = true);
            }
        }
        (0..axis.len()).filter(|&c| wanted[c]).collect()
    } else {
        skills
            .iter()
            .enumerate()
            .map(|(i, s)| {
                axis.column(s.as_str()).ok_or_else(|| {
                    Error::InvalidArgument(vec![crate::domain::FieldViolation::new(
                        format!("skill_ids[{i}]"),
                        "unknown skill",
                    )])
                })
            })
            .collect::<Result<_>>()?
    };

    let mut levels = Array2::from_elem((members.len(), columns.len()), f32::NAN);
    let mut cells = Vec::with_capacity(members.len());
    let mut requirements = Vec::with_capacity(members.len());
    for (m, person) in members.iter().enumerate() {
        let mut member_cells = Vec::with_capacity(columns.len());
        for (j, &c) in columns.iter().enumerate() {
            let known = cell(person, c);
            if let Some(p) = known {
                levels[[m, j]] = p.level;
            }
            member_cells.push(known);
        }
        cells.push(member_cells);
        requirements.push(
            role_requirements(person)
                .iter()
                .filter_map(|r| {
                    let column = axis.column(r.skill.as_str())?;
                    let j = columns.iter().position(|&c| c == column)?;
                    Some(ColumnRequirement {
                        column: j,
                        level: r.level.value(),
                        weight: r.weight.value(),
                    })
                })
                .collect(),
        );
    }
    Ok(TeamCapabilityView {
        skills: columns.iter().map(|&c| axis.skills()[c].clone()).collect(),
        summary: team_summary(levels.view(), &requirements),
        members,
        cells,
        version: snapshot.data_version,
    })
}

/// One skill of a person's profile.
#[derive(Clone, Debug)]
pub struct SkillProfile {
    /// The skill.
    pub skill: SkillId,
    /// Effective proficiency, if any evidence counts.
    pub proficiency: Option<Proficiency>,
    /// Self-rating minus others, if both exist.
    pub self_gap: Option<f32>,
    /// The evidence with its current weight, newest first.
    pub evidence: Vec<(Assessment, f64)>,
}

/// Everything about one person's skills.
#[derive(Clone, Debug)]
pub struct ProfileView {
    /// Skills with evidence, in id order.
    pub skills: Vec<SkillProfile>,
    /// Mean self gap over the skills that have one.
    pub calibration: Option<f32>,
}

/// A person's profile from the assessments about them.
pub fn person_profile(
    model: &ProficiencyModel,
    assessments: Vec<Assessment>,
    now: Timestamp,
) -> ProfileView {
    let mut by_skill: BTreeMap<SkillId, Vec<Assessment>> = BTreeMap::new();
    for a in assessments {
        by_skill.entry(a.skill.clone()).or_default().push(a);
    }
    let skills: Vec<SkillProfile> = by_skill
        .into_iter()
        .map(|(skill, mut items)| {
            items.sort_by(|a, b| {
                b.assessed_at
                    .cmp(&a.assessed_at)
                    .then_with(|| a.id.cmp(&b.id))
            });
            let evidence: Vec<Evidence> = items.iter().map(Evidence::from).collect();
            SkillProfile {
                skill,
                proficiency: model.effective_level(&evidence, now),
                self_gap: model.self_gap(&evidence, now),
                evidence: items
                    .into_iter()
                    .zip(&evidence)
                    .map(|(a, e)| (a, model.weight(e, now)))
                    .collect(),
            }
        })
        .collect();
    let calibration = calibration(skills.iter().filter_map(|s| s.self_gap)).map(|(mean, _)| mean);
    ProfileView {
        skills,
        calibration,
    }
}

/// A person's gaps against `role`.
pub fn person_gaps(
    snapshot: &Snapshot,
    person: &Person,
    role: &Role,
) -> (Vec<(SkillId, Gap)>, f32) {
    let capability = &snapshot.capability;
    let axis = capability.axis();
    let requirements: Vec<ColumnRequirement> = role
        .requirements
        .iter()
        .filter_map(|r| {
            Some(ColumnRequirement {
                column: axis.column(r.skill.as_str())?,
                level: r.level.value(),
                weight: r.weight.value(),
            })
        })
        .collect();
    let empty = ndarray::Array1::from_elem(axis.len(), f32::NAN);
    let zeros = ndarray::Array1::zeros(axis.len());
    let row = capability.row(&person.id);
    let levels = row.map_or(empty.view(), |r| r.levels.view());
    let confidence = row.map_or(zeros.view(), |r| r.confidence.view());
    let gaps = crate::analytics::gaps::person_gaps(levels, confidence, &requirements)
        .into_iter()
        .map(|g| (axis.skills()[g.column].clone(), g))
        .collect();
    let ready = readiness(levels, &requirements).unwrap_or(1.0);
    (gaps, ready)
}

/// People among `people` meeting every `(skill, min level)`, best first.
pub fn find_experts<'a>(
    snapshot: &Snapshot,
    requirements: &[(SkillId, f32)],
    people: impl Iterator<Item = &'a Person>,
    min_confidence: f32,
) -> Vec<Ranked<PersonId>> {
    let capability = &snapshot.capability;
    let columns: Vec<Option<usize>> = requirements
        .iter()
        .map(|(s, _)| capability.axis().column(s.as_str()))
        .collect();
    let candidates = people.filter_map(|person| {
        let row = capability.row(&person.id)?;
        let levels = columns
            .iter()
            .map(|c| c.map_or(f32::NAN, |c| row.levels[c]))
            .collect();
        let confidence = columns
            .iter()
            .map(|c| c.map_or(0.0, |c| row.confidence[c]))
            .collect();
        Some(Candidate {
            key: person.id.clone(),
            levels,
            confidence,
        })
    });
    let minimums: Vec<f32> = requirements.iter().map(|(_, l)| *l).collect();
    rank_experts(candidates, &minimums, min_confidence)
}

/// Why a skill is a risk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RiskKind {
    /// One proficient person.
    SinglePoint,
    /// Nobody proficient.
    Missing,
}

/// A required skill that hangs on one person or that nobody has.
#[derive(Clone, Debug)]
pub struct SkillRiskView {
    /// The skill.
    pub skill: SkillId,
    /// Why.
    pub kind: RiskKind,
    /// Highest level required.
    pub required: f32,
    /// Proficient people.
    pub proficient: u32,
    /// The one proficient person.
    pub holder: Option<PersonId>,
    /// Members whose role requires it.
    pub requiring: u32,
}

/// The risky skills of the subtree `team`: missing ones first, then single points.
pub fn skill_risks(
    snapshot: &Snapshot,
    team: &TeamId,
    now: Timestamp,
) -> Result<Vec<SkillRiskView>> {
    let view = team_capability(snapshot, team, true, &[], now)?;
    let mut risks: Vec<SkillRiskView> = view
        .skills
        .iter()
        .zip(&view.summary.skills)
        .enumerate()
        .filter_map(|(j, (skill, s))| {
            let required = s.required?;
            let kind = match s.proficient {
                0 => RiskKind::Missing,
                1 => RiskKind::SinglePoint,
                _ => return None,
            };
            let holder = (kind == RiskKind::SinglePoint)
                .then(|| {
                    view.cells
                        .iter()
                        .position(|row| {
                            row[j].is_some_and(|p| p.level >= crate::domain::Level::PROFICIENT)
                        })
                        .map(|m| view.members[m].id.clone())
                })
                .flatten();
            let requiring = view
                .members
                .iter()
                .filter(|p| {
                    snapshot
                        .directory
                        .roles()
                        .get(&p.role)
                        .is_some_and(|r| r.requirements.iter().any(|q| q.skill == *skill))
                })
                .count() as u32;
            Some(SkillRiskView {
                skill: skill.clone(),
                kind,
                required,
                proficient: s.proficient,
                holder,
                requiring,
            })
        })
        .collect();
    risks.sort_by(|a, b| {
        (a.kind != RiskKind::Missing)
            .cmp(&(b.kind != RiskKind::Missing))
            .then_with(|| a.skill.cmp(&b.skill))
    });
    Ok(risks)
}
