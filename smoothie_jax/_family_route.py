"""The safe Global policy: route on the vote only where the family model identifies and
fits it, otherwise fall back."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from . import _validate
from ._batch import Batch, make_batch
from ._estimator import DEFAULT_EPS
from ._family_design import (
    DEFAULT_POLICY_ALPHA,
    Families,
    Labels,
    groups_of,
    moments_from_distances,
)
from ._family_fit import FamilySmoothie, fit_from_mean
from ._independence import (
    Diagnosis,
    check_alpha,
    check_enough_samples,
    diagnose_moments,
    p_text,
)

# ---------------------------------------------------------------- the safe policy


@dataclasses.dataclass(frozen=True, eq=False)  # holds arrays
class FamilyRoute:
    """A routing decision that knows whether consensus can be trusted.

    Attributes:
        probabilities: (n_models,) probability of routing to each model: one-hot for a
            deterministic choice, spread for the stratified fallback.
        choice: the model index when deterministic, else None (a mixed strategy: draw
            per input with `sample`).
        method: "smoothie" (independence not rejected), "family-aware" (families
            corrected and the route identified), "default" or "stratified" (fallbacks).
        abstained: True for the fallbacks: the data could not say which model is best.
        reason: one sentence saying why.
        diagnosis: the independence test.
        fit: the fit used for the route (family-aware with the groups used).
    """

    probabilities: np.ndarray
    choice: int | None
    method: str
    abstained: bool
    reason: str
    diagnosis: Diagnosis
    fit: FamilySmoothie

    def expected(self, values: Float[np.ndarray, " n_models"]) -> float:
        """Expected value of per-model `values` (e.g. mean scores) under the route."""
        return float(np.dot(self.probabilities, np.asarray(values, np.float64)))

    def sample(self, key: PRNGKeyArray, n: int) -> Int[Array, " n"]:
        """One model per input: the choice, or independent draws from `probabilities`."""
        if self.choice is not None:
            return jnp.full((n,), self.choice, jnp.int32)
        logits = jnp.log(jnp.asarray(self.probabilities, jnp.float32))
        return jax.random.categorical(key, logits, shape=(n,))

    def to_text(self, models: Sequence[str] | None = None) -> str:
        names = (
            list(models) if models is not None else [str(i) for i in range(len(self.fit.labels))]
        )
        lines = [self.diagnosis.to_text(names), f"Route ({self.method}): {self.reason}"]
        if self.choice is None:
            spread = ", ".join(
                f"{names[i]} {p:.2f}" for i, p in enumerate(self.probabilities) if p > 0
            )
            lines.append(f"Routing probabilities: {spread}.")
        return "\n".join(lines)


def _group_text(labels: Labels, names: Sequence[str]) -> str:
    return " | ".join(", ".join(names[i] for i in g) for g in groups_of(labels))


def route_families(
    embeddings: Float[_validate.ArrayLike, "n_samples n_models dim"],
    *,
    families: Families | None = None,
    models: Sequence[str] | None = None,
    default: int | str | None = None,
    strict: bool = False,
    alpha: float = DEFAULT_POLICY_ALPHA,
    eps: float = DEFAULT_EPS,
) -> FamilyRoute:
    """Smoothie-Global that checks its assumption and never routes on a confounded vote.

    1. Test independence and find the groups (`diagnose`), or take `families`.
    2. Fit the family model with those groups (all models alone: plain Smoothie-Global).
    3. Route to its best model if that is identified AND the model fits (its own lack of
       fit test does not reject at `alpha`; for all models alone, that is independence).
       With `strict`, never once independence is rejected.
    4. Otherwise fall back: to `default` if given (no worse than random only if your
       default is at least as good as the average model: that is your choice), else to
       a stratified draw: group g with probability |g| / m (as uniform random picking
       would), then the group's best model by the fit (within-group comparisons are
       identified: a shared error cancels). Its expected score is random's plus the
       within-group gains, so it is no worse than random whenever those within-group
       rankings are right (exactly random when every group is one model); nothing
       label-free can promise more once the order of the groups is unknown.

    Three models cannot be tested (the additive fit is exact): plain Smoothie-Global.

    Args:
        embeddings: embedding of each model's output for each input.
        families: known families (one label per model, or a mapping with `models`).
        models: model names (for a mapping, a named default and the texts).
        default: the model (index or name) to fall back to; None for the stratified draw.
        strict: after a rejection of independence, always fall back: never compare
            models across groups, even where the family model identifies and fits it.
        alpha: level of the tests (1%: under independence a false alarm costs a fallback).
        eps: floor on a_i in theta.

    Returns:
        A `FamilyRoute`.

    >>> x = jax.random.normal(jax.random.key(0), (200, 4, 8))
    >>> route_families(x).method
    'smoothie'
    """
    return route_batch_families(
        make_batch(embeddings),
        families=families,
        models=models,
        default=default,
        strict=strict,
        alpha=alpha,
        eps=eps,
    )


def route_batch_families(
    batch: Batch,
    *,
    families: Families | None = None,
    models: Sequence[str] | None = None,
    default: int | str | None = None,
    strict: bool = False,
    alpha: float = DEFAULT_POLICY_ALPHA,
    eps: float = DEFAULT_EPS,
) -> FamilyRoute:
    """`route_families` on a validated batch, from its D (every model answered)."""
    m = batch.n_models
    if models is not None and len(models) != m:
        raise ValueError(f"models has {len(models)} names for {m} models")
    names = list(models) if models is not None else [str(i) for i in range(m)]
    default_index = _check_default(default, names)
    alpha = check_alpha(alpha)
    check_enough_samples(batch.n_samples, m)
    # Once: the test and the fit share them.
    moments = moments_from_distances(batch.distances, batch.dim)
    diagnosis = diagnose_moments(moments, alpha=alpha, families=families, models=models)
    labels = diagnosis.labels if diagnosis.given else diagnosis.identified_labels
    fit = fit_from_mean(moments.mean, labels, moments.dim, float(_validate.check_eps(eps)))
    return decide_route(diagnosis, fit, names, default=default_index, strict=strict)


def decide_route(
    diagnosis: Diagnosis,
    fit: FamilySmoothie,
    names: Sequence[str],
    *,
    default: int | None = None,
    strict: bool = False,
) -> FamilyRoute:
    """Steps 3 and 4 of `route_families`, from its diagnosis and fit (reusable for a
    strict and a lenient route from one diagnosis)."""
    m, alpha, default_index = len(names), diagnosis.alpha, default
    labels = fit.labels
    n_groups = len(groups_of(labels))
    fits = diagnosis.family_p_value >= alpha
    source = "given" if diagnosis.given else "found"
    groups_text = f"{n_groups} groups ({source}: {_group_text(labels, names)})"

    if n_groups == m and not diagnosis.rejected:
        choice = int(fit.route())
        why = (
            "Independence is not rejected: plain Smoothie-Global."
            if diagnosis.testable
            else "3 models: independence untestable; plain Smoothie-Global."
        )
        return FamilyRoute(np.eye(m)[choice], choice, "smoothie", False, why, diagnosis, fit)
    if fit.identified and fits and not (strict and diagnosis.rejected):
        choice = int(fit.route())
        how = "identified" if n_groups >= 3 else "identified by W >= 0 alone"
        return FamilyRoute(
            np.eye(m)[choice],
            choice,
            "family-aware",
            False,
            f"The {groups_text}; the family model fits (p = {p_text(diagnosis.family_p_value)}) "
            f"and the best model is {how}.",
            diagnosis,
            fit,
        )
    if strict and diagnosis.rejected:
        why = f"Independence is rejected, strict: no ranking across the {groups_text}"
    elif not fits:
        why = (
            f"The model with the {groups_text} does not fit "
            f"(p = {p_text(diagnosis.family_p_value)}): the vote is confounded"
        )
    else:
        why = f"The {groups_text}: which group is better is not identified (3 needed)"
    if default_index is not None:
        return FamilyRoute(
            np.eye(m)[default_index],
            default_index,
            "default",
            True,
            f"{why}; routing to the default model {names[default_index]}.",
            diagnosis,
            fit,
        )
    theta = np.asarray(fit.theta)
    probabilities = np.zeros(m)
    for g in groups_of(labels):
        probabilities[g[int(np.argmax(theta[g]))]] += len(g) / m
    return FamilyRoute(
        probabilities,
        None,
        "stratified",
        True,
        f"{why}; abstaining: each group with probability size/m, its best model within.",
        diagnosis,
        fit,
    )


def _check_default(default: int | str | None, names: list[str]) -> int | None:
    if default is None:
        return None
    if isinstance(default, str):
        if default not in names:
            raise ValueError(f"default model {default!r} is not one of the models {names}")
        return names.index(default)
    if not _validate.is_int(default):
        raise ValueError(f"default must be a model index or name, got {default!r}")
    if not 0 <= default < len(names):
        raise ValueError(f"default index {default} is outside [0, {len(names)})")
    return int(default)
