//! k-means benchmark: capsight's Lloyd iteration (behind linfa's `Fit`) on a data file,
//! from given initial centroids, timed over several runs. `benches/kmeans_vs_sklearn.py`
//! writes the data once and runs this and scikit-learn on it; it passes
//!
//! `cargo bench --bench kmeans -- --bench --data X.f32 --rows N --cols D
//!  --init C.f32 --k K --max-iter 300 --tol 1e-4 --repeats 5`
//!
//! (raw little-endian f32, row-major) and reads one JSON line back. Without `--data` it
//! generates blobs; without `--bench` (as under `cargo test --all-targets`) it runs a
//! small smoke size and also fits linfa's own `KMeans` from the same centroids.

use std::time::Instant;

use capsight::analytics::kmeans::{KMeansParams, kmeans_plus_plus};
use linfa::DatasetBase;
use linfa::traits::Fit;
use ndarray::Array2;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn num<T: std::str::FromStr>(name: &str, default: T) -> T {
    arg(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn read_f32(path: &str, rows: usize, cols: usize) -> Array2<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    assert_eq!(
        bytes.len(),
        rows * cols * 4,
        "{path}: size does not match the shape"
    );
    let values: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Array2::from_shape_vec((rows, cols), values).unwrap_or_else(|e| panic!("shape: {e}"))
}

/// Overlapping Gaussian blobs (deterministic).
fn blobs(rows: usize, cols: usize, centers: usize) -> Array2<f32> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f32 / (1u64 << 53) as f32
    };
    let means: Vec<f32> = (0..centers * cols).map(|_| next() * 10.0).collect();
    Array2::from_shape_fn((rows, cols), |(i, j)| {
        let noise = (0..4).map(|_| next()).sum::<f32>() - 2.0;
        means[(i % centers) * cols + j] + 3.0 * noise
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let k: usize = num("--k", 16);
    let max_iter: usize = num("--max-iter", 300);
    let tol: f32 = num("--tol", 1e-4);
    let repeats: usize = num("--repeats", if smoke { 1 } else { 5 });
    let (x, init) = match arg("--data") {
        Some(path) => {
            let rows = num("--rows", 0);
            let cols = num("--cols", 0);
            let x = read_f32(&path, rows, cols);
            let init = match arg("--init") {
                Some(p) => read_f32(&p, k, cols),
                None => kmeans_plus_plus(x.view(), k, 0),
            };
            (x, init)
        }
        None => {
            let (rows, cols) = if smoke { (5_000, 20) } else { (100_000, 200) };
            let x = blobs(rows, cols, k);
            let init = kmeans_plus_plus(x.view(), k, 0);
            (x, init)
        }
    };
    let dataset = DatasetBase::from(x.view());
    let params = KMeansParams::new(k)
        .max_iterations(max_iter)
        .tolerance(tol)
        .bounds(!std::env::args().any(|a| a == "--no-bounds"))
        .init_centroids(init.clone());
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..repeats {
        let started = Instant::now();
        let model = params.fit(&dataset).expect("k-means");
        times.push(started.elapsed().as_secs_f64());
        last = Some(model);
    }
    let model = last.expect("at least one run");
    println!(
        "{{\"impl\": \"capsight\", \"rows\": {}, \"cols\": {}, \"k\": {k}, \"time_s\": {:.6}, \"iterations\": {}, \"inertia\": {:.6}, \"threads\": {}}}",
        x.nrows(),
        x.ncols(),
        median(times),
        model.iterations,
        model.inertia,
        rayon::current_num_threads()
    );
    if smoke {
        // The reference implementation from the same centroids: same inertia (±0.1%).
        let reference = linfa_clustering::KMeans::params(k)
            .n_runs(1)
            .max_n_iterations(max_iter as u64)
            .tolerance(tol)
            .init_method(linfa_clustering::KMeansInit::Precomputed(init))
            .fit(&DatasetBase::from(x.clone()))
            .expect("linfa k-means");
        let labels: ndarray::Array1<usize> = linfa::traits::Predict::predict(&reference, &x);
        let inertia = capsight::analytics::kmeans::exact_inertia(
            x.view(),
            reference.centroids().view(),
            &labels,
        );
        let ratio = model.inertia / inertia;
        println!("linfa inertia {inertia:.3}, ratio {ratio:.6}");
        assert!((ratio - 1.0).abs() <= 1e-3, "inertia differs from linfa's");
    }
}
