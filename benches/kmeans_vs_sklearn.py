#!/usr/bin/env python3
"""capsight's k-means against scikit-learn's on the same data.

Writes each data set once (float32, overlapping Gaussian blobs) with initial centroids
from scikit-learn's k-means++, then fits both implementations from those centroids with
the same k, iteration cap and stopping rule (Lloyd; stop when no label changes or when
the centroid shift is at most tol x the mean column variance). Reports the median time
of several runs, iterations and inertia of both, and the time ratio.

    python3 benches/kmeans_vs_sklearn.py            # installs numpy and scikit-learn
    python3 benches/kmeans_vs_sklearn.py --repeats 7 --shapes 100000x200,20000x50

Both use the machine's cores (scikit-learn through OpenMP, capsight through rayon).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def ensure_deps():
    try:
        import numpy  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError:
        subprocess.check_call(
            [sys.executable, "-m", "pip", "install", "--quiet", "numpy", "scikit-learn"]
        )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shapes", default="100000x200,20000x50")
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--max-iter", type=int, default=300)
    parser.add_argument("--tol", type=float, default=1e-4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cluster-std", type=float, default=12.0)
    args = parser.parse_args()

    ensure_deps()
    import numpy as np
    import sklearn
    from sklearn.cluster import KMeans, kmeans_plusplus
    from sklearn.datasets import make_blobs

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.check_call(
        ["cargo", "build", "--release", "--bench", "kmeans", "--quiet"], cwd=root
    )
    rows_out = []
    with tempfile.TemporaryDirectory() as tmp:
        for shape in args.shapes.split(","):
            n, d = (int(v) for v in shape.split("x"))
            x, _ = make_blobs(
                n_samples=n,
                n_features=d,
                centers=args.k,
                cluster_std=args.cluster_std,
                center_box=(-10.0, 10.0),
                random_state=args.seed,
            )
            x = np.ascontiguousarray(x, dtype=np.float32)
            init, _ = kmeans_plusplus(x, args.k, random_state=args.seed)
            init = np.ascontiguousarray(init, dtype=np.float32)
            data_path = os.path.join(tmp, f"x-{n}x{d}.f32")
            init_path = os.path.join(tmp, f"init-{n}x{d}.f32")
            x.astype("<f4").tofile(data_path)
            init.astype("<f4").tofile(init_path)

            times = []
            model = None
            for _ in range(args.repeats):
                km = KMeans(
                    n_clusters=args.k,
                    init=init,
                    n_init=1,
                    max_iter=args.max_iter,
                    tol=args.tol,
                    algorithm="lloyd",
                )
                started = time.perf_counter()
                km.fit(x)
                times.append(time.perf_counter() - started)
                model = km
            # Inertia recomputed exactly in float64, as capsight reports it.
            centers = model.cluster_centers_.astype(np.float64)
            labels = model.labels_
            diff = x.astype(np.float64) - centers[labels]
            sk_inertia = float(np.einsum("ij,ij->", diff, diff))
            sk = {
                "time_s": statistics.median(times),
                "iterations": int(model.n_iter_),
                "inertia": sk_inertia,
            }

            out = subprocess.check_output(
                [
                    "cargo", "bench", "--quiet", "--bench", "kmeans", "--",
                    "--bench",
                    "--data", data_path, "--rows", str(n), "--cols", str(d),
                    "--init", init_path, "--k", str(args.k),
                    "--max-iter", str(args.max_iter), "--tol", str(args.tol),
                    "--repeats", str(args.repeats),
                ],
                cwd=root,
                text=True,
            )
            cs = json.loads(out.strip().splitlines()[-1])
            rows_out.append((shape, sk, cs))

    print(f"scikit-learn {sklearn.__version__}, k={args.k}, max_iter={args.max_iter}, "
          f"tol={args.tol}, median of {args.repeats} runs")
    print(f"{'shape':>12} | {'sklearn s':>9} {'iter':>4} {'inertia':>16} | "
          f"{'capsight s':>10} {'iter':>4} {'inertia':>16} | {'time ratio':>10} {'inertia diff':>12}")
    ok = True
    for shape, sk, cs in rows_out:
        ratio = cs["time_s"] / sk["time_s"]
        diff = (cs["inertia"] - sk["inertia"]) / sk["inertia"]
        ok &= abs(diff) <= 1e-3
        print(f"{shape:>12} | {sk['time_s']:9.3f} {sk['iterations']:4d} {sk['inertia']:16.1f} | "
              f"{cs['time_s']:10.3f} {cs['iterations']:4d} {cs['inertia']:16.1f} | "
              f"{ratio:10.2f} {diff * 100:11.4f}%")
    if not ok:
        print("inertia differs by more than 0.1%", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
