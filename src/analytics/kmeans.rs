//! Lloyd's k-means, fast, behind linfa's `Fit` and `Predict` traits.
//!
//! linfa 0.8's `KMeans` computes distances row by row and updates centroids on one
//! thread. Here one assignment step is a matrix product per chunk of rows
//! (`‖x − c‖² = ‖x‖² − 2x·c + ‖c‖²`, f32), with the argmin and the centroid sums of each
//! chunk done in parallel (rayon) and reduced once. The stopping rule is scikit-learn's
//! (`lloyd`): stop when no label changes ("strict convergence"), or when the total
//! squared centroid shift is at most `tolerance × mean column variance`, or after
//! `max_iterations`. The reported inertia, Σ‖x − c‖² to the final centroids, comes from
//! the per-cluster sums in f64 (taken about the first row, so data far from the origin
//! loses no precision) rather than from another pass over the data; a test holds it to
//! the direct sum. An empty cluster keeps its previous centroid.
//!
//! Hamerly's bounds skip rows that cannot have changed cluster. When a bounded step
//! still has to examine most rows (overlapping clusters), the next step is a full pass,
//! whose blocked products are cheaper per row; tightening a row's upper bound before a
//! full examination is switched off while it rarely spares one. Row norms, the
//! variance that scales the tolerance and the finiteness check come from one pass.

use linfa::dataset::DatasetBase;
use linfa::traits::{Fit, PredictInplace};
use ndarray::{Array1, Array2, ArrayBase, ArrayView1, ArrayView2, Data, Ix2};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

/// Rows per parallel work item of an assignment step.
const CHUNK_ROWS: usize = 512;

/// Why k-means could not run.
#[derive(Debug, thiserror::Error)]
pub enum KMeansError {
    /// The parameters do not fit the data.
    #[error("invalid k-means parameters: {0}")]
    InvalidParams(String),
    /// An error from linfa.
    #[error(transparent)]
    Linfa(#[from] linfa::Error),
    /// The caller's stop flag was set; nothing was computed.
    #[error("stopped before the end")]
    Stopped,
}

/// How the first centroids are chosen.
#[derive(Clone, Debug)]
pub enum KMeansInit {
    /// Greedy k-means++ (scikit-learn's: `2 + ln k` candidates per step), seeded.
    KMeansPlusPlus,
    /// These centroids (`k × features`).
    Precomputed(Array2<f32>),
}

/// Parameters of a k-means fit.
#[derive(Clone, Debug)]
pub struct KMeansParams {
    /// Number of clusters.
    pub k: usize,
    /// Iteration cap.
    pub max_iterations: usize,
    /// Relative tolerance on the centroid shift (scikit-learn's `tol`).
    pub tolerance: f32,
    /// Seed of the k-means++ initialisation.
    pub seed: u64,
    /// Initial centroids.
    pub init: KMeansInit,
    /// Skip distance computations that cannot change an assignment (Hamerly's bounds).
    /// The iterates are Lloyd's either way; off, every iteration computes every
    /// distance (for comparison).
    pub bounds: bool,
}

impl KMeansParams {
    /// `k` clusters with scikit-learn's defaults (300 iterations, tolerance 1e-4),
    /// k-means++ from seed 0.
    pub fn new(k: usize) -> Self {
        Self {
            k,
            max_iterations: 300,
            tolerance: 1e-4,
            seed: 0,
            init: KMeansInit::KMeansPlusPlus,
            bounds: true,
        }
    }

    /// Turns Hamerly's bounds on or off.
    pub fn bounds(mut self, on: bool) -> Self {
        self.bounds = on;
        self
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the iteration cap.
    pub fn max_iterations(mut self, max: usize) -> Self {
        self.max_iterations = max;
        self
    }

    /// Sets the tolerance.
    pub fn tolerance(mut self, tolerance: f32) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Starts from these centroids.
    pub fn init_centroids(mut self, centroids: Array2<f32>) -> Self {
        self.init = KMeansInit::Precomputed(centroids);
        self
    }
}

/// A fitted k-means model.
#[derive(Clone, Debug)]
pub struct KMeans {
    /// Centroids, `k × features`.
    pub centroids: Array2<f32>,
    /// Σ‖x − c(x)‖² over the fitted data.
    pub inertia: f64,
    /// Lloyd iterations run.
    pub iterations: usize,
    /// True when the stopping rule (not the cap) ended the fit.
    pub converged: bool,
    /// Cluster of each fitted row.
    pub labels: Array1<usize>,
}

impl<D: Data<Elem = f32>, T> Fit<ArrayBase<D, Ix2>, T, KMeansError> for KMeansParams {
    type Object = KMeans;

    fn fit(&self, dataset: &DatasetBase<ArrayBase<D, Ix2>, T>) -> Result<KMeans, KMeansError> {
        fit(self, dataset.records().view())
    }
}

impl<D: Data<Elem = f32>> PredictInplace<ArrayBase<D, Ix2>, Array1<usize>> for KMeans {
    fn predict_inplace(&self, x: &ArrayBase<D, Ix2>, y: &mut Array1<usize>) {
        let step = assign(x.view(), None, None, self.centroids.view(), None);
        y.assign(&Array1::from(step.labels));
    }

