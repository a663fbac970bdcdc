//! Archetypes of a scope: the people with evidence, clustered over the skills any of them
//! has evidence in (k-means behind linfa's traits), with each archetype's departments.

use std::collections::BTreeMap;

use ndarray::Array2;

use crate::analytics::archetypes::{ArchetypeParams, ArchetypeSet, find_archetypes};
use crate::analytics::kmeans::KMeansError;
use crate::domain::{Person, PersonId, SkillId, TeamId};
use crate::engine::Snapshot;
use crate::engine::jobs::Cancel;
use crate::error::{Error, Result};

/// How many archetypes to look for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct KChoice {
    /// Exactly this many; chosen by silhouette when `None`.
    pub k: Option<usize>,
    /// The top of the range `k` is chosen from; `None`: grows with the population
    /// (`analytics::archetypes::auto_k_max`).
    pub max_k: Option<usize>,
}

impl KChoice {
    /// Chosen by silhouette over the default range.
    pub const AUTO: Self = Self {
        k: None,
        max_k: None,
    };
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

/// Most a new archetype's centroid may differ from an earlier one's, as a root mean
/// square over the skills (in levels), for it to keep the earlier label.
const SAME_ARCHETYPE_RMS: f32 = 0.5;

/// Gives the archetypes of `view` the labels of the archetypes of `previous` (an earlier
/// result for the same question) they continue, so that a refresh does not rename them:
/// pairs closest first, each centroid compared over the union of both results' skills
/// (a skill one of them lacks counts at the unknown level). The rest keep their
/// generated labels, made unique.
pub fn carry_labels(view: &mut ArchetypeView, previous: &ArchetypeView) {
    let level = |v: &ArchetypeView, a: usize, skill: &SkillId| {
        v.skills
            .iter()
            .position(|s| s == skill)
            .map_or(v.unknown_level, |c| v.set.archetypes[a].centroid[c])
    };
    let mut skills: Vec<&SkillId> = view.skills.iter().chain(&previous.skills).collect();
    skills.sort_unstable();
    skills.dedup();
    let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
    for new in 0..view.set.archetypes.len() {
        for old in 0..previous.set.archetypes.len() {
            let squared: f32 = skills
                .iter()
                .map(|s| (level(view, new, s) - level(previous, old, s)).powi(2))
                .sum();
            let rms = (squared / skills.len().max(1) as f32).sqrt();
            if rms <= SAME_ARCHETYPE_RMS {
                pairs.push((rms, new, old));
            }
        }
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut kept: Vec<Option<String>> = vec![None; view.set.archetypes.len()];
    let mut taken = vec![false; previous.set.archetypes.len()];
    for (_, new, old) in pairs {
        if kept[new].is_none() && !taken[old] {
            kept[new] = Some(previous.set.archetypes[old].label.clone());
            taken[old] = true;
        }
    }
    let carried: Vec<String> = kept.iter().flatten().cloned().collect();
    for (archetype, label) in view.set.archetypes.iter_mut().zip(kept) {
        match label {
            Some(label) => archetype.label = label,
            None => {
                // A generated label that an archetype carried over already uses.
                let base = archetype.label.clone();
                let mut n = 2;
                while carried.contains(&archetype.label) {
                    archetype.label = format!("{base} ({n})");
                    n += 1;
                }
            }
        }
    }
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
    choice: KChoice,
    cancel: &Cancel,
) -> Result<ArchetypeView> {
    let k = choice.k;
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
        k_max: choice.max_k,
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
        k_at_edge = set.k_at_edge,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::archetypes::find_archetypes;

    fn view(profiles: &Array2<f32>, skills: &[&str]) -> ArchetypeView {
        let names: Vec<&str> = skills.to_vec();
        let params = ArchetypeParams {
            k: Some(3),
            ..ArchetypeParams::default()
        };
        ArchetypeView {
            set: find_archetypes(profiles.view(), &names, &params).unwrap(),
            people: Vec::new(),
            skills: skills.iter().map(|s| SkillId::parse(s).unwrap()).collect(),
            departments: Vec::new(),
            unknown_level: 1.0,
        }
    }

    #[test]
    fn a_refresh_keeps_the_labels_of_the_archetypes_it_continues() {
        // Three groups; the refresh adds people to the third, so it becomes the largest
        // and its generated label moves to another position.
        let groups = |third: usize| {
            let n = 20 + 20 + third;
            Array2::from_shape_fn((n, 4), |(i, j)| {
                let group = if i < 20 {
                    0
                } else if i < 40 {
                    1
                } else {
                    2
                };
                if j == group {
                    4.0 + (i % 3) as f32 * 0.1
                } else {
                    1.0
                }
            })
        };
        let skills = ["rust", "sales", "design", "sql"];
        let mut before = view(&groups(10), &skills);
        for (a, name) in before.set.archetypes.iter_mut().zip(["A", "B", "C"]) {
            a.label = name.to_owned();
        }
        let label_of = |v: &ArchetypeView, column: usize| {
            v.set
                .archetypes
                .iter()
                .find(|a| a.centroid[column] > 3.0)
                .unwrap()
                .label
                .clone()
        };
        let mut after = view(&groups(40), &skills);
        carry_labels(&mut after, &before);
        for column in 0..3 {
            assert_eq!(label_of(&after, column), label_of(&before, column));
        }
        // An archetype unlike any earlier one keeps its generated label.
        let mut other = view(&groups(40), &skills);
        for a in &mut other.set.archetypes {
            a.centroid.fill(0.0);
        }
        let generated: Vec<String> = other
            .set
            .archetypes
            .iter()
            .map(|a| a.label.clone())
            .collect();
        carry_labels(&mut other, &before);
        let kept: Vec<String> = other
            .set
            .archetypes
            .iter()
            .map(|a| a.label.clone())
            .collect();
        assert_eq!(kept, generated);
    }
}
