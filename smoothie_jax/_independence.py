"""The independence test (Hotelling T^2 on the non-additive part of D) and the search
for the groups of models that break it."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from collections.abc import Sequence

import numpy as np
from jaxtyping import Bool, Float

from . import _validate
from ._batch import Batch
from ._family_design import (
    COV_TOL,
    DEFAULT_ALPHA,
    DEFAULT_POLICY_ALPHA,
    Families,
    Labels,
    Moments,
    complement,
    design_matrix,
    family_labels,
    fitted,
    groups_of,
    moments_from_distances,
    moments_of,
    to_matrix,
)

# ---------------------------------------------------------------- the test


@dataclasses.dataclass(frozen=True)
class _LackOfFit:
    statistic: float  # Hotelling T^2
    df: tuple[int, int]
    p_value: float
    rank: int  # parameters the design identifies


def _lack_of_fit(moments: Moments, labels: Labels) -> _LackOfFit:
    """Hotelling's T^2 that the part of E vec(D) off the design's span is zero."""
    from scipy.stats import f as f_dist

    q, rank = complement(labels)
    n = moments.n
    if q.shape[1] == 0:
        return _LackOfFit(0.0, (0, n), 1.0, rank)
    z = q.T @ moments.mean
    eigval, eigvec = np.linalg.eigh(q.T @ moments.cov @ q)
    # Directions with no spread over inputs carry no test: drop them (rank-deficient
    # covariance, e.g. two models that always answer identically).
    keep = eigval > COV_TOL * max(float(eigval.max()), np.finfo(float).tiny)
    p = int(keep.sum())
    if p == 0 or n - p < 1:
        return _LackOfFit(0.0, (p, max(n - p, 0)), 1.0, rank)
    proj = eigvec[:, keep].T @ z
    t2 = float(n * np.sum(proj * proj / eigval[keep]))
    f_stat = (n - p) / (p * (n - 1)) * t2
    return _LackOfFit(t2, (p, n - p), float(f_dist.sf(f_stat, p, n - p)), rank)


def _explained(moments: Moments, labels: Labels) -> float:
    """Share of the additive fit's residual sum of squares the family model removes."""
    base = np.sum((moments.mean - fitted(moments, tuple(range(moments.m)))) ** 2)
    left = np.sum((moments.mean - fitted(moments, labels)) ** 2)
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


def _search(moments: Moments) -> Labels:
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
    q_a, _ = np.linalg.qr(whiten @ design_matrix(tuple(range(m)))[0])
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


def _detect(moments: Moments, alpha: float) -> tuple[Labels, _LackOfFit]:
    """The groups: `_search` for up to MAX_SEARCH_MODELS models, else `_greedy`."""
    if moments.m <= MAX_SEARCH_MODELS:
        labels = _search(moments)
        return labels, _lack_of_fit(moments, labels)
    return _greedy(moments, alpha)


def _greedy(moments: Moments, alpha: float) -> tuple[Labels, _LackOfFit]:
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
        residual = moments.mean - fitted(moments, labels)
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
            f"df = {self.df}, p = {p_text(self.p_value)}: independence {verdict} at "
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
                f"p = {p_text(self.family_p_value)}"
                + (
                    " (they do not explain all the agreement)."
                    if self.family_p_value < self.alpha
                    else " (no remaining lack of fit)."
                )
            )
        elif self.rejected and not self.given:
            lines.append(
                "The lack of fit is spread over the pairs of models: no grouping into "
                "families explains it better (BIC), so no family is reported."
            )
        return "\n".join(lines)


def p_text(p: float) -> str:
    return "< 1e-12" if p < 1e-12 else f"{p:.3g}"


def _within_mean(excess: np.ndarray, members: Sequence[int]) -> float:
    idx = np.asarray(members)
    block = excess[np.ix_(idx, idx)]
    return float(block[np.triu_indices(idx.size, 1)].mean())


def _one_family(m: int, family: Sequence[int]) -> Labels:
    raw = [-1 if i in family else i for i in range(m)]
    first: dict[int, int] = {}
    return tuple(first.setdefault(label, len(first)) for label in raw)


