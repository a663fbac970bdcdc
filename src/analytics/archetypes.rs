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
//! `k` is chosen by linfa's silhouette score over a range that grows with the population
//! (`2..=clamp(⌈√n⌉, 20, 60)` unless the caller sets the top): every `k` up to 12, then a
//! grid growing by about 15 % per step, then every `k` between the best grid point's
//! neighbours. Each `k` is fitted on a deterministic sample (all rows up to 4,000) with
//! several seeded k-means++ restarts, keeping the lowest inertia. The whole population
//! is then assigned by a fit started from the sample's centroids. When the best `k` is
//! the top of the range the result says so (`k_at_edge`): more archetypes may exist.
//!
//! For the archetype map every profile is also projected onto the first two principal
//! components, fitted on the same deterministic sample: the eigenvectors of the sample's
//! covariance (linfa-linalg's symmetric eigendecomposition). linfa-reduction's `Pca` was
//! tried first; its LOBPCG-based truncated SVD panics on rank-deficient data (many
//! identical profiles), which real skill data can be.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use linfa::DatasetBase;
use linfa::traits::Fit;
use linfa_linalg::eigh::{EigSort, EighInto};
use ndarray::{Array1, Array2, ArrayView2, Axis, s};
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
    /// Largest `k` tried; `None`: `auto_k_max` of the population.
    pub k_max: Option<usize>,
    /// Seeded k-means++ starts per `k`; the lowest inertia is kept.
    pub restarts: usize,
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
            k_max: None,
            restarts: 3,
            seed: 42,
            unknown_level: 1.0,
            selection_sample: 4_000,
            silhouette_sample: 2_000,
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
    /// Silhouette of every `k` tried, ascending `k` (empty when `k` was given).
    pub k_scores: Vec<(usize, f32)>,
    /// The range `k` was chosen from (`(k, k)` when it was given).
    pub k_range: (usize, usize),
    /// The chosen `k` is the top of a range that could have gone higher: the population
    /// may hold more archetypes than were looked for.
    pub k_at_edge: bool,
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
        Self::fit_dims(x, rows, 2)
    }

    /// The first `dims` components only (the map is the first two).
    pub fn leading(&self, dims: usize) -> Self {
        let dims = dims.min(self.components.nrows());
        Self {
            components: self.components.slice(s![..dims, ..]).to_owned(),
            mean: self.mean.clone(),
            explained: self.explained[..dims].to_vec(),
        }
    }

    /// The `dims` principal components of `rows` of `x`, largest first.
    pub fn fit_dims(x: ArrayView2<f32>, rows: &[usize], dims: usize) -> Result<Self, KMeansError> {
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
        let dims = dims.min(values.len());
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
    let (x, known_share) = impute(profiles, params.unknown_level);
    find_archetypes_filled(x, known_share, names, params)
}