    fn default_target(&self, x: &ArrayBase<D, Ix2>) -> Array1<usize> {
        Array1::zeros(x.nrows())
    }
}

fn fit(params: &KMeansParams, x: ArrayView2<f32>) -> Result<KMeans, KMeansError> {
    let (n, features) = x.dim();
    if params.k == 0 || params.k > n {
        return Err(KMeansError::InvalidParams(format!(
            "k = {} must be between 1 and the number of rows ({n})",
            params.k
        )));
    }
    // ‖x‖² of every row: needed by every step, and finite exactly when the row is (a
    // value too large to square is refused with NaN and infinity).
    let profile = profile_rows(x);
    let norms = profile.norms;
    if norms.iter().any(|v| !v.is_finite()) {
        return Err(KMeansError::InvalidParams(
            "the data holds NaN, infinite or out-of-range values; impute them first".into(),
        ));
    }
    let mut centroids = match &params.init {
        KMeansInit::KMeansPlusPlus => kmeans_plus_plus(x, params.k, params.seed),
        KMeansInit::Precomputed(c) => {
            if c.dim() != (params.k, features) {
                return Err(KMeansError::InvalidParams(format!(
                    "initial centroids are {:?}, expected ({}, {features})",
                    c.dim(),
                    params.k
                )));
            }
            c.clone()
        }
    };
    let tolerance = f64::from(params.tolerance) * profile.mean_variance;
    let mut state = Lloyd::new(
        norms,
        profile.shift.iter().map(|&v| v as f32).collect(),
        params.bounds,
    );
    let mut iterations = 0;
    let mut converged = false;
    // True when the labels are the assignment to the current centroids.
    let mut consistent = false;
    while iterations < params.max_iterations {
        iterations += 1;
        let changed = state.assign(x, centroids.view());
        if iterations > 1 && changed == 0 {
            converged = true;
            consistent = true;
            break;
        }
        let mut shift = 0.0f64;
        let mut moves = vec![0f32; params.k];
        for (j, mut centroid) in centroids.outer_iter_mut().enumerate() {
            if state.counts[j] == 0 {
                continue;
            }
            let inv = 1.0 / state.counts[j] as f64;
            let mut moved = 0.0f64;
            for (c, &sum) in centroid.iter_mut().zip(state.sums.row(j)) {
                let next = (sum * inv) as f32;
                moved += f64::from(next - *c).powi(2);
                *c = next;
            }
            shift += moved;
            moves[j] = moved.sqrt() as f32;
        }
        state.centroids_moved(&moves);
        if shift <= tolerance {
            converged = true;
            break;
        }
    }
    // Labels consistent with the final centroids (scikit-learn does the same).
    if !consistent {
        state.assign(x, centroids.view());
    }
    // Σ‖x − c‖² from the per-cluster sums, which match the final labels: about the
    // shift x₀, Σ‖x − x₀‖² − 2 Σ_c (c − x₀)·(S_c − n_c x₀) + Σ_c n_c ‖c − x₀‖². No
    // further pass over the data; the tests hold it to the direct computation.
    let inertia = inertia_from_sums(
        &profile.shift,
        profile.shifted_square_sum,
        centroids.view(),
        &state.sums,
        &state.counts,
    );
    let labels = Array1::from(state.labels);
    Ok(KMeans {
        centroids,
        inertia,
        iterations,
        converged,
        labels,
    })
}

/// The state of a Lloyd fit: labels, per-cluster sums and counts, and (with bounds)
/// Hamerly's upper bound on each row's distance to its centroid and lower bound on its
/// distance to any other centroid.
struct Lloyd {
    labels: Vec<usize>,
    sums: Array2<f64>,
    counts: Vec<u64>,
    bounds: Option<(Vec<f32>, Vec<f32>)>,
    /// ‖x‖² of each row.
    norms: Vec<f32>,
    /// Full passes sum rows about this point (the first row).
    shift: Vec<f32>,
    fresh: bool,
    /// Whether bounded steps tighten upper bounds first (see `hamerly_step`).
    tighten: bool,
    /// Bounded steps so far.
    steps: usize,
    /// Rows the last bounded step examined in full.
    last_examined: usize,
}

impl Lloyd {
    fn new(norms: Vec<f32>, shift: Vec<f32>, bounds: bool) -> Self {
        let n = norms.len();
        Self {
            shift,
            labels: vec![0; n],
            sums: Array2::zeros((0, 0)),
            counts: Vec::new(),
            bounds: bounds.then(|| (vec![0f32; n], vec![0f32; n])),
            norms,
            fresh: true,
            tighten: true,
            steps: 0,
            last_examined: 0,
        }
    }

