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
