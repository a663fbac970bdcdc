//! Skill archetypes: people clustered by their effective skill profiles.
//!
//! Unknown levels (no evidence) are imputed explicitly, never silently taken as 0: a
//! cell without evidence is set to `unknown_level` (default 1.0, "awareness"), the level
//! a competency model assumes of someone never assessed in a skill. In real assessment
//! data people are assessed where the skill matters to their work, so absence of
//! evidence mostly means low skill; imputing the column mean instead would credit every
//! unassessed person with the (high) mean of the few specialists who were assessed. The
//! share of known cells is reported with every result.
//!
//! `k` is chosen by linfa's silhouette score over a range (fitted on a deterministic
//! sample for large populations), then the full population is fitted with that `k`.
//!
//! For the archetype map every profile is also projected onto the first two principal
//! components, fitted on the same deterministic sample: the eigenvectors of the sample's
//! covariance (linfa-linalg's symmetric eigendecomposition). linfa-reduction's `Pca` was
//! tried first; its LOBPCG-based truncated SVD panics on rank-deficient data (many
//! identical profiles), which real skill data can be.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use linfa::DatasetBase;
use linfa::metrics::SilhouetteScore;
use linfa::traits::Fit;
use linfa_linalg::eigh::{EigSort, EighInto};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::kmeans::{KMeans, KMeansError, KMeansParams};

/// How archetypes are found.
#[derive(Clone, Debug)]
pub struct ArchetypeParams {
    /// A fixed number of archetypes; chosen by silhouette when `None`.
    pub k: Option<usize>,
    /// Smallest `k` tried.
    pub k_min: usize,
    /// Largest `k` tried.
    pub k_max: usize,
    /// Seed of sampling and k-means++ (same seed, same data → same result).
    pub seed: u64,
    /// Level imputed where a person has no evidence in a skill.
    pub unknown_level: f32,
    /// Rows the `k` selection fits on, at most.
    pub selection_sample: usize,
    /// Rows the silhouette is computed on, at most (it is quadratic).
    pub silhouette_sample: usize,
    /// Iteration cap of each fit.
    pub max_iterations: usize,
    /// Checked between fits: once set, clustering stops with `KMeansError::Stopped`
    /// (the caller no longer needs the result).
    pub stop: Option<Arc<AtomicBool>>,
}

impl Default for ArchetypeParams {
    fn default() -> Self {
        Self {
            k: None,
            k_min: 2,
            k_max: 20,
            seed: 42,
            unknown_level: 1.0,
            selection_sample: 4_000,
            silhouette_sample: 1_000,
            max_iterations: 300,
            stop: None,
        }
    }
}

/// A skill in which an archetype differs from the organisation.
#[derive(Clone, Debug, PartialEq)]
pub struct SkillContrast {
    /// Skill column.
    pub column: usize,
    /// The archetype's centroid level.
    pub level: f32,
    /// Centroid level minus the population mean.
    pub versus_mean: f32,
}

/// One archetype.
#[derive(Clone, Debug)]
pub struct Archetype {
    /// Generated from its defining skills, e.g. "Rust · Kubernetes · Mentoring".
    pub label: String,
    /// Centroid over every skill column.
    pub centroid: Array1<f32>,
    /// Skills furthest above the population mean, most distinctive first (at most 5).
    pub defining: Vec<SkillContrast>,
    /// Members.
    pub size: usize,
    /// Root mean squared distance of the members to the centroid.
    pub spread: f32,
}

/// Archetypes of a population.
#[derive(Clone, Debug)]
pub struct ArchetypeSet {
    /// Largest first.
    pub archetypes: Vec<Archetype>,
    /// Archetype of each row.
    pub assignments: Vec<usize>,
    /// Distance of each row to its archetype's centroid.
    pub distances: Vec<f32>,
    /// Silhouette score of the final clustering (on a sample for large populations).
    pub silhouette: f32,
    /// Silhouette of every `k` tried (empty when `k` was given).
    pub k_scores: Vec<(usize, f32)>,
    /// Population mean per skill column, after imputation.
    pub population_mean: Array1<f32>,
    /// Share of cells backed by evidence.
    pub known_share: f32,
    /// Within-cluster sum of squares.
    pub inertia: f64,
    /// The plane of the archetype map.
    pub projection: Projection,
    /// Each row's position on the map (`rows × 2`).
    pub points: Array2<f32>,
}