    /// Assigns every row to its nearest centroid; returns how many labels changed.
    fn assign(&mut self, x: ArrayView2<f32>, centroids: ArrayView2<f32>) -> usize {
        let norms: &[f32] = &self.norms;
        // A full pass when there are no bounds yet, or when the last bounded step had to
        // examine most rows anyway (clusters overlap): the full pass computes the
        // products of blocks of rows at once, which is cheaper per row, and makes the
        // bounds exact again.
        let full_pass =
            self.fresh || self.bounds.is_none() || self.last_examined * 5 > x.nrows() * 3;
        if full_pass {
            let previous = (!self.fresh).then_some(self.labels.as_slice());
            let step = assign(x, Some(norms), Some(&self.shift), centroids, previous);
            if let Some((upper, lower)) = &mut self.bounds {
                upper.copy_from_slice(&step.nearest);
                lower.copy_from_slice(&step.second);
            }
            self.labels = step.labels;
            self.sums = step.sums;
            self.counts = step.counts;
            self.fresh = false;
            // Bounded again next time, to see whether they now spare work.
            self.last_examined = 0;
            return step.changed;
        }
        let Some((upper, lower)) = &mut self.bounds else {
            return 0;
        };
        // While tightening is off, try it again every few steps: clusters separate as
        // the centroids settle.
        self.steps += 1;
        if self.steps.is_multiple_of(8) {
            self.tighten = true;
        }
        let (changed, examined) = hamerly_step(
            x,
            norms,
            centroids,
            (&mut self.labels, upper, lower),
            &mut self.sums,
            &mut self.counts,
            &mut self.tighten,
        );
        self.last_examined = examined;
        changed
    }

    /// Loosens the bounds after each centroid moved by `moves[c]`.
    fn centroids_moved(&mut self, moves: &[f32]) {
        let Some((upper, lower)) = &mut self.bounds else {
            return;
        };
        let (mut first, mut second, mut arg) = (0f32, 0f32, usize::MAX);
        for (c, &m) in moves.iter().enumerate() {
            if m > first {
                second = first;
                first = m;
                arg = c;
            } else if m > second {
                second = m;
            }
        }
        upper
            .par_iter_mut()
            .zip(lower.par_iter_mut())
            .zip(self.labels.par_iter())
            .for_each(|((u, l), &a)| {
                *u += moves[a];
                *l -= if a == arg { second } else { first };
            });
    }
}

/// Rows per parallel work item of a bounded step.
const BOUNDED_CHUNK_ROWS: usize = 2_048;

/// One assignment with Hamerly's bounds: a row is only re-examined when its upper bound
/// exceeds both its lower bound and half the distance from its centroid to the nearest
/// other one; the sums are updated by the rows that changed cluster.
fn hamerly_step(
    x: ArrayView2<f32>,
    norms: &[f32],
    centroids: ArrayView2<f32>,
    (labels, upper, lower): (&mut [usize], &mut [f32], &mut [f32]),
    sums: &mut Array2<f64>,
    counts: &mut [u64],
    tighten: &mut bool,
) -> (usize, usize) {
    let (k, features) = centroids.dim();
    let data = x.as_standard_layout();
    let values = data.as_slice().unwrap_or(&[]);
    let cs = centroids.as_standard_layout();
    let cv = cs.as_slice().unwrap_or(&[]);
    let centroid = |c: usize| &cv[c * features..(c + 1) * features];
    let (ct, padded) = transpose_padded(centroids);
    let centroid_norms: Vec<f32> = (0..k)
        .map(|c| centroid(c).iter().map(|v| v * v).sum())
        .collect();
    let half_gap: Vec<f32> = (0..k)
        .map(|c| {
            (0..k)
                .filter(|&o| o != c)
                .map(|o| distance(centroid(c), centroid(o)))
                .fold(f32::INFINITY, f32::min)
                / 2.0
        })
        .collect();
    let deltas: Vec<Delta> = labels
        .par_chunks_mut(BOUNDED_CHUNK_ROWS)
        .zip(upper.par_chunks_mut(BOUNDED_CHUNK_ROWS))
        .zip(lower.par_chunks_mut(BOUNDED_CHUNK_ROWS))
        .enumerate()
        .map(|(chunk, ((labels, upper), lower))| {
            let start = chunk * BOUNDED_CHUNK_ROWS;
            let rows = &values[start * features..(start + labels.len()) * features];
            let chunk = BoundedChunk {
                rows,
                norms: &norms[start..start + labels.len()],
                features,
                centroids: cv,
                k,
                half_gap: &half_gap,
                ct: &ct,
                padded,
                centroid_norms: &centroid_norms,
                tighten: *tighten,
            };
            chunk.examine(labels, upper, lower)
        })
        .collect();
    let mut changed = 0;
    let (mut tightened, mut saved) = (0, 0);
    let examined: usize = deltas.iter().map(|d| d.full).sum();
    for delta in deltas {
        changed += delta.changed;
        tightened += delta.tightened;
        saved += delta.saved;
        for (count, m) in counts.iter_mut().zip(delta.counts) {
            *count = count.saturating_add_signed(m);
        }
        if let Some(delta) = delta.sums {
            sums.iter_mut().zip(delta).for_each(|(s, d)| *s += d);
        }
    }
    // Tightening costs one distance per examined row; when it rarely spares the full
    // examination (clusters overlap heavily), it is skipped in the next step.
    if tightened > 0 {
        *tighten = saved * 4 >= tightened;
    }
    (changed, examined)
}

/// What one chunk of a bounded step changed.
struct Delta {
    /// Sum deltas, when any row moved.
    sums: Option<Vec<f64>>,
    counts: Vec<i64>,
    /// Rows that moved.
    changed: usize,
    /// Rows whose upper bound was tightened, and those the tightening spared a full
    /// examination.
    tightened: usize,
    saved: usize,
    /// Rows examined in full (every distance).
    full: usize,
}

/// What a chunk of a bounded step reads.
struct BoundedChunk<'a> {
    rows: &'a [f32],
    features: usize,
    centroids: &'a [f32],
    k: usize,
    half_gap: &'a [f32],
    /// ‖x‖² of each row.
    norms: &'a [f32],
    /// Centroids transposed and padded (see `transpose_padded`), and their norms².
    ct: &'a [f32],
    padded: usize,
    centroid_norms: &'a [f32],
    /// Tighten a row's upper bound (one distance) before examining it in full.
    tighten: bool,
}

impl BoundedChunk<'_> {
    fn examine(&self, labels: &mut [usize], upper: &mut [f32], lower: &mut [f32]) -> Delta {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has the features `examine_avx2` is compiled for.
            return unsafe { self.examine_avx2(labels, upper, lower) };
        }
        self.examine_body::<false>(labels, upper, lower)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn examine_avx2(&self, labels: &mut [usize], upper: &mut [f32], lower: &mut [f32]) -> Delta {
        self.examine_body::<true>(labels, upper, lower)
    }

