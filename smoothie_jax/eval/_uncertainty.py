"""Routing under uncertainty, evaluated with the paper's protocol on the same draws.

`evaluate_uncertainty` takes an `EvaluationResult` (so the ensembles and held-out inputs
are exactly those of `evaluate`) and scores the posterior policies beside the closed-form
Smoothie-Global and -Local: posterior mean, most probably best, Thompson sampling, the
hierarchically pooled Local posterior (Wishart only), abstention (coverage against
score) and cost-aware routing (quality against cost), and how honest the posteriors are:
whether the 90% credible set of the best holds the truly best model (Global, per
ensemble; Local, per input, where any model with the input's best score counts: judge
scores tie often). No policy reads a score; scores only grade.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from .. import posterior as policies  # the policies over posterior draws, by their names
from .._smoothie import fit_global, fit_local
from .._validate import ArrayLike
from ..posterior import Posterior, dispersion_dim, effective_dim, fit_posterior, nuts_sampler
from ._names import SCALE
from ._result import EvaluationResult, MethodResult


@dataclasses.dataclass(frozen=True)
class UncertaintyResult:
    """What `evaluate_uncertainty` measured; every list runs over ensembles or grid points.

    Attributes:
        methods: routed score (x100) per ensemble of each policy, closed forms first.
        thresholds: abstention thresholds on the probability of the best model.
        coverage: per threshold, mean fraction of held-out inputs not abstained on.
        selective_score: per threshold, mean score (x100) on the inputs not abstained on.
        fallback_score: per threshold, mean score (x100) of all inputs when abstentions
            go to the default model (the ensemble's Smoothie-Global choice).
        tradeoffs: cost-aware trade-offs swept.
        mean_cost: per trade-off, mean cost of the routed calls (units of `costs`).
        cost_score: per trade-off, mean routed score (x100).
        costs: the cost of each model used.
        best_in_set: per ensemble, whether the best model (held-out mean) lies in the
            Global posterior's 90% credible set of the best model.
        prob_best_of_best: per ensemble, the Global posterior's probability that the
            truly best model is best (1 / size is uninformative).
        global_set_size: per ensemble, size of the Global 90% set.
        best_in_local_set: per ensemble, fraction of held-out inputs whose Local 90% set
            holds a model with that input's best score (ties: any of them counts).
        set_size: per ensemble, mean size of the Local 90% sets.
        n_eff_per_sample: effective independent axes per sample (Wishart; NaN for the
            additive model, which counts inputs, not axes).
        k: neighbours of the Local posteriors.
        model: the posterior model, "additive" or "wishart".
    """

    methods: tuple[MethodResult, ...]
    thresholds: tuple[float, ...]
    coverage: tuple[float, ...]
    selective_score: tuple[float, ...]
    fallback_score: tuple[float, ...]
    tradeoffs: tuple[float, ...]
    mean_cost: tuple[float, ...]
    cost_score: tuple[float, ...]
    costs: tuple[float, ...]
    best_in_set: tuple[bool, ...]
    prob_best_of_best: tuple[float, ...]
    global_set_size: tuple[float, ...]
    best_in_local_set: tuple[float, ...]
    set_size: tuple[float, ...]
    n_eff_per_sample: float
    k: int
    model: str = "additive"

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["methods"] = [
            {"name": r.name, "kind": r.kind, "mean": r.mean, "per_ensemble": list(r.per_ensemble)}
            for r in self.methods
        ]
        return out

    def to_text(self) -> str:
        lines = [f"{'policy':<40s} {'mean':>6s} {'sd':>5s} {'min':>6s}"]
        lines.append("-" * len(lines[0]))
        for r in self.methods:
            lines.append(f"{r.name:<40s} {r.mean:6.1f} {r.std:5.1f} {min(r.per_ensemble):6.1f}")
        lines.append("")
        in_local = 100 * np.mean(self.best_in_local_set)
        lines.append(
            f"Posterior: {self.model}. Best model inside the Global 90% set of the best: "
            f"{sum(self.best_in_set)} of {len(self.best_in_set)} ensembles (mean set size "
            f"{np.mean(self.global_set_size):.1f}; mean P(best) of the best "
            f"{np.mean(self.prob_best_of_best):.2f}). Per input (Local k={self.k}): a model "
            f"with the input's best score is inside the 90% set for {in_local:.0f}% of "
            f"inputs, mean set size {np.mean(self.set_size):.1f} models."
        )
        lines.append("\nAbstention (Local, most probable; abstain below the threshold):")
        lines.append(
            f"  {'threshold':>9s} {'coverage':>9s} {'score on routed':>16s} "
            f"{'score, fallback to Global':>26s}"
        )
        for t, c, s, f in zip(
            self.thresholds, self.coverage, self.selective_score, self.fallback_score
        ):
            lines.append(f"  {t:9.2f} {100 * c:8.0f}% {s:16.1f} {f:26.1f}")
        lines.append("\nCost-aware (Local posterior, E[weight] - tradeoff x cost):")
        lines.append(f"  {'tradeoff':>9s} {'mean cost':>10s} {'score':>7s}")
        for t, c, s in zip(self.tradeoffs, self.mean_cost, self.cost_score):
            lines.append(f"  {t:9.3g} {c:10.3g} {s:7.1f}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()


def credible_set(prob_best: Float[Array, "*batch n_models"], level: float = 0.9) -> Array:
    """Smallest set of models whose probability of being best reaches `level` (a mask)."""
    order = jnp.argsort(-prob_best, axis=-1)
    sorted_prob = jnp.take_along_axis(prob_best, order, axis=-1)
    before = jnp.cumsum(sorted_prob, axis=-1) - sorted_prob  # mass of the better models
    keep_sorted = before < level
    mask = jnp.zeros_like(keep_sorted)
    return jnp.put_along_axis(mask, order, keep_sorted, axis=-1, inplace=False)


def _score(scores: np.ndarray, choice: np.ndarray) -> float:
    return SCALE * float(np.mean(scores[np.arange(len(choice)), choice]))


def evaluate_uncertainty(
    result: EvaluationResult,
    outputs: Float[ArrayLike, "n_samples n_models dim"],
    inputs: Float[ArrayLike, "n_samples input_dim"],
    scores: Float[np.ndarray, "n_samples n_models"],
    *,
    costs: Mapping[str, float],
    key: Array,
    k: int = 20,
    num_samples: int = 500,
    thresholds: Sequence[float] = (0.0, 0.3, 0.5, 0.7, 0.9, 0.99),
    tradeoffs: Sequence[float] | None = None,
    n_eff_per_sample: float | Literal["dispersion", "participation"] = "dispersion",
    model: Literal["additive", "wishart"] = "additive",
) -> UncertaintyResult:
    """Scores the uncertainty-aware policies on `result`'s ensembles and held-out inputs.

    Each ensemble's posteriors are fitted label-free on all its kept inputs, like the
    closed forms in `evaluate`; every policy is scored on the held-out inputs.

    Args:
        result: what `evaluate` returned for the same arrays.
        outputs: embedding of each model's output for each input.
        inputs: embedding of each input.
        scores: judge score of each output (grades only).
        costs: cost of calling each model (any unit), by model name; every model of
            `result.models` needs one.
        key: PRNG key for posterior draws and Thompson sampling.
        k: neighbours of the Local posteriors.
        num_samples: posterior draws.
        thresholds: abstention thresholds on the probability of the best model.
        tradeoffs: cost-aware trade-offs; default spans "quality only" to "cheapest".
        n_eff_per_sample: independent columns per sample (model="wishart" only).
        model: the posterior, as in `fit_posterior` ("additive", the default, or
            "wishart", which also scores the pooled Local posterior).

    Returns:
        An `UncertaintyResult`; `str(result)` is its table.
    """
    missing = [name for name in result.models if name not in costs]
    if missing:
        raise ValueError(f"costs has no entry for models {missing}")
    cost = np.array([float(costs[name]) for name in result.models])
    if not np.all(np.isfinite(cost)) or np.any(cost < 0):
        raise ValueError(f"costs must be finite and >= 0, got {dict(zip(result.models, cost))}")
    outputs = jnp.asarray(outputs)
    inputs = jnp.asarray(inputs)
    scores = np.asarray(scores, dtype=np.float64)
    if tradeoffs is None:
        # Weights sum to 1 over `size` models, so trade-offs around 1 / (size x cost
        # spread) move between the quality-only choice and the cheapest model.
        spread = max(float(np.ptp(cost)), 1e-12)
        tradeoffs = tuple(float(t) for t in np.geomspace(1e-3, 10, 12) / (result.size * spread))
        tradeoffs = (0.0, *tradeoffs)

    if model not in ("additive", "wishart"):
        raise ValueError(f"model must be 'additive' or 'wishart', got {model!r}")
    wishart = model == "wishart"
    sampler = nuts_sampler(num_samples) if wishart else None  # compiled once
    rows: dict[str, list[float]] = {}
    coverage, selective, fallback = [], [], []
    mean_cost, cost_score = [], []
    best_in_set, best_in_local, set_size = [], [], []
    prob_of_best, global_size = [], []
    n_effs = []
    for split in result.splits:
        models = np.asarray(split.models)
        kept = split.kept
        held = np.searchsorted(kept, split.held_out)  # rows within `kept`
        x = outputs[kept][:, models]
        s = scores[kept][:, models][held]
        key, k_global, k_local, k_pool, k_thompson = jax.random.split(key, 5)
        k_e = min(k, len(kept))
        if wishart:
            n_eff = _n_eff(x, n_eff_per_sample)  # once per ensemble, shared
            n_effs.append(n_eff)
            opts = {"model": "wishart", "n_eff_per_sample": n_eff}
        else:
            opts = {}

        closed_global = np.asarray(fit_global(x).route())
        closed_local = np.asarray(fit_local(x, inputs[kept], k=k_e).route())[held]
        post_global = fit_posterior(
            x,
            key=k_global,
            num_samples=num_samples,
            **opts,
            **({"sampler": sampler} if wishart else {}),
        )
        post_local = fit_posterior(
            x, key=k_local, inputs=inputs[kept], k=k_e, num_samples=num_samples, **opts
        )
        post_local = Posterior(post_local.theta_samples[:, held])

        n_held = len(held)

        def everywhere(choice: Int[ArrayLike, ""], n_held: int = n_held) -> np.ndarray:
            return np.full(n_held, int(choice))

        choices = {
            "Smoothie-Global (closed form)": everywhere(closed_global),
            f"Smoothie-Local k={k_e} (closed form)": closed_local,
            "Global posterior: most probably best": everywhere(policies.most_probable(post_global)),
            "Global posterior: Thompson per input": np.asarray(
                policies.thompson(_per_input(post_global, n_held), k_thompson)
            ),
            f"Local k={k_e} posterior: mean": np.asarray(policies.highest_mean(post_local)),
            f"Local k={k_e} posterior: most probably best": np.asarray(
                policies.most_probable(post_local)
            ),
            f"Local k={k_e} posterior: Thompson": np.asarray(
                policies.thompson(post_local, k_thompson)
            ),
        }
        if wishart:
            pooled = fit_posterior(
                x,
                key=k_pool,
                inputs=inputs[kept],
                k=k_e,
                pool="auto",
                num_samples=num_samples,
                **opts,
            )
            pooled = Posterior(pooled.theta_samples[:, held])
            choices[f"Pooled Local k={k_e}: most probably best"] = np.asarray(
                policies.most_probable(pooled)
            )
        for name, choice in choices.items():
            rows.setdefault(name, []).append(_score(s, choice))

        cov_e, sel_e, fb_e = [], [], []
        for t in thresholds:
            choice, abstained = policies.abstain(
                post_local, threshold=t, default=int(closed_global)
            )
            choice, abstained = np.asarray(choice), np.asarray(abstained)
            routed = ~abstained
            cov_e.append(float(np.mean(routed)))
            sel_e.append(_score(s[routed], choice[routed]) if routed.any() else np.nan)
            fb_e.append(_score(s, choice))
        coverage.append(cov_e)
        selective.append(sel_e)
        fallback.append(fb_e)

        sweep = np.asarray(
            policies.tradeoff_sweep(post_local, jnp.asarray(cost[models]), jnp.asarray(tradeoffs))
        )
        mean_cost.append([float(np.mean(cost[models][c])) for c in sweep])
        cost_score.append([_score(s, c) for c in sweep])

        best = int(np.argmax(np.mean(s, axis=0)))
        global_set = np.asarray(credible_set(post_global.prob_best))
        best_in_set.append(bool(global_set[best]))
        prob_of_best.append(float(post_global.prob_best[best]))
        global_size.append(float(global_set.sum()))
        local_set = np.asarray(credible_set(post_local.prob_best))
        top = s == s.max(axis=1, keepdims=True)  # ties: every model with the best score
        best_in_local.append(float(np.mean(np.any(local_set & top, axis=1))))
        set_size.append(float(np.mean(local_set.sum(axis=1))))

    methods = tuple(
        MethodResult(name, "closed form" if "closed" in name else "posterior", tuple(v))
        for name, v in rows.items()
    )
    return UncertaintyResult(
        methods=methods,
        thresholds=tuple(float(t) for t in thresholds),
        coverage=tuple(np.mean(coverage, axis=0).tolist()),
        selective_score=tuple(_mean_where_any(np.asarray(selective))),
        fallback_score=tuple(np.mean(fallback, axis=0).tolist()),
        tradeoffs=tuple(float(t) for t in tradeoffs),
        mean_cost=tuple(np.mean(mean_cost, axis=0).tolist()),
        cost_score=tuple(np.mean(cost_score, axis=0).tolist()),
        costs=tuple(cost.tolist()),
        best_in_set=tuple(best_in_set),
        prob_best_of_best=tuple(prob_of_best),
        global_set_size=tuple(global_size),
        best_in_local_set=tuple(best_in_local),
        set_size=tuple(set_size),
        n_eff_per_sample=float(np.mean(n_effs)) if n_effs else float("nan"),
        k=k,
        model=model,
    )


def _mean_where_any(x: np.ndarray) -> list[float]:
    """Column means ignoring NaN; NaN (no warning) where a column has no value at all."""
    seen = ~np.isnan(x)
    total = np.where(seen, x, 0.0).sum(axis=0)
    return [float(t / c) if c else float("nan") for t, c in zip(total, seen.sum(axis=0))]


def _n_eff(x: Array, how: float | str) -> float:
    if how == "dispersion":
        return float(dispersion_dim(x))
    if how == "participation":
        return float(effective_dim(x))
    return float(how)


def _per_input(post: Posterior, n: int) -> Posterior:
    """A Global posterior repeated per input, so Thompson draws a model per input."""
    theta = post.theta_samples
    return Posterior(jnp.broadcast_to(theta[:, None, :], (theta.shape[0], n, theta.shape[1])))
