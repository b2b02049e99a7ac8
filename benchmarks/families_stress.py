"""Families that share wrong answers: GSM8K ensembles of 4 with one family pair.

Each ensemble is one pair of models of one family (Llama-3.1, Qwen2 or Gemma-2: seven
pairs) and two of the six unrelated models (four draws per pair: 28 ensembles). Two
variants: "natural", the real outputs; "copy", where wherever the pair's weaker member
is wrong its sibling gets the same output (embedding, length, answer and score), so the
pair agrees on every one of its wrong answers: the case where a family outvotes the
rest (TriviaQA answered by four 7B models, two of one family, had every label-free method
of 0.2 below random). Rows: G mean (min, ensembles below random), test- and train-time,
the library's protocol splits (seed 0).

    python benchmarks/families_stress.py   # after embed_dev.py on zeroeval_gsm8k (2 min)
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import jax.numpy as jnp
import numpy as np

import smoothie_jax as sj
from smoothie_jax import _agreement, _tasks

FAMILIES = ("Meta-Llama-3.1", "Qwen2", "gemma-2")


def gap(scores: np.ndarray, choice: np.ndarray) -> float:
    means = scores.mean(axis=0)
    span = means.max() - means.mean()
    routed = scores[np.arange(len(scores)), np.broadcast_to(choice, (len(scores),))].mean()
    return float((routed - means.mean()) / span) if span > 1e-12 else float("nan")


def ensembles(models: list[str]) -> list[tuple[int, int, int, int]]:
    """(weaker member, sibling, unrelated, unrelated) model indices."""
    pairs = [
        pair
        for family in FAMILIES
        for pair in itertools.combinations([i for i, m in enumerate(models) if family in m], 2)
    ]
    others = [i for i, m in enumerate(models) if not any(f in m for f in FAMILIES)]
    rng = np.random.default_rng(0)
    out = []
    for a, b in pairs:
        couples = list(itertools.combinations(others, 2))
        for k in rng.choice(len(couples), 4, replace=False):
            out.append((a, b, *couples[k]))
    return out


def methods(e, x, lengths, codes, new):  # noqa: ANN001, ANN201 - a table of closures
    """Each method's choice: per input (test-time, `new` None) or per new query."""
    if new is None:
        return {
            "majority vote (answers)": np.argmax(
                np.asarray(_agreement.agreements(codes)).sum(-1), 1
            ),
            "recommended, answers": sj.route_auto(e, lengths=lengths, answers=codes).choice,
            "recommended, no answers": sj.route_auto(e, lengths=lengths).choice,
            "Smoothie-Global": sj.fit_global(e).route(),
            "Smoothie-Local k=20": sj.fit_local(e, x, k=20).route(),
            "longest output": np.argmax(lengths, 1),
        }
    agreeing = np.asarray(_agreement.agreements(codes)).sum(axis=(0, 2))
    auto = dict(k=20, method="auto", lengths=lengths)
    return {
        "most agreeing past model (answers)": np.argmax(agreeing),
        "recommended, answers": sj.fit_router(e, x, answers=codes, **auto).route(new),
        "recommended, no answers": sj.fit_router(e, x, **auto).route(new),
        "Smoothie-Global": sj.fit_global(e).route(),
        "Smoothie-Local router k=20": sj.fit_router(e, x, k=20).route(new),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--npz", default="scratch/zeroeval_gsm8k_minilm.npz")
    parser.add_argument("--json", default=None, help="write the figures here")
    parser.add_argument(
        "--leader-level",
        type=float,
        default=None,
        help="the answer leader's contenders' "
        "P(best) (_tasks.LEADER_LEVEL; 0: the bootstrap's most probable model alone)",
    )
    args = parser.parse_args()
    if args.leader_level is not None:  # a probe of the shipped constant's alternatives
        _tasks.LEADER_LEVEL = args.leader_level
    data = dict(np.load(args.npz))
    models = [str(m) for m in data["models"]]
    report: dict = {}
    for variant in ("natural", "copy"):
        table: dict = {}
        for e, ens in enumerate(ensembles(models)):
            ens = list(ens)
            emb, lengths = data["embeddings"][:, ens].copy(), data["lengths"][:, ens].copy()
            scores, codes = data["scores"][:, ens].copy(), data["answers"][:, ens].copy()
            if variant == "copy":  # the sibling repeats every mistake of the weaker member
                wrong = scores[:, 0] < 1
                for a in (emb, lengths, scores, codes):
                    a[wrong, 1] = a[wrong, 0]
            split = sj.eval.split_ensemble(scores, (0, 1, 2, 3), e=e, seed=0, n_labelled=50)
            for regime, fit, rows in (
                ("test", split.kept, split.held_out),
                ("train", split.past, split.new),
            ):
                new = None if regime == "test" else jnp.asarray(data["inputs"][rows])
                chosen = methods(
                    jnp.asarray(emb[fit]),
                    jnp.asarray(data["inputs"][fit]),
                    lengths[fit],
                    codes[fit],
                    new,
                )
                for name, choice in chosen.items():
                    choice = np.asarray(choice)
                    if regime == "test" and choice.ndim:
                        choice = choice[np.searchsorted(fit, rows)]
                    g = gap(scores[rows], choice)
                    table.setdefault(regime, {}).setdefault(name, []).append(g)
        report[variant] = {
            regime: {
                name: (float(np.nanmean(g)), float(np.nanmin(g)), int(np.sum(np.less(g, 0))))
                for name, g in rows.items()
            }
            for regime, rows in table.items()
        }
        for regime, rows in report[variant].items():
            for name, (mean, low, below) in rows.items():
                print(
                    f"{variant:8s} {regime:6s} {name:36s} {mean:5.2f} ({low:5.2f}, {below} below)"
                )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