    #[inline(always)]
    fn examine_body<const FUSED: bool>(
        &self,
        labels: &mut [usize],
        upper: &mut [f32],
        lower: &mut [f32],
    ) -> Delta {
        let (features, k) = (self.features, self.k);
        let centroid = |c: usize| &self.centroids[c * features..(c + 1) * features];
        let mut sums: Option<Vec<f64>> = None;
        let mut counts = vec![0i64; k];
        let mut changed = 0;
        let (mut tightened, mut saved, mut full) = (0, 0, 0);
        let mut products = vec![0f32; self.padded];
        for i in 0..labels.len() {
            let a = labels[i];
            let bound = self.half_gap[a].max(lower[i]);
            if upper[i] <= bound {
                continue;
            }
            let row = &self.rows[i * features..(i + 1) * features];
            if self.tighten {
                tightened += 1;
                upper[i] = distance(row, centroid(a));
                if upper[i] <= bound {
                    saved += 1;
                    continue;
                }
            }
            full += 1;
            // Every distance, from one register-blocked product with all centroids.
            dots_row::<FUSED>(row, self.ct, self.padded, &mut products);
            let norm = self.norms[i];
            let (best, best_d, second_d) = nearest_two(self.centroid_norms, &products);
            upper[i] = (norm + best_d).max(0.0).sqrt();
            lower[i] = (norm + second_d).max(0.0).sqrt();
            if best != a {
                labels[i] = best;
                changed += 1;
                counts[a] -= 1;
                counts[best] += 1;
                let delta = sums.get_or_insert_with(|| vec![0f64; k * features]);
                let (from, to) = (a * features, best * features);
                for (j, &v) in row.iter().enumerate() {
                    delta[from + j] -= f64::from(v);
                    delta[to + j] += f64::from(v);
                }
            }
        }
        Delta {
            sums,
            counts,
            changed,
            tightened,
            saved,
            full,
        }
    }
}

#[inline(always)]
/// Euclidean distance, accumulated in eight lanes (so that it vectorises).
fn distance(a: &[f32], b: &[f32]) -> f32 {
    squared(a, b).sqrt()
}

/// Squared Euclidean distance in eight lanes.
#[inline(always)]
fn squared(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let mut pa = a.chunks_exact(8);
    let mut pb = b.chunks_exact(8);
    for (x, y) in (&mut pa).zip(&mut pb) {
        for l in 0..8 {
            let d = x[l] - y[l];
            acc[l] += d * d;
        }
    }
    let tail: f32 = pa
        .remainder()
        .iter()
        .zip(pb.remainder())
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    acc.iter().sum::<f32>() + tail
}

/// The nearest centroid and the two smallest values of ‖c‖² − 2x·c (‖x − c‖² − ‖x‖²),
/// from the products `x·c`. Lane-wise minima instead of one running minimum: with
/// overlapping clusters which centroid wins is unpredictable (branches mispredict), and a
/// single running minimum is a chain of dependent operations; lanes vectorise.
#[inline(always)]
fn nearest_two(centroid_norms: &[f32], products: &[f32]) -> (usize, f32, f32) {
    const W: usize = 8;
    #[inline(always)]
    fn less(a: f32, b: f32) -> f32 {
        if a < b { a } else { b }
    }
    #[inline(always)]
    fn more(a: f32, b: f32) -> f32 {
        if a > b { a } else { b }
    }
    let k = centroid_norms.len();
    let products = &products[..k];
    let d = |c: usize| centroid_norms[c] - 2.0 * products[c];
    // Per lane the smallest and second smallest value: second = min(second, max(v, first)).
    let (mut first, mut second) = ([f32::INFINITY; W], [f32::INFINITY; W]);
    let mut c = 0;
    while c + W <= k {
        for l in 0..W {
            let v = d(c + l);
            second[l] = less(second[l], more(v, first[l]));
            first[l] = less(first[l], v);
        }
        c += W;
    }
    let (mut best_d, mut second_d) = (f32::INFINITY, f32::INFINITY);
    for t in c..k {
        let v = d(t);
        second_d = less(second_d, more(v, best_d));
        best_d = less(best_d, v);
    }
    for l in 0..W {
        // Merging (a1, a2) with (b1, b2): min(a1, b1), and min(max(a1, b1), a2, b2).
        second_d = less(less(second_d, second[l]), more(best_d, first[l]));
        best_d = less(best_d, first[l]);
    }
    let best = (0..k).position(|c| d(c) == best_d).unwrap_or(0);
    (best, best_d, second_d)
}

