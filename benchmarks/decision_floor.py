"""How far routing decisions move when the embeddings move a little: the floor under any
faster embedder's "share of decisions unchanged".

MiniLM's own vectors (outputs and inputs) are perturbed at random to a chosen mean cosine
with the originals (v + eps |v| g, g ~ N(0, I / dim), then unit length), and the dev sets
are routed again by `embedders_dev.py`'s routers on the same ensembles. A faster path
whose vectors sit at that cosine from MiniLM's cannot keep more of the decisions than
this, except by luck: the decisions that flip are near-ties, so G barely moves.

    python benchmarks/decision_floor.py --json benchmarks/results/decision_floor.json

About 15 minutes on 2 cores, after `embed_dev.py` on the four dev sets.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from embedders_dev import DEFAULT, choices
from router_dev import SETS, gap, splits

EPS = (0.01414, 0.0447, 0.1)  # mean cosines about 0.9999, 0.999 and 0.995


def perturb(x: np.ndarray, eps: float, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors at about cosine 1 / sqrt(1 + eps^2) from x, in random directions."""
    g = rng.standard_normal(x.shape).astype(np.float32) / np.sqrt(x.shape[-1])
    y = x + eps * np.linalg.norm(x, axis=-1, keepdims=True) * g
    return y / np.linalg.norm(y, axis=-1, keepdims=True)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Mean cosine of matching rows."""
    dots = np.sum(a * b, axis=-1)
    return float(np.mean(dots / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))))


def measure(data: dict, seeds: tuple[int, ...]) -> dict:
    """Per perturbation: its mean cosine, and per (method, regime) the share of decisions
    equal to the unperturbed ones and the mean change of G."""
    scores = np.where(data["observed"], data["scores"], np.nan)
    ensembles = list(splits(scores, seeds))
    base = [choices(data, split) for split in ensembles]
    out = {}
    for eps in EPS:
        rng = np.random.default_rng(0)
        moved = dict(data)
        moved["embeddings"] = perturb(data["embeddings"], eps, rng)
        moved["inputs"] = perturb(data["inputs"], eps, rng)
        same: dict = {}
        dg: dict = {}
        for split, before in zip(ensembles, base):
            ens = np.asarray(split.models)
            for (method, regime), choice in choices(moved, split).items():
                rows = split.held_out if regime == "test" else split.new
                s = scores[rows][:, ens]
                key = f"{method}, {regime}"
                same.setdefault(key, []).append(choice == before[method, regime])
                dg.setdefault(key, []).append(gap(s, choice) - gap(s, before[method, regime]))
        out[f"{eps:g}"] = {
            "cosine": cosine(moved["embeddings"], data["embeddings"]),
            "same_decisions": {k: float(np.mean(np.concatenate(v))) for k, v in same.items()},
            "g_change": {k: float(np.mean(v)) for k, v in dg.items()},
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scratch", default="scratch", help="folder of the dev .npz")
    parser.add_argument("--seeds", default="0,1,2,3", help="protocol seeds (10 ensembles each)")
    parser.add_argument("--sets", default=",".join(SETS), help="dev sets (comma-separated)")
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args()
    seeds = tuple(int(s) for s in args.seeds.split(","))
    start = time.perf_counter()
    results = {}
    for name in args.sets.split(","):
        data = dict(np.load(Path(args.scratch) / f"{SETS[name]}_{DEFAULT}.npz"))
        results[name] = measure(data, seeds)
        for row in results[name].values():
            cells = "  ".join(
                f"{k} {v:.3f} ({row['g_change'][k]:+.3f})" for k, v in row["same_decisions"].items()
            )
            print(f"{name:<6s} cosine {row['cosine']:.4f}: {cells}", flush=True)
    print(f"share of decisions unchanged (mean change of G); {time.perf_counter() - start:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
