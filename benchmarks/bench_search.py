"""Exact and approximate neighbour search side by side: ours and faiss-cpu's, on a CPU.

The task is fit_local's: the k nearest neighbours of each of n points among the points
themselves. Every measurement runs in a fresh subprocess, so its time includes JAX's
compilation and its peak RSS (`ru_maxrss`, the loaded data included) is its own.
Times are wall times of building the index and searching every point.

Methods (`--methods`):
- exact: `sj.knn(x, x, k, include_self=True)`, the library's exact search;
- faiss-flat: faiss's exact search (`IndexFlatL2`);
- ours: `sj.knn(x, x, k, include_self=True, method="approximate")`, the library's
  defaults (backend "auto"), at each `--ours-nprobe` (the default 4 among them, so
  the two IVF-Flat implementations compare cell for cell); ours-jax and ours-faiss
  force the backend (default nprobe); these search
  the points as queries (`include_self`: the grouped search, one matrix product per
  cell);
- ours-q: `sj.knn(x, x, k, method="approximate")`, the points as any queries (each
  probes its own cells: how a router searches new inputs); ours-q-jax on the JAX index
  (only up to `--exact-max`: it is the slow one);
- ivf: faiss's `IndexIVFFlat` with faiss's own training defaults, one run per
  `--ivf` setting (nlist as a multiple of sqrt(n), nprobe);
- hnsw: faiss's `IndexHNSWFlat` (M = 32, efConstruction = 40, efSearch = 64).

At n > `--exact-max` the two exact searches search a sample of `--sample` queries and
their time is extrapolated to n queries (marked `*`; ours: the fixed cost of the first
call, compilation and the copy to the device, plus n / sample times a second call's).
Recall@k of every method is measured on that sample of queries against the library's
exact search.

Data (`--data`): "clustered", a mixture of 2,000 Gaussian clusters on the unit sphere
grouped in 100 topics (a topic is a random unit vector, a cluster centre
normalise(topic + g / sqrt(dim)), a point normalise(centre + s g / sqrt(dim)) with g
standard normal and s ~ U(0.5, 0.9) per cluster; log-normal cluster weights, so sizes
vary about 10x: prompt embeddings are clustered so); "gaussian", standard normal points
(no structure: the hard case for every index).

    nice -n 10 python benchmarks/bench_search.py            # 100,000 and 1,000,000
    python benchmarks/bench_search.py --quick                # n = 20,000: two minutes
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CHUNK = 65536
DEFAULT_IVF = "1:2,1:4,1:8"  # faiss IVF-Flat: nlist in units of sqrt(n), nprobe
METHODS = ("exact", "faiss-flat", "ours", "ours-jax", "ours-q", "ours-q-jax", "ivf", "hnsw")
OURS = {  # method: (backend, include_self)
    "ours": ("auto", True),
    "ours-jax": ("jax", True),
    "ours-faiss": ("faiss", True),
    "ours-q": ("auto", False),
    "ours-q-jax": ("jax", False),
}


def clustered(n: int, dim: int, seed: int, clusters: int = 2000) -> np.ndarray:
    """The clustered inputs (see the module docstring), float32, chunk by chunk."""
    rng = np.random.default_rng(seed)
    topics = rng.standard_normal((max(1, clusters // 20), dim)).astype(np.float32)
    topics /= np.linalg.norm(topics, axis=1, keepdims=True)
    g = rng.standard_normal((clusters, dim)).astype(np.float32)
    centres = topics[rng.integers(0, topics.shape[0], clusters)] + g / np.sqrt(dim)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    weights = rng.lognormal(0.0, 1.0, clusters)
    labels = rng.choice(clusters, size=n, p=weights / weights.sum())
    spread = rng.uniform(0.5, 0.9, clusters).astype(np.float32)
    x = np.empty((n, dim), np.float32)
    for s in range(0, n, CHUNK):
        lab = labels[s : s + CHUNK]
        g = rng.standard_normal((lab.size, dim), dtype=np.float32)
        p = centres[lab] + spread[lab, None] * g / np.sqrt(dim)
        x[s : s + CHUNK] = p / np.linalg.norm(p, axis=1, keepdims=True)
    return x


def gaussian(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.empty((n, dim), np.float32)
    for s in range(0, n, CHUNK):
        x[s : s + CHUNK] = rng.standard_normal((min(CHUNK, n - s), dim), dtype=np.float32)
    return x


# ----------------------------------------------------------------------------------------
# One measurement (the worker: a fresh process).


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _ivf_setting(spec: str, n: int) -> tuple[int, int]:
    cells, nprobe = spec.split(":")
    return max(1, round(float(cells) * math.sqrt(n))), int(nprobe)


def work(cfg: dict) -> dict:
    """Runs one method on one data set; returns its row."""
    x = np.load(cfg["data"])
    sample = np.load(cfg["sample"])
    n, dim = x.shape
    k, method, full = cfg["k"], cfg["method"], cfg["full"]
    row: dict = {"method": method, "extrapolated": False}
    if method == "exact" or method in OURS:
        import jax
        import jax.numpy as jnp

        import smoothie_jax as sj

        if importlib.util.find_spec("faiss"):
            import faiss  # noqa: F401  (imported before the clock, as for faiss's own runs)

    start = time.perf_counter()
    if method == "exact":
        if full:
            found = np.asarray(sj.knn(x, x, k, include_self=True))
            row["search_s"] = time.perf_counter() - start
            sample_found = found[sample]
        else:
            # The first call pays the fixed costs once (compilation, moving x to the
            # device), a second one the per-query cost; only the latter scales with n.
            ids = jnp.asarray(sample, jnp.int32)
            sample_found = np.asarray(sj.knn(x[sample], x, k, query_ids=ids))
            first = time.perf_counter() - start
            again = time.perf_counter()
            np.asarray(sj.knn(x[sample], x, k, query_ids=ids))
            per_sample = time.perf_counter() - again
            row["search_s"] = first - per_sample + per_sample * n / sample.size
            row["extrapolated"] = True
        np.save(cfg["truth"], sample_found)
        row["time_s"] = row["search_s"]
    elif method in OURS:
        backend, include_self = OURS[method]
        default = sj.Search("approximate").nprobe
        search = sj.Search("approximate", nprobe=cfg["nprobe"] or default, backend=backend)
        row["default_nprobe"] = default
        row["backend"] = search.engine(jax.device_put(x[:1]))
        row["n_cells"] = round(math.sqrt(n))  # the library's default
        row["nprobe"] = search.nprobe
        found = np.asarray(sj.knn(x, x, k, include_self=include_self, search=search))
        row["time_s"] = time.perf_counter() - start
        sample_found = found[sample]
    else:
        import faiss

        row["threads"] = faiss.omp_get_max_threads()
        if method == "faiss-flat":
            index = faiss.IndexFlatL2(dim)
            index.add(x)
            queries = x if full else x[sample]
            _, found = index.search(queries, k)
            row["time_s"] = (time.perf_counter() - start) * (1 if full else n / sample.size)
            row["extrapolated"] = not full
            sample_found = found[sample] if full else found
        elif method == "hnsw":
            index = faiss.IndexHNSWFlat(dim, 32)
            index.hnsw.efConstruction = 40
            index.add(x)
            row["build_s"] = time.perf_counter() - start
            index.hnsw.efSearch = 64
            _, found = index.search(x, k)
            row["time_s"] = time.perf_counter() - start
            row["settings"] = "M 32, efSearch 64"
            sample_found = found[sample]
        else:  # ivf
            nlist, nprobe = _ivf_setting(cfg["ivf"], n)
            index = faiss.IndexIVFFlat(faiss.IndexFlatL2(dim), dim, nlist)
            index.train(x)
            index.add(x)
            row["build_s"] = time.perf_counter() - start
            index.nprobe = nprobe
            _, found = index.search(x, k)
            row["time_s"] = time.perf_counter() - start
            row["n_cells"], row["nprobe"] = nlist, nprobe
            sample_found = found[sample]
    truth = np.load(cfg["truth"])
    hits = (truth[:, :, None] == np.asarray(sample_found)[:, None, :]).any(-1)
    row["recall"] = float(hits.mean())
    row["peak_mib"] = _peak_mib()
    return row


# ----------------------------------------------------------------------------------------
# The driver: data sets on disk, one subprocess per measurement, table, JSON, plot.


def _runs(args: argparse.Namespace) -> list[tuple[str, str | None]]:
    runs = []
    for method in args.methods:
        if method == "ivf":
            runs += [("ivf", spec) for spec in args.ivf]
        elif method == "ours":
            runs += [("ours", nprobe) for nprobe in args.ours_nprobe]
        else:
            runs.append((method, None))
    return runs


def _label(row: dict) -> str:
    m = row["method"]
    if m == "ivf":
        return f"faiss IVF-Flat {row['n_cells']}/{row['nprobe']}"
    if m == "hnsw":
        return "faiss HNSW (M 32, ef 64)"
    if m in OURS:
        backend, include_self = OURS[m]
        name = "ours" + ("" if include_self else ", any queries")
        default = row["nprobe"] == row["default_nprobe"]
        name += f", backend={backend}" if backend != "auto" else ", defaults" if default else ""
        return f"{name} ({row['backend']} {row['n_cells']}/{row['nprobe']})"
    return {"exact": "exact (ours)", "faiss-flat": "faiss flat (exact)"}[m]


def measure(args: argparse.Namespace) -> list[dict]:
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in args.ns:
        for dim in args.dims:
            for data in args.data:
                stem = cache / f"{data}-{n}-{dim}"
                paths = {s: f"{stem}-{s}.npy" for s in ("x", "sample", "truth")}
                if not os.path.exists(paths["x"]):
                    make = clustered if data == "clustered" else gaussian
                    np.save(paths["x"], make(n, dim, args.seed))
                rng = np.random.default_rng(args.seed + 1)
                sample = np.sort(rng.choice(n, min(args.sample, n), replace=False))
                np.save(paths["sample"], sample.astype(np.int32))
                if os.path.exists(paths["truth"]):
                    os.remove(paths["truth"])  # the exact run of this session writes it
                for method, setting in _runs(args):
                    if method == "ours-q-jax" and n > args.exact_max:
                        continue
                    cfg = {
                        "data": paths["x"],
                        "sample": paths["sample"],
                        "truth": paths["truth"],
                        "k": args.k,
                        "method": method,
                        "ivf": setting if method == "ivf" else None,
                        "nprobe": setting if method == "ours" else None,
                        "full": n <= args.exact_max,
                    }
                    row = _run_one(cfg, args.timeout)
                    row.update({"n": n, "dim": dim, "data": data, "k": args.k})
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                    if args.json:  # after every row: a long run leaves what it measured
                        _write_json(args, rows)
    return rows


def _run_one(cfg: dict, timeout: float) -> dict:
    command = [sys.executable, __file__, "--worker", json.dumps(cfg)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**_which(cfg), "error": f"over {timeout:.0f} s"}
    lines = [x for x in done.stdout.splitlines() if x.startswith("ROW ")]
    if done.returncode != 0 or not lines:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        return {**_which(cfg), "error": tail[0][:200]}
    return json.loads(lines[-1][4:])


def _which(cfg: dict) -> dict:
    return {"method": cfg["method"], "ivf": cfg["ivf"], "nprobe": cfg["nprobe"]}


def _write_json(args: argparse.Namespace, rows: list[dict]) -> None:
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "k": args.k,
        "sample": args.sample,
        "exact_max": args.exact_max,
        "command": " ".join(sys.argv),
    }
    Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))


def table(rows: list[dict]) -> str:
    """The rows as a Markdown table, with each row's speed-up over the exact search."""
    exact = {
        (r["n"], r["dim"], r["data"]): r["time_s"]
        for r in rows
        if r["method"] == "exact" and "time_s" in r
    }
    lines = [
        "| n | dim | data | method | build + search (s) | recall@k | vs exact | peak RSS (MiB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        where = f"| {r['n']:,} | {r['dim']} | {r['data']} |"
        if "error" in r:
            setting = r.get("ivf") or r.get("nprobe") or ""
            lines.append(f"{where} {r['method']} {setting} | {r['error']} | | | |")
            continue
        star = "*" if r["extrapolated"] else ""
        ref = exact.get((r["n"], r["dim"], r["data"]))
        speed = f"{ref / r['time_s']:.1f}x" if ref else "-"
        lines.append(
            f"{where} {_label(r)} | {r['time_s']:.1f}{star} | {r['recall']:.3f} | {speed} "
            f"| {r['peak_mib']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="n = 20,000, dim 128 (minutes)")
    parser.add_argument("--ns", default="100000,1000000")
    parser.add_argument("--dims", default="128,384")
    parser.add_argument("--data", default="clustered,gaussian")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--ivf", default=DEFAULT_IVF, help="nlist/sqrt(n):nprobe, comma-separated")
    parser.add_argument("--ours-nprobe", default="2,4,8", help="nprobe of the ours rows")
    parser.add_argument("-k", type=int, default=20)
    parser.add_argument("--sample", type=int, default=1000, help="queries for recall")
    parser.add_argument("--exact-max", type=int, default=100000, help="full exact runs up to n")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per measurement")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=os.path.join("/tmp", "smoothie_bench_search"))
    parser.add_argument("--json", default=str(HERE / "results" / "search.json"))
    parser.add_argument("--plot", default=str(HERE / "results" / "search.png"))
    args = parser.parse_args()
    if args.worker is not None:
        print("ROW " + json.dumps(work(json.loads(args.worker))), flush=True)
        return
    if args.quick:
        args.ns, args.dims = "20000", "128"
        if args.json.endswith("search.json"):
            args.json = args.json.replace("search.json", "search_quick.json")
            args.plot = args.plot.replace("search.png", "search_quick.png")
    args.ns = [int(v) for v in args.ns.split(",")]
    args.dims = [int(v) for v in args.dims.split(",")]
    args.data = args.data.split(",")
    args.methods = args.methods.split(",")
    args.ivf = args.ivf.split(",")
    args.ours_nprobe = [int(v) for v in args.ours_nprobe.split(",")]
    unknown = set(args.methods) - set(METHODS) | set(args.data) - {"clustered", "gaussian"}
    if unknown:
        parser.error(f"unknown methods or data: {sorted(unknown)}")
    if args.methods[0] != "exact":
        parser.error("the exact search must run first: the others' recall is against it")
    print(
        f"neighbour search, k = {args.k}: {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}; one subprocess per row",
        flush=True,
    )
    rows = measure(args)
    print("\n" + table(rows))
    if any(r.get("extrapolated") for r in rows):
        print("\n* searched the recall sample only, the time extrapolated to all n queries")
    if args.json:
        _write_json(args, rows)
        print(f"wrote {args.json}")
    if args.plot:
        sys.path.insert(0, str(HERE))
        from plot_search import plot

        plot(rows, args.plot)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