/// One assignment step: labels, per-cluster sums and counts, and how many labels changed.
struct Step {
    labels: Vec<usize>,
    sums: Array2<f64>,
    counts: Vec<u64>,
    changed: usize,
    /// Distance of each row to its nearest centroid, and to the second nearest.
    nearest: Vec<f32>,
    second: Vec<f32>,
}

fn assign(
    x: ArrayView2<f32>,
    norms: Option<&[f32]>,
    shift: Option<&[f32]>,
    centroids: ArrayView2<f32>,
    previous: Option<&[usize]>,
) -> Step {
    let (n, features) = x.dim();
    let k = centroids.nrows();
    let no_shift = vec![0f32; features];
    let shift = shift.unwrap_or(&no_shift);
    let centroid_norms: Array1<f32> = centroids.outer_iter().map(|c| c.dot(&c)).collect();
    let (ct, padded) = transpose_padded(centroids);
    let data = x.as_standard_layout();
    let values = data.as_slice().unwrap_or(&[]);
    let mut labels = vec![0usize; n];
    let mut nearest = vec![0f32; n];
    let mut second = vec![0f32; n];
    let centroid_norms = centroid_norms.as_slice().unwrap_or(&[]);
    let partials: Vec<(Vec<f32>, Vec<u64>, usize)> = labels
        .par_chunks_mut(CHUNK_ROWS)
        .zip(nearest.par_chunks_mut(CHUNK_ROWS))
        .zip(second.par_chunks_mut(CHUNK_ROWS))
        .enumerate()
        .map(|(chunk, ((out, near), far))| {
            let start = chunk * CHUNK_ROWS;
            let rows = &values[start * features..(start + out.len()) * features];
            let mut products = vec![0f32; out.len() * padded];
            dots(rows, features, &ct, padded, &mut products);
            // Chunk sums in f32 (at most CHUNK_ROWS terms each) about the shift, so that
            // data far from the origin loses no precision; merged in f64.
            let mut sums = vec![0f32; k * features];
            let mut counts = vec![0u64; k];
            let mut changed = 0;
            for (i, (row, product)) in rows
                .chunks_exact(features.max(1))
                .zip(products.chunks_exact(padded))
                .enumerate()
            {
                let (best, best_distance, second_distance) = nearest_two(centroid_norms, product);
                out[i] = best;
                let norm = match norms {
                    Some(norms) => norms[start + i],
                    None => row.iter().map(|v| v * v).sum(),
                };
                near[i] = (norm + best_distance).max(0.0).sqrt();
                far[i] = (norm + second_distance).max(0.0).sqrt();
                if previous.is_some_and(|p| p[start + i] != best) {
                    changed += 1;
                }
                counts[best] += 1;
                let acc = &mut sums[best * features..(best + 1) * features];
                acc.iter_mut()
                    .zip(row)
                    .zip(shift)
                    .for_each(|((a, &v), &c)| *a += v - c);
            }
            (sums, counts, changed)
        })
        .collect();
    let mut sums = Array2::<f64>::zeros((k, features));
    let mut counts = vec![0u64; k];
    let mut changed = 0;
    for (s, c, ch) in partials {
        sums.iter_mut().zip(s).for_each(|(a, b)| *a += f64::from(b));
        counts.iter_mut().zip(c).for_each(|(a, b)| *a += b);
        changed += ch;
    }
    // Back from sums about the shift to plain sums, in f64.
    for (mut sum, &count) in sums.outer_iter_mut().zip(&counts) {
        for (s, &c) in sum.iter_mut().zip(shift) {
            *s += count as f64 * f64::from(c);
        }
    }
    if previous.is_none() {
        changed = n;
    }
    Step {
        labels,
        sums,
        counts,
        changed,
        nearest,
        second,
    }
}

/// Centroids per microkernel block (two AVX registers of f32).
const LANES: usize = 16;
/// Rows per microkernel block: their products share each centroid load.
const BLOCK_ROWS: usize = 4;

/// The centroids transposed (`features × padded`, `padded` a multiple of `LANES`,
/// zero-filled), so that one feature's values of a block of centroids are contiguous.
fn transpose_padded(centroids: ArrayView2<f32>) -> (Vec<f32>, usize) {
    let (k, features) = centroids.dim();
    let padded = k.div_ceil(LANES) * LANES;
    let mut ct = vec![0f32; features * padded];
    for ((c, j), &v) in centroids.indexed_iter() {
        ct[j * padded + c] = v;
    }
    (ct, padded)
}