/// The first two principal components of a population's profiles.
#[derive(Clone, Debug)]
pub struct Projection {
    /// Components as rows (`2 × skills`), unit length, orthogonal.
    pub components: Array2<f32>,
    /// Profile mean the components are centred on.
    pub mean: Array1<f32>,
    /// Share of the total variance each component explains.
    pub explained: Vec<f32>,
}

impl Projection {
    /// Fits the plane on `rows` of `x` (all of them when there are few).
    pub fn fit(x: ArrayView2<f32>, rows: &[usize]) -> Result<Self, KMeansError> {
        let sample = x.select(Axis(0), rows).mapv(f64::from);
        let invalid = |why: String| KMeansError::InvalidParams(format!("projection: {why}"));
        if sample.iter().any(|v| !v.is_finite()) {
            return Err(invalid("profiles must be finite".into()));
        }
        let mean = sample
            .mean_axis(Axis(0))
            .ok_or_else(|| invalid("no rows".into()))?;
        let centred = &sample - &mean;
        let covariance = centred.t().dot(&centred) / (rows.len().max(2) - 1) as f64;
        let total: f64 = covariance.diag().sum();
        let (values, vectors) = covariance
            .eigh_into()
            .map_err(|e| invalid(e.to_string()))?
            .sort_eig_desc();
        let dims = 2.min(values.len());
        let mut components = Array2::<f32>::zeros((dims, mean.len()));
        for (d, mut row) in components.outer_iter_mut().enumerate() {
            let vector = vectors.column(d);
            // An eigenvector's sign is arbitrary: point its largest entry positive, so the
            // map keeps its orientation when it is recomputed.
            let largest = vector
                .iter()
                .copied()
                .reduce(|a, b| if b.abs() > a.abs() { b } else { a })
                .unwrap_or(1.0);
            let sign = if largest < 0.0 { -1.0 } else { 1.0 };
            row.assign(&vector.mapv(|v| (v * sign) as f32));
        }
        let explained = values
            .iter()
            .take(dims)
            .map(|&v| {
                if total > 0.0 {
                    (v.max(0.0) / total) as f32
                } else {
                    0.0
                }
            })
            .collect();
        Ok(Self {
            components,
            mean: mean.mapv(|v| v as f32),
            explained,
        })
    }

    /// Positions of `rows` (`n × skills`) on the map (`n × 2`).
    pub fn project(&self, rows: ArrayView2<f32>) -> Array2<f32> {
        (&rows - &self.mean).dot(&self.components.t())
    }
}

/// The profiles with unknown (NaN) cells set to `unknown_level`, and the share of
/// cells that were known.
pub fn impute(profiles: ArrayView2<f32>, unknown_level: f32) -> (Array2<f32>, f32) {
    let total = profiles.len().max(1);
    let known = profiles.iter().filter(|v| !v.is_nan()).count();
    let filled = profiles.mapv(|v| if v.is_nan() { unknown_level } else { v });
    (filled, known as f32 / total as f32)
}

/// Clusters `profiles` (rows: people, columns: skills named by `names`; NaN unknown).
pub fn find_archetypes(
    profiles: ArrayView2<f32>,
    names: &[&str],
    params: &ArchetypeParams,
) -> Result<ArchetypeSet, KMeansError> {
    let n = profiles.nrows();
    if names.len() != profiles.ncols() {
        return Err(KMeansError::InvalidParams(format!(
            "{} skill names for {} columns",
            names.len(),
            profiles.ncols()
        )));
    }
    if n < 2 {
        return Err(KMeansError::InvalidParams(
            "at least two people are needed to find archetypes".into(),
        ));
    }
    let (x, known_share) = impute(profiles, params.unknown_level);
    let mut k_scores = Vec::new();
    let k = match params.k {
        Some(k) => k,
        None => {
            let selection = sample_rows(n, params.selection_sample, params.seed);
            let xs = x.select(Axis(0), &selection);
            let scored = silhouette_rows(selection.len(), params.silhouette_sample, params.seed);
            let k_max = params.k_max.min(selection.len() - 1).max(params.k_min);
            for k in params.k_min..=k_max {
                if params
                    .stop
                    .as_ref()
                    .is_some_and(|s| s.load(Ordering::Relaxed))
                {
                    return Err(KMeansError::Stopped);
                }
                let model = fit(xs.view(), k, params)?;
                let score = silhouette(&xs, &model.labels, &scored)?;
                k_scores.push((k, score));
            }
            k_scores
                .iter()
                .copied()
                .reduce(|best, next| if next.1 > best.1 { next } else { best })
                .map_or(params.k_min, |(k, _)| k)
        }
    };
    let model = fit(x.view(), k, params)?;
    let scored = silhouette_rows(n, params.silhouette_sample, params.seed);
    let score = silhouette(&x, &model.labels, &scored)?;
    let projection = Projection::fit(
        x.view(),
        &sample_rows(n, params.selection_sample, params.seed),
    )?;
    let mut set = describe(&x, &model, names, score, k_scores, known_share, projection);
    set.points = set.projection.project(x.view());
    Ok(set)
}

