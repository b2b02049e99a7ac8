"""Smoothie-Local at accelerator scale: neighbour search variants and end-to-end time.

One prepared script for one accelerator session (n = 1,048,576, m = 10, dim = 768,
k = 20 by default; a few minutes on one H200). Everything is built on the device in
chunks: a (1M, 10, 768) float32 array is 32 GB, and generating it in one call needs
about three times that.

1. Every search variant runs on the first --sample queries against all n points;
   time x n / sample estimates the full search. Effective TFLOP/s = 2 n^2 input_dim /
   estimated time. Recall is measured against the exact search on the same queries.
2. The fastest variant with recall >= --min-recall runs on all n queries, then the
   whole pipeline (D from the embeddings, kNN, smoothing, theta) runs end to end.
3. The same pipeline with the inverted file (`method="approximate"`), index build
   included, twice; its recall against the exact search on the sampled queries.

Variants (`sj.Search` specs): `exact` is `knn`'s default (float32 at HIGHEST precision,
running top-k over tiles); `tile=n` is one tile per block, the plain matmul + `lax.top_k`
over whole rows; the two-stage ones score every point cheaply (bf16, tf32,
`approx_max_k`), keep 16 per chunk of points (XLA's fast GPU top-k takes k <= 16), or the
best point of each of many chunks (`chunks=`: a max, no sort), and re-rank exactly.

    python benchmarks/bench_gpu.py                    # the full run, on the GPU
    python benchmarks/bench_gpu.py --n 4096 --sample 1024 --skip-end-to-end  # smoke test
"""

from __future__ import annotations

import argparse
import functools
import math
import time

import jax
import jax.numpy as jnp

import smoothie_jax as sj
from smoothie_jax import knn_recall, sample_distances, theta_from_distances

# Dense peak TFLOP/s by device kind (vendor figures, no sparsity): (fp32, tf32, bf16).
PEAKS = {
    "NVIDIA H200": (67.0, 494.0, 989.0),
    "NVIDIA H100 80GB HBM3": (67.0, 494.0, 989.0),
    "NVIDIA A100-SXM4-80GB": (19.5, 156.0, 312.0),
}


def variants(n: int, k: int) -> dict[str, sj.Search]:
    two = functools.partial(sj.Search, "two-stage")
    return {
        "exact (default tile 16384)": sj.Search(),
        "exact (tile 4096)": sj.Search(tile_size=4096),
        "exact, tile=n (top_k of whole rows)": sj.Search(tile_size=n),
        "f32, 16 per chunk + re-rank, 64 cand.": two(dtype="float32"),
        "tf32 + re-rank, 64 cand.": two(dtype="tf32"),
        "bf16 + re-rank, 64 cand.": two(dtype="bfloat16"),
        "bf16 + re-rank, 256 cand.": two(dtype="bfloat16", candidates=256),
        "approx_max_k 0.95 + re-rank": two(recall_target=0.95),
        "bf16 + approx_max_k 0.9 + re-rank": two(dtype="bfloat16", recall_target=0.9),
        "bf16, best of 2048 chunks + re-rank 64": two(dtype="bfloat16", chunks=2048),
        "bf16, best of 8192 chunks + re-rank 64": two(dtype="bfloat16", chunks=8192),
        "tf32, best of 4096 chunks + re-rank 64": two(dtype="tf32", chunks=4096),
    }


def timed(fn, *args):
    start = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    return out, time.perf_counter() - start


def make_inputs(key: jax.Array, n: int, input_dim: int, n_topics: int = 1000) -> jax.Array:
    """Inputs around random topic centres: neighbours mean something, ties are rare."""
    k1, k2, k3 = jax.random.split(key, 3)
    centres = jax.random.normal(k1, (n_topics, input_dim))
    topic = jax.random.randint(k2, (n,), 0, n_topics)
    return centres[topic] + 0.5 * jax.random.normal(k3, (n, input_dim))