/// `out[r × padded + c] = x_r · centroid_c` for the rows of `x` (row-major, `features`
/// wide). A register-blocked kernel reading `x` in place: a general matrix product would
/// first copy ("pack") all of `x` on every iteration, which costs more than the product.
fn dots(x: &[f32], features: usize, ct: &[f32], padded: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features `dots_fma` is compiled for (checked above).
        unsafe { dots_fma(x, features, ct, padded, out) };
        return;
    }
    dots_kernel::<false>(x, features, ct, padded, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dots_fma(x: &[f32], features: usize, ct: &[f32], padded: usize, out: &mut [f32]) {
    dots_kernel::<true>(x, features, ct, padded, out);
}

#[inline(always)]
fn dots_kernel<const FUSED: bool>(
    x: &[f32],
    features: usize,
    ct: &[f32],
    padded: usize,
    out: &mut [f32],
) {
    if features == 0 {
        out.fill(0.0);
        return;
    }
    let rows = x.len() / features;
    let mut r = 0;
    while r + BLOCK_ROWS <= rows {
        dots_block::<FUSED, BLOCK_ROWS>(x, r, features, ct, padded, out);
        r += BLOCK_ROWS;
    }
    while r < rows {
        dots_row::<FUSED>(
            &x[r * features..(r + 1) * features],
            ct,
            padded,
            &mut out[r * padded..(r + 1) * padded],
        );
        r += 1;
    }
}

/// One row's products with every centroid. Four independent accumulators over the
/// features, so that consecutive multiply-adds do not wait for each other.
#[inline(always)]
fn dots_row<const FUSED: bool>(row: &[f32], ct: &[f32], padded: usize, out: &mut [f32]) {
    #[inline(always)]
    fn step<const FUSED: bool>(acc: &mut [f32; LANES], v: f32, c: &[f32]) {
        for l in 0..LANES {
            acc[l] = if FUSED {
                v.mul_add(c[l], acc[l])
            } else {
                acc[l] + v * c[l]
            };
        }
    }
    let features = row.len();
    for block in (0..padded).step_by(LANES) {
        let column = |j: usize| &ct[j * padded + block..j * padded + block + LANES];
        let (mut a0, mut a1, mut a2, mut a3) =
            ([0f32; LANES], [0f32; LANES], [0f32; LANES], [0f32; LANES]);
        let mut j = 0;
        while j + 4 <= features {
            step::<FUSED>(&mut a0, row[j], column(j));
            step::<FUSED>(&mut a1, row[j + 1], column(j + 1));
            step::<FUSED>(&mut a2, row[j + 2], column(j + 2));
            step::<FUSED>(&mut a3, row[j + 3], column(j + 3));
            j += 4;
        }
        while j < features {
            step::<FUSED>(&mut a0, row[j], column(j));
            j += 1;
        }
        for l in 0..LANES {
            out[block + l] = (a0[l] + a1[l]) + (a2[l] + a3[l]);
        }
    }
}

#[inline(always)]
fn dots_block<const FUSED: bool, const R: usize>(
    x: &[f32],
    r: usize,
    features: usize,
    ct: &[f32],
    padded: usize,
    out: &mut [f32],
) {
    let xs: [&[f32]; R] = std::array::from_fn(|q| &x[(r + q) * features..(r + q + 1) * features]);
    for block in (0..padded).step_by(LANES) {
        let mut acc = [[0f32; LANES]; R];
        for j in 0..features {
            let c = &ct[j * padded + block..j * padded + block + LANES];
            for q in 0..R {
                let v = xs[q][j];
                for l in 0..LANES {
                    acc[q][l] = if FUSED {
                        v.mul_add(c[l], acc[q][l])
                    } else {
                        acc[q][l] + v * c[l]
                    };
                }
            }
        }
        for (q, values) in acc.iter().enumerate() {
            let at = (r + q) * padded + block;
            out[at..at + LANES].copy_from_slice(values);
        }
    }
}

/// Σ‖x − c(x)‖², computed directly (not from the expanded form) in f64.
pub fn exact_inertia(
    x: ArrayView2<f32>,
    centroids: ArrayView2<f32>,
    labels: &Array1<usize>,
) -> f64 {
    let data = x.as_standard_layout();
    let cs = centroids.as_standard_layout();
    let (Some(values), Some(cv)) = (data.as_slice(), cs.as_slice()) else {
        return f64::NAN;
    };
    let features = x.ncols();
    if features == 0 {
        return 0.0;
    }
    // Each row's distance in f32 (vectorised), their sum in f64.
    values
        .par_chunks(features)
        .zip(labels.as_slice().unwrap_or(&[]).par_iter())
        .map(|(row, &c)| f64::from(squared(row, &cv[c * features..(c + 1) * features])))
        .sum()
}

fn squared_distance(a: ArrayView1<f32>, b: ArrayView1<f32>) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&p, &q)| f64::from(p - q).powi(2))
        .sum()
}

