"""Smoothie-Local: smoothie_jax against the NumPy per-sample loop of the reference code.

The baseline is tests/reference.py's oracle in the reference implementation's shape:
neighbours from a vectorised brute-force search (the reference code used sklearn's
brute-force NearestNeighbors), then a Python loop over samples and, per sample, over
every model i and pair {j < k} without i, each squared distance averaged over the
neighbours' embeddings. smoothie_jax replaces that with one jitted pipeline (blocked
matmul kNN, per-sample (m, m) distance matrices averaged over neighbours, closed form).

    python benchmarks/bench_local.py                       # full run (minutes)
    python benchmarks/bench_local.py --numpy-samples 200   # quick: NumPy loop extrapolated
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from reference import reference_theta  # noqa: E402

import smoothie_jax as sj  # noqa: E402


def numpy_knn(inputs: np.ndarray, k: int, *, block: int = 1024) -> np.ndarray:
    """Brute-force kNN in float64, self first: a Gram-matrix distance and a partial sort
    per block of queries, as sklearn's brute-force search does."""
    x = inputs.astype(np.float64)
    sq = np.sum(x * x, axis=1)
    out = np.empty((len(x), k), np.int64)
    for start in range(0, len(x), block):
        stop = min(start + block, len(x))
        dist = sq[start:stop, None] + sq[None, :] - 2 * x[start:stop] @ x.T
        dist[np.arange(stop - start), np.arange(start, stop)] = -np.inf  # self first
        part = np.argpartition(dist, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(dist, part, axis=1), axis=1, kind="stable")
        out[start:stop] = np.take_along_axis(part, order, axis=1)
    return out


def numpy_local_loop(embeddings: np.ndarray, neighbours: np.ndarray, n_samples: int) -> np.ndarray:
    """The reference's per-sample, per-triplet loop over the first n_samples samples."""
    return np.stack([reference_theta(embeddings[neighbours[s]]) for s in range(n_samples)])


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=5000, help="samples (default 5000)")
    parser.add_argument("-m", type=int, default=10, help="models (default 10)")
    parser.add_argument("--dim", type=int, default=768, help="output embedding dim (768)")
    parser.add_argument("--input-dim", type=int, default=768, help="input embedding dim (768)")
    parser.add_argument("-k", type=int, default=20, help="neighbours (default 20)")
    parser.add_argument("--repeats", type=int, default=5, help="steady-state calls (default 5)")
    parser.add_argument(
        "--numpy-samples",
        type=int,
        default=None,
        help="run the NumPy loop on the first N samples only and extrapolate linearly to n "
        "(default: all n samples, no extrapolation)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n_loop = args.n if args.numpy_samples is None else min(args.numpy_samples, args.n)
    extrapolated = n_loop < args.n

    rng = np.random.default_rng(args.seed)
    y = rng.normal(size=(args.n, 1, args.dim))
    sigma = rng.uniform(0.5, 1.5, size=(1, args.m, 1))
    embeddings = (y + sigma * rng.normal(size=(args.n, args.m, args.dim))).astype(np.float32)
    inputs = rng.normal(size=(args.n, args.input_dim)).astype(np.float32)
    print(
        f"Smoothie-Local: n={args.n}, m={args.m}, dim={args.dim}, "
        f"input_dim={args.input_dim}, k={args.k}; {jax.devices()[0].device_kind} "
        f"({jax.default_backend()}), numpy {np.__version__}, jax {jax.__version__}"
    )

    # NumPy baseline.
    neighbours, t_knn = timed(lambda: numpy_knn(inputs, args.k))
    theta_np, t_loop = timed(lambda: numpy_local_loop(embeddings, neighbours, n_loop))
    t_loop_full = t_loop * args.n / n_loop

    # smoothie_jax: device arrays first, so transfers are not timed.
    emb_dev, inp_dev = jax.device_put(embeddings), jax.device_put(inputs)
    fitted, t_first = timed(
        lambda: sj.fit_local(emb_dev, inp_dev, k=args.k).theta.block_until_ready()
    )
    steady = [
        timed(lambda: sj.fit_local(emb_dev, inp_dev, k=args.k).theta.block_until_ready())[1]
        for _ in range(args.repeats)
    ]
    t_steady = statistics.median(steady)

    agree = np.max(np.abs(np.asarray(fitted[:n_loop]) / theta_np - 1))
    t_numpy = t_knn + t_loop_full
    mark = "*" if extrapolated else ""
    rows = [
        ("NumPy kNN (vectorised, float64)", t_knn, ""),
        (f"NumPy per-sample triplet loop{mark}", t_loop_full, ""),
        (f"NumPy total{mark}", t_numpy, "1.0x"),
        ("sj.fit_local first call (with compile)", t_first, f"{t_numpy / t_first:.1f}x"),
        (f"sj.fit_local steady (median of {args.repeats})", t_steady, f"{t_numpy / t_steady:.1f}x"),
    ]
    print(f"\n{'stage':<44s} {'seconds':>10s} {'speed-up':>10s}")
    for name, seconds, ratio in rows:
        print(f"{name:<44s} {seconds:10.3f} {ratio:>10s}")
    if extrapolated:
        print(
            f"* extrapolated linearly from {n_loop} of {args.n} samples ({t_loop:.3f} s measured)"
        )
    print(
        f"\nmax relative difference of theta, smoothie_jax vs NumPy "
        f"(on {n_loop} samples): {agree:.2e}"
    )


if __name__ == "__main__":
    main()
