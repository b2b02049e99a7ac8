"""Correlated model families: test for them, correct for them, and route safely.

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
import itertools
import math
from collections.abc import Hashable, Mapping, Sequence
from typing import final

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from . import _validate
from ._estimator import DEFAULT_EPS
from ._smoothie import sample_distances

DEFAULT_ALPHA = 0.05
# The policy asks for stronger evidence: under independence a false alarm turns the
# route into a fallback (near random), so it should be rare.
DEFAULT_POLICY_ALPHA = 0.01
MAX_FAMILIES = 12  # the W >= 0 fit enumerates 2^(families of two or more) active sets
_RANK_TOL = 1e-9  # relative: singular values of 0/1/2 design matrices are O(1) or 0
_COV_TOL = 1e-10  # relative: directions of the residual covariance treated as empty

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


def _groups(labels: Labels) -> list[list[int]]:
    out: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        out.setdefault(label, []).append(i)
    return list(out.values())


@functools.lru_cache(maxsize=512)
def _design(labels: Labels) -> tuple[np.ndarray, tuple[int, ...]]:
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
def _complement(labels: Labels) -> tuple[np.ndarray, int]:
    """Orthonormal basis of the pairs' space orthogonal to the design's columns, and rank."""
    x, _ = _design(labels)
    u, sv, _ = np.linalg.svd(x, full_matrices=True)
    rank = int(np.sum(sv > _RANK_TOL * sv.max()))
    return u[:, rank:], rank


@jax.jit
def _pair_vectors(embeddings: Array) -> Array:
    """Per-input squared distances of the pairs i < j: (n_samples, n_pairs)."""
    m = embeddings.shape[-2]
    iu, ju = np.triu_indices(m, 1)
    return sample_distances(embeddings)[:, iu, ju]


@dataclasses.dataclass(frozen=True, eq=False)  # holds arrays
class _Moments:
    """Sufficient statistics: mean and covariance over inputs of the pair distances."""

    mean: np.ndarray
    cov: np.ndarray
    n: int
    m: int
    dim: int


def _moments(embeddings: Array) -> _Moments:
    pairs = np.asarray(_pair_vectors(embeddings), dtype=np.float64)
    n = pairs.shape[0]
    mean = pairs.mean(axis=0)
    centred = pairs - mean
    cov = centred.T @ centred / max(n - 1, 1)
    return _Moments(mean, cov, n, embeddings.shape[-2], embeddings.shape[-1])


def _to_matrix(pairs: np.ndarray, m: int) -> np.ndarray:
    out = np.zeros((m, m))
    out[np.triu_indices(m, 1)] = pairs
    return out + out.T


# ---------------------------------------------------------------- the test


@dataclasses.dataclass(frozen=True)
class _LackOfFit:
    statistic: float  # Hotelling T^2
    df: tuple[int, int]
    p_value: float
    rank: int  # parameters the design identifies


def _lack_of_fit(moments: _Moments, labels: Labels) -> _LackOfFit:
    """Hotelling's T^2 that the part of E vec(D) off the design's span is zero."""
    from scipy.stats import f as f_dist

    q, rank = _complement(labels)
    n = moments.n
    if q.shape[1] == 0:
        return _LackOfFit(0.0, (0, n), 1.0, rank)
    z = q.T @ moments.mean
    eigval, eigvec = np.linalg.eigh(q.T @ moments.cov @ q)
    # Directions with no spread over inputs carry no test: drop them (rank-deficient
    # covariance, e.g. two models that always answer identically).
    keep = eigval > _COV_TOL * max(float(eigval.max()), np.finfo(float).tiny)
    p = int(keep.sum())
    if p == 0 or n - p < 1:
        return _LackOfFit(0.0, (p, max(n - p, 0)), 1.0, rank)
    proj = eigvec[:, keep].T @ z
    t2 = float(n * np.sum(proj * proj / eigval[keep]))
    f_stat = (n - p) / (p * (n - 1)) * t2
    return _LackOfFit(t2, (p, n - p), float(f_dist.sf(f_stat, p, n - p)), rank)


def _fitted(moments: _Moments, labels: Labels) -> np.ndarray:
    """Least-squares fitted pair distances (unique even when the parameters are not)."""
    x, _ = _design(labels)
    theta = np.linalg.lstsq(x, moments.mean, rcond=None)[0]
    return x @ theta


def _explained(moments: _Moments, labels: Labels) -> float:
    """Share of the additive fit's residual sum of squares the family model removes."""
    base = np.sum((moments.mean - _fitted(moments, tuple(range(moments.m)))) ** 2)
    left = np.sum((moments.mean - _fitted(moments, labels)) ** 2)
    return float(1 - left / base) if base > 0 else 0.0