/// `find_archetypes` of profiles already imputed (`x`: no unknown cell left, each set
/// to `params.unknown_level`; `known_share` of the cells were known), for a caller that
/// builds them so: at 100,000 × 500 that saves a 200 MB copy holding the unknowns.
pub fn find_archetypes_filled(
    x: Array2<f32>,
    known_share: f32,
    names: &[&str],
    params: &ArchetypeParams,
) -> Result<ArchetypeSet, KMeansError> {
    let n = x.nrows();
    if names.len() != x.ncols() {
        return Err(KMeansError::InvalidParams(format!(
            "{} skill names for {} columns",
            names.len(),
            x.ncols()
        )));
    }
    if n < 2 {
        return Err(KMeansError::InvalidParams(
            "at least two people are needed to find archetypes".into(),
        ));
    }
    let selection = sample_rows(n, params.selection_sample, params.seed);
    // Principal components of the sample: the first two are the map; with many skills
    // the k search runs on the leading `SEARCH_DIMS`, where clusters keep their shape
    // (the differences between archetypes lie in few directions) at a fraction of the
    // cost. The population is then fitted in the full space.
    let components = Projection::fit_dims(x.view(), &selection, SEARCH_DIMS)?;
    let reduced = x.ncols() > SEARCH_DIMS;
    let xs = match reduced {
        true => components.project(x.select(Axis(0), &selection).view()),
        false => x.select(Axis(0), &selection),
    };
    let (k, k_scores, k_range, sample_model) = match params.k {
        Some(k) => (k, Vec::new(), (k, k), None),
        None => {
            let top = params.k_max.unwrap_or_else(|| auto_k_max(n));
            let k_max = top.min(selection.len() - 1).max(params.k_min);
            let scored = silhouette_rows(selection.len(), params.silhouette_sample, params.seed);
            let mut search = KSearch {
                x: xs.view(),
                silhouette: Silhouette::new(xs.view(), scored),
                params,
                scores: Vec::new(),
                best: None,
            };
            let grid = k_grid(params.k_min, k_max);
            for &k in &grid {
                search.try_k(k)?;
            }
            // Every k between the best grid point's neighbours.
            if let Some(at) = grid.iter().position(|&k| Some(k) == search.best_k()) {
                let low = grid[at.saturating_sub(1)];
                let high = grid[(at + 1).min(grid.len() - 1)];
                for k in low..=high {
                    search.try_k(k)?;
                }
            }
            let mut scores = search.scores;
            scores.sort_by_key(|&(k, _)| k);
            let (k, model) = search
                .best
                .map_or((params.k_min, None), |(k, _, model)| (k, Some(model)));
            (k, scores, (params.k_min, k_max), model)
        }
    };
    // The population: the sample's model when the sample is everyone, else a fit
    // started from the sample's centroids (or from k-means++ when k was given).
    let model = match sample_model {
        Some(model) if selection.len() == n && !reduced => model,
        Some(model) => {
            // The sample's clusters, as centroids in the full space.
            let centroids = match reduced {
                true => {
                    let full = x.select(Axis(0), &selection);
                    centroids_of(full.view(), model.labels.as_slice().unwrap_or(&[]), k)
                }
                false => model.centroids,
            };
            KMeansParams::new(k)
                .max_iterations(params.max_iterations)
                .init_centroids(centroids)
                .fit(&DatasetBase::from(x.view()))?
        }
        None => fit(x.view(), k, params)?,
    };
    let scored = silhouette_rows(n, params.silhouette_sample, params.seed);
    let score = Silhouette::new(x.view(), scored).score(&model.labels);
    let projection = components.leading(2);
    let mut set = describe(&x, &model, names, score, k_scores, known_share, projection);
    set.k_range = k_range;
    set.k_at_edge = params.k.is_none() && k == k_range.1 && k_range.1 < n - 1;
    set.points = set.projection.project(x.view());
    Ok(set)
}

/// Dimensions of the space the k search runs in when there are more skills.
const SEARCH_DIMS: usize = 40;

/// Mean of the rows of `x` with each of `k` labels (a label with no row: the overall
/// mean, so that the fit can still move it).
fn centroids_of(x: ArrayView2<f32>, labels: &[usize], k: usize) -> Array2<f32> {
    let mut sums = Array2::<f64>::zeros((k, x.ncols()));
    let mut counts = vec![0usize; k];
    for (row, &label) in x.outer_iter().zip(labels) {
        if label < k {
            counts[label] += 1;
            sums.row_mut(label)
                .zip_mut_with(&row, |s, &v| *s += f64::from(v));
        }
    }
    let overall = x
        .mean_axis(Axis(0))
        .unwrap_or_else(|| Array1::zeros(x.ncols()));
    let mut centroids = Array2::<f32>::zeros((k, x.ncols()));
    for (c, mut centroid) in centroids.outer_iter_mut().enumerate() {
        match counts[c] {
            0 => centroid.assign(&overall),
            n => centroid.assign(&sums.row(c).mapv(|v| (v / n as f64) as f32)),
        }
    }
    centroids
}

/// The largest `k` tried by default for `n` people: `⌈√n⌉` within 20–50 (the most a request may ask for).
pub fn auto_k_max(n: usize) -> usize {
    ((n as f64).sqrt().ceil() as usize).clamp(20, 50)
}

/// The `k` tried first: every `k` to 12, then steps of about 15 %, and `k_max`.
fn k_grid(k_min: usize, k_max: usize) -> Vec<usize> {
    let mut grid = Vec::new();
    let mut k = k_min;
    while k <= k_max {
        grid.push(k);
        k = if k < 12 {
            k + 1
        } else {
            (k as f64 * 1.15).ceil() as usize
        };
    }
    if grid.last() != Some(&k_max) {
        grid.push(k_max);
    }
    grid
}

/// The silhouette search over `k` on one sample.
struct KSearch<'a> {
    x: ArrayView2<'a, f32>,
    silhouette: Silhouette,
    params: &'a ArchetypeParams,
    scores: Vec<(usize, f32)>,
    /// Best so far: `k`, its silhouette, its model.
    best: Option<(usize, f32, KMeans)>,
}

