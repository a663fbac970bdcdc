//! Lloyd's k-means, fast, behind linfa's `Fit` and `Predict` traits.
//!
//! linfa 0.8's `KMeans` computes distances row by row and updates centroids on one
//! thread. Here one assignment step is a matrix product per chunk of rows
//! (`‖x − c‖² = ‖x‖² − 2x·c + ‖c‖²`, f32), with the argmin and the centroid sums of each
//! chunk done in parallel (rayon) and reduced once. The stopping rule is scikit-learn's
//! (`lloyd`): stop when no label changes ("strict convergence"), or when the total
//! squared centroid shift is at most `tolerance × mean column variance`, or after
//! `max_iterations`. The reported inertia is computed exactly, as Σ‖x − c‖², from the
//! final centroids. An empty cluster keeps its previous centroid.

use linfa::dataset::DatasetBase;
use linfa::traits::{Fit, PredictInplace};
use ndarray::{Array1, Array2, ArrayBase, ArrayView1, ArrayView2, Axis, Data, Ix2, s};
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
        }
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
        let step = assign(x.view(), self.centroids.view(), None);
        y.assign(&step.labels);
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
    if x.iter().any(|v| !v.is_finite()) {
        return Err(KMeansError::InvalidParams(
            "the data holds NaN or infinite values; impute them first".into(),
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
    let tolerance = f64::from(params.tolerance) * mean_variance(x);
    let mut labels: Option<Array1<usize>> = None;
    let mut iterations = 0;
    let mut converged = false;
    while iterations < params.max_iterations {
        iterations += 1;
        let step = assign(x, centroids.view(), labels.as_ref());
        if labels.is_some() && step.changed == 0 {
            converged = true;
            labels = Some(step.labels);
            break;
        }
        let mut shift = 0.0f64;
        for (j, mut centroid) in centroids.outer_iter_mut().enumerate() {
            if step.counts[j] == 0 {
                continue;
            }
            let inv = 1.0 / step.counts[j] as f64;
            for (c, &sum) in centroid.iter_mut().zip(step.sums.row(j)) {
                let next = (sum * inv) as f32;
                shift += f64::from(next - *c).powi(2);
                *c = next;
            }
        }
        labels = Some(step.labels);
        if shift <= tolerance {
            converged = true;
            break;
        }
    }
    // Labels consistent with the final centroids (unless they already are).
    let labels = match labels {
        Some(labels) if converged && iterations > 0 && labels.len() == n => {
            let check = assign(x, centroids.view(), Some(&labels));
            if check.changed == 0 {
                labels
            } else {
                check.labels
            }
        }
        _ => assign(x, centroids.view(), None).labels,
    };
    let inertia = exact_inertia(x, centroids.view(), &labels);
    Ok(KMeans {
        centroids,
        inertia,
        iterations,
        converged,
        labels,
    })
}

/// One assignment step: labels, per-cluster sums and counts, and how many labels changed.
struct Step {
    labels: Array1<usize>,
    sums: Array2<f64>,
    counts: Vec<u64>,
    changed: usize,
}

fn assign(
    x: ArrayView2<f32>,
    centroids: ArrayView2<f32>,
    previous: Option<&Array1<usize>>,
) -> Step {
    let (n, features) = x.dim();
    let k = centroids.nrows();
    let centroid_norms: Array1<f32> = centroids.outer_iter().map(|c| c.dot(&c)).collect();
    let ct = centroids.t();
    let mut labels = vec![0usize; n];
    let partials: Vec<(Array2<f64>, Vec<u64>, usize)> = labels
        .par_chunks_mut(CHUNK_ROWS)
        .enumerate()
        .map(|(chunk, out)| {
            let start = chunk * CHUNK_ROWS;
            let rows = x.slice(s![start..start + out.len(), ..]);
            let products = rows.dot(&ct);
            let mut sums = Array2::<f64>::zeros((k, features));
            let mut counts = vec![0u64; k];
            let mut changed = 0;
            for (i, (row, product)) in rows.outer_iter().zip(products.outer_iter()).enumerate() {
                let mut best = 0;
                let mut best_distance = f32::INFINITY;
                for j in 0..k {
                    let d = centroid_norms[j] - 2.0 * product[j];
                    if d < best_distance {
                        best_distance = d;
                        best = j;
                    }
                }
                out[i] = best;
                if previous.is_some_and(|p| p[start + i] != best) {
                    changed += 1;
                }
                counts[best] += 1;
                for (acc, &v) in sums.row_mut(best).iter_mut().zip(row) {
                    *acc += f64::from(v);
                }
            }
            (sums, counts, changed)
        })
        .collect();
    let mut sums = Array2::<f64>::zeros((k, features));
    let mut counts = vec![0u64; k];
    let mut changed = 0;
    for (s, c, ch) in partials {
        sums += &s;
        counts.iter_mut().zip(c).for_each(|(a, b)| *a += b);
        changed += ch;
    }
    if previous.is_none() {
        changed = n;
    }
    Step {
        labels: Array1::from(labels),
        sums,
        counts,
        changed,
    }
}

/// Σ‖x − c(x)‖², computed directly (not from the expanded form) in f64.
pub fn exact_inertia(
    x: ArrayView2<f32>,
    centroids: ArrayView2<f32>,
    labels: &Array1<usize>,
) -> f64 {
    (0..x.nrows())
        .into_par_iter()
        .map(|i| squared_distance(x.row(i), centroids.row(labels[i])))
        .sum()
}

fn squared_distance(a: ArrayView1<f32>, b: ArrayView1<f32>) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&p, &q)| f64::from(p - q).powi(2))
        .sum()
}

fn mean_variance(x: ArrayView2<f32>) -> f64 {
    let n = x.nrows() as f64;
    if n == 0.0 || x.ncols() == 0 {
        return 0.0;
    }
    let total: f64 = x
        .axis_iter(Axis(1))
        .map(|column| {
            let mean = column.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
            column
                .iter()
                .map(|&v| (f64::from(v) - mean).powi(2))
                .sum::<f64>()
                / n
        })
        .sum();
    total / x.ncols() as f64
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
