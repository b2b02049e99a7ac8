"""Smoothie-Local scaling on CPU: wall time and peak memory (RSS) against n.

Each n runs in a fresh Python, so its peak RSS (`ru_maxrss`) is its own. Data are made
in chunks straight into float32 arrays (no float64 intermediate of size n) and moved to
the device with `jax.device_put`. The run is `sj.fit_local` once (compilation included,
about a second), exact kNN search.

Peak memory should grow linearly in n. The script prints, beside each measurement, the
bound from the issue's formula O(n (m dim + k)), with its constants spelled out:

    bound = baseline + 64 MiB                            allocator and XLA constants
            + 8 n (m dim + input_dim) bytes               host and device float32 copies
                                                          (both live only while copying)
            + 4 n ((k + 1) m^2 + 3 k) bytes               D, the neighbours' D, ids
            + 16 block (tile + k n / tile) bytes          score blocks, per-tile top-k

    python benchmarks/bench_scaling.py                       # n = 1k, 10k, 100k, 300k
    python benchmarks/bench_scaling.py --ns 1000,10000       # quick
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

from smoothie_jax._knn import DEFAULT_BLOCK_SIZE as BLOCK
from smoothie_jax._knn import DEFAULT_TILE_SIZE as TILE

RESULTS = Path(__file__).resolve().parent / "results"


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(n: int, m: int, dim: int, input_dim: int, k: int, seed: int) -> None:
    """One run at one n; prints a JSON line."""
    import resource

    import jax
    import numpy as np

    import smoothie_jax as sj

    sj.fit_local(np.ones((8, 3, 4), np.float32), np.ones((8, 2), np.float32), k=2)  # warm up
    baseline = _rss_mib()

    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    embeddings = np.empty((n, m, dim), np.float32)
    inputs = np.empty((n, input_dim), np.float32)
    sigma = rng.uniform(0.5, 1.5, size=(1, m, 1)).astype(np.float32)
    chunk = 16384
    for s in range(0, n, chunk):
        e = min(s + chunk, n)
        y = rng.standard_normal((e - s, 1, dim), dtype=np.float32)
        embeddings[s:e] = y + sigma * rng.standard_normal((e - s, m, dim), dtype=np.float32)
        inputs[s:e] = rng.standard_normal((e - s, input_dim), dtype=np.float32)
    # jax.device_put copies once; jnp.asarray (what fit_local does with NumPy input)
    # briefly holds two device copies. The host arrays are then dropped.
    embeddings, inputs = jax.device_put(embeddings), jax.device_put(inputs)
    t_data = time.perf_counter() - start

    start = time.perf_counter()
    theta = sj.fit_local(embeddings, inputs, k=k).theta.block_until_ready()
    t_fit = time.perf_counter() - start
    assert theta.shape == (n, m) and bool(jax.numpy.all(jax.numpy.isfinite(theta)))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(
        json.dumps(
            {"n": n, "data_s": t_data, "fit_s": t_fit, "peak_mib": peak, "base_mib": baseline}
        )
    )


def bound_mib(n: int, m: int, dim: int, input_dim: int, k: int, baseline: float) -> float:
    """The formula of the module docstring."""
    n_bytes = (
        8 * n * (m * dim + input_dim)
        + 4 * n * ((k + 1) * m * m + 3 * k)
        + 16 * BLOCK * (TILE + k * math.ceil(n / TILE))
    )
    return baseline + 64 + n_bytes / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ns", default="1000,10000,100000,300000", help="comma-separated n")
    parser.add_argument("-m", type=int, default=5)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--input-dim", type=int, default=384)
    parser.add_argument("-k", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(RESULTS / "scaling"), help="path stem for .json/.png")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.m, args.dim, args.input_dim, args.k, args.seed)
        return

    import jax

    ns = [int(x) for x in args.ns.split(",")]
    print(
        f"Smoothie-Local scaling: m={args.m}, dim={args.dim}, input_dim={args.input_dim}, "
        f"k={args.k}; {os.cpu_count()} CPUs, jax {jax.__version__} ({jax.default_backend()})"
    )
    print(
        f"\n{'n':>8s} {'data s':>8s} {'fit s':>9s} {'base MiB':>9s} {'peak RSS MiB':>13s} "
        f"{'bound MiB':>10s} {'(peak-base)/n KiB':>18s}"
    )
    rows = []
    for n in ns:
        cmd = [sys.executable, __file__, "--child", str(n), "-m", str(args.m), "--dim",
               str(args.dim), "--input-dim", str(args.input_dim), "-k", str(args.k),
               "--seed", str(args.seed)]  # fmt: skip
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        row = json.loads(out.strip().splitlines()[-1])
        row["bound_mib"] = bound_mib(n, args.m, args.dim, args.input_dim, args.k, row["base_mib"])
        rows.append(row)
        per = (row["peak_mib"] - row["base_mib"]) * 1024 / n
        print(
            f"{n:>8d} {row['data_s']:>8.1f} {row['fit_s']:>9.1f} {row['base_mib']:>9.0f} "
            f"{row['peak_mib']:>13.0f} "
            f"{row['bound_mib']:>10.0f} {per:>18.2f}",
            flush=True,
        )
        if row["peak_mib"] > row["bound_mib"]:
            print(f"  peak RSS above the bound at n={n}!")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {k: getattr(args, k) for k in ("m", "dim", "input_dim", "k")}
    out.with_suffix(".json").write_text(json.dumps({"config": meta, "rows": rows}, indent=1))
    plot(rows, meta, out.with_suffix(".png"))
    print(f"\nWrote {out.with_suffix('.json')} and {out.with_suffix('.png')}")


def plot(rows: list[dict], meta: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [r["n"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.loglog(ns, [r["fit_s"] for r in rows], "o-", label="sj.fit_local (measured)")
    t0 = rows[-1]["fit_s"] / ns[-1] ** 2
    left.loglog(ns, [t0 * n**2 for n in ns], "k:", label="∝ n² (exact search)")
    left.set(xlabel="n samples", ylabel="wall time (s)", title="time")
    left.legend()
    right.plot(ns, [r["peak_mib"] for r in rows], "o-", label="peak RSS (measured)")
    right.plot(ns, [r["bound_mib"] for r in rows], "k--", label="bound from formula")
    right.set(xlabel="n samples", ylabel="MiB", title="peak memory (linear in n)")
    right.legend()
    fig.suptitle(
        f"Smoothie-Local on CPU, m={meta['m']}, dim={meta['dim']}, "
        f"input_dim={meta['input_dim']}, k={meta['k']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
