"""The answer router's two constants (`smoothie_jax/_tasks.py`), chosen leave-one-set-out.

- `BEST_BONUS` (test-time): the log-odds against the favoured model's answer that
  overrule it. Chosen on the dev sets with answers, GSM8K and CRUXEval: each fold takes
  the bonus of highest test-time G on the other set.
- `TASK_Z` (both regimes): the paired z a group of inputs needs before it gets its own
  best model. On the dev sets with answers (GSM8K, CRUXEval, and their mix) one best
  model serves every task, so groups can only cost G there: the choice is the z whose
  worst change against no groups (z = inf) over those sets and both regimes is highest,
  to 0.005. Ties (several z that cost nothing) are broken by the mix with CRUXEval's
  model columns reversed (each task its own best model: the case groups are for), the
  lowest z being the most willing.

Protocol as `router_dev.py` (40 ensembles of 5, seeds 0-3); G mean per set and regime.

    python benchmarks/answer_constants.py --json benchmarks/results/answer_constants.json
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from router_dev import MULTI_TASK, gap, load_mix, protocol_args, splits

from smoothie_jax import _tasks

BONUSES = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0)
ZS = (1.5, 2.0, 2.5, 3.0, 3.5, float("inf"))
KEYS = ("inputs", "scores", "observed", "answers")


def load(scratch: Path) -> dict[str, dict]:
    gsm8k, crux = (
        {k: v for k, v in np.load(scratch / f"{stem}_minilm.npz").items() if k in KEYS}
        for stem in MULTI_TASK
    )
    return {
        "gsm8k": gsm8k,
        "crux": crux,
        "mix": load_mix(scratch, keys=KEYS)[0],
        "mix, reversed": load_mix(scratch, reverse=True, keys=KEYS)[0],
    }


def measure(data: dict, seeds: tuple[int, ...]) -> dict:
    """G per ensemble: test-time per (bonus, z), train-time per z."""
    scores = np.where(data["observed"], data["scores"], np.nan)
    table: dict = {"test": {}, "train": {}}
    for split in splits(scores, seeds):
        ens = np.asarray(split.models)
        for regime, fit, rows in (
            ("test", split.kept, split.held_out),
            ("train", split.past, split.new),
        ):
            x = data["inputs"][fit]
            evidence = _tasks.read_answers(data["answers"][fit][:, ens], x)
            s = scores[rows][:, ens]
            if regime == "test":
                pos = np.searchsorted(fit, rows)
                for bonus in BONUSES:
                    for z in ZS:
                        choice = _tasks.answer_choice(evidence, bonus, z)[0][pos]
                        table[regime].setdefault((bonus, z), []).append(gap(s, choice))
            else:
                query_groups = _tasks.assign_tasks(data["inputs"][rows], evidence.centroids)
                for z in ZS:
                    choice = evidence.best(z)[query_groups]
                    table[regime].setdefault(z, []).append(gap(s, choice))
    return {r: {k: float(np.nanmean(v)) for k, v in t.items()} for r, t in table.items()}


def main() -> None:
    args, seeds = protocol_args(__doc__)
    start = time.perf_counter()
    sets = load(Path(args.scratch))
    g = {name: measure(data, seeds) for name, data in sets.items()}
    shipped = (_tasks.BEST_BONUS, _tasks.TASK_Z)
    lines = [
        f"{10 * len(seeds)} ensembles of 5 per set; mean G",
        "",
        "Test-time G by bonus (z shipped):",
    ]
    lines.append("  bonus " + " ".join(f"{n:>14s}" for n in sets))
    for bonus in BONUSES:
        cells = " ".join(f"{g[n]['test'][(bonus, shipped[1])]:14.3f}" for n in sets)
        lines.append(f"  {bonus:5g} {cells}")
    folds = {}
    for held, other in (("gsm8k", "crux"), ("crux", "gsm8k")):
        chosen = max(BONUSES, key=lambda b: g[other]["test"][(b, shipped[1])])
        folds[held] = {
            "chosen_on": other,
            "bonus": chosen,
            "G": g[held]["test"][(chosen, shipped[1])],
        }
        lines.append(
            f"  held-out {held}: bonus {chosen:g} (chosen on {other}) -> G {folds[held]['G']:.3f}"
        )
    lines += ["", "G by z (bonus shipped), test / train:"]
    lines.append("  z     " + " ".join(f"{n:>16s}" for n in sets))
    for z in ZS:
        cells = " ".join(
            f"{g[n]['test'][(shipped[0], z)]:7.3f} / {g[n]['train'][z]:6.3f}" for n in sets
        )
        lines.append(f"  {z:5g} {cells}")
    dev = ("gsm8k", "crux", "mix")

    def key(z: float) -> tuple[float, float]:
        changes = [
            g[n]["test"][(shipped[0], z)] - g[n]["test"][(shipped[0], np.inf)] for n in dev
        ] + [g[n]["train"][z] - g[n]["train"][np.inf] for n in dev]
        reversed_g = g["mix, reversed"]["test"][(shipped[0], z)] + g["mix, reversed"]["train"][z]
        return (round(min(changes) / 0.005), float(reversed_g))

    chosen_z = max(ZS, key=key)
    same = "the same" if chosen_z == shipped[1] else "NOT the same: update _tasks.py"
    lines.append(f"  z chosen on {', '.join(dev)}: {chosen_z:g}; shipped {shipped[1]:g} ({same})")
    lines.append(f"\n({time.perf_counter() - start:.0f} s)")
    print("\n".join(lines))
    if args.json:
        report = {
            "seeds": list(seeds),
            "shipped": {"bonus": shipped[0], "z": shipped[1]},
            "bonus_folds": folds,
            "z_chosen": chosen_z,
            "test": {
                n: {f"bonus={b:g} z={z:g}": v for (b, z), v in g[n]["test"].items()} for n in sets
            },
            "train": {n: {f"z={z:g}": v for z, v in g[n]["train"].items()} for n in sets},
        }
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
