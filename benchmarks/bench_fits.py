"""The public fits at a given n, on whatever device JAX has: first call and second call.

Times `sj.fit_global`, `sj.fit_local` (exact search, and the inverted file), the
train-time `sj.fit_router` with its routing of n fresh queries, and the recommended
`sj.route`, each twice: the first call includes compilation, the second is the
steady-state cost. Data follow Smoothie's model around topic centres (as bench_gpu.py).

    python benchmarks/bench_fits.py                    # n = 100,000, m = 10, dim = 768
    python benchmarks/bench_fits.py --n 5000 --dim 64  # quick, on a CPU
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp

import smoothie_jax as sj


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    out = jax.block_until_ready(fn())
    return out, time.perf_counter() - start


def make_data(key: jax.Array, n: int, m: int, dim: int, input_dim: int) -> tuple[jax.Array, ...]:
    """Inputs around 1,000 topics; each model's error scale depends on the topic."""
    k1, k2, k3, k4, k5, k6 = jax.random.split(key, 6)
    centres = jax.random.normal(k1, (1000, input_dim))
    topic = jax.random.randint(k2, (n,), 0, 1000)
    inputs = centres[topic] + 0.5 * jax.random.normal(k3, (n, input_dim))
    sigma = jax.random.uniform(k4, (1000, m), minval=0.3, maxval=1.5)[topic][:, :, None]
    truth = jax.random.normal(k5, (n, 1, dim))
    embeddings = truth + sigma * jax.random.normal(k6, (n, m, dim))
    lengths = jnp.full((n, m), 500.0)
    return embeddings, inputs, lengths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("-m", type=int, default=10)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--input-dim", type=int, default=768)
    parser.add_argument("-k", type=int, default=20)
    args = parser.parse_args()
    n, k = args.n, args.k
    device = jax.devices()[0]
    print(
        f"Fits at n={n:,}, m={args.m}, dim={args.dim}, input_dim={args.input_dim}, k={k}; "
        f"{device.device_kind} ({jax.default_backend()}), jax {jax.__version__}"
    )
    (embeddings, inputs, lengths), t_data = timed(
        lambda: make_data(jax.random.key(0), n, args.m, args.dim, args.input_dim)
    )
    print(f"data built in {t_data:.1f} s")
    queries = inputs + 0.1 * jax.random.normal(jax.random.key(1), inputs.shape)
    runs: dict[str, Callable[[], object]] = {
        "fit_global": lambda: sj.fit_global(embeddings).theta,
        "fit_local, exact": lambda: sj.fit_local(embeddings, inputs, k=k).theta,
        "fit_local, inverted file": lambda: (
            sj.fit_local(embeddings, inputs, k=k, search="approximate").theta
        ),
        "fit_router + route n queries": lambda: sj.fit_router(embeddings, inputs, k=k).route(
            queries
        ),
        "route (recommended)": lambda: sj.route(embeddings, inputs, lengths=lengths).choice,
    }
    print(f"{'call':<32s} {'first s':>9s} {'second s':>9s}")
    for name, fn in runs.items():
        try:
            _, first = timed(fn)
            _, second = timed(fn)
        except Exception as e:  # report and go on: one failure must not hide the rest
            print(f"{name:<32s} failed: {type(e).__name__}: {str(e)[:200]}", flush=True)
            continue
        print(f"{name:<32s} {first:>9.2f} {second:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
