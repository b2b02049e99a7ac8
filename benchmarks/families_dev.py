"""Model families on the AlpacaEval dev data: does consensus fail, and what fixes it?

Runs the paper's protocol (`sj.eval.evaluate`: 10 seeded ensembles of 5 of the 10 models, 50
labelled inputs each, every method scored on the same held-out inputs) and adds the rows
of `smoothie_jax.eval.evaluate_families` on the same splits: the family-aware fit
and the safe policy, with families found by the independence test and with the true
families given (FuseChat*, claude*, Mixtral). Also: the diagnosis on all 10 models,
ensembles of one model per family (no families), simulated data without families, and
all of it with whole-text embeddings.

    python benchmarks/families_dev.py                      # MiniLM, truncated and whole text
    python benchmarks/families_dev.py --variants minilm    # truncated only (cached: fast)

Writes benchmarks/results/families_dev.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import smoothie_jax as sj
from smoothie_jax import simulate_families
from smoothie_jax.eval import evaluate_families, spearman
from smoothie_jax.families import diagnose, fit_families, route_families
from smoothie_jax.text import embed

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "alpaca_eval_dev.jsonl.gz"
VARIANTS = {  # name -> embed() keywords
    "minilm": {"model": "minilm", "whole_text": False},
    "minilm-whole": {"model": "minilm", "whole_text": True},
    "mpnet": {"model": "mpnet", "whole_text": False},
    "mpnet-whole": {"model": "mpnet", "whole_text": True},
}
ROWS = (
    "random (expected)",
    "Smoothie-Global",
    "Smoothie-Families (found)",
    "Smoothie-Safe (found)",
    "Smoothie-Strict (found)",
    "Smoothie-Families (given)",
    "Smoothie-Safe (given)",
    "Smoothie-Strict (given)",
    "longest output",
    "best single model (all labels)",
)
SHORT = ("random", "Global", "Fam(f)", "Safe(f)", "Strict(f)", "Fam(g)", "Safe(g)", "Strict(g)")


def true_families(models: tuple[str, ...]) -> dict[str, str]:
    def family(name: str) -> str:
        for prefix in ("FuseChat", "claude"):
            if name.startswith(prefix):
                return prefix
        return name

    return {name: family(name) for name in models}


def protocol(data: sj.data.RoutingData, outputs: np.ndarray, inputs: np.ndarray) -> dict:
    """The paper's protocol with the family rows added, per ensemble."""
    result = sj.eval.evaluate(
        outputs, inputs, data.scores, data.lengths(), data.models, ks=(), ensembles=10, size=5
    )
    fam_rows, detail = evaluate_families(
        outputs,
        data.scores,
        data.models,
        splits=result.splits,
        families=true_families(data.models),
    )
    result = result.with_rows(fam_rows)
    rows = {r.name: list(r.per_ensemble) for r in result.methods if r.regime == "test-time"}
    random = np.asarray(rows["random (expected)"])
    table = {}
    for name in ROWS:
        v = np.asarray(rows[name])
        table[name] = {
            "mean": float(v.mean()),
            "min": float(v.min()),
            "per_ensemble": [round(float(x), 2) for x in v],
            "below_random": int(np.sum(v < random - 1e-9)),
            "mean_minus_random": float((v - random).mean()),
        }
    return {
        "table": table,
        "ensembles": detail,
        "smoothie_global_spearman": result.mean_spearman,
    }


def all_models(data: sj.data.RoutingData, outputs: np.ndarray) -> dict:
    """Diagnosis and routes with all 10 models on all inputs."""
    models = data.models
    win = 100 * np.nanmean(data.scores, axis=0)
    start = time.perf_counter()
    d = diagnose(outputs)
    seconds = time.perf_counter() - start
    plain = sj.fit_global(outputs)
    found = route_families(outputs, models=models)
    given = route_families(outputs, families=true_families(models), models=models)
    print(found.to_text(models))
    return {
        "p_value": d.p_value,
        "statistic": d.statistic,
        "df": list(d.df),
        "diagnose_seconds": seconds,
        "groups_found": [[models[i] for i in g] for g in d.groups],
        "mirror": None if d.mirror is None else [models[i] for i in d.mirror],
        "family_p_value": d.family_p_value,
        "family_explained": d.explained,
        "excess": np.round(d.excess, 4).tolist(),
        "plain": {
            "choice": models[int(plain.route())],
            "score": float(win[int(plain.route())]),
            "spearman_weights_vs_score": spearman(np.asarray(plain.theta), win),
        },
        "found": {
            "method": found.method,
            "score": found.expected(win),
            "delta": np.asarray(found.fit.delta).round(4).tolist(),
            "family_variance": np.asarray(found.fit.family_variance).round(4).tolist(),
            "spearman_weights_vs_score": spearman(np.asarray(found.fit.theta), win),
        },
        "given": {
            "method": given.method,
            "score": given.expected(win),
            "spearman_weights_vs_score": spearman(np.asarray(given.fit.theta), win),
        },
        "random": float(win.mean()),
    }