impl KSearch<'_> {
    fn best_k(&self) -> Option<usize> {
        self.best.as_ref().map(|(k, _, _)| *k)
    }

    fn try_k(&mut self, k: usize) -> Result<(), KMeansError> {
        if self.scores.iter().any(|&(tried, _)| tried == k) {
            return Ok(());
        }
        if self
            .params
            .stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed))
        {
            return Err(KMeansError::Stopped);
        }
        let model = fit(self.x, k, self.params)?;
        let score = self.silhouette.score(&model.labels);
        self.scores.push((k, score));
        // Ties go to the smaller k.
        let better = self
            .best
            .as_ref()
            .is_none_or(|(best_k, best, _)| score > *best || (score == *best && k < *best_k));
        if better {
            self.best = Some((k, score, model));
        }
        Ok(())
    }
}

/// The best of `params.restarts` seeded k-means++ fits (lowest inertia).
fn fit(x: ArrayView2<f32>, k: usize, params: &ArchetypeParams) -> Result<KMeans, KMeansError> {
    let mut best: Option<KMeans> = None;
    for restart in 0..params.restarts.max(1) as u64 {
        let model = KMeansParams::new(k)
            .seed(params.seed.wrapping_add(restart.wrapping_mul(0x9E37_79B9)))
            .max_iterations(params.max_iterations)
            .fit(&DatasetBase::from(x))?;
        if best.as_ref().is_none_or(|b| model.inertia < b.inertia) {
            best = Some(model);
        }
    }
    best.ok_or_else(|| KMeansError::InvalidParams("no restarts".into()))
}

/// The silhouette of clusterings of the same rows, from their pairwise Euclidean
/// distances computed once (`‖a‖² + ‖b‖² − 2a·b`, one matrix product): scoring one
/// clustering is then O(rows²) additions instead of O(rows² × skills). The definition is
/// linfa's and scikit-learn's — per row `(b − a) / max(a, b)` with `a` the mean distance
/// to the rest of its cluster and `b` the smallest mean distance to another cluster,
/// averaged — with scikit-learn's convention that a row alone in its cluster scores 0
/// (linfa scores it 1, which would favour many small clusters).
struct Silhouette {
    /// The rows scored (indices into the fitted rows).
    rows: Vec<usize>,
    /// `rows × rows` distances.
    distances: Array2<f32>,
}

impl Silhouette {
    fn new(x: ArrayView2<f32>, rows: Vec<usize>) -> Self {
        let sample = x.select(Axis(0), &rows);
        let norms: Vec<f32> = sample
            .outer_iter()
            .map(|r| r.iter().map(|v| v * v).sum())
            .collect();
        let mut distances = sample.dot(&sample.t());
        for ((i, j), d) in distances.indexed_iter_mut() {
            *d = if i == j {
                0.0
            } else {
                (norms[i] + norms[j] - 2.0 * *d).max(0.0).sqrt()
            };
        }
        Self { rows, distances }
    }

