//! Team capability over a members × skills matrix of effective levels (NaN = unknown):
//! per-skill statistics, bus factor, what the members' roles require, gaps and readiness.
//!
//! Definitions (documented in the API too):
//! - *proficient*: level ≥ 3. *Bus factor* of a skill: the number of proficient members —
//!   how many people the team can lose before nobody can do it unaided.
//! - *required level* of a skill: the highest level any member's role requires of it.
//! - *gap*: how far the team's best level falls short of the required level (0 if met;
//!   the full requirement if nobody's level is known).
//! - *readiness* of a member: `Σ w · min(level / required, 1) / Σ w` over their role's
//!   requirements, unknown levels counting 0; of the team: the mean over members whose
//!   role has requirements.

use ndarray::ArrayView2;

use crate::domain::Level;

/// One requirement of a member's role, on the matrix's skill columns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ColumnRequirement {
    /// Skill column.
    pub column: usize,
    /// Level required.
    pub level: f32,
    /// Weight within the role.
    pub weight: f32,
}

/// Statistics and requirement of one skill across the team.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SkillSummary {
    /// Mean of the known levels.
    pub mean: Option<f32>,
    /// Highest known level.
    pub max: Option<f32>,
    /// Members with a known level.
    pub known: u32,
    /// Members at level ≥ 3 (the bus factor).
    pub proficient: u32,
    /// Highest level the members' roles require, if any role requires the skill.
    pub required: Option<f32>,
    /// Shortfall of the best level against the requirement (0 when met).
    pub gap: Option<f32>,
    /// Members whose own role requires the skill and who are below it (or unknown).
    pub members_below: u32,
}

/// A team's capability: one summary per skill column and readiness.
#[derive(Clone, Debug, PartialEq)]
pub struct TeamSummary {
    /// One per skill column.
    pub skills: Vec<SkillSummary>,
    /// Readiness of each member, if their role has requirements.
    pub member_readiness: Vec<Option<f32>>,
    /// Mean member readiness.
    pub readiness: Option<f32>,
}

/// Readiness of one member against their role's requirements.
pub fn readiness(
    levels: ndarray::ArrayView1<f32>,
    requirements: &[ColumnRequirement],
) -> Option<f32> {
    let total: f32 = requirements.iter().map(|r| r.weight).sum();
    if requirements.is_empty() || total <= 0.0 {
        return None;
    }
    let met: f32 = requirements
        .iter()
        .map(|r| {
            let level = levels[r.column];
            let share = if level.is_nan() || r.level <= 0.0 {
                f32::from(r.level <= 0.0)
            } else {
                (level / r.level).min(1.0)
            };
            r.weight * share
        })
        .sum();
    Some(met / total)
}

/// Summarises a team: `levels` is members × skills, `requirements[m]` the requirements of
/// member `m`'s role on the same columns.
pub fn team_summary(
    levels: ArrayView2<f32>,
    requirements: &[Vec<ColumnRequirement>],
) -> TeamSummary {
    let (members, columns) = levels.dim();
    let mut skills = Vec::with_capacity(columns);
    for column in 0..columns {
        let known: Vec<f32> = levels
            .column(column)
            .iter()
            .copied()
            .filter(|l| !l.is_nan())
            .collect();
        let mean = (!known.is_empty()).then(|| known.iter().sum::<f32>() / known.len() as f32);
        let max = known.iter().copied().reduce(f32::max);
        let proficient = known.iter().filter(|&&l| l >= Level::PROFICIENT).count() as u32;
        let own: Vec<(usize, f32)> = requirements
            .iter()
            .enumerate()
            .take(members)
            .flat_map(|(m, reqs)| {
                reqs.iter()
                    .filter(|r| r.column == column)
                    .map(move |r| (m, r.level))
            })
            .collect();
        let required = own.iter().map(|(_, l)| *l).reduce(f32::max);
        let gap = required.map(|req| (req - max.unwrap_or(0.0)).max(0.0));
        let members_below = own
            .iter()
            .filter(|(m, req)| {
                let level = levels[[*m, column]];
                level.is_nan() || level < *req
            })
            .count() as u32;
        skills.push(SkillSummary {
            mean,
            max,
            known: known.len() as u32,
            proficient,
            required,
            gap,
            members_below,
        });
    }
    let member_readiness: Vec<Option<f32>> = (0..members)
        .map(|m| {
            readiness(
                levels.row(m),
                requirements.get(m).map_or(&[], Vec::as_slice),
            )
        })
        .collect();
    let ready: Vec<f32> = member_readiness.iter().flatten().copied().collect();
    let readiness = (!ready.is_empty()).then(|| ready.iter().sum::<f32>() / ready.len() as f32);
    TeamSummary {
        skills,
        member_readiness,
        readiness,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn req(column: usize, level: f32, weight: f32) -> ColumnRequirement {
        ColumnRequirement {
            column,
            level,
            weight,
        }
    }

    fn close(a: Option<f32>, b: f32) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-5)
    }

    #[test]
    fn a_three_person_team_by_hand() {
        // columns: rust, sql, ux
        let nan = f32::NAN;
        let levels = array![[4.0, 2.0, nan], [3.0, nan, nan], [1.0, 3.5, 2.0]];
        // Members 0 and 1 are developers (rust 3 w2, sql 3 w1); member 2 a designer (ux 4).
        let dev = vec![req(0, 3.0, 2.0), req(1, 3.0, 1.0)];
        let summary = team_summary(levels.view(), &[dev.clone(), dev, vec![req(2, 4.0, 1.0)]]);

        let rust = summary.skills[0];
        assert!(close(rust.mean, 8.0 / 3.0));
        assert!(close(rust.max, 4.0));
        assert_eq!((rust.known, rust.proficient), (3, 2), "bus factor 2");
        assert!(close(rust.required, 3.0) && close(rust.gap, 0.0));
        assert_eq!(
            rust.members_below, 0,
            "member 2 is below but their role does not need rust"
        );

        let sql = summary.skills[1];
        assert_eq!(
            (sql.known, sql.proficient),
            (2, 1),
            "bus factor 1: one person holds it"
        );
        assert_eq!(sql.members_below, 2, "member 0 at 2.0 and member 1 unknown");

        let ux = summary.skills[2];
        assert!(close(ux.gap, 2.0), "best known 2.0 against 4.0");
        assert_eq!(ux.proficient, 0);

        // member 0: (2·1 + 1·2/3)/3 = 0.888889; member 1: (2·1 + 0)/3 = 0.666667;
        // member 2: 2/4 = 0.5; team: mean = 0.685185
        assert!(close(summary.member_readiness[0], 8.0 / 9.0));
        assert!(close(summary.member_readiness[1], 2.0 / 3.0));
        assert!(close(summary.member_readiness[2], 0.5));
        assert!(close(
            summary.readiness,
            (8.0 / 9.0 + 2.0 / 3.0 + 0.5) / 3.0
        ));
    }

    #[test]
    fn a_skill_nobody_has_is_unknown_not_zero() {
        let levels = array![[f32::NAN], [f32::NAN]];
        let summary = team_summary(levels.view(), &[vec![req(0, 3.0, 1.0)], vec![]]);
        let s = summary.skills[0];
        assert_eq!((s.mean, s.max, s.known), (None, None, 0));
        assert!(close(s.gap, 3.0));
        assert_eq!(
            summary.member_readiness[1], None,
            "no requirements, no readiness"
        );
        assert!(close(summary.readiness, 0.0));
    }
}
