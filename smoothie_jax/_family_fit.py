"""The family-aware fit: each model's own quality with shared family errors removed, and
what the groups make identifiable."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from typing import final

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from . import _validate
from ._estimator import DEFAULT_EPS
from ._family_design import (
    MAX_FAMILIES,
    Families,
    Labels,
    design_matrix,
    family_labels,
    groups_of,
    pair_vectors,
)

# ---------------------------------------------------------------- identifiability


@dataclasses.dataclass(frozen=True)
class Identifiability:
    """What the family model identifies from D, given the groups (structure only).

    Attributes:
        n_groups: g, families with every singleton its own group.
        quality: each model's own squared error a_i = E||lambda_i - y||^2 (g >= 3).
        ranking: the order of all models by a_i (g != 2). With g = 2, the data may still
            decide the route: see `FamilySmoothie.identified`.
        family_variance: each family's shared variance W_f (g >= 3).
        individual: per model, its individual variance s_i (a family of two or more,
            or g >= 3).
    """

    n_groups: int
    quality: bool
    ranking: bool
    family_variance: bool
    individual: tuple[bool, ...]

    def to_text(self) -> str:
        g = self.n_groups
        if g >= 3:
            return f"{g} independent groups: every model's quality is identified."
        if g == 2:
            return (
                "2 groups: only rankings within each group are identified; which group's "
                "best model is better is not (at least 3 independent groups are needed)."
            )
        return "1 group: the ranking is identified; the size of the shared error is not."


def identifiability(families: Families, *, models: Sequence[str] | None = None) -> Identifiability:
    """Which quantities of the family model the groups `families` make identifiable.

    Args:
        families: as in `family_labels`.
        models: model names, for a mapping.

    >>> identifiability(["a", "a", "b", "b"]).quality
    False
    >>> identifiability(["a", "a", "b", "c"]).quality
    True
    """
    labels = family_labels(families, models=models)
    groups = groups_of(labels)
    g = len(groups)
    size = {labels[members[0]]: len(members) for members in groups}
    return Identifiability(
        n_groups=g,
        quality=g >= 3,
        ranking=g != 2,
        family_variance=g >= 3,
        individual=tuple(g >= 3 or size[label] >= 2 for label in labels),
    )


# ---------------------------------------------------------------- the family-aware fit


@final
class FamilySmoothie(eqx.Module):
    """Fitted family-aware quality.

    Attributes:
        theta: dim / (2 max(delta, eps)), larger is better; the plain Smoothie theta when
            every model is its own family.
        delta: each model's own squared error a_i = E||lambda_i - y||^2 (a point in
            `delta_range` where that is an interval).
        delta_range: (2, n_models) lowest and highest a_i consistent with the data and
            W >= 0; equal rows where a_i is identified (the upper row is inf for one group).
        family_variance: W of each model's family (0 for a group of one), squared
            embedding units, at `delta`.
        labels: the groups used (static).
        identified: whether the route (the best model) is the same for every admissible
            solution (static).
    """

    theta: Float[Array, " n_models"]
    delta: Float[Array, " n_models"]
    delta_range: Float[Array, "2 n_models"]
    family_variance: Float[Array, " n_models"]
    labels: Labels = eqx.field(static=True)
    identified: bool = eqx.field(static=True)

    def __check_init__(self) -> None:
        m = len(self.labels)
        if self.theta.shape != (m,) or self.delta_range.shape != (2, m):
            raise ValueError(
                f"theta {self.theta.shape} and delta_range {self.delta_range.shape} must "
                f"match {m} labels"
            )

    @property
    def weights(self) -> Float[Array, " n_models"]:
        """theta normalised to sum to 1."""
        return _validate.normalise(self.theta)

    def route(self) -> Int[Array, ""]:
        """The model with the highest theta (check `identified` before trusting it)."""
        return jnp.argmax(self.theta)


def _nnls_families(x: np.ndarray, d: np.ndarray, m: int) -> np.ndarray:
    """min ||d - x theta|| with the W part of theta >= 0, a free (x of full column rank).

    Exact: the optimum is the unconstrained fit on its active set, so every active set is
    tried and the feasible one with the smallest residual is kept.
    """
    n_fam = x.shape[1] - m
    best, best_rss = None, np.inf
    for active in itertools.product((False, True), repeat=n_fam):
        cols = np.concatenate([np.ones(m, bool), np.asarray(active, bool)])
        sol = np.linalg.lstsq(x[:, cols], d, rcond=None)[0]
        if np.any(sol[m:] < 0):
            continue
        theta = np.zeros(x.shape[1])
        theta[cols] = sol
        rss = float(np.sum((d - x @ theta) ** 2))
        if rss < best_rss:
            best, best_rss = theta, rss
    assert best is not None  # the empty active set (plain Smoothie) is always feasible
    return best


def fit_from_mean(mean: np.ndarray, labels: Labels, dim: int, eps: float) -> FamilySmoothie:
    m = len(labels)
    x, families = design_matrix(labels)
    groups = groups_of(labels)
    family_of = {f: k for k, f in enumerate(families)}
    if len(families) > MAX_FAMILIES:
        raise ValueError(
            f"{len(families)} families of two or more models; at most {MAX_FAMILIES} "
            "are supported (the fit tries every active set of W >= 0)"
        )
    if len(groups) >= 3:
        theta = _nnls_families(x, mean, m)
        a, w = theta[:m], theta[m:]
        low = high = a
        identified = True
    else:
        # One direction of (a, W) is free; find the range of t allowed by W >= 0 (and
        # a >= 0 for a group of one) along it.
        theta0 = np.linalg.lstsq(x, mean, rcond=None)[0]
        sign = np.ones(m) if len(groups) == 1 else np.where(np.asarray(labels) == 0, 1.0, -1.0)
        v = np.concatenate([sign, [sign[labels.index(f)] for f in families]])
        lo, hi = -np.inf, np.inf
        for k in range(len(families)):  # W_f + t v_f >= 0
            bound = -theta0[m + k] / v[m + k]
            lo, hi = (max(lo, bound), hi) if v[m + k] > 0 else (lo, min(hi, bound))
        for g in groups:
            if len(g) == 1:  # a_i + t v_i >= 0
                i = g[0]
                bound = -theta0[i] / v[i]
                lo, hi = (max(lo, bound), hi) if v[i] > 0 else (lo, min(hi, bound))
        if lo > hi:  # the data contradict W >= 0 along the whole line: no admissible point
            lo = hi = 0.5 * (lo + hi)
            identified = False
        else:
            a_lo, a_hi = theta0[:m] + lo * v[:m], theta0[:m] + hi * v[:m]
            # a is linear in t: the same best model at both ends is the best throughout.
            identified = len(groups) == 1 or int(np.argmin(a_lo)) == int(np.argmin(a_hi))
        t = lo if len(groups) == 1 else 0.5 * (lo + hi)
        theta = theta0 + t * v
        a, w = theta[:m], theta[m:]
        ends = np.stack([theta0[:m] + lo * v[:m], theta0[:m] + hi * v[:m]])
        low, high = ends.min(axis=0), ends.max(axis=0)
        if len(groups) == 1:
            high = np.full(m, np.inf)
    per_model_w = np.array([w[family_of[f]] if f in family_of else 0.0 for f in labels])
    delta = np.maximum(a, eps)
    return FamilySmoothie(
        theta=jnp.asarray(dim / (2 * delta), jnp.float32),
        delta=jnp.asarray(a, jnp.float32),
        delta_range=jnp.asarray(np.stack([low, high]), jnp.float32),
        family_variance=jnp.asarray(per_model_w, jnp.float32),
        labels=labels,
        identified=bool(identified),
    )


def fit_families(
    embeddings: Float[_validate.ArrayLike, "n_samples n_models dim"],
    families: Families,
    *,
    models: Sequence[str] | None = None,
    eps: float = DEFAULT_EPS,
) -> FamilySmoothie:
    """Smoothie-Global corrected for model families, by least squares with W >= 0.

    Fits E D_ij = a_i + a_j - 2 W_f [i, j in family f] to the mean distance matrix over
    inputs. With every model its own family this is the plain least-squares fit, i.e.
    exactly `fit_global`'s closed form. See the module docstring for when a is
    identified (three or more groups); with fewer, `delta_range` and `identified` say
    what is known.

    Args:
        embeddings: embedding of each model's output for each input.
        families: one label per model, or a mapping model name -> family (with
            `models`); e.g. `diagnose(embeddings).labels`.
        models: model names, for a mapping.
        eps: floor on a_i in theta, as in `theta_from_distances`.

    Returns:
        A `FamilySmoothie`.

    >>> import jax

    >>> x = jax.random.normal(jax.random.key(0), (100, 4, 8))
    >>> fit_families(x, [0, 0, 1, 2]).theta.shape
    (4,)
    """
    embeddings = _validate.check_embeddings(embeddings)
    eps = float(_validate.check_eps(eps))
    _, m, dim = embeddings.shape
    labels = family_labels(families, models=models, n_models=m)
    mean = np.asarray(pair_vectors(embeddings), np.float64).mean(axis=0)
    return fit_from_mean(mean, labels, dim, eps)
