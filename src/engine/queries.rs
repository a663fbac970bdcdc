//! Read queries over one snapshot: they gather what a question needs from the capability
//! index and the directory into ndarray matrices and hand them to `analytics`.

use ndarray::Array2;

use super::Snapshot;
use crate::analytics::matrix::{ColumnRequirement, TeamSummary, team_summary};
use crate::analytics::proficiency::Proficiency;
use crate::domain::{Person, SkillId, TeamId, Timestamp};
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
    let directory = &snapshot.directory;
    let capability = &snapshot.capability;
    let axis = capability.axis();
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
        let row = capability.row(&person.id);
        let mut member_cells = Vec::with_capacity(columns.len());
        for (j, &c) in columns.iter().enumerate() {
            let known = row.and_then(|r| r.proficiency(capability.model(), c, now));
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
        version: snapshot.version,
    })
}