def make_embeddings(key: jax.Array, n: int, m: int, dim: int, chunk: int) -> jax.Array:
    """(n, m, dim) from Smoothie's model, written chunk by chunk into one donated buffer."""
    sigma = jnp.linspace(0.5, 1.5, m)[None, :, None]

    @functools.partial(jax.jit, donate_argnums=0)
    def fill(buf: jax.Array, start: jax.Array) -> jax.Array:
        ky, ke = jax.random.split(jax.random.fold_in(key, start))
        y = jax.random.normal(ky, (chunk, 1, dim))
        part = y + sigma * jax.random.normal(ke, (chunk, m, dim))
        return jax.lax.dynamic_update_slice(buf, part, (start, 0, 0))

    buf = jnp.zeros((math.ceil(n / chunk) * chunk, m, dim), jnp.float32)
    for start in range(0, n, chunk):
        buf = fill(buf, jnp.int32(start))
    return buf[:n]


@functools.partial(jax.jit, static_argnames=("chunk",))
def chunked_distances(embeddings: jax.Array, chunk: int) -> jax.Array:
    """Per-sample D, chunk by chunk (bounds XLA's temporaries and autotuner scratch)."""
    n, m, dim = embeddings.shape
    pad = math.ceil(n / chunk) * chunk - n
    parts = jnp.pad(embeddings, ((0, pad), (0, 0), (0, 0))).reshape(-1, chunk, m, dim)
    return jax.lax.map(sample_distances, parts).reshape(-1, m, m)[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_048_576)
    parser.add_argument("-m", type=int, default=10)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--input-dim", type=int, default=768)
    parser.add_argument("-k", type=int, default=20)
    parser.add_argument("--sample", type=int, default=16384, help="queries per variant timing")
    parser.add_argument("--block-size", type=int, default=1024)
    parser.add_argument("--min-recall", type=float, default=0.99)
    parser.add_argument("--chunk", type=int, default=65536, help="rows per generation chunk")
    parser.add_argument("--skip-end-to-end", action="store_true")
    parser.add_argument("--skip-ivf", action="store_true", help="no inverted-file end to end")
    parser.add_argument("--ivf-nprobe", default="4,32", help="comma-separated nprobe values")
    parser.add_argument("--only", default=None, help="comma-separated variant numbers (1-based)")
    args = parser.parse_args()
    n, k, d = args.n, args.k, args.input_dim
    sample = min(args.sample, n)
    device = jax.devices()[0]
    peaks = PEAKS.get(device.device_kind)
    print(
        f"Smoothie-Local: n={n:,}, m={args.m}, dim={args.dim}, input_dim={d}, k={k}; "
        f"{device.device_kind} ({jax.default_backend()}), jax {jax.__version__}"
    )
    if peaks:
        print(f"Peak dense TFLOP/s: fp32 {peaks[0]}, tf32 {peaks[1]}, bf16 {peaks[2]}")

    key = jax.random.key(0)
    inputs, t_in = timed(lambda: make_inputs(key, n, d))
    print(f"\nInputs ({n:,} x {d}) built in {t_in:.1f} s")

    # 1. Search variants on `sample` queries against all n points.
    queries = inputs[:sample]
    exact_fn = jax.jit(lambda q, x: sj.knn(q, x, k, block_size=args.block_size))
    exact, _ = timed(exact_fn, queries, inputs)
    flop = 2.0 * n * n * d
    print(
        f"\nSearch of {sample:,} queries against {n:,} points, time scaled by n / sample "
        f"= {n / sample:.0f}:"
    )
    print(f"{'variant':<40s} {'compile+run s':>13s} {'run s':>8s} {'full n s':>9s} "
          f"{'eff TFLOP/s':>12s} {'recall':>8s}")  # fmt: skip
    chosen = list(variants(n, k).items())
    if args.only:
        chosen = [chosen[int(i) - 1] for i in args.only.split(",")]
    results = {}
    for name, options in chosen:
        fn = jax.jit(
            lambda q, x, o=options: sj.knn(q, x, k, block_size=args.block_size, search=o)
        )  # fmt: skip
        try:
            _, t_first = timed(fn, queries, inputs)
            found, t_run = timed(fn, queries, inputs)
        except Exception as e:  # an out-of-memory or unsupported variant: report, go on
            print(f"{name:<40s} failed: {type(e).__name__}: {str(e)[:200]}")
            continue
        full = t_run * n / sample
        recall = float(knn_recall(found, exact))
        results[name] = (options, full, recall)
        print(
            f"{name:<40s} {t_first:>13.2f} {t_run:>8.3f} {full:>9.1f} "
            f"{flop / full / 1e12:>12.3g} {recall:>8.4f}",
            flush=True,
        )
    good = {name: r for name, r in results.items() if r[2] >= args.min_recall}
    if not good:
        print("No variant reached the recall target.")
        return
    best = min(good, key=lambda name: good[name][1])
    options = good[best][0]
    print(f"\nFastest with recall >= {args.min_recall}: {best}")
    if args.skip_end_to_end:
        return

    # 2. The chosen search on all n queries, then the whole pipeline end to end.
    search = jax.jit(
        lambda x: sj.knn(x, x, k, include_self=True, block_size=args.block_size, search=options)
    )
    indices, t_search = timed(search, inputs)
    # Continuous data: each query is its own nearest point, so include_self changes nothing.
    recall = float(knn_recall(indices[:sample], exact))
    print(
        f"\nFull search, {n:,} x {n:,}: {t_search:.1f} s with compilation "
        f"({flop / t_search / 1e12:.1f} effective TFLOP/s); recall on "
        f"{sample:,} queries vs exact: {recall:.4f}"
    )
    del indices

    embeddings, t_emb = timed(
        lambda: make_embeddings(jax.random.key(1), n, args.m, args.dim, args.chunk)
    )
    print(f"Embeddings ({n:,} x {args.m} x {args.dim} float32) built in {t_emb:.1f} s")

    eps = jnp.asarray(1e-6, jnp.float32)

    def pipeline(embeddings: jax.Array, inputs: jax.Array) -> jax.Array:
        distances = chunked_distances(embeddings, args.chunk)
        idx = sj.knn(
            inputs, inputs, k, include_self=True, block_size=args.block_size, search=options
        )  # fmt: skip
        return theta_from_distances(sj.neighbour_mean(distances, idx), args.dim, eps=eps)

    pipeline = jax.jit(pipeline)
    _, t_total = timed(pipeline, embeddings, inputs)
    theta2, t_total2 = timed(pipeline, embeddings, inputs)
    print(
        f"End to end (D, kNN [{best}], smoothing, theta): {t_total:.1f} s first call, "
        f"{t_total2:.1f} s second; theta {theta2.shape}, finite: "
        f"{bool(jnp.all(jnp.isfinite(theta2)))}",
        flush=True,
    )
    if args.skip_ivf:
        return

    # 3. The inverted file (`method="approximate"`): built eagerly, so not inside the jit.
    smooth = jax.jit(
        lambda e, idx: theta_from_distances(
            sj.neighbour_mean(chunked_distances(e, args.chunk), idx), args.dim, eps=eps
        )
    )
    probes = [int(p) for p in args.ivf_nprobe.split(",")]
    for nprobe in [probes[0], *probes]:  # the first twice: with, then without compilation
        start = time.perf_counter()
        search = sj.Search("approximate", nprobe=nprobe)
        indices = sj.knn(inputs, inputs, k, include_self=True, search=search)
        theta3 = jax.block_until_ready(smooth(embeddings, indices))
        t_ivf = time.perf_counter() - start
        recall = float(knn_recall(indices[:sample], exact))
        print(
            f"End to end, inverted file, nprobe {nprobe} (index build, kNN, D, smoothing, "
            f"theta): {t_ivf:.1f} s; recall on {sample:,} queries vs exact {recall:.4f}; "
            f"finite: {bool(jnp.all(jnp.isfinite(theta3)))}",
            flush=True,
        )


if __name__ == "__main__":
    main()