def one_per_family(data: sj.data.RoutingData, outputs: np.ndarray) -> dict:
    """Ensembles {one FuseChat, one Claude, Mixtral}: no two models share a family."""
    models = data.models
    win = 100 * np.nanmean(data.scores, axis=0)
    fuse = [i for i, n in enumerate(models) if n.startswith("FuseChat")]
    claude = [i for i, n in enumerate(models) if n.startswith("claude")]
    other = [i for i in range(len(models)) if i not in fuse + claude]
    out = {"random": [], "Smoothie-Global": [], "Smoothie-Safe (found)": []}
    for ens in itertools.product(fuse, claude, other):
        ens = list(ens)
        x = outputs[:, ens]
        out["random"].append(float(win[ens].mean()))
        out["Smoothie-Global"].append(float(win[ens][int(sj.fit_global(x).route())]))
        out["Smoothie-Safe (found)"].append(route_families(x).expected(win[ens]))
    return {k: {"mean": float(np.mean(v)), "n": len(v)} for k, v in out.items()}


def simulated_without_families(reps: int = 200) -> dict:
    """Independent errors (the paper's model, uneven inputs): new policies vs plain.

    Regret: true squared error of the chosen model minus the best's (expected, for a
    mixed strategy), in units of dim; 0 is perfect."""
    regret: dict[str, list[float]] = {
        k: [] for k in ("random", "plain", "families", "safe", "strict")
    }
    rejected = 0
    m, dim = 5, 32
    for r in range(reps):
        key_v, key_x = jax.random.split(jax.random.key(r))
        individual = jnp.exp(jax.random.uniform(key_v, (m,), minval=-1.5, maxval=1.0))
        x = simulate_families(
            key_x,
            individual,
            jnp.zeros(m),
            list(range(m)),
            n_samples=300,
            dim=dim,
            heterogeneity=0.5,
        )
        truth = np.asarray(individual)
        best = truth.min()
        safe = route_families(x)
        strict = route_families(x, strict=True)
        rejected += safe.diagnosis.rejected
        regret["random"].append(truth.mean() - best)
        regret["plain"].append(truth[int(sj.fit_global(x).route())] - best)
        regret["families"].append(truth[int(safe.fit.route())] - best)
        regret["safe"].append(safe.expected(truth) - best)
        regret["strict"].append(strict.expected(truth) - best)
    return {
        "mean_regret": {k: float(np.mean(v)) for k, v in regret.items()},
        "rejected": rejected,
        "reps": reps,
    }


def family_recovery(reps: int = 50) -> dict:
    """Data simulated with families: mean relative error of each model's own quality."""
    fams = [0, 0, 0, 1, 1, 2, 3]
    individual = jnp.array([0.2, 0.25, 0.3, 0.6, 0.8, 0.5, 0.9])
    family_var = jnp.array([1.0, 0.5, 0.0, 0.0])
    dim = 16
    truth = dim * (np.asarray(individual) + np.asarray(family_var)[fams])
    err = {"plain": [], "given": [], "found": []}
    right = {"plain": 0, "found": 0}
    for r in range(reps):
        x = simulate_families(
            jax.random.key(r), individual, family_var, fams, n_samples=600, dim=dim
        )
        plain = np.asarray(sj.triplet_delta(jnp.mean(sj.sample_distances(x), axis=0)))
        route = route_families(x)
        err["plain"].append(np.mean(np.abs(plain / truth - 1)))
        err["given"].append(np.mean(np.abs(np.asarray(fit_families(x, fams).delta) / truth - 1)))
        err["found"].append(np.mean(np.abs(np.asarray(route.fit.delta) / truth - 1)))
        right["plain"] += int(np.argmin(plain) == np.argmin(truth))
        right["found"] += int(route.choice == np.argmin(truth))
    return {
        "mean_relative_error": {k: float(np.mean(v)) for k, v in err.items()},
        "picked_best": right,
        "reps": reps,
    }


