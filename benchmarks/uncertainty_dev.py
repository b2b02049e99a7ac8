"""How honest is the posterior on real data, and what do a few (chosen) labels buy?

On the three dev sets (MiniLM .npz files from `benchmarks/embed_dev.py`), protocol seeds
0-3 (40 ensembles of 5 per set):

1. Calibration of the label-free Global posterior (`sj.posterior.fit_posterior`): does its 90% set
   (the fewest models whose prob_best sums to 0.9) hold the truly best model (the best
   held-out mean)? Coverage, set size and the truly best model's prob_best for each
   misfit scale of `--scales`; then leave-one-set-out: each fold picks the scale whose
   coverage on the other two sets is closest to 0.9 and is scored on its own; and a
   reliability table per set (predicted prob_best in bins against how often that model
   was the best) at the shipped scale.
2. The label-budget curve (`sj.eval.label_budget`) at n in {0, 5, 10, 20, 50}: the
   label model with random labels, with labels chosen by `sj.posterior.suggest_labels`,
   Best-on-Val and labelled kNN, as G (gap closure) per set.

    python benchmarks/uncertainty_dev.py --json benchmarks/results/uncertainty_dev.json

About 10 minutes on 2 cores. `notebooks/uncertainty.ipynb` draws the JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np

import smoothie_jax as sj
from smoothie_jax.eval import credible_set
from smoothie_jax.posterior._additive import MISFIT_SCALE

SETS = {"dev": "alpaca_eval_dev", "v1": "alpaca_eval_v1_dev", "gsm8k": "zeroeval_gsm8k"}
SCALES = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)
BINS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0001)
SEEDS = (0, 1, 2, 3)


def calibration(data: dict, key: jax.Array) -> dict:
    """Per misfit scale: per ensemble (covered, set size, prob_best of the truly best) and
    the (prob_best, was best) pairs of every model for the reliability table."""
    scores = np.where(data["observed"], data["scores"], np.nan)
    out: dict = {scale: {"covered": [], "size": [], "p_best": [], "pairs": []} for scale in SCALES}
    for seed in SEEDS:
        for split in sj.eval.draw_splits(scores, ensembles=10, size=5, seed=seed, n_labelled=50):
            ens = np.asarray(split.models)
            x = jax.numpy.asarray(data["embeddings"][split.kept][:, ens])
            held = scores[split.held_out][:, ens].mean(axis=0)
            best = held == held.max()  # a tie for best counts for each
            key, sub = jax.random.split(key)
            for scale in SCALES:
                post = sj.posterior.fit_posterior(x, key=sub, num_samples=1000, misfit_scale=scale)
                prob = np.asarray(post.prob_best)
                in_set = np.asarray(credible_set(post.prob_best, 0.9))
                row = out[scale]
                row["covered"].append(bool(in_set[best].any()))
                row["size"].append(int(in_set.sum()))
                row["p_best"].append(float(prob[best].max()))
                row["pairs"] += list(zip(prob.tolist(), best.tolist()))
    return out


def summary(row: dict) -> dict:
    return {
        "coverage": float(np.mean(row["covered"])),
        "set_size": float(np.mean(row["size"])),
        "p_best_mean": float(np.mean(row["p_best"])),
        "p_best_min": float(np.min(row["p_best"])),
    }


def reliability(pairs: list) -> list[dict]:
    prob, best = np.array([p for p, _ in pairs]), np.array([b for _, b in pairs])
    rows = []
    for low, high in zip(BINS[:-1], BINS[1:]):
        inside = (prob >= low) & (prob < high)
        if inside.any():
            rows.append(
                {
                    "bin": [low, min(high, 1.0)],
                    "n": int(inside.sum()),
                    "predicted": float(prob[inside].mean()),
                    "observed": float(best[inside].mean()),
                }
            )
    return rows


def leave_one_set_out(cal: dict) -> dict:
    """Each fold: the scale whose mean coverage on the other two sets is nearest 0.9
    (ties: the smaller mean set), scored on the held-out set."""
    folds = {}
    for held in cal:
        others = [n for n in cal if n != held]

        def key(scale: float, others: list = others) -> tuple[float, float]:
            cover = np.mean([summary(cal[n][scale])["coverage"] for n in others])
            size = np.mean([summary(cal[n][scale])["set_size"] for n in others])
            return (round(abs(cover - 0.9), 6), size)

        chosen = min(SCALES, key=key)
        folds[held] = {"scale": chosen, **summary(cal[held][chosen])}
    return folds


def budget(data: dict, key: jax.Array) -> dict:
    """G of each label-budget row per budget, over the 40 ensembles."""
    scores = np.where(data["observed"], data["scores"], np.nan)
    answers = data.get("answers")
    curves: dict = {}
    for seed in SEEDS:
        result = sj.eval.evaluate(
            data["embeddings"], data["inputs"], scores, data["lengths"],
            [str(m) for m in data["models"]], seed=seed, ks=(20,), n_labelled=50,
        )  # fmt: skip
        curve = sj.eval.label_budget(
            result, data["embeddings"], data["inputs"], scores, data["lengths"], key=key,
            seed=seed, answers=answers,
        )  # fmt: skip
        low = np.array([s.mean(0).mean() for s in _held(result, scores)])
        span = np.array(curve.best_single) / 100 - low
        for name, per_budget in curve.scores.items():
            for n, values in zip(curve.budgets, per_budget):
                g = (np.array(values) / 100 - low) / span
                curves.setdefault(name, {}).setdefault(n, []).extend(g.tolist())
    return {
        name: {n: float(np.nanmean(g)) for n, g in rows.items()} for name, rows in curves.items()
    }


def _held(result: sj.eval.EvaluationResult, scores: np.ndarray) -> list[np.ndarray]:
    return [scores[s.held_out][:, np.asarray(s.models)] for s in result.splits]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scratch", default="/work/scratch", help="folder of the dev .npz")
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args()
    start = time.perf_counter()
    key = jax.random.key(0)
    data = {
        name: dict(np.load(Path(args.scratch) / f"{stem}_minilm.npz"))
        for name, stem in SETS.items()
    }
    cal = {name: calibration(d, key) for name, d in data.items()}
    report = {
        "scales": {
            name: {str(scale): summary(rows) for scale, rows in by_scale.items()}
            for name, by_scale in cal.items()
        },
        "leave_one_set_out": leave_one_set_out(cal),
        "shipped_scale": MISFIT_SCALE,
        "reliability": {
            name: reliability(by_scale[MISFIT_SCALE]["pairs"]) for name, by_scale in cal.items()
        },
        "label_budget": {name: budget(d, key) for name, d in data.items()},
    }
    print("Global 90% set, leave-one-set-out (scale chosen on the other two sets):")
    for name, fold in report["leave_one_set_out"].items():
        print(
            f"  {name:6s} scale {fold['scale']:4.2f}: coverage {fold['coverage']:.2f}, set "
            f"{fold['set_size']:.2f} of 5, P(best) of the best {fold['p_best_mean']:.3f} "
            f"(min {fold['p_best_min']:.3f})"
        )
    print(f"\nReliability at the shipped scale {MISFIT_SCALE} (predicted / observed, n):")
    for name, rows in report["reliability"].items():
        cells = ", ".join(f"{r['predicted']:.2f}/{r['observed']:.2f} ({r['n']})" for r in rows)
        print(f"  {name:6s} {cells}")
    print("\nLabel budget, G at n = 0 / 5 / 10 / 20 / 50:")
    for name, rows in report["label_budget"].items():
        for method, by_n in rows.items():
            cells = " / ".join("  -  " if np.isnan(v) else f"{v:5.2f}" for v in by_n.values())
            print(f"  {name:6s} {method:28s} {cells}")
    print(f"\n({time.perf_counter() - start:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