def check_alpha(alpha: float) -> float:
    if not (_validate.is_number(alpha) and 0 < alpha < 1):
        raise ValueError(f"alpha must be a number in (0, 1), got {alpha!r}")
    return float(alpha)


def check_enough_samples(n: int, m: int) -> None:
    needed = m * (m - 3) // 2 + 1
    if n <= needed:
        raise ValueError(
            f"the independence test needs more than {needed} inputs for {m} models "
            f"(m(m-3)/2 + 1: it estimates a covariance of the non-additive part); got {n}"
        )


def diagnose(
    embeddings: Float[_validate.ArrayLike, "n_samples n_models dim"],
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

    >>> import jax

    >>> x = jax.random.normal(jax.random.key(0), (200, 5, 8))
    >>> diagnose(x).groups
    ()
    """
    embeddings = _validate.check_embeddings(embeddings)
    alpha = check_alpha(alpha)
    check_enough_samples(embeddings.shape[0], embeddings.shape[1])
    return diagnose_moments(moments_of(embeddings), alpha=alpha, families=families, models=models)


def diagnose_moments(
    moments: Moments,
    *,
    alpha: float,
    families: Families | None = None,
    models: Sequence[str] | None = None,
) -> Diagnosis:
    """`diagnose` from the pair-distance moments, for callers that need them again."""
    n, m = moments.n, moments.m
    singletons: Labels = tuple(range(m))
    base = _lack_of_fit(moments, singletons)
    excess = to_matrix(moments.mean - fitted(moments, singletons), m)
    labels, fam = singletons, base
    if families is not None:
        labels = family_labels(families, models=models, n_models=m)
        fam = _lack_of_fit(moments, labels)
    elif base.p_value < alpha:
        labels, fam = _detect(moments, alpha)
    groups = tuple(tuple(g) for g in groups_of(labels) if len(g) >= 2)
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


def can_diagnose(n: int, m: int) -> bool:
    """The independence test needs more than m(m-3)/2 + 1 inputs (its residual df)."""
    return n > m * (m - 3) // 2 + 1


def diagnose_batch(
    batch: Batch,
    *,
    alpha: float = DEFAULT_ALPHA,
    families: Families | None = None,
    models: Sequence[str] | None = None,
) -> Diagnosis | None:
    """`diagnose_answered` on a validated batch, from its D (nothing recomputed)."""
    distances = batch.distances
    if batch.observed is not None:
        distances = distances[np.flatnonzero(np.asarray(batch.observed).all(1))]
    if not can_diagnose(distances.shape[0], batch.n_models):
        return None
    moments = moments_from_distances(distances, batch.dim)
    return diagnose_moments(moments, alpha=check_alpha(alpha), families=families, models=models)


def diagnose_answered(
    embeddings: Float[_validate.ArrayLike, "n_samples n_models dim"],
    observed: Bool[_validate.ArrayLike, "n_samples n_models"] | None = None,
    *,
    alpha: float = DEFAULT_ALPHA,
    families: Families | None = None,
    models: Sequence[str] | None = None,
) -> Diagnosis | None:
    """`diagnose` on the inputs every model answered (`observed` all True), or None when
    they are too few to test (`can_diagnose`)."""
    rows = (
        embeddings if observed is None else embeddings[np.flatnonzero(np.asarray(observed).all(1))]
    )
    if not can_diagnose(rows.shape[0], rows.shape[1]):
        return None
    return diagnose(rows, alpha=alpha, families=families, models=models)


def confounded(
    embeddings: Float[_validate.ArrayLike, "n_samples n_models dim"],
    observed: Bool[_validate.ArrayLike, "n_samples n_models"] | None = None,
    *,
    alpha: float = DEFAULT_POLICY_ALPHA,
) -> bool:
    """Whether `diagnose` finds families among the inputs every model answered. Too few
    inputs to test: False (the consensus is trusted, as the paper does)."""
    diagnosis = diagnose_answered(embeddings, observed, alpha=alpha)
    return diagnosis is not None and len(diagnosis.groups) > 0