def long_outputs(data: sj.data.RoutingData) -> dict:
    """Share of each model's outputs longer than the 256 word pieces MiniLM reads."""
    from sentence_transformers import SentenceTransformer

    from smoothie_jax.text import resolve_model

    st = SentenceTransformer(str(resolve_model("minilm")), device="cpu")
    limit = st.max_seq_length - 2
    out = {}
    for j, name in enumerate(data.models):
        texts = [row[j] for row in data.outputs]
        n_pieces = [len(ids) for ids in st.tokenizer(texts, add_special_tokens=False)["input_ids"]]
        out[name] = {
            "share_over_limit": float(np.mean(np.asarray(n_pieces) > limit)),
            "median_word_pieces": float(np.median(n_pieces)),
        }
    return out


def print_table(results: dict, variants: list[str]) -> None:
    head = f"{'method':<32}" + "".join(f"{v:>22}" for v in variants)
    print("\n" + head + "\n" + f"{'':<32}" + "".join(f"{'mean  min <rnd':>22}" for _ in variants))
    for name in ROWS:
        line = f"{name:<32}"
        for v in variants:
            t = results[v]["protocol"]["table"][name]
            line += f"{t['mean']:>10.1f}{t['min']:>6.1f}{t['below_random']:>6d}"
        print(line)
    for v in variants:
        print(f"\n[{v}] per ensemble (diagnosis p-value, groups found, policies):")
        table = results[v]["protocol"]["table"]
        print("       " + "".join(f"{s:>10}" for s in SHORT))
        for e, det in enumerate(results[v]["protocol"]["ensembles"]):
            scores = "".join(f"{table[n]['per_ensemble'][e]:10.1f}" for n in ROWS[:8])
            found = det["found"]
            groups = " | ".join(",".join(_short(s) for s in g) for g in found["groups"]) or "-"
            mirror = " (mirror)" if found["mirror"] else ""
            print(
                f"  e{e}: {scores}   p={det['p_value']:.1e} found: {groups}{mirror} "
                f"(fit p={found['family_p_value']:.2g}) -> {found['method']}; given: "
                f"fit p={det['given']['family_p_value']:.2g} -> {det['given']['method']}"
            )


def _short(name: str) -> str:
    """FuseChat-Llama-3.1-8B-Instruct -> F:Llama-3.1-8B; claude-2.1 -> C:2.1."""
    if name.startswith("FuseChat-"):
        return "F:" + name[9:].replace("-Instruct", "")
    if name.startswith("claude"):
        return "C:" + (name[7:] or "1")
    return name.split("-")[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--variants", default="minilm,minilm-whole")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/families_dev.json"))
    parser.add_argument("--skip-sim", action="store_true", help="skip the simulations")
    args = parser.parse_args(argv)
    variants = args.variants.split(",")
    data = sj.data.read_routing(args.data)
    texts = [t for row in data.outputs for t in row]
    inputs = embed(data.instructions)
    results: dict = {"data": str(args.data), "models": list(data.models)}
    results["win_rate"] = (100 * np.nanmean(data.scores, axis=0)).round(2).tolist()
    for v in variants:
        start = time.perf_counter()
        flat = embed(texts, **VARIANTS[v])
        outputs = jnp.asarray(flat.reshape(len(data), len(data.models), -1))
        print(f"\n=== {v}: embedded in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        results[v] = {
            "protocol": protocol(data, outputs, inputs),
            "all_models": all_models(data, outputs),
            "one_per_family": one_per_family(data, outputs),
        }
    results["long_outputs"] = long_outputs(data)
    if not args.skip_sim:
        results["simulated_without_families"] = simulated_without_families()
        results["simulated_with_families"] = family_recovery()
    print_table(results, variants)
    for v in variants:
        a = results[v]["all_models"]
        print(
            f"\n[{v}] all 10 models: p = {a['p_value']:.3g}; groups {a['groups_found']}; "
            f"plain -> {a['plain']['choice']} ({a['plain']['score']:.1f}); found -> "
            f"{a['found']['method']} ({a['found']['score']:.1f}); given -> "
            f"{a['given']['method']} ({a['given']['score']:.1f}); random {a['random']:.1f}; "
            f"Spearman(weights, win rate) plain {a['plain']['spearman_weights_vs_score']:.2f}, "
            f"found {a['found']['spearman_weights_vs_score']:.2f}"
        )
        print(f"[{v}] one model per family (20 triples): {results[v]['one_per_family']}")
    for k in ("simulated_without_families", "simulated_with_families"):
        if k in results:
            print(f"{k}: {results[k]}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1, default=float) + "\n")
    print(f"\nWrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