/// What one pass over the rows tells before clustering.
struct RowProfile {
    /// ‖x‖² of every row.
    norms: Vec<f32>,
    /// Mean over columns of each column's variance (scikit-learn's tolerance scale).
    mean_variance: f64,
    /// The first row: moments are taken about it, so that f32 partial sums of data far
    /// from the origin do not cancel.
    shift: Vec<f64>,
    /// Σ‖x − x₀‖².
    shifted_square_sum: f64,
}

/// Rows per f32 block of `profile_rows`.
const PROFILE_BLOCK_ROWS: usize = 256;

/// Row norms and column moments in one parallel pass: f32 within blocks of rows
/// (vectorised), f64 across blocks.
fn profile_rows(x: ArrayView2<f32>) -> RowProfile {
    let (n, d) = x.dim();
    let data = x.as_standard_layout();
    let values = data.as_slice().unwrap_or(&[]);
    let mut norms = vec![0f32; n];
    if n == 0 || d == 0 || values.len() != n * d {
        return RowProfile {
            norms,
            mean_variance: 0.0,
            shift: vec![0.0; d],
            shifted_square_sum: 0.0,
        };
    }
    let shift = &values[..d];
    let zero = || (vec![0f64; d], vec![0f64; d]);
    let (sum, sq) = norms
        .par_chunks_mut(PROFILE_BLOCK_ROWS)
        .zip(values.par_chunks(PROFILE_BLOCK_ROWS * d))
        .map(|(out, block)| {
            let (mut sum, mut sq) = (vec![0f32; d], vec![0f32; d]);
            for (norm, row) in out.iter_mut().zip(block.chunks_exact(d)) {
                *norm = squared_norm(row);
                for (((s, q), &v), &c) in sum.iter_mut().zip(sq.iter_mut()).zip(row).zip(shift) {
                    let v = v - c;
                    *s += v;
                    *q += v * v;
                }
            }
            let wide = |v: Vec<f32>| v.into_iter().map(f64::from).collect::<Vec<_>>();
            (wide(sum), wide(sq))
        })
        .reduce(zero, |(mut a, mut b), (c, e)| {
            a.iter_mut().zip(c).for_each(|(a, c)| *a += c);
            b.iter_mut().zip(e).for_each(|(b, e)| *b += e);
            (a, b)
        });
    let rows = n as f64;
    let total: f64 = sum
        .iter()
        .zip(&sq)
        .map(|(s, q)| (q / rows - (s / rows).powi(2)).max(0.0))
        .sum();
    RowProfile {
        norms,
        mean_variance: total / d as f64,
        shift: shift.iter().map(|&v| f64::from(v)).collect(),
        shifted_square_sum: sq.iter().sum(),
    }
}

/// Σ‖x − c(x)‖² from cluster sums and counts, about `shift` (see `fit`).
fn inertia_from_sums(
    shift: &[f64],
    shifted_square_sum: f64,
    centroids: ArrayView2<f32>,
    sums: &Array2<f64>,
    counts: &[u64],
) -> f64 {
    let mut inertia = shifted_square_sum;
    for ((centroid, sum), &count) in centroids.outer_iter().zip(sums.outer_iter()).zip(counts) {
        let count = count as f64;
        for ((&c, &s), &x0) in centroid.iter().zip(sum).zip(shift) {
            let c = f64::from(c) - x0;
            inertia += -2.0 * c * (s - count * x0) + count * c * c;
        }
    }
    inertia.max(0.0)
}

#[inline(always)]
fn squared_norm(row: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let mut chunks = row.chunks_exact(8);
    for c in &mut chunks {
        for l in 0..8 {
            acc[l] += c[l] * c[l];
        }
    }
    let tail: f32 = chunks.remainder().iter().map(|v| v * v).sum();
    acc.iter().sum::<f32>() + tail
}

/// Greedy k-means++: each new centroid is the best (lowest resulting potential) of
/// `2 + ln k` candidates drawn with probability proportional to the squared distance
/// to the nearest chosen centroid.
pub fn kmeans_plus_plus(x: ArrayView2<f32>, k: usize, seed: u64) -> Array2<f32> {
    let (n, features) = x.dim();
    let mut rng = StdRng::seed_from_u64(seed);
    let trials = 2 + (k as f64).ln() as usize;
    let mut centroids = Array2::<f32>::zeros((k, features));
    let first = rng.random_range(0..n);
    centroids.row_mut(0).assign(&x.row(first));
    let mut closest: Vec<f64> = (0..n)
        .into_par_iter()
        .map(|i| squared_distance(x.row(i), x.row(first)))
        .collect();
    for c in 1..k {
        let potential: f64 = closest.iter().sum();
        let mut best: Option<(f64, usize, Vec<f64>)> = None;
        for _ in 0..trials {
            let candidate = if potential > 0.0 {
                let target = rng.random::<f64>() * potential;
                let mut acc = 0.0;
                closest
                    .iter()
                    .position(|&d| {
                        acc += d;
                        acc > target
                    })
                    .unwrap_or(n - 1)
            } else {
                rng.random_range(0..n)
            };
            let with: Vec<f64> = (0..n)
                .into_par_iter()
                .map(|i| closest[i].min(squared_distance(x.row(i), x.row(candidate))))
                .collect();
            let total: f64 = with.iter().sum();
            if best.as_ref().is_none_or(|(b, _, _)| total < *b) {
                best = Some((total, candidate, with));
            }
        }
        if let Some((_, candidate, with)) = best {
            centroids.row_mut(c).assign(&x.row(candidate));
            closest = with;
        }
    }
    centroids
}

