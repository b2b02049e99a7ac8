"""Answer-level consensus: the paper's triplet model on agreement of final answers.

Where outputs end in a checkable answer (maths, trivia, multiple choice), agreement of
answers says more than agreement of whole texts. Model: model i's answer is right with
probability p_i, independently across models, and two wrong answers rarely coincide.
Then two models agree with probability A_ij = p_i p_j, so -log A_ij = delta_i + delta_j
with delta_i = -log p_i: the additive structure of Smoothie's distances, and the same
triplet closed form (`_estimator.triplets`) gives each model's accuracy.

Families that share wrong answers break independence: their members agree more than
p_i p_j allows. `fit_accuracy` finds such pairs (a one-sided binomial test of each pair's
agreements against the fitted p_i p_j), leaves them out of the triplets and refits, so a
family cannot vouch for itself; `vote` then counts a family's identical answers once.

Codes come from `data.answer_codes`: (n_samples, n_models) ints, equal in a row for the
same answer, -1 where none was extracted (it agrees with nothing).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from ._estimator import triplets
from ._validate import ArrayLike

FAMILY_Z = 3.0  # one-sided z of a pair's excess agreement that marks it as a family pair
_FLOOR = 1e-3  # accuracies are kept in [_FLOOR, 1 - _FLOOR]: log-odds stay finite


def agreements(
    codes: Int[ArrayLike, "n_samples n_models"],
) -> Float[Array, "n_samples n_models n_models"]:
    """1.0 where models i and j gave the same answer to input i (never on the diagonal,
    never where an answer is missing), else 0.

    >>> agreements(jnp.array([[0, 0, 1, -1]]))[0, 0]
    Array([0., 1., 0., 0.], dtype=float32)
    """
    codes = jnp.asarray(codes)
    same = (codes[:, :, None] == codes[:, None, :]) & (codes[:, :, None] >= 0)
    m = codes.shape[-1]
    return jnp.where(jnp.eye(m, dtype=bool), False, same).astype(jnp.float32)


def accuracy_from_agreement(
    rate: Float[ArrayLike, "*batch n_models n_models"],
    count: Float[ArrayLike, "*batch n_models n_models"],
    pairs: Float[ArrayLike, "*batch n_models n_models"] | None = None,
) -> Float[Array, "*batch n_models"]:
    """Each model's accuracy from pairwise agreement rates, by the triplet closed form.

    Args:
        rate: mean agreement of each pair (over inputs or a neighbourhood).
        count: inputs behind each rate; rates are shrunk towards 1/2 by one pseudo-input
            each way, so a pair that never agreed still has a finite -log rate.
        pairs: > 0 for the pairs to use (e.g. all but family pairs); None: every pair.

    Returns:
        p_i in [0.001, 0.999]; where model i has no complete triplet, 0.5.

    >>> p = jnp.array([0.9, 0.8, 0.5])
    >>> a = p[:, None] * p[None, :]
    >>> [round(float(x), 3) for x in accuracy_from_agreement(a, jnp.full((3, 3), 1e6))]
    [0.9, 0.8, 0.5]
    """
    smoothed = (rate * count + 0.5) / (count + 1.0)
    delta, w = triplets(-jnp.log(smoothed), pairs)
    p = jnp.exp(-jnp.maximum(delta, 0.0))
    return jnp.clip(jnp.where(w > 0, p, 0.5), _FLOOR, 1 - _FLOOR)


def family_pairs(
    rate: Float[ArrayLike, "n_models n_models"],
    count: Float[ArrayLike, "n_models n_models"],
    accuracy: Float[ArrayLike, " n_models"],
    *,
    z: float = FAMILY_Z,
) -> Bool[Array, "n_models n_models"]:
    """Pairs that agree more than independence allows: the binomial z of their agreements
    against p_i p_j exceeds `z` (symmetric, False on the diagonal)."""
    expected = accuracy[:, None] * accuracy[None, :]
    sd = jnp.sqrt(jnp.maximum(count * expected * (1 - expected), 1e-12))
    excess = (rate - expected) * count / sd
    m = rate.shape[-1]
    return (excess > z) & ~jnp.eye(m, dtype=bool)


def fit_accuracy(
    codes: Int[ArrayLike, "n_samples n_models"], *, z: float = FAMILY_Z, rounds: int = 2
) -> tuple[Float[Array, " n_models"], Bool[Array, "n_models n_models"]]:
    """Each model's accuracy over all inputs, families left out of each other's triplets.

    Args:
        codes: answer codes (see the module docstring).
        z: the family test's threshold (`family_pairs`).
        rounds: refits after finding family pairs (each round may find more).

    Returns:
        (accuracy (m,), family pairs (m, m) bool).

    >>> codes = jnp.array([[0, 0, 0, 1], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]])
    >>> [round(float(x), 2) for x in fit_accuracy(codes)[0]]
    [0.99, 0.71, 0.71, 0.71]
    """
    same = agreements(codes)
    count = jnp.full(same.shape[1:], float(same.shape[0]))
    rate = jnp.mean(same, axis=0)
    family = jnp.zeros(rate.shape, bool)
    p = accuracy_from_agreement(rate, count)
    for _ in range(rounds):
        family = family | family_pairs(rate, count, p, z=z)
        p = accuracy_from_agreement(rate, count, (~family).astype(jnp.float32))
    return p, family


def local_accuracy(
    codes: Int[ArrayLike, "n_samples n_models"],
    neighbours: Int[ArrayLike, "n_queries k"],
    family: Bool[ArrayLike, "n_models n_models"] | None = None,
) -> Float[Array, "n_queries n_models"]:
    """Each model's accuracy near each query: agreement rates over its neighbours (the
    Smoothie-Local smoothing), family pairs left out as in `fit_accuracy`."""
    same = agreements(codes)
    rate = jnp.mean(same[jnp.asarray(neighbours)], axis=1)
    count = jnp.full(rate.shape, float(neighbours.shape[1]))
    pairs = None if family is None else jnp.broadcast_to(~family, rate.shape).astype(jnp.float32)
    return accuracy_from_agreement(rate, count, pairs)


def vote(
    codes: Int[ArrayLike, "n_samples n_models"],
    accuracy: Float[ArrayLike, "*batch n_models"],
    family: Bool[ArrayLike, "n_models n_models"] | None = None,
) -> Float[Array, "n_samples n_models"]:
    """Each output's support: the summed log-odds of the models giving the same answer.

    A model's vote weighs log(p / (1 - p)), the weight of an independent voter of
    accuracy p (ties with many wrong answers: a wrong answer rarely wins twice). Among
    members of one family that gave the same answer only the heaviest vote counts, so a
    family cannot outvote the rest. A missing answer has no support (-inf).
    """
    codes = jnp.asarray(codes)
    weight = jnp.broadcast_to(jnp.log(accuracy) - jnp.log1p(-accuracy), codes.shape)
    same = agreements(codes) + jnp.eye(codes.shape[1])  # a model supports its own answer
    if family is not None:
        # Drop a voter where a heavier (or equal and earlier) family member voted the same.
        fam = jnp.asarray(family)
        heavier = (weight[:, None, :] > weight[:, :, None]) | (
            (weight[:, None, :] == weight[:, :, None])
            & (jnp.arange(codes.shape[1])[None, :] < jnp.arange(codes.shape[1])[:, None])[None]
        )
        shadowed = jnp.any(fam[None] & heavier & (agreements(codes) > 0), axis=-1)
        weight = jnp.where(shadowed, 0.0, weight)
    support = jnp.einsum("nij,nj->ni", same, weight, precision=jax.lax.Precision.HIGHEST)
    return jnp.where(codes >= 0, support, -jnp.inf)