def _merge(labels: Labels, a: int, b: int) -> Labels:
    raw = tuple(a if label == b else label for label in labels)
    first: dict[int, int] = {}
    return tuple(first.setdefault(label, len(first)) for label in raw)


@functools.lru_cache(maxsize=8)
def _partitions(m: int) -> np.ndarray:
    """Every partition of m models into >= 3 groups with at least one family of two or
    more, as the bit masks of its families, (n_partitions, m // 2), 0-padded.

    Partitions into 1 or 2 groups are left out: each is either plain Smoothie in
    disguise (a W column inside the additive span) or fits D exactly as well as one
    family plus models alone, which is in the list (see `Diagnosis.mirror`).
    """
    # Restricted growth strings, grown one model at a time: row r's next label is any of
    # 0..max_r + 1.
    rows, top = np.zeros((1, 1), np.int8), np.zeros(1, np.int8)
    for _ in range(1, m):
        choices = top.astype(np.int64) + 2
        parent = np.repeat(np.arange(len(rows)), choices)
        label = np.arange(parent.size) - np.repeat(np.cumsum(choices) - choices, choices)
        rows = np.concatenate([rows[parent], label[:, None].astype(np.int8)], axis=1)
        top = np.maximum(top[parent], label.astype(np.int8))
    bits = (1 << np.arange(m)).astype(np.int64)
    masks = np.stack([((rows == g) * bits).sum(axis=1) for g in range(m)], axis=1)
    sizes = (rows[:, :, None] == np.arange(m)).sum(axis=1)
    n_groups = (sizes > 0).sum(axis=1)
    family = sizes >= 2
    keep = (n_groups >= 3) & family.any(axis=1)
    fam_masks = np.where(family, masks, 0)[keep]
    return -np.sort(-fam_masks, axis=1)[:, : m // 2]  # families first, then 0 padding


def _mask_labels(masks: np.ndarray, m: int) -> Labels:
    raw = list(range(m, 2 * m))  # alone unless in a family
    for f, mask in enumerate(masks):
        for i in range(m):
            if mask >> i & 1:
                raw[i] = f
    return family_labels(raw)


MAX_SEARCH_MODELS = 10  # 115,462 partitions of 10 models: a second; 11 would be ~6x that


def _search(moments: _Moments) -> Labels:
    """The partition with the lowest extended BIC, T^2 + log(n) x parameters + 2 log(number
    of partitions with as many families), among those whose families all agree more than
    independence allows (GLS W > 0), or all singletons.

    T^2 here is n times the generalised least-squares lack of fit with the covariance over
    inputs (equal to Hotelling's T^2 when that covariance is invertible; a tiny ridge keeps
    it so), so partitions are compared on one likelihood scale. A family's W column
    depends only on its member set, so the projected Gram matrix of all 2^m member sets
    is built once and each partition gathers its (F, F) block.
    """
    from scipy.linalg import solve_triangular

    m, n = moments.m, moments.n
    iu, ju = np.triu_indices(m, 1)
    n_pairs = iu.size
    cov = moments.cov + 1e-9 * np.trace(moments.cov) / n_pairs * np.eye(n_pairs)
    whiten = solve_triangular(np.linalg.cholesky(cov), np.eye(n_pairs), lower=True)
    q_a, _ = np.linalg.qr(whiten @ _design(tuple(range(m)))[0])
    project = np.eye(n_pairs) - q_a @ q_a.T
    r = project @ (whiten @ moments.mean)
    # W column of every member set (bit mask), whitened, additive part projected out.
    sets = np.arange(1 << m)
    inside = ((sets[:, None] >> iu) & 1) & ((sets[:, None] >> ju) & 1)  # (2^m, P)
    z = -2.0 * inside @ (project @ whiten).T
    gram_all, rhs_all = z @ z.T, z @ r
    parts = _partitions(m)
    used = parts > 0
    n_used = used.sum(axis=1)
    gram = gram_all[parts[:, :, None], parts[:, None, :]] + np.eye(m // 2) * ~used[:, None, :]
    rhs = rhs_all[parts]
    w = np.linalg.solve(gram, rhs[..., None])[..., 0]
    t2 = n * (float(r @ r) - np.sum(w * rhs, axis=1))
    # Extended BIC (Chen and Chen, 2008): + 2 log(number of partitions with as many
    # families), or the best of thousands of same-sized partitions overfits by chance.
    log_count = np.log(np.maximum(np.bincount(n_used, minlength=m // 2 + 1), 1))
    penalty = math.log(n)
    bic = t2 + penalty * (m + n_used) + 2 * log_count[n_used]
    bic[np.any(used & (w <= 0), axis=1)] = np.inf
    k = int(np.argmin(bic)) if len(bic) else 0
    if len(bic) == 0 or bic[k] >= n * float(r @ r) + penalty * m:
        return tuple(range(m))
    return _mask_labels(parts[k], m)


def _detect(moments: _Moments, alpha: float) -> tuple[Labels, _LackOfFit]:
    """The groups: `_search` for up to MAX_SEARCH_MODELS models, else `_greedy`."""
    if moments.m <= MAX_SEARCH_MODELS:
        labels = _search(moments)
        return labels, _lack_of_fit(moments, labels)
    return _greedy(moments, alpha)


def _greedy(moments: _Moments, alpha: float) -> tuple[Labels, _LackOfFit]:
    """Greedy agglomeration (a heuristic for many models): merge the two groups whose
    merged family model has the lowest BIC, while the current model lacks fit at
    `alpha`, the two groups agree more than the current model predicts, and BIC
    improves. It can be trapped where the exhaustive search is not."""
    m = moments.m
    labels: Labels = tuple(range(m))
    current = _lack_of_fit(moments, labels)
    penalty = math.log(moments.n)
    score = current.statistic + penalty * current.rank
    iu, ju = np.triu_indices(m, 1)
    while current.p_value < alpha:
        residual = moments.mean - _fitted(moments, labels)
        lab = np.asarray(labels)
        best: tuple[float, Labels, _LackOfFit] | None = None
        for a, b in itertools.combinations(range(max(labels) + 1), 2):
            cross = ((lab[iu] == a) & (lab[ju] == b)) | ((lab[iu] == b) & (lab[ju] == a))
            if residual[cross].mean() >= 0:
                continue  # they do not agree more than the current model allows
            merged = _merge(labels, a, b)
            fit = _lack_of_fit(moments, merged)
            if fit.df[0] < 1:
                continue  # keep a model that can still be tested
            candidate = fit.statistic + penalty * fit.rank
            if best is None or candidate < best[0]:
                best = (candidate, merged, fit)
        if best is None or best[0] >= score:
            break
        score, labels, current = best
    return labels, current


@dataclasses.dataclass(frozen=True, eq=False)  # holds arrays
class Diagnosis:
    """Whether the models' errors look independent, and which models agree too much.

    Attributes:
        statistic: Hotelling's T^2 of the off-additive part of the per-input distances.
        df: (numerator, denominator) degrees of freedom of its F null; numerator
            m(m-3)/2 unless the covariance over inputs is rank deficient; 0 for 3 models,
            which cannot be tested (the additive fit is exact).
        p_value: of independence (additive E D); 1.0 when untestable.
        alpha: level of the test and of the group search.
        excess: (m, m) mean D minus its additive least-squares fit. Negative: the pair
            agrees more than independence allows (shared errors); rows sum to zero.
        labels: the groups found (all singletons when independence is not rejected), or
            the groups given.
        groups: the groups of two or more models, as tuples of model indices.
        family_statistic, family_p_value: the same test of the family model with
            `labels` (equal to the independence test when no groups were found). A small
            p-value says the found families do not explain all the agreement.
        n_samples: inputs the test used.
        mirror: when the groups found are one family F and models alone, the others:
            "F shares an error" and "the others share one" fit D equally well (the truth
            could be y + u_F), so the data cannot say which side is the family; `groups`
            holds the side whose pairs agree more. None otherwise.
        given: whether `labels` were given rather than found.
        explained: share of the excess (its sum of squares) the family model with
            `labels` accounts for; 0 without groups.
    """

    statistic: float
    df: tuple[int, int]
    p_value: float
    alpha: float
    excess: np.ndarray
    labels: Labels
    groups: tuple[tuple[int, ...], ...]
    family_statistic: float
    family_p_value: float
    n_samples: int
    mirror: tuple[int, ...] | None = None
    given: bool = False
    explained: float = 0.0

    @property
    def rejected(self) -> bool:
        """Independence rejected at `alpha`."""
        return self.p_value < self.alpha

    @property
    def testable(self) -> bool:
        """False with 3 models: the additive fit of D is exact, nothing is left to test."""
        return self.df[0] > 0

    @property
    def identified_labels(self) -> Labels:
        """The groups as far as the data identify them: with a `mirror`, the two sides
        {family, mirror} (which of them shares an error is unknown); else `labels`."""
        if self.mirror is None:
            return self.labels
        return family_labels([i in self.mirror for i in range(len(self.labels))])

    def to_text(self, models: Sequence[str] | None = None) -> str:
        """A few lines for a terminal or a report."""
        names = list(models) if models is not None else [str(i) for i in range(len(self.labels))]
        if not self.testable:
            return (
                f"Independence test: not possible with {len(names)} models (the additive fit "
                "of D is exact); Smoothie's independence assumption is taken on trust."
            )
        verdict = "REJECTED" if self.rejected else "not rejected"
        lines = [
            f"Independence test (Hotelling T^2 on the non-additive part of D, "
            f"{self.n_samples} inputs): T^2 = {self.statistic:.1f}, "
            f"df = {self.df}, p = {_p_text(self.p_value)}: independence {verdict} at "
            f"alpha = {self.alpha:g}."
        ]
        if self.groups:
            text = "; ".join("{" + ", ".join(names[i] for i in g) + "}" for g in self.groups)
            if self.given:
                lines.append(f"Families given: {text}.")
            else:
                lines.append(f"Models that agree more than independence allows: {text}.")
            if self.mirror is not None:
                other = "{" + ", ".join(names[i] for i in self.mirror) + "}"
                lines.append(
                    f"Equally well explained by {other} sharing an error instead: which "
                    "side is the family cannot be told from the data alone."
                )
            lines.append(
                f"Family model with these groups: explains {100 * self.explained:.0f}% of "
                f"the excess; T^2 = {self.family_statistic:.1f}, "
                f"p = {_p_text(self.family_p_value)}"
                + (
                    " (they do not explain all the agreement)."
                    if self.family_p_value < self.alpha
                    else " (no remaining lack of fit)."
                )
            )
        elif self.rejected and not self.given:
            lines.append("No grouping of the models explains the lack of fit better (BIC).")
        return "\n".join(lines)


def _p_text(p: float) -> str:
    return "< 1e-12" if p < 1e-12 else f"{p:.3g}"


def _within_mean(excess: np.ndarray, members: Sequence[int]) -> float:
    idx = np.asarray(members)
    block = excess[np.ix_(idx, idx)]
    return float(block[np.triu_indices(idx.size, 1)].mean())


def _one_family(m: int, family: Sequence[int]) -> Labels:
    raw = [-1 if i in family else i for i in range(m)]
    first: dict[int, int] = {}
    return tuple(first.setdefault(label, len(first)) for label in raw)


def _check_alpha(alpha: float) -> float:
    if isinstance(alpha, bool) or not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise ValueError(f"alpha must be a number in (0, 1), got {alpha!r}")
    return float(alpha)


def _check_enough_samples(n: int, m: int) -> None:
    needed = m * (m - 3) // 2 + 1
    if n <= needed:
        raise ValueError(
            f"the independence test needs more than {needed} inputs for {m} models "
            f"(m(m-3)/2 + 1: it estimates a covariance of the non-additive part); got {n}"
        )


def diagnose(
    embeddings: Float[Array, "n_samples n_models dim"],
    *,
    alpha: float = DEFAULT_ALPHA,
    families: Families | None = None,
    models: Sequence[str] | None = None,
) -> Diagnosis:
    """Tests Smoothie's independence assumption and names the groups that break it.

    The per-input distances are computed jitted; the test and group search are small
    host-side computations on their mean and covariance over inputs.

    Args:
        embeddings: embedding of each model's output for each input.
        alpha: level of the test; groups are searched only when it rejects, so under
            independence groups are reported in at most a fraction alpha of data sets.
        families: known families (see `family_labels`): then no search; the family test
            checks whether they explain the agreement.
        models: model names, for a mapping `families`.

    Returns:
        A `Diagnosis`; `diagnosis.to_text(models)` explains it.

    >>> x = jax.random.normal(jax.random.key(0), (200, 5, 8))
    >>> diagnose(x).groups
    ()
    """
    embeddings = _validate.check_embeddings(embeddings)
    alpha = _check_alpha(alpha)
    n, m, _ = embeddings.shape
    _check_enough_samples(n, m)
    moments = _moments(embeddings)
    singletons: Labels = tuple(range(m))
    base = _lack_of_fit(moments, singletons)
    excess = _to_matrix(moments.mean - _fitted(moments, singletons), m)
    labels, fam = singletons, base
    if families is not None:
        labels = family_labels(families, models=models, n_models=m)
        fam = _lack_of_fit(moments, labels)
    elif base.p_value < alpha:
        labels, fam = _detect(moments, alpha)
    groups = tuple(tuple(g) for g in _groups(labels) if len(g) >= 2)
    mirror = None
    if families is None and len(groups) == 1 and len(groups[0]) < m:
        # One family F and singletons fit D exactly as well as F's complement as the
        # family (y + u_F is then the truth and the others share -u_F): report the side
        # whose pairs agree more, and the other as its mirror.
        family = groups[0]
        rest = tuple(i for i in range(m) if i not in family)
        if len(rest) >= 2 and _within_mean(excess, rest) < _within_mean(excess, family):
            family, rest = rest, family
            labels = _one_family(m, family)
            groups = (family,)
        mirror = rest
    return Diagnosis(
        statistic=base.statistic,
        df=base.df,
        p_value=base.p_value,
        alpha=alpha,
        excess=excess,
        labels=labels,
        groups=groups,
        family_statistic=fam.statistic,
        family_p_value=fam.p_value,
        n_samples=n,
        mirror=mirror,
        given=families is not None,
        explained=_explained(moments, labels),
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
    groups = _groups(labels)
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
        return self.theta / jnp.sum(self.theta)

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


def _fit_from_mean(mean: np.ndarray, labels: Labels, dim: int, eps: float) -> FamilySmoothie:
    m = len(labels)
    x, families = _design(labels)
    groups = _groups(labels)
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
    embeddings: Float[Array, "n_samples n_models dim"],
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

    >>> x = jax.random.normal(jax.random.key(0), (100, 4, 8))
    >>> fit_families(x, [0, 0, 1, 2]).theta.shape
    (4,)
    """
    embeddings = _validate.check_embeddings(embeddings)
    eps = float(_validate.check_eps(eps))
    _, m, dim = embeddings.shape
    labels = family_labels(families, models=models, n_models=m)
    mean = np.asarray(_pair_vectors(embeddings), np.float64).mean(axis=0)
    return _fit_from_mean(mean, labels, dim, eps)


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
    return " | ".join(", ".join(names[i] for i in g) for g in _groups(labels))


def route_families(
    embeddings: Float[Array, "n_samples n_models dim"],
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
    embeddings = _validate.check_embeddings(embeddings)
    m = embeddings.shape[1]
    if models is not None and len(models) != m:
        raise ValueError(f"models has {len(models)} names for {m} models")
    names = list(models) if models is not None else [str(i) for i in range(m)]
    default_index = _check_default(default, names)
    diagnosis = diagnose(embeddings, alpha=alpha, families=families, models=models)
    labels = diagnosis.labels if diagnosis.given else diagnosis.identified_labels
    fit = fit_families(embeddings, labels, eps=eps)
    n_groups = len(_groups(labels))
    fits = diagnosis.family_p_value >= alpha
    source = "given" if diagnosis.given else "found"
    groups_text = f"{n_groups} groups ({source}: {_group_text(labels, names)})"

    if n_groups == m and not diagnosis.rejected:
        choice = int(fit.route())
        why = (
            "independence not rejected; plain Smoothie-Global."
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
            f"{groups_text}; the family model fits (p = {_p_text(diagnosis.family_p_value)}) "
            f"and the best model is {how}.",
            diagnosis,
            fit,
        )
    if strict and diagnosis.rejected:
        why = f"independence rejected, strict: no ranking across the {groups_text}"
    elif not fits:
        why = (
            f"the model with the {groups_text} does not fit "
            f"(p = {_p_text(diagnosis.family_p_value)}): the vote is confounded"
        )
    else:
        why = f"{groups_text}: which group is better is not identified (3 independent needed)"
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
    for g in _groups(labels):
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
    if isinstance(default, bool) or not isinstance(default, (int, np.integer)):
        raise ValueError(f"default must be a model index or name, got {default!r}")
    if not 0 <= default < len(names):
        raise ValueError(f"default index {default} is outside [0, {len(names)})")
    return int(default)


# ---------------------------------------------------------------- simulation


@functools.partial(jax.jit, static_argnames=("n_samples", "dim"))
def simulate_families(
    key: PRNGKeyArray,
    individual_var: Float[Array, " n_models"],
    family_var: Float[Array, " n_families"],
    families: Int[Array, " n_models"] | Sequence[int],
    *,
    n_samples: int,
    dim: int,
    heterogeneity: float = 0.0,
) -> Float[Array, "n_samples n_models dim"]:
    """Outputs lambda_i = y + u_f(i) + e_i: truth, a shared family error, an individual one
    (jitted; `n_samples` and `dim` are static).

    y ~ N(0, I), u_f ~ N(0, family_var[f] I), e_i ~ N(0, individual_var[i] I), per input.
    Model i's own squared error is dim (individual_var[i] + family_var[f(i)]).

    Args:
        key: PRNG key.
        individual_var: per-axis variance of each model's own error.
        family_var: per-axis variance of each family's shared error (0: no family).
        families: family index of each model, into `family_var`.
        n_samples: inputs.
        dim: embedding dimension.
        heterogeneity: sd of a log-normal factor scaling every variance per input (the
            inputs differ in difficulty; additivity of E D still holds).

    >>> simulate_families(jax.random.key(0), jnp.ones(3), jnp.ones(2), [0, 0, 1],
    ...                   n_samples=10, dim=4).shape
    (10, 3, 4)
    """
    idx = jnp.asarray(families)
    k_y, k_u, k_e, k_h = jax.random.split(key, 4)
    n_fam = family_var.shape[0]
    m = individual_var.shape[0]
    scale = jnp.exp(heterogeneity * jax.random.normal(k_h, (n_samples, 1, 1)))
    y = jax.random.normal(k_y, (n_samples, 1, dim))
    u = jnp.sqrt(family_var)[None, :, None] * jax.random.normal(k_u, (n_samples, n_fam, dim))
    e = jnp.sqrt(individual_var)[None, :, None] * jax.random.normal(k_e, (n_samples, m, dim))
    return y + jnp.sqrt(scale) * (u[:, idx] + e)


# ---------------------------------------------------------------- evaluation rows


def evaluate_families(
    outputs: Float[Array, "n_samples n_models dim"],
    scores: Float[np.ndarray, "n_samples n_models"],
    models: Sequence[str],
    *,
    ensembles: Sequence[Sequence[int]],
    labelled: Sequence[Sequence[int]],
    evaluated: Sequence[Sequence[int]],
    families: Families | None = None,
    alpha: float = DEFAULT_POLICY_ALPHA,
) -> dict:
    """Family-aware rows for the paper's protocol, on `evaluate`'s own splits.

    Pass an `EvaluationResult`'s `ensembles`, `labelled` and `evaluated`: every method
    is then fitted on the same inputs as Smoothie-Global there (labelled and held-out,
    unlabelled to it) and scored on the same held-out inputs, 100 x mean score.

    Returns:
        {"rows": {name: per-ensemble scores}, "ensembles": per-ensemble detail (the
        diagnosis, the groups, what each policy did)}. Rows, for the groups found and,
        with `families`, for the groups given: "Smoothie-Families (found)" (the family
        fit's best model, whatever the checks say), "Smoothie-Safe (found)"
        (`route_families`) and "Smoothie-Strict (found)" (`route_families(strict=True)`).
        A stratified fallback is scored by its expectation.
    """
    outputs = _validate.check_embeddings(outputs)
    scores = np.asarray(scores, np.float64)
    models = tuple(models)
    labels_all = family_labels(families, models=models) if families is not None else None
    rows: dict[str, list[float]] = {}
    detail = []
    for ens, lab, held in zip(ensembles, labelled, evaluated, strict=True):
        ens = np.asarray(ens)
        kept = np.sort(np.concatenate([np.asarray(lab, int), np.asarray(held, int)]))
        emb = jnp.take(jnp.take(outputs, jnp.asarray(kept), axis=0), jnp.asarray(ens), axis=1)
        held_means = 100.0 * scores[np.asarray(held, int)][:, ens].mean(axis=0)
        names = [models[i] for i in ens]
        record: dict = {"models": names}
        runs: list[tuple[str, list | None]] = [("found", None)]
        if labels_all is not None:
            runs.append(("given", [labels_all[i] for i in ens]))
        for source, fams in runs:
            safe = route_families(emb, families=fams, models=names, alpha=alpha)
            strict = route_families(emb, families=fams, models=names, alpha=alpha, strict=True)
            d = safe.diagnosis
            if source == "found":
                record["p_value"] = d.p_value
            record[source] = {
                "groups": [[names[i] for i in g] for g in d.groups],
                "mirror": None if d.mirror is None else [names[i] for i in d.mirror],
                "family_p_value": d.family_p_value,
                "explained": d.explained,
                "method": safe.method,
                "reason": safe.reason,
                "strict_method": strict.method,
            }
            for row, value in (
                (f"Smoothie-Families ({source})", float(held_means[int(safe.fit.route())])),
                (f"Smoothie-Safe ({source})", safe.expected(held_means)),
                (f"Smoothie-Strict ({source})", strict.expected(held_means)),
            ):
                rows.setdefault(row, []).append(value)
        detail.append(record)
    return {"rows": {k: tuple(v) for k, v in rows.items()}, "ensembles": detail}
