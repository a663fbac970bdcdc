//! Archetypes of a scope: the people with evidence, clustered over the skills any of them
//! has evidence in (k-means behind linfa's traits), with each archetype's departments.

use std::collections::BTreeMap;

use ndarray::{Array1, Array2, ArrayView1, Axis};

use crate::analytics::archetypes::{ArchetypeParams, ArchetypeSet, find_archetypes_filled};
use crate::analytics::kmeans::KMeansError;
use crate::domain::{Person, PersonId, SkillId, TeamId};
use crate::engine::Snapshot;
use crate::engine::capability::SkillAxis;
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
#[derive(Clone, Debug)]
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

impl ArchetypeView {
    /// The view without `person`, as if they had not been clustered: their row gone, and
    /// their archetype's size, centroid, spread and department count, the population
    /// mean and the inertia without their contribution. `levels` are their levels by
    /// `axis` column as the snapshot before the erasure held them (unknown cells count at
    /// the view's `unknown_level`, as in the clustering). Labels, defining skills, the
    /// map axes and the silhouette stay as computed until the next computation. `None`
    /// when the person is not in the view.
    pub fn without(
        &self,
        person: &PersonId,
        department: &TeamId,
        (axis, levels): (&SkillAxis, ArrayView1<f32>),
    ) -> Option<Self> {
        let row = self.people.binary_search(person).ok()?;
        let profile: Array1<f32> = self
            .skills
            .iter()
            .map(|s| {
                axis.column(s.as_str())
                    .map(|c| levels[c])
                    .filter(|v| !v.is_nan())
                    .unwrap_or(self.unknown_level)
            })
            .collect();
        let mut view = self.clone();
        let set = &mut view.set;
        let archetype = set.assignments.remove(row);
        let distance = set.distances.remove(row);
        view.people.remove(row);
        set.points = set.points.select(
            Axis(0),
            &(0..set.points.nrows())
                .filter(|&r| r != row)
                .collect::<Vec<_>>(),
        );
        let remaining = view.people.len();
        // Means without one of n: (n·mean − x) / (n − 1).
        let without_one = |mean: &mut Array1<f32>, n: usize| {
            if n > 1 {
                let n = n as f32;
                mean.zip_mut_with(&profile, |m, &x| *m = (n * *m - x) / (n - 1.0));
            }
        };
        without_one(&mut set.population_mean, remaining + 1);
        set.inertia = (set.inertia - f64::from(distance).powi(2)).max(0.0);
        if let Some(a) = set.archetypes.get_mut(archetype) {
            let n = a.size;
            without_one(&mut a.centroid, n);
            let squares = f64::from(a.spread).powi(2) * n as f64 - f64::from(distance).powi(2);
            a.spread = match n > 1 {
                true => (squares.max(0.0) / (n - 1) as f64).sqrt() as f32,
                false => 0.0,
            };
            a.size = n.saturating_sub(1);
        }
        if let Some(departments) = view.departments.get_mut(archetype) {
            if let Some(at) = departments.iter().position(|(d, _)| d == department) {
                departments[at].1 = departments[at].1.saturating_sub(1);
                if departments[at].1 == 0 {
                    departments.remove(at);
                }
            }
            departments.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        }
        Some(view)
    }
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
    let params = ArchetypeParams {
        k,
        k_max: choice.max_k,
        stop: Some(cancel.flag()),
        ..ArchetypeParams::default()
    };
    // Unknown cells are filled as the matrix is built: no second copy with them.
    let mut known = 0usize;
    let profiles = Array2::from_shape_fn((rows.len(), columns.len()), |(i, j)| {
        let level = rows[i].1[columns[j]];
        if level.is_nan() {
            params.unknown_level
        } else {
            known += 1;
            level
        }
    });
    let known_share = known as f32 / profiles.len().max(1) as f32;
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
    let started = std::time::Instant::now();
    let set =
        find_archetypes_filled(profiles, known_share, &names, &params).map_err(|e| match e {
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
    fn without_a_person_the_view_is_what_their_removal_leaves() {
        // Three groups over four skills, one cell unknown (NaN: counted at 1.0).
        let mut profiles = Array2::from_shape_fn((30, 4), |(i, j)| {
            if j == i % 3 {
                3.5 + (i % 5) as f32 * 0.2
            } else {
                1.0 + (i % 2) as f32 * 0.1
            }
        });
        profiles[[7, 3]] = f32::NAN;
        let skills = ["rust", "sales", "design", "sql"];
        let mut full = view(
            &profiles.mapv(|v| if v.is_nan() { 1.0 } else { v }),
            &skills,
        );
        full.people = (0..30)
            .map(|i| PersonId::parse(&format!("p{i:02}")).unwrap())
            .collect();
        let dept = TeamId::parse("dept-01").unwrap();
        full.departments = full
            .set
            .archetypes
            .iter()
            .map(|a| vec![(dept.clone(), a.size as u32)])
            .collect();
        let axis = SkillAxis::new(full.skills.iter().cloned());
        // Columns of the axis (sorted) differ from the view's order: map the row.
        let row = |i: usize| -> Array1<f32> {
            axis.skills()
                .iter()
                .map(|s| profiles[[i, skills.iter().position(|k| *k == s.as_str()).unwrap()]])
                .collect()
        };
        let gone = PersonId::parse("p07").unwrap();
        let archetype = full.set.assignments[7];
        let after = full.without(&gone, &dept, (&axis, row(7).view())).unwrap();
        assert_eq!(after.people.len(), 29);
        assert!(!after.people.contains(&gone));
        assert_eq!(
            (after.set.assignments.len(), after.set.points.nrows()),
            (29, 29)
        );
        let size = full.set.archetypes[archetype].size;
        assert_eq!(after.set.archetypes[archetype].size, size - 1);
        assert_eq!(after.departments[archetype][0].1 as usize, size - 1);
        // The centroid is the mean of the members left, the unknown cell as imputed.
        let members: Vec<usize> = (0..30)
            .filter(|&i| i != 7 && full.set.assignments[i] == archetype)
            .collect();
        for (j, &c) in after.set.archetypes[archetype].centroid.iter().enumerate() {
            let mean =
                members.iter().map(|&i| profiles[[i, j]]).sum::<f32>() / members.len() as f32;
            assert!((c - mean).abs() < 1e-4, "skill {j}: {c} vs {mean}");
        }
        // Someone not in the view changes nothing.
        let stranger = PersonId::parse("zz").unwrap();
        assert!(
            full.without(&stranger, &dept, (&axis, row(0).view()))
                .is_none()
        );
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
