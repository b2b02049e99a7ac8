"""Answer-level consensus: the paper's triplet model on agreement of final answers.

Where outputs end in a checkable answer (maths, trivia, multiple choice), agreement of
answers says more than agreement of whole texts. Model: model i's answer is right with
probability p_i, independently across models, and two wrong answers rarely coincide.
Then two models agree with probability A_ij = p_i p_j, so -log A_ij = delta_i + delta_j
with delta_i = -log p_i: Smoothie's additive structure, solved by least squares over the
pairs (with every pair, the triplet closed form).

Families that share wrong answers break independence: their members agree more than
p_i p_j allows. `answer_families` finds them greedily (the pair whose agreement exceeds
the additive fit by most bootstrap standard errors, if beyond `FAMILY_Z`; pairs of a
family are then left out of the fit and the search repeats), so a family cannot vouch for
itself, and in `answer_vote` it casts one vote. With four models a family pair and its
complement leave the same residual; the pair that agrees more is taken, as the embedding
diagnosis does (`families.Diagnosis.mirror`).

Codes come from `data.answer_codes`: (n_samples, n_models) ints, equal in a row for the
same answer, -1 where none was extracted (it agrees with nothing).

Measured on GSM8K (14 models, 40 ensembles of 5; `benchmarks/router_dev.py`): test-time
G 1.04 against plain majority vote's 1.02; with one family member's wrong answers copied
to its sibling, 0.97 where majority vote falls to -0.51 (docs/results/routing.md).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from ._validate import ArrayLike

FAMILY_Z = 5.0  # bootstrap z of a pair's excess agreement that makes it a family
MAX_FAMILIES = 2  # merges of the greedy search (ensembles of 4 to 10 models)
BOOTSTRAP = 100  # resamples of the inputs for the residuals' standard errors
_MIRROR_Z = 0.5  # pairs within this z of the most excessive one tie (mirror pairs)
_FLOOR = 1e-3  # agreement rates and accuracies are kept in [_FLOOR, 1 - _FLOOR]


def agreements(
    codes: Int[ArrayLike, "n_samples n_models"],
) -> Float[Array, "n_samples n_models n_models"]:
    """1.0 where models i and j gave the same answer to an input (a model agrees with
    itself), 0 where they differ or either gave none.

    >>> agreements(jnp.array([[0, 0, 1, -1]]))[0, 0]
    Array([1., 1., 0., 0.], dtype=float32)
    """
    codes = jnp.asarray(codes)
    same = (codes[:, :, None] == codes[:, None, :]) & (codes[:, :, None] >= 0)
    return same.astype(jnp.float32)


def _pair_fit(rates: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """delta by least squares on -log agreement over pairs of different families, and the
    residual of every such pair (NaN elsewhere); None where delta is not identified."""
    m = rates.shape[-1]
    iu, ju = np.triu_indices(m, 1)
    cross = labels[iu] != labels[ju]
    design = np.zeros((int(cross.sum()), m))
    design[np.arange(design.shape[0]), iu[cross]] = 1.0
    design[np.arange(design.shape[0]), ju[cross]] = 1.0
    if design.shape[0] == 0 or np.linalg.matrix_rank(design) < m:
        return None
    y = -np.log(np.clip(rates[..., iu[cross], ju[cross]], _FLOOR, 1.0))
    delta = y @ np.linalg.pinv(design).T
    residual = np.full(rates.shape[:-2] + (len(iu),), np.nan)
    residual[..., cross] = y - (delta[..., iu[cross]] + delta[..., ju[cross]])
    return delta, residual


def answer_families(
    codes: Int[ArrayLike, "n_samples n_models"],
    *,
    z: float = FAMILY_Z,
    max_families: int = MAX_FAMILIES,
    bootstrap: int = BOOTSTRAP,
    seed: int = 0,
) -> np.ndarray:
    """Families of models that agree on answers more than independence allows.

    Args:
        codes: answer codes (see the module docstring).
        z: how many bootstrap standard errors a pair's excess agreement must reach.
        max_families: merges at most (each joins the two families of one pair).
        bootstrap: resamples of the inputs behind the standard errors.
        seed: the resampling's seed.

    Returns:
        (n_models,) family labels 0, 1, ...; models that share one are a family.

    >>> right = np.random.default_rng(0).random((400, 4)) < 0.8
    >>> codes = np.where(right, 0, 1 + np.arange(4))  # each model's own wrong answer
    >>> codes[:, 3] = np.where(right[:, 2], codes[:, 3], codes[:, 2])  # 3 repeats 2's
    >>> answer_families(codes).tolist()
    [0, 1, 2, 2]
    """
    same = np.asarray(agreements(codes), np.float64)
    n, m = same.shape[:2]
    rates = same.mean(axis=0)
    weights = np.random.default_rng(seed).multinomial(n, np.full(n, 1 / n), size=bootstrap) / n
    resampled = np.einsum("bn,nij->bij", weights, same)
    labels = np.arange(m)
    iu, ju = np.triu_indices(m, 1)
    for _ in range(max_families):
        fit, fits = _pair_fit(rates, labels), _pair_fit(resampled, labels)
        if fit is None or fits is None:
            break
        excess = fit[1] / (np.std(fits[1], axis=0) + 1e-12)  # negative: agree too much
        if np.all(np.isnan(excess)):
            break
        lowest = np.nanmin(excess)
        ties = np.flatnonzero(excess <= lowest + _MIRROR_Z)
        pick = ties[np.argmax(rates[iu[ties], ju[ties]])]  # of mirror pairs, the closer one
        if lowest > -z:
            break
        merged = np.where(labels == labels[ju[pick]], labels[iu[pick]], labels)
        if _pair_fit(rates, np.unique(merged, return_inverse=True)[1]) is None:
            break  # the merge would leave the accuracies unidentified
        labels = np.unique(merged, return_inverse=True)[1]
    return labels


def answer_accuracy(
    codes: Int[ArrayLike, "n_samples n_models"], families: np.ndarray | None = None
) -> np.ndarray:
    """Each model's accuracy p_i from answer agreement over pairs of different families
    (every pair without `families`), in [0.001, 0.999].

    >>> p = np.array([0.9, 0.8, 0.6])
    >>> right = np.random.default_rng(0).random((20000, 3)) < p
    >>> answer_accuracy(np.where(right, 0, 1 + np.arange(3))).round(1).tolist()
    [0.9, 0.8, 0.6]
    """
    same = np.asarray(agreements(codes), np.float64)
    m = same.shape[1]
    labels = np.arange(m) if families is None else np.asarray(families)
    fit = _pair_fit(same.mean(axis=0), labels) or _pair_fit(same.mean(axis=0), np.arange(m))
    return np.clip(np.exp(-fit[0]), _FLOOR, 1 - _FLOOR)


def answer_vote(
    codes: Int[ArrayLike, "n_samples n_models"],
    accuracy: np.ndarray,
    families: np.ndarray | None = None,
) -> tuple[Int[Array, " n_samples"], Float[Array, "n_samples n_models"]]:
    """The weighted vote: per input, the answer with the most support, and its model.

    A model's vote weighs its log-odds log(p / (1 - p)) (at least 0.001: a weak model
    still breaks a tie), divided by the size of its family, so a family votes once.

    Returns:
        (choice, support): per input the most accurate model among those giving the
        winning answer, and each output's support (-inf where a model gave no answer).
    """
    codes = jnp.asarray(codes)
    weight = np.maximum(np.log(accuracy) - np.log1p(-accuracy), _FLOOR)
    if families is not None:
        labels = np.asarray(families)
        weight = weight / np.bincount(labels)[labels]
    weight = jnp.asarray(weight, jnp.float32)
    support = jnp.einsum("nij,j->ni", agreements(codes), weight)
    support = jnp.where(codes >= 0, support, -jnp.inf)
    winners = support >= jnp.max(support, axis=1, keepdims=True) - 1e-6
    choice = jnp.argmax(jnp.where(winners, weight[None, :], -jnp.inf), axis=1)
    return choice.astype(jnp.int32), support
