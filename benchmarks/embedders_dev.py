"""Routing with each embedder on the four dev sets: G at test and train time, and the
share of routing decisions equal to the default embedder's (MiniLM through torch).

Each embedder's dev sets are embedded once with `embed_dev.py --embedder NAME` into
`<scratch>/<set>_<NAME>.npz`; an embedder whose files are missing is skipped. The
protocol is `router_dev.py`'s (the library's seeded ensembles of 5, G per ensemble);
the routers are the shipped ones: the recommended router (`sj.route_auto`, and
`sj.fit_router(method="auto")` fit on the past for new queries), without answers and,
on the sets that carry them, with answers; Smoothie-Global beside them.

    for e in minilm minilm-int8 minilm-static; do
      for s in alpaca_eval_dev alpaca_eval_v1_dev zeroeval_gsm8k zeroeval_crux; do
        python benchmarks/embed_dev.py data/$s.jsonl.gz scratch/${s}_$e.npz --embedder $e
      done
    done
    python benchmarks/embedders_dev.py --json benchmarks/results/embedders_dev.json

mpnet costs 12 times MiniLM's time, so it is compared on a sample, every set's first 400
inputs (about an hour a set on 2 cores), MiniLM on the same rows:

    for s in alpaca_eval_dev alpaca_eval_v1_dev; do
      python benchmarks/embed_dev.py data/$s.jsonl.gz scratch/${s}_mpnet.npz \
        --embedder mpnet --rows 400
    done
    python benchmarks/embedders_dev.py --embedders minilm,mpnet --rows 400 \
      --json benchmarks/results/embedders_dev_mpnet.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from router_dev import SETS, gap, splits, summary

import smoothie_jax as sj

DEFAULT = "minilm"
EMBEDDERS = (DEFAULT, "minilm-onnx", "minilm-int8", "minilm-static", "mpnet")


def choices(data: dict, split: sj.eval.Split) -> dict[tuple[str, str], np.ndarray]:
    """(method, regime) -> the model chosen for each scored row of one ensemble."""
    ens = np.asarray(split.models)
    out: dict[tuple[str, str], np.ndarray] = {}
    codes_of = (lambda rows: data["answers"][rows][:, ens]) if "answers" in data else None
    # Test time: every model answered every input; the held-out rows are scored.
    fit = split.kept
    pos = np.searchsorted(fit, split.held_out)
    e = jnp.asarray(data["embeddings"][fit][:, ens])
    out["recommended", "test"] = np.asarray(sj.route_auto(e).choice)[pos]
    out["Smoothie-Global", "test"] = np.broadcast_to(
        np.asarray(sj.fit_global(e).route()), (len(pos),)
    )
    if codes_of is not None:
        codes = codes_of(fit)
        out["recommended (answers)", "test"] = np.asarray(sj.route_auto(e, answers=codes).choice)[
            pos
        ]
    # Train time: fit on the past, one model per new query from its neighbours.
    past = split.past
    e, x = jnp.asarray(data["embeddings"][past][:, ens]), jnp.asarray(data["inputs"][past])
    new = jnp.asarray(data["inputs"][split.new])
    out["recommended", "train"] = np.asarray(sj.fit_router(e, x, k=20, method="auto").route(new))
    out["Smoothie-Global", "train"] = np.broadcast_to(
        np.asarray(sj.fit_global(e).route()), (len(split.new),)
    )
    if codes_of is not None:
        router = sj.fit_router(e, x, k=20, method="auto", answers=codes_of(past))
        out["recommended (answers)", "train"] = np.asarray(router.route(new))
    return out


def measure(path: Path, seeds: tuple[int, ...], rows: int | None) -> tuple[dict, dict]:
    """G per ensemble, and every decision, per (method, regime), on one set and embedder
    (its first `rows` inputs only, where given)."""
    data = {k: v if k == "models" else v[:rows] for k, v in np.load(path).items()}
    scores = np.where(data["observed"], data["scores"], np.nan)
    g: dict = {}
    decisions: dict = {}
    for split in splits(scores, seeds):
        ens = np.asarray(split.models)
        for (method, regime), choice in choices(data, split).items():
            rows = split.held_out if regime == "test" else split.new
            g.setdefault((method, regime), []).append(gap(scores[rows][:, ens], choice))
            decisions.setdefault((method, regime), []).append(np.asarray(choice))
    return g, {k: np.concatenate(v) for k, v in decisions.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scratch", default="scratch", help="folder of the dev .npz")
    parser.add_argument("--seeds", default="0,1,2,3", help="protocol seeds (10 ensembles each)")
    parser.add_argument("--embedders", default=",".join(EMBEDDERS), help="comma-separated")
    parser.add_argument("--rows", type=int, default=None, help="every set's first N inputs")
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args()
    seeds = tuple(int(s) for s in args.seeds.split(","))
    start = time.perf_counter()
    results: dict = {}
    reference: dict = {}
    for embedder in args.embedders.split(","):
        for name, stem in SETS.items():
            path = Path(args.scratch) / f"{stem}_{embedder}.npz"
            if not path.is_file():
                continue
            n = len(np.load(path)["inputs"])
            wanted = args.rows or len(
                np.load(Path(args.scratch) / f"{stem}_{DEFAULT}.npz")["inputs"]
            )
            if n < wanted:  # a slow embedder's sample (embed_dev.py --rows)
                print(f"{path.name}: {n} inputs only (a sample): skipped; --rows {n} compares it")
                continue
            g, decisions = measure(path, seeds, args.rows)
            if embedder == DEFAULT:
                reference[name] = decisions
            for (method, regime), values in g.items():
                same = None
                if name in reference:
                    same = float(
                        np.mean(decisions[method, regime] == reference[name][method, regime])
                    )
                cell = {"g": summary(values), "same_decisions": same}
                results.setdefault(embedder, {}).setdefault(name, {}).setdefault(method, {})[
                    regime
                ] = cell
    lines = [
        f"{10 * len(seeds)} ensembles of 5 per set; G mean (ensembles below random) "
        f"[share of decisions equal to {DEFAULT}'s]"
    ]
    for embedder, sets in results.items():
        lines.append(f"\n{embedder}")
        for name, methods in sets.items():
            for method, regimes in methods.items():
                cells = []
                for regime in ("test", "train"):
                    c = regimes.get(regime)
                    if c is None:
                        continue
                    same = "" if c["same_decisions"] is None else f" [{c['same_decisions']:.3f}]"
                    cells.append(f"{regime} {c['g'][0]:5.2f} ({c['g'][2]:2d}){same}")
                lines.append(f"  {name:<6s} {method:<24s} " + "   ".join(cells))
    lines.append(f"\n({time.perf_counter() - start:.0f} s)")
    print("\n".join(lines))
    if args.json:
        report = {"seeds": list(seeds), "rows": args.rows, "default": DEFAULT, "results": results}
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
