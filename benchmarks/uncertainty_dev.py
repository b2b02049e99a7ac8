"""How honest is the posterior on real data, and what do a few labels buy? (issue 13)

For each precomputed dev file (MiniLM embeddings of outputs and inputs, judge scores,
lengths): the paper's protocol (`sj.eval.evaluate`, 10 ensembles of 5, seed 0), then on
the same splits
- coverage: does the smallest set of models whose prob_best reaches 0.9 hold the truly
  best model (best held-out mean), Global per ensemble and Local (k=20) per input, where
  any model with the input's best score counts (judge scores tie);
- informativeness: mean prob_best of the truly best model, mean 90% set size;
- abstention: threshold -> share routed, score on the routed inputs, the default's score
  on the same inputs (their difficulty), and the score on all of them (abstentions go to
  the named default: Smoothie-Global's choice), for three posteriors:
  Local (k=20) label-free; with output lengths, label-free, whose prior is the
  recommended router's (lengths lead where `sj.families.confounded` finds families, the
  consensus alone where it does not); and with 50 labels and lengths;
- the label-budget curve (`sj.eval.label_budget`);
- the Global figures over seed 0 and `--other-seeds` at each own-error scale of
  `--misfit-scales` (`fit_posterior(misfit_scale=...)`): the one knob between coverage
  and a small set.

    python benchmarks/uncertainty_dev.py [FILES...] [--json OUT.json] [--plot OUT.png]

FILES are .npz files written by `benchmarks/embed_dev.py` (MiniLM, about 8 minutes a file
on 2 cores; the default paths are where the README's commands put them).
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

# Synchronous CPU dispatch: while the Local posterior still used jnp.linalg (LAPACK), this
# script stalled (0% CPU, a deadlock) partway through on the busy 2-core machine; the
# library now does its small matrix algebra in plain XLA ops, and this stays as a guard.
jax.config.update("jax_cpu_enable_async_dispatch", False)

FILES = ("/work/scratch/alpaca_eval_dev_minilm.npz", "/work/scratch/alpaca_eval_v1_dev_minilm.npz")
THRESHOLDS = (0.0, 0.3, 0.5, 0.7, 0.9)
K = 20


def abstention(post: sj.Posterior, s: np.ndarray, default: int) -> list[dict[str, float]]:
    out = []
    for t in THRESHOLDS:
        choice, abstained = map(np.asarray, sj.abstain(post, threshold=t, default=default))
        routed = ~abstained
        rows = np.arange(len(choice))
        out.append(
            {
                "threshold": t,
                "routed": float(routed.mean()),
                "score_routed": float(100 * s[rows[routed], choice[routed]].mean())
                if routed.any()
                else float("nan"),
                # The same inputs under the default: is a high score on the routed inputs
                # a better choice, or only easier inputs?
                "score_default_routed": float(100 * s[rows[routed], default].mean())
                if routed.any()
                else float("nan"),
                "score_all_routed_policy": float(
                    100 * s[rows, np.argmax(np.asarray(post.prob_best), 1)].mean()
                ),
                "score_all": float(100 * s[rows, choice].mean()),
            }
        )
    return out


def measure(path: str, key: jax.Array, seeds: list[int], misfit_scales: list[float]) -> dict:
    d = np.load(path, allow_pickle=True)
    emb, inp, sc, ln = d["embeddings"], d["inputs"], d["scores"], d["lengths"]
    models = [str(m) for m in d["models"]]
    result = sj.eval.evaluate(emb, inp, sc, ln, models, ks=(K,))
    g_cov, g_pb, g_size, l_cov, l_size = [], [], [], [], []
    abst_free, abst_len, abst_lab = [], [], []
    for split in result.splits:
        ens = np.asarray(split.models)
        kept = split.kept
        held = np.searchsorted(kept, split.held_out)
        x = emb[kept][:, ens]
        s_kept = sc[kept][:, ens]
        s = s_kept[held]
        key, k1, k2, k3, k4 = jax.random.split(key, 5)
        best = int(np.argmax(s.mean(0)))
        post = sj.fit_posterior(x, key=k1, num_samples=1000)  # exactly the outside check
        pb = np.asarray(post.prob_best)
        cs = np.asarray(credible_set(post.prob_best))
        g_cov.append(bool(cs[best]))
        g_pb.append(float(pb[best]))
        g_size.append(int(cs.sum()))
        local = sj.fit_posterior(x, key=k2, inputs=inp[kept], k=K, num_samples=300)
        local = sj.Posterior(local.theta_samples[:, held])
        ls = np.asarray(credible_set(local.prob_best))
        top = s == s.max(axis=1, keepdims=True)
        l_cov.append(float(np.any(ls & top, axis=1).mean()))
        l_size.append(float(ls.sum(1).mean()))
        default = int(sj.fit_global(x).route())
        abst_free.append(abstention(local, s, default))
        with_len = sj.fit_posterior(x, key=k4, num_samples=300, lengths=ln[kept][:, ens])
        abst_len.append(abstention(sj.Posterior(with_len.theta_samples[:, held]), s, default))
        rows = np.searchsorted(kept, split.labelled)  # the 50 labelled rows of the protocol
        lab = sj.fit_posterior(
            x, key=k3, num_samples=300, lengths=ln[kept][:, ens], labels=(rows, s_kept[rows])
        )
        abst_lab.append(abstention(sj.Posterior(lab.theta_samples[:, held]), s, default))
    budget = sj.eval.label_budget(result, emb, inp, sc, ln, key=key)

    def mean_abst(runs: list[list[dict]]) -> list[dict]:
        return [
            {k: float(np.nanmean([r[i][k] for r in runs])) for k in runs[0][i]}
            for i in range(len(THRESHOLDS))
        ]

    return {
        "file": path,
        "m": len(models),
        "global_coverage": float(np.mean(g_cov)),
        "global_covered": g_cov,
        "prob_best_of_best": float(np.mean(g_pb)),
        "global_set_size": float(np.mean(g_size)),
        "local_coverage": float(np.mean(l_cov)),
        "local_set_size": float(np.mean(l_size)),
        "abstention_label_free": mean_abst(abst_free),
        "abstention_lengths": mean_abst(abst_len),
        "abstention_50_labels": mean_abst(abst_lab),
        "other_seeds": global_over_seeds(emb, sc, seeds, key),
        # The own-error scale is the one knob between coverage and informativeness: the
        # Global figures at each value, pooled over seed 0 and the other seeds.
        "misfit_sweep": [
            global_over_seeds(emb, sc, [0, *seeds], key, scale) for scale in misfit_scales
        ],
        "label_budget": budget.to_json(),
        "_budget": budget,
    }


def global_over_seeds(
    emb: np.ndarray,
    sc: np.ndarray,
    seeds: list[int],
    key: jax.Array,
    misfit_scale: float | None = None,
) -> dict:
    """The Global figures on the ensembles and held-out rows of other protocol seeds: are
    seed 0's figures typical, or one draw's luck?"""
    # None: the default scale, exactly the outside check.
    scale = {} if misfit_scale is None else {"misfit_scale": misfit_scale}
    covered, pb, size = [], [], []
    for seed in seeds:
        for split in sj.eval.draw_splits(sc, ensembles=10, size=5, seed=seed, n_labelled=50):
            ens = np.asarray(split.models)
            s = sc[split.held_out][:, ens]
            best = int(np.argmax(s.mean(0)))
            key, sub = jax.random.split(key)
            post = sj.fit_posterior(emb[split.kept][:, ens], key=sub, num_samples=2000, **scale)
            cs = np.asarray(credible_set(post.prob_best))
            covered.append(bool(cs[best]))
            pb.append(float(post.prob_best[best]))
            size.append(int(cs.sum()))
    return {
        "seeds": seeds,
        "misfit_scale": misfit_scale,
        "ensembles": len(covered),
        "global_coverage": float(np.mean(covered)),
        "prob_best_of_best": float(np.mean(pb)),
        "global_set_size": float(np.mean(size)),
    }


def report(r: dict) -> str:
    lines = [f"== {Path(r['file']).name}"]
    lines.append(
        f"Global 90% set holds the best: {sum(r['global_covered'])}/{len(r['global_covered'])} "
        f"ensembles; mean prob_best of the best {r['prob_best_of_best']:.2f} (1/m = 0.20); "
        f"mean set size {r['global_set_size']:.1f}"
    )
    lines.append(
        f"Local k={K} 90% set holds a best-scoring model (ties count) for "
        f"{100 * r['local_coverage']:.0f}% of held-out inputs; "
        f"mean set size {r['local_set_size']:.1f}"
    )
    for name in ("abstention_label_free", "abstention_lengths", "abstention_50_labels"):
        lines.append(
            f"{name.replace('_', ' ')}: threshold  routed  score on routed  "
            "default on routed  all (fallback)  all (no abstention)"
        )
        for a in r[name]:
            lines.append(
                f"  {a['threshold']:9.2f} {100 * a['routed']:6.0f}% {a['score_routed']:15.1f} "
                f"{a['score_default_routed']:18.1f} {a['score_all']:15.1f} "
                f"{a['score_all_routed_policy']:20.1f}"
            )
    g = r["other_seeds"]
    lines.append(
        f"Global over protocol seeds {g['seeds']} ({g['ensembles']} ensembles): 90% set holds "
        f"the best in {100 * g['global_coverage']:.0f}%; mean prob_best of the best "
        f"{g['prob_best_of_best']:.2f}; mean set size {g['global_set_size']:.1f}"
    )
    for g in r["misfit_sweep"]:
        lines.append(
            f"misfit_scale {g['misfit_scale']:.2f}, seeds {g['seeds']} ({g['ensembles']} "
            f"ensembles): set holds the best in {100 * g['global_coverage']:.0f}%; "
            f"prob_best of the best {g['prob_best_of_best']:.3f}; "
            f"set size {g['global_set_size']:.2f}"
        )
    lines.append("label budget (routed score on held-out inputs):")
    lines.append(str(r["_budget"]))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="*", default=FILES)
    parser.add_argument("--json", help="write the figures as JSON here")
    parser.add_argument("--plot", help="write the label-budget curves (PNG) here")
    parser.add_argument("--seed", type=int, default=0, help="PRNG seed of the draws")
    parser.add_argument(
        "--other-seeds", default="1,2,3", help="protocol seeds of the Global check (comma list)"
    )
    parser.add_argument(
        "--misfit-scales",
        default="0,0.25,0.5,1",
        help="own-error scales of the Global sweep over all seeds (comma list; empty: none)",
    )
    args = parser.parse_args()
    start = time.perf_counter()
    seeds = [int(v) for v in args.other_seeds.split(",") if v]
    scales = [float(v) for v in args.misfit_scales.split(",") if v]
    results = [measure(f, jax.random.key(args.seed), seeds, scales) for f in args.files]
    for r in results:
        print(report(r) + "\n")
    if args.json:
        out = {
            Path(r["file"]).stem: {k: v for k, v in r.items() if k != "_budget"} for r in results
        }
        Path(args.json).write_text(json.dumps(sj.eval.json_safe(out), indent=2, allow_nan=False))
    if args.plot:
        for r in results:
            out = Path(args.plot)
            out = (
                out.with_name(f"{out.stem}_{Path(r['file']).stem}{out.suffix}")
                if len(results) > 1
                else out
            )
            sj.eval.plot_label_budget(r["_budget"], out)
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