#[cfg(test)]
mod tests {
    use super::*;
    use linfa::traits::Predict;
    use linfa_clustering::{KMeans as LinfaKMeans, KMeansInit as LinfaInit};
    use rand_distr::{Distribution, Normal};

    fn blobs(n: usize, features: usize, centers: usize, seed: u64) -> Array2<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        let noise = Normal::new(0.0f32, 0.6).unwrap();
        let means: Vec<Vec<f32>> = (0..centers)
            .map(|_| (0..features).map(|_| rng.random_range(0.0..5.0)).collect())
            .collect();
        Array2::from_shape_fn((n, features), |(i, j)| {
            means[i % centers][j] + noise.sample(&mut rng)
        })
    }

    #[test]
    fn matches_linfa_kmeans_from_the_same_centroids() {
        for (seed, k) in [(1u64, 3usize), (2, 6), (3, 10)] {
            let x = blobs(3_000, 12, 6, seed);
            let init = kmeans_plus_plus(x.view(), k, seed);
            let ours = KMeansParams::new(k)
                .init_centroids(init.clone())
                .fit(&DatasetBase::from(x.clone()))
                .unwrap();
            let reference = LinfaKMeans::params(k)
                .n_runs(1)
                .max_n_iterations(300)
                .tolerance(1e-4)
                .init_method(LinfaInit::Precomputed(init))
                .fit(&DatasetBase::from(x.clone()))
                .unwrap();
            let labels: Array1<usize> = reference.predict(&x);
            let reference_inertia = exact_inertia(x.view(), reference.centroids().view(), &labels);
            let ratio = ours.inertia / reference_inertia;
            assert!(
                (ratio - 1.0).abs() <= 1e-3,
                "k={k}: inertia {} vs linfa {}",
                ours.inertia,
                reference_inertia
            );
        }
    }

    #[test]
    fn bounds_skip_work_but_not_results() {
        for seed in 1..6u64 {
            let x = blobs(4_000, 16, 8, seed);
            let init = kmeans_plus_plus(x.view(), 8, seed);
            let fit = |bounds: bool| {
                KMeansParams::new(8)
                    .tolerance(0.0)
                    .bounds(bounds)
                    .init_centroids(init.clone())
                    .fit(&DatasetBase::from(x.view()))
                    .unwrap()
            };
            let (plain, bounded) = (fit(false), fit(true));
            assert_eq!(plain.labels, bounded.labels, "seed {seed}");
            assert_eq!(plain.iterations, bounded.iterations, "seed {seed}");
            assert!((plain.inertia / bounded.inertia - 1.0).abs() < 1e-6);
        }
    }

    #[test]
    fn inertia_from_cluster_sums_equals_the_direct_sum_even_far_from_the_origin() {
        for (offset, max_iterations) in [(0.0f32, 300), (1_000.0, 300), (0.0, 2), (-5e4, 3)] {
            let x = blobs(3_000, 12, 6, 11).mapv(|v| v + offset);
            let fit = KMeansParams::new(6)
                .seed(3)
                .max_iterations(max_iterations)
                .fit(&DatasetBase::from(x.view()))
                .unwrap();
            let direct = exact_inertia(x.view(), fit.centroids.view(), &fit.labels);
            let relative = (fit.inertia / direct - 1.0).abs();
            assert!(
                relative < 1e-5,
                "offset {offset}: {} vs {direct}",
                fit.inertia
            );
        }
    }

    #[test]
    fn predict_agrees_with_fitted_labels_and_fit_is_deterministic() {
        let x = blobs(2_000, 8, 4, 9);
        let params = KMeansParams::new(4).seed(7);
        let a = params.fit(&DatasetBase::from(x.clone())).unwrap();
        let b = params.fit(&DatasetBase::from(x.clone())).unwrap();
        assert_eq!(a.labels, b.labels);
        assert_eq!(a.centroids, b.centroids);
        let predicted: Array1<usize> = a.predict(&x);
        assert_eq!(predicted, a.labels);
        assert!(a.converged);
    }

    #[test]
    fn rejects_bad_parameters_and_missing_values() {
        let x = blobs(10, 3, 2, 1);
        assert!(
            KMeansParams::new(0)
                .fit(&DatasetBase::from(x.clone()))
                .is_err()
        );
        assert!(
            KMeansParams::new(11)
                .fit(&DatasetBase::from(x.clone()))
                .is_err()
        );
        let mut holes = x.clone();
        holes[[0, 0]] = f32::NAN;
        assert!(KMeansParams::new(2).fit(&DatasetBase::from(holes)).is_err());
        let wrong = Array2::zeros((2, 4));
        assert!(
            KMeansParams::new(2)
                .init_centroids(wrong)
                .fit(&DatasetBase::from(x))
                .is_err()
        );
    }
}
