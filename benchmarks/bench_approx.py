"""Approximate (IVF) against exact neighbour search for Smoothie-Local on CPU.

Data: input embeddings are a mixture of `--clusters` Gaussian clusters on the unit
sphere (prompt embeddings are strongly clustered), grouped in clusters / 20 topics:
a topic is a random unit vector, a cluster centre normalise(topic + g / sqrt(dim)), a
point normalise(centre + s_c g / sqrt(dim)) with g standard normal and s_c ~ U(0.5, 0.9)
per cluster; cluster weights are log-normal (sigma 1), so sizes vary ~10x. Model outputs:
y + sigma_{c, j} e with y, e standard normal (dim) and a per-cluster, per-model sigma ~
U(0.5, 1.5), so the best model changes from cluster to cluster and Local routing matters.

For each n the script reports, in one process:
- exact (n <= --exact-max): `sj.fit_local` (exact blocked kNN), wall time;
- approximate: D = `sj.sample_distances` (chunks), `build_index`, `index_self_knn`,
  `sj.neighbour_mean`, `sj.theta_from_distances`, wall time (index build and search
  also apart), for each `--nprobe`;
- recall@k of the approximate neighbours against exact search on `--sample` random
  queries (exact search for those queries only), and, where exact ran, the fraction of
  routes (argmax theta) equal to exact fit_local's;
- peak RSS of the process so far (ru_maxrss).

At n > --exact-max the embeddings are never held whole: D is computed chunk by chunk as
they are generated (D is what fit_local reduces them to), so memory is O(n (input_dim +
m^2 + k)), linear in n.

    nice -n 10 python benchmarks/bench_approx.py --ns 100000 --nprobe 4,8,16
    nice -n 10 python benchmarks/bench_approx.py --ns 1000000 --nprobe 8 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

import jax
import jax.numpy as jnp
import numpy as np

import smoothie_jax as sj
from smoothie_jax.scale import build_index, index_self_knn

CHUNK = 16384


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Data:
    """Clustered inputs and per-cluster model noise, generated chunk by chunk."""

    def __init__(self, n: int, m: int, dim: int, input_dim: int, clusters: int, seed: int):
        rng = np.random.default_rng(seed)
        self.n, self.m, self.dim = n, m, dim
        topics = rng.standard_normal((max(1, clusters // 20), input_dim)).astype(np.float32)
        topics /= np.linalg.norm(topics, axis=1, keepdims=True)
        topic = rng.integers(0, topics.shape[0], clusters)
        g = rng.standard_normal((clusters, input_dim)).astype(np.float32)
        centres = topics[topic] + g / np.sqrt(input_dim)
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        weights = rng.lognormal(0.0, 1.0, clusters)
        self.labels = rng.choice(clusters, size=n, p=weights / weights.sum()).astype(np.int32)
        spread = rng.uniform(0.5, 0.9, clusters).astype(np.float32)
        self.sigma = rng.uniform(0.5, 1.5, (clusters, m)).astype(np.float32)
        self.inputs = np.empty((n, input_dim), np.float32)
        for s in range(0, n, CHUNK):
            lab = self.labels[s : s + CHUNK]
            g = rng.standard_normal((lab.size, input_dim), dtype=np.float32)
            x = centres[lab] + spread[lab, None] * g / np.sqrt(input_dim)
            self.inputs[s : s + CHUNK] = x / np.linalg.norm(x, axis=1, keepdims=True)
        self.seed = seed

    def embedding_chunks(self):
        """(start, embeddings (chunk, m, dim)) in order; same values on every pass."""
        rng = np.random.default_rng(self.seed + 1)
        for s in range(0, self.n, CHUNK):
            lab = self.labels[s : s + CHUNK]
            y = rng.standard_normal((lab.size, 1, self.dim), dtype=np.float32)
            e = rng.standard_normal((lab.size, self.m, self.dim), dtype=np.float32)
            yield s, y + self.sigma[lab][:, :, None] * e


_distances = jax.jit(sj.sample_distances)


@jax.jit(static_argnames=("dim",))
def _theta_from(distances: jax.Array, indices: jax.Array, dim: int) -> jax.Array:
    """What fit_local does after its kNN: mean D over the neighbours, then theta."""
    means = sj.neighbour_mean(distances, indices)
    return sj.theta_from_distances(means, dim)


def run(n: int, args: argparse.Namespace) -> list[dict]:
    rows = []
    t0 = time.perf_counter()
    data = Data(n, args.m, args.dim, args.input_dim, args.clusters, args.seed)
    inputs = jax.device_put(data.inputs)
    exact_routes = None
    t_exact = None
    if n <= args.exact_max:
        embeddings = np.empty((n, args.m, args.dim), np.float32)
        for s, e in data.embedding_chunks():
            embeddings[s : s + len(e)] = e
        embeddings = jax.device_put(embeddings)
        print(f"n={n}: data {time.perf_counter() - t0:.1f} s; exact fit_local ...", flush=True)
        start = time.perf_counter()
        exact = sj.fit_local(embeddings, inputs, k=args.k).theta.block_until_ready()
        t_exact = time.perf_counter() - start
        exact_routes = np.asarray(jnp.argmax(exact, axis=-1))
        del embeddings, exact
        rows.append({"n": n, "method": "exact", "fit_s": t_exact, "peak_mib": _peak_mib()})
        print(f"  exact fit_local {t_exact:.1f} s", flush=True)

    # D is the same for every nprobe: computed once, timed once (the jitted calls only,
    # not the generation of the chunks), added to each fit.
    t_dist, parts = 0.0, []
    for _, e in data.embedding_chunks():
        e = jax.device_put(e)
        start = time.perf_counter()
        parts.append(_distances(e).block_until_ready())
        t_dist += time.perf_counter() - start
    distances = jnp.concatenate(parts)
    del parts

    rng = np.random.default_rng(args.seed + 2)
    sample = np.sort(rng.choice(n, size=min(args.sample, n), replace=False)).astype(np.int32)
    start = time.perf_counter()
    exact_sample = np.asarray(
        sj.knn(inputs[sample], inputs, args.k, query_ids=jnp.asarray(sample, jnp.int32))
    )
    t_exact_sample = time.perf_counter() - start

    start = time.perf_counter()
    index = build_index(inputs, n_cells=args.n_cells)
    jax.block_until_ready(index)
    t_build = time.perf_counter() - start
    print(
        f"  D {t_dist:.1f} s, exact kNN of {sample.size} queries {t_exact_sample:.1f} s, "
        f"index build {t_build:.1f} s ({index.n_cells} cells)",
        flush=True,
    )
    for nprobe in args.nprobe:
        start = time.perf_counter()
        found = index_self_knn(index, args.k, nprobe=nprobe).block_until_ready()
        t_search = time.perf_counter() - start
        start = time.perf_counter()
        theta = _theta_from(distances, found, dim=args.dim).block_until_ready()
        t_theta = time.perf_counter() - start
        recall = float(sj.knn_recall(found[sample], jnp.asarray(exact_sample)))
        row = {
            "n": n,
            "method": f"ivf nprobe={nprobe}",
            "n_cells": index.n_cells,
            "nprobe": nprobe,
            "fit_s": t_dist + t_build + t_search + t_theta,
            "distances_s": t_dist,
            "build_s": t_build,
            "search_s": t_search,
            "theta_s": t_theta,
            "recall": recall,
            "recall_queries": int(sample.size),
            "peak_mib": _peak_mib(),
        }
        if exact_routes is not None:
            routes = np.asarray(jnp.argmax(theta, axis=-1))
            row["route_agreement"] = float(np.mean(routes == exact_routes))
            row["speedup"] = t_exact / row["fit_s"]
        rows.append(row)
        print("  " + json.dumps(row), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ns", default="100000,1000000", help="comma-separated n")
    parser.add_argument("--nprobe", default="8", help="comma-separated nprobe values")
    parser.add_argument("--n-cells", type=int, default=None, help="default round(sqrt(n))")
    parser.add_argument(
        "--exact-max", type=int, default=100000, help="run exact fit_local up to this n"
    )
    parser.add_argument("--sample", type=int, default=2000, help="queries for recall")
    parser.add_argument("--clusters", type=int, default=2000)
    parser.add_argument("-m", type=int, default=5)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--input-dim", type=int, default=384)
    parser.add_argument("-k", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="write the rows here")
    args = parser.parse_args()
    args.nprobe = [int(x) for x in args.nprobe.split(",")]
    print(
        f"IVF vs exact kNN for Smoothie-Local: m={args.m}, dim={args.dim}, "
        f"input_dim={args.input_dim}, k={args.k}, {args.clusters} clusters; "
        f"{os.cpu_count()} CPUs, jax {jax.__version__} ({jax.default_backend()})",
        flush=True,
    )
    rows = []
    for n in [int(x) for x in args.ns.split(",")]:
        rows += run(n, args)
    print(
        f"\n{'n':>9s} {'method':>16s} {'fit s':>8s} {'search s':>9s} {'recall':>7s} "
        f"{'routes =':>9s} {'speedup':>8s} {'peak MiB':>9s}"
    )
    for r in rows:
        print(
            f"{r['n']:9d} {r['method']:>16s} {r['fit_s']:8.1f} "
            f"{r.get('search_s', float('nan')):9.1f} {r.get('recall', float('nan')):7.4f} "
            f"{r.get('route_agreement', float('nan')):9.4f} {r.get('speedup', float('nan')):8.1f} "
            f"{r['peak_mib']:9.0f}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