    /// Mean silhouette of the scored rows under `labels` (of every fitted row).
    fn score(&self, labels: &Array1<usize>) -> f32 {
        let own: Vec<usize> = self.rows.iter().map(|&r| labels[r]).collect();
        let k = own.iter().max().map_or(0, |m| m + 1);
        let mut sizes = vec![0usize; k];
        for &l in &own {
            sizes[l] += 1;
        }
        if sizes.iter().filter(|&&s| s > 0).count() < 2 {
            return 0.0;
        }
        let mut sums = vec![0f64; k];
        let total: f64 = self
            .distances
            .outer_iter()
            .zip(&own)
            .map(|(row, &label)| {
                sums.iter_mut().for_each(|s| *s = 0.0);
                for (&d, &l) in row.iter().zip(&own) {
                    sums[l] += f64::from(d);
                }
                if sizes[label] < 2 {
                    return 0.0;
                }
                let a = sums[label] / (sizes[label] - 1) as f64;
                let b = (0..k)
                    .filter(|&c| c != label && sizes[c] > 0)
                    .map(|c| sums[c] / sizes[c] as f64)
                    .fold(f64::INFINITY, f64::min);
                let larger = a.max(b);
                if larger > 0.0 { (b - a) / larger } else { 0.0 }
            })
            .sum();
        (total / own.len().max(1) as f64) as f32
    }
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
        k_range: (k, k),
        k_at_edge: false,
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
    fn silhouette_equals_linfas_where_no_cluster_is_a_single_row() {
        use linfa::metrics::SilhouetteScore;
        let mut rng = StdRng::seed_from_u64(3);
        let x = Array2::from_shape_fn((60, 5), |_| rand::Rng::random_range(&mut rng, 0.0..5.0));
        let labels: Array1<usize> = (0..60).map(|i| (i * 7) % 4).collect();
        let ours = Silhouette::new(x.view(), (0..60).collect()).score(&labels);
        let linfa: f32 = DatasetBase::new(x.clone(), labels.clone())
            .silhouette_score()
            .unwrap();
        assert!((ours - linfa).abs() < 1e-4, "{ours} vs linfa {linfa}");
        // Scoring a subset of rows uses their labels among all rows.
        let rows: Vec<usize> = (0..60).step_by(2).collect();
        let subset = Silhouette::new(x.view(), rows.clone()).score(&labels);
        let picked: Array1<usize> = rows.iter().map(|&r| labels[r]).collect();
        let linfa: f32 = DatasetBase::new(x.select(Axis(0), &rows), picked)
            .silhouette_score()
            .unwrap();
        assert!((subset - linfa).abs() < 1e-4, "{subset} vs linfa {linfa}");
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

    /// A planted organisation: `archetypes` occupations of `per` people over `skills`
    /// skills. Each occupation has 10 core skills (chosen at random, so occupations
    /// overlap); each person holds 7–10 of their occupation's core skills and 1–3 others,
    /// each level the mean of three noisy assessments; every other cell is unknown.
    pub(crate) fn planted(
        archetypes: usize,
        per: usize,
        skills: usize,
        seed: u64,
    ) -> (Array2<f32>, Vec<usize>) {
        use rand::Rng;
        use rand::seq::SliceRandom;
        let mut rng = StdRng::seed_from_u64(seed);
        let cores: Vec<Vec<usize>> = (0..archetypes)
            .map(|_| rand::seq::index::sample(&mut rng, skills, 10).into_vec())
            .collect();
        let n = archetypes * per;
        let mut x = Array2::from_elem((n, skills), f32::NAN);
        let mut truth = Vec::with_capacity(n);
        for i in 0..n {
            let a = i % archetypes;
            truth.push(a);
            let seniority: f32 = rng.random_range(-0.4..0.4);
            let mut core = cores[a].clone();
            core.shuffle(&mut rng);
            let held = rng.random_range(7..=10);
            let assess = |rng: &mut StdRng, level: f32| {
                let sum: f32 = (0..3).map(|_| level + rng.random_range(-0.6..0.6)).sum();
                (sum / 3.0).clamp(0.0, 5.0)
            };
            for &c in &core[..held] {
                let level = rng.random_range(3.3..4.5) + seniority;
                x[[i, c]] = assess(&mut rng, level);
            }
            for _ in 0..rng.random_range(1..=3) {
                let c = rng.random_range(0..skills);
                if x[[i, c]].is_nan() {
                    let level = rng.random_range(1.0..2.5);
                    x[[i, c]] = assess(&mut rng, level);
                }
            }
        }
        (x, truth)
    }

    #[test]
    fn automatic_k_recovers_thirty_planted_archetypes_from_sparse_evidence() {
        let seed = std::env::var("PLANTED_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(11);
        let (x, truth) = planted(30, 40, 320, seed);
        let known = x.iter().filter(|v| !v.is_nan()).count() as f64 / x.len() as f64;
        assert!(known <= 0.10, "{known}");
        let names: Vec<String> = (0..x.ncols()).map(|c| format!("s{c}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let started = std::time::Instant::now();
        let set = find_archetypes(x.view(), &names, &ArchetypeParams::default()).unwrap();
        let ari = adjusted_rand_index(&truth, &set.assignments);
        eprintln!(
            "k {} ARI {ari:.3} in {:?}; scores {:?}",
            set.archetypes.len(),
            started.elapsed(),
            set.k_scores
        );
        assert!(ari >= 0.95, "ARI {ari}, k {}", set.archetypes.len());
        assert!(!set.k_at_edge);
        assert_eq!(set.k_range, (2, auto_k_max(x.nrows())));
        // The old fixed range, 2–20, stops at its edge and says so.
        let capped = ArchetypeParams {
            k_max: Some(20),
            ..ArchetypeParams::default()
        };
        let set = find_archetypes(x.view(), &names, &capped).unwrap();
        assert_eq!(set.archetypes.len(), 20);
        assert!(set.k_at_edge);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn same_seed_same_archetypes(seed in 0u64..1000, n in 4usize..60) {
            let x = Array2::from_shape_fn((n, 4), |(i, j)| ((i * 7 + j * 3 + seed as usize) % 11) as f32 / 2.0);
            let params = ArchetypeParams { k_max: Some(5), seed, ..ArchetypeParams::default() };
            let a = find_archetypes(x.view(), &["a", "b", "c", "d"], &params).unwrap();
            let b = find_archetypes(x.view(), &["a", "b", "c", "d"], &params).unwrap();
            prop_assert_eq!(a.assignments, b.assignments);
            prop_assert_eq!(a.archetypes.iter().map(|a| a.size).sum::<usize>(), n);
        }
    }
}
