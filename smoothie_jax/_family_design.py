"""The family model's design: group labels, the linear model of E D, and the
sufficient statistics (mean and covariance of the pair distances over inputs).

Correlated model families: test for them, correct for them, and route safely.

Smoothie assumes independent errors, lambda_i = y + e_i. Then the mean squared-distance
matrix is additive, E D_ij = delta_i + delta_j, and the closed form is its least-squares
fit. Families (fine-tunes of one base, versions of one product) share errors and agree
whether right or wrong, which that fit reads as quality.

Family model: lambda_i = y + u_f(i) + e_i, with u_f ~ N(0, w_f I) shared by family f and
e_i ~ N(0, s_i I) individual, all independent. With a_i = dim (s_i + w_f(i)), the model's
own squared error E||lambda_i - y||^2, and W_f = dim w_f:

    E D_ij = a_i + a_j - 2 W_f   if i and j are both in family f (u_f cancels),
    E D_ij = a_i + a_j           otherwise.

Linear in (a, W): least squares on D, as the plain closed form, with W >= 0. A model
alone in its family is a *group* of one (its w and s cannot be told apart, and only a_i
matters). With g groups (singletons included) known, exactly:

- g >= 3: a, every W_f and every s_i are identified. The cross-group pairs give
  a_i + a_j over a complete multipartite graph, which has a triangle (odd cycle), so
  the sums determine each a_i; W_f then follows from any within-family pair.
- g = 2: the cross pairs form a bipartite graph, so a is known only up to +t on one
  group and -t on the other (W moving with it). Within-group differences of a, hence
  within-group rankings, and s_i for members of families of two or more, are
  identified; which group's best model is better is not, unless every t allowed by
  W_f >= 0 (and a_i >= 0 for a singleton group) gives the same answer.
- g = 1: a is known up to a common shift: the ranking is identified (s_i), the shared
  error's size is not; its smallest admissible value (W = 0) is the plain estimator.

Diagnostic: under independence the off-additive part of D has mean zero. With Q an
orthonormal basis of the pairs' space orthogonal to the design (m(m-3)/2 directions for
the additive fit), each input's z_n = Q^T vec(D_n) has mean zero, and Hotelling's T^2 of
the z_n tests that. Inputs, not embedding axes, are the independent units: the test needs
no Gaussian model of the embeddings and stays calibrated when the models' errors vary
from input to input (their spread enters the sample covariance) and when embedding axes
are correlated, both of which a parametric bootstrap from the fitted Gaussian model gets
wrong on real embeddings. Exact F null for Gaussian z_n, asymptotic otherwise.

Groups, searched only when independence is rejected: the partition with the lowest
extended BIC on the same statistic (every partition for up to 10 models, a greedy
merge beyond). One limit holds for any method reading D: one family F plus models alone
fits exactly as well as F's complement as the family (the truth y + u_F, the others
sharing -u_F), so a single family found is known only as one side of a two-group split
(`Diagnosis.mirror`), and the route between the sides needs the g = 2 analysis above.
Given families carry that information from outside; found ones cannot.

The heavy, per-input part (distances) runs jitted in JAX; the fits and tests work on
(n_pairs,)- and (n_pairs, n_pairs)-sized statistics in float64 NumPy on the host: they are
tiny, their rank decisions want float64, and the group search is a discrete loop.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Hashable, Mapping, Sequence

import jax
import numpy as np
from jaxtyping import Array

from . import _validate
from ._distances import sample_distances

DEFAULT_ALPHA = 0.05
# The policy asks for stronger evidence: under independence a false alarm turns the
# route into a fallback (near random), so it should be rare.
DEFAULT_POLICY_ALPHA = 0.01
MAX_FAMILIES = 12  # the W >= 0 fit enumerates 2^(families of two or more) active sets
RANK_TOL = 1e-9  # relative: singular values of 0/1/2 design matrices are O(1) or 0
COV_TOL = 1e-10  # relative: directions of the residual covariance treated as empty

Labels = tuple[int, ...]
Families = Sequence[Hashable] | Mapping[str, Hashable]


# ---------------------------------------------------------------- families and design


def family_labels(
    families: Families, *, models: Sequence[str] | None = None, n_models: int | None = None
) -> Labels:
    """Canonical group labels: 0, 1, ... in order of first appearance.

    Args:
        families: one label per model (any hashables, e.g. ["fuse", "fuse", "claude"]),
            or a mapping model name -> family label, which needs `models`; a model the
            mapping leaves out is a family of its own.
        models: model names in column order (for a mapping, and to check the length).
        n_models: number of models, to check the length when `models` is not given.

    Returns:
        Labels such that models i and j share a family iff labels[i] == labels[j].

    >>> family_labels({"a1": "A", "a2": "A"}, models=["a1", "b", "a2"])
    (0, 1, 0)
    """
    if isinstance(families, Mapping):
        if models is None:
            raise ValueError("families given as a mapping (model name -> family) need models")
        unknown = sorted(str(k) for k in families if k not in set(models))
        if unknown:
            raise ValueError(f"families names models that are not in models: {unknown}")
        raw: list[Hashable] = [
            ("family", families[name]) if name in families else ("alone", name) for name in models
        ]
    elif isinstance(families, str) or not isinstance(families, Sequence):
        raise ValueError(
            "families must be a sequence of one label per model or a mapping "
            f"model name -> family, got {type(families).__name__}"
        )
    else:
        raw = list(families)
    m = len(models) if models is not None else n_models
    if m is not None and len(raw) != m:
        raise ValueError(f"families has {len(raw)} labels for {m} models")
    if len(raw) < _validate.MIN_MODELS:
        raise ValueError(f"families has {len(raw)} labels; need at least {_validate.MIN_MODELS}")
    first: dict[Hashable, int] = {}
    try:
        return tuple(first.setdefault(label, len(first)) for label in raw)
    except TypeError as error:
        raise ValueError(f"family labels must be hashable: {error}") from error


def groups_of(labels: Labels) -> list[list[int]]:
    out: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        out.setdefault(label, []).append(i)
    return list(out.values())


@functools.lru_cache(maxsize=512)
def design_matrix(labels: Labels) -> tuple[np.ndarray, tuple[int, ...]]:
    """Design X of E vec(D) = X (a, W) over pairs i < j, and the labels of the W columns."""
    m = len(labels)
    iu, ju = np.triu_indices(m, 1)
    rows = np.arange(iu.size)
    x = np.zeros((iu.size, m))
    x[rows, iu] = 1.0
    x[rows, ju] = 1.0
    lab = np.asarray(labels)
    families = tuple(g for g in range(max(labels) + 1) if np.sum(lab == g) >= 2)
    cols = [-2.0 * ((lab[iu] == f) & (lab[ju] == f)) for f in families]
    if cols:
        x = np.concatenate([x, np.stack(cols, axis=1)], axis=1)
    return x, families


@functools.lru_cache(maxsize=512)
def complement(labels: Labels) -> tuple[np.ndarray, int]:
    """Orthonormal basis of the pairs' space orthogonal to the design's columns, and rank."""
    x, _ = design_matrix(labels)
    u, sv, _ = np.linalg.svd(x, full_matrices=True)
    rank = int(np.sum(sv > RANK_TOL * sv.max()))
    return u[:, rank:], rank


@jax.jit
def pair_vectors(embeddings: Array) -> Array:
    """Per-input squared distances of the pairs i < j: (n_samples, n_pairs)."""
    m = embeddings.shape[-2]
    iu, ju = np.triu_indices(m, 1)
    return sample_distances(embeddings)[:, iu, ju]


@dataclasses.dataclass(frozen=True, eq=False)  # holds arrays
class Moments:
    """Sufficient statistics: mean and covariance over inputs of the pair distances."""

    mean: np.ndarray
    cov: np.ndarray
    n: int
    m: int
    dim: int


def moments_of(embeddings: Array) -> Moments:
    return _moments(pair_vectors(embeddings), embeddings.shape[-1])


def moments_from_distances(distances: Array, dim: int) -> Moments:
    """`moments_of` from per-input D already computed (a `Batch`'s)."""
    iu, ju = np.triu_indices(distances.shape[-1], 1)
    return _moments(distances[:, iu, ju], dim)


def _moments(pair_distances: Array, dim: int) -> Moments:
    pairs = np.asarray(pair_distances, dtype=np.float64)
    n = pairs.shape[0]
    mean = pairs.mean(axis=0)
    centred = pairs - mean
    cov = centred.T @ centred / max(n - 1, 1)
    m = int(round((1 + np.sqrt(1 + 8 * pairs.shape[1])) / 2))  # n_pairs = m (m - 1) / 2
    return Moments(mean, cov, n, m, dim)


def to_matrix(pairs: np.ndarray, m: int) -> np.ndarray:
    out = np.zeros((m, m))
    out[np.triu_indices(m, 1)] = pairs
    return out + out.T


def fitted(moments: Moments, labels: Labels) -> np.ndarray:
    """Least-squares fitted pair distances (unique even when the parameters are not)."""
    x, _ = design_matrix(labels)
    theta = np.linalg.lstsq(x, moments.mean, rcond=None)[0]
    return x @ theta