fn fit(x: ArrayView2<f32>, k: usize, params: &ArchetypeParams) -> Result<KMeans, KMeansError> {
    KMeansParams::new(k)
        .seed(params.seed)
        .max_iterations(params.max_iterations)
        .fit(&DatasetBase::from(x))
}

/// Silhouette of the clustering over the rows `scored` (linfa's metric).
fn silhouette(
    x: &Array2<f32>,
    labels: &Array1<usize>,
    scored: &[usize],
) -> Result<f32, KMeansError> {
    let records = x.select(Axis(0), scored);
    let targets: Array1<usize> = scored.iter().map(|&i| labels[i]).collect();
    let distinct = {
        let mut t = targets.to_vec();
        t.sort_unstable();
        t.dedup();
        t.len()
    };
    if distinct < 2 {
        return Ok(0.0);
    }
    Ok(DatasetBase::new(records, targets).silhouette_score()?)
}

/// Up to `limit` row indices of `0..n`, sorted, chosen deterministically from `seed`.
fn sample_rows(n: usize, limit: usize, seed: u64) -> Vec<usize> {
    if n <= limit {
        return (0..n).collect();
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut rows = rand::seq::index::sample(&mut rng, n, limit).into_vec();
    rows.sort_unstable();
    rows
}

fn silhouette_rows(n: usize, limit: usize, seed: u64) -> Vec<usize> {
    sample_rows(n, limit, seed.wrapping_add(1))
}

fn describe(
    x: &Array2<f32>,
    model: &KMeans,
    names: &[&str],
    silhouette: f32,
    k_scores: Vec<(usize, f32)>,
    known_share: f32,
    projection: Projection,
) -> ArchetypeSet {
    let k = model.centroids.nrows();
    let population_mean = x
        .mean_axis(Axis(0))
        .unwrap_or_else(|| Array1::zeros(x.ncols()));
    let mut sizes = vec![0usize; k];
    let mut squared = vec![0f64; k];
    let mut distances = Vec::with_capacity(x.nrows());
    for (row, &label) in x.outer_iter().zip(&model.labels) {
        sizes[label] += 1;
        let d: f64 = row
            .iter()
            .zip(model.centroids.row(label))
            .map(|(&a, &b)| f64::from(a - b).powi(2))
            .sum();
        squared[label] += d;
        distances.push(d.sqrt() as f32);
    }
    // Largest archetype first; ties by centroid order, so the result is deterministic.
    let mut order: Vec<usize> = (0..k).filter(|&c| sizes[c] > 0).collect();
    order.sort_by(|&a, &b| sizes[b].cmp(&sizes[a]).then(a.cmp(&b)));
    let mut rank = vec![usize::MAX; k];
    for (r, &c) in order.iter().enumerate() {
        rank[c] = r;
    }
    let mut labels_seen: Vec<String> = Vec::new();
    let archetypes = order
        .iter()
        .map(|&c| {
            let centroid = model.centroids.row(c).to_owned();
            let mut contrasts: Vec<SkillContrast> = centroid
                .iter()
                .zip(&population_mean)
                .enumerate()
                .map(|(column, (&level, &mean))| SkillContrast {
                    column,
                    level,
                    versus_mean: level - mean,
                })
                .collect();
            contrasts.sort_by(|a, b| {
                b.versus_mean
                    .total_cmp(&a.versus_mean)
                    .then(a.column.cmp(&b.column))
            });
            contrasts.truncate(5);
            let label = unique_label(label_of(&contrasts, names), &mut labels_seen);
            Archetype {
                label,
                centroid,
                defining: contrasts,
                size: sizes[c],
                spread: (squared[c] / sizes[c] as f64).sqrt() as f32,
            }
        })
        .collect();
    ArchetypeSet {
        archetypes,
        assignments: model.labels.iter().map(|&c| rank[c]).collect(),
        distances,
        silhouette,
        k_scores,
        population_mean,
        known_share,
        inertia: model.inertia,
        projection,
        points: Array2::zeros((0, 2)),
    }
}

/// Distinctive skills are those at least this far above the population mean.
const DISTINCTIVE: f32 = 0.25;

fn label_of(contrasts: &[SkillContrast], names: &[&str]) -> String {
    let parts: Vec<&str> = contrasts
        .iter()
        .filter(|c| c.versus_mean >= DISTINCTIVE)
        .take(3)
        .map(|c| names[c.column])
        .collect();
    if parts.is_empty() {
        "Generalist".to_owned()
    } else {
        parts.join(" · ")
    }
}

fn unique_label(label: String, seen: &mut Vec<String>) -> String {
    let mut candidate = label.clone();
    let mut n = 2;
    while seen.contains(&candidate) {
        candidate = format!("{label} ({n})");
        n += 1;
    }
    seen.push(candidate.clone());
    candidate
}

/// Adjusted Rand index of two labelings of the same items (1 = identical partitions,
/// about 0 = chance agreement).
pub fn adjusted_rand_index(a: &[usize], b: &[usize]) -> f64 {
    assert_eq!(a.len(), b.len(), "labelings of different lengths");
    let n = a.len();
    if n < 2 {
        return 1.0;
    }
    let ka = a.iter().max().map_or(0, |m| m + 1);
    let kb = b.iter().max().map_or(0, |m| m + 1);
    let mut table = vec![0u64; ka * kb];
    for (&i, &j) in a.iter().zip(b) {
        table[i * kb + j] += 1;
    }
    let pairs = |c: u64| (c * c.saturating_sub(1)) as f64 / 2.0;
    let index: f64 = table.iter().map(|&c| pairs(c)).sum();
    let rows: f64 = (0..ka)
        .map(|i| pairs(table[i * kb..(i + 1) * kb].iter().sum()))
        .sum();
    let cols: f64 = (0..kb)
        .map(|j| pairs((0..ka).map(|i| table[i * kb + j]).sum()))
        .sum();
    let expected = rows * cols / pairs(n as u64);
    let max = (rows + cols) / 2.0;
    if (max - expected).abs() < f64::EPSILON {
        return 1.0;
    }
    (index - expected) / (max - expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use proptest::prelude::*;

    #[test]
    fn adjusted_rand_index_known_values() {
        assert!((adjusted_rand_index(&[0, 0, 1, 1], &[1, 1, 0, 0]) - 1.0).abs() < 1e-12);
        // scikit-learn: adjusted_rand_score([0,0,1,2], [0,0,1,1]) = 0.5714285714285715
        let v = adjusted_rand_index(&[0, 0, 1, 2], &[0, 0, 1, 1]);
        assert!((v - 0.571_428_571_428_571_5).abs() < 1e-12, "{v}");
        // and adjusted_rand_score([0,0,1,1], [0,1,0,1]) = -0.5
        let v = adjusted_rand_index(&[0, 0, 1, 1], &[0, 1, 0, 1]);
        assert!((v + 0.5).abs() < 1e-12, "{v}");
    }

    #[test]
    fn unknown_cells_are_imputed_not_zeroed() {
        let x = array![[f32::NAN, 4.0], [2.0, f32::NAN]];
        let (filled, known) = impute(x.view(), 1.0);
        assert_eq!(filled, array![[1.0, 4.0], [2.0, 1.0]]);
        assert!((known - 0.5).abs() < 1e-6);
    }

    #[test]
    fn projection_finds_the_main_axis_and_keeps_distances_along_it() {
        // Points on the line t·(1, 2, 2)/3 plus a small wobble in an orthogonal direction.
        let x = Array2::from_shape_fn((50, 3), |(i, j)| {
            let t = i as f32 * 0.1;
            let wobble = if i % 2 == 0 { 0.01 } else { -0.01 };
            [t / 3.0, 2.0 * t / 3.0 + wobble, 2.0 * t / 3.0 - wobble][j]
        });
        let rows: Vec<usize> = (0..50).collect();
        let p = Projection::fit(x.view(), &rows).unwrap();
        assert!(p.explained[0] > 0.999, "{:?}", p.explained);
        let axis = p.components.row(0);
        let cosine = (axis[0] + 2.0 * axis[1] + 2.0 * axis[2]).abs() / 3.0;
        assert!((cosine - 1.0).abs() < 1e-4, "axis {axis}");
        let points = p.project(x.view());
        let along = (points[[49, 0]] - points[[0, 0]]).abs();
        assert!((along - 4.9).abs() < 1e-3, "{along}");
        // The components are orthonormal.
        let c = &p.components;
        assert!((c.row(0).dot(&c.row(1))).abs() < 1e-4);
        assert!((c.row(1).dot(&c.row(1)) - 1.0).abs() < 1e-4);
        // Identical profiles (no variance at all) give a flat map, not a failure.
        let flat = Array2::from_elem((20, 4), 2.0f32);
        let p = Projection::fit(flat.view(), &(0..20).collect::<Vec<_>>()).unwrap();
        assert_eq!(p.explained, vec![0.0, 0.0]);
        assert!(p.project(flat.view()).iter().all(|v| v.abs() < 1e-6));
    }

    #[test]
    fn finds_planted_groups_labels_them_and_chooses_k() {
        // Three groups of 30, strong in different skills; unknown elsewhere.
        let names = ["Rust", "Go", "Sales", "Coaching", "SQL", "Design"];
        let strong = [[0usize, 4], [2, 3], [1, 5]];
        let mut x = Array2::from_elem((90, 6), f32::NAN);
        for i in 0..90 {
            for &c in &strong[i % 3] {
                x[[i, c]] = 4.0 + (i % 7) as f32 * 0.05;
            }
        }
        let set = find_archetypes(x.view(), &names, &ArchetypeParams::default()).unwrap();
        assert_eq!(set.archetypes.len(), 3, "scores {:?}", set.k_scores);
        let planted: Vec<usize> = (0..90).map(|i| i % 3).collect();
        assert!(adjusted_rand_index(&planted, &set.assignments) > 0.95);
        let mut labels: Vec<Vec<&str>> = set
            .archetypes
            .iter()
            .map(|a| {
                let mut parts: Vec<&str> = a.label.split(" · ").collect();
                parts.sort_unstable();
                parts
            })
            .collect();
        labels.sort();
        assert_eq!(
            labels,
            vec![
                vec!["Coaching", "Sales"],
                vec!["Design", "Go"],
                vec!["Rust", "SQL"]
            ]
        );
        assert_eq!(set.archetypes.iter().map(|a| a.size).sum::<usize>(), 90);
        assert!(set.silhouette > 0.5);
        // On the map, each person lies nearer their own archetype's centre than any other's.
        assert_eq!(set.points.dim(), (90, 2));
        let centres: Vec<Array1<f32>> = set
            .archetypes
            .iter()
            .map(|a| {
                set.projection
                    .project(a.centroid.view().insert_axis(Axis(0)))
                    .row(0)
                    .to_owned()
            })
            .collect();
        for (point, &own) in set.points.outer_iter().zip(&set.assignments) {
            let d = |c: &Array1<f32>| (&point - c).mapv(|v| v * v).sum();
            let nearest = (0..centres.len())
                .min_by(|&a, &b| d(&centres[a]).total_cmp(&d(&centres[b])))
                .unwrap();
            assert_eq!(nearest, own);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn same_seed_same_archetypes(seed in 0u64..1000, n in 4usize..60) {
            let x = Array2::from_shape_fn((n, 4), |(i, j)| ((i * 7 + j * 3 + seed as usize) % 11) as f32 / 2.0);
            let params = ArchetypeParams { k_max: 5, seed, ..ArchetypeParams::default() };
            let a = find_archetypes(x.view(), &["a", "b", "c", "d"], &params).unwrap();
            let b = find_archetypes(x.view(), &["a", "b", "c", "d"], &params).unwrap();
            prop_assert_eq!(a.assignments, b.assignments);
            prop_assert_eq!(a.archetypes.iter().map(|a| a.size).sum::<usize>(), n);
        }
    }
}
