"""The Smoothie estimator: quality from the mean squared-distance matrix, in closed form.

Model (Guha et al., 2024): lambda_i = y + e_i with e_i ~ N(0, sigma_i^2 I) independent
across models. Then E||lambda_i - lambda_j||^2 = delta_i + delta_j with
delta_i = E||lambda_i - y||^2, so any triplet gives delta_i = (D_ij + D_ik - D_jk) / 2.
Smoothie averages that over all pairs {j, k} not containing i.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._validate import ArrayLike

DEFAULT_EPS = 1e-6
_HIGHEST = jax.lax.Precision.HIGHEST  # float32 sums on GPU/TPU too (no tf32 rounding of D)


def triplets(
    distances: Float[ArrayLike, "*batch n_models n_models"],
    pairs: Float[ArrayLike, "*batch n_models n_models"] | None = None,
) -> tuple[Float[Array, "*batch n_models"], Float[Array, "*batch n_models"]]:
    """Each model's delta averaged over its triplets, and how many triplets it has.

    A triplet (i, j, k) gives delta_i = (D_ij + D_ik - D_jk) / 2. Where some models did
    not answer some inputs, only triplets whose three pairs were observed count: with
    c_jk = 1 where pair {j, k} has an observed mean distance (`pairs` > 0), in matrix form
    (three matmuls, O(m^3)) A_i = sum_j c_ij D_ij (C^2)_ij, B_i = (C (C * D) C)_ii,
    W_i = (C^3)_ii and delta_i = (2 A_i - B_i) / (2 W_i). With every pair observed
    (`pairs=None`, the mask of ones) this is the closed form of `triplet_delta`.

    Args:
        distances: mean squared distances (any value where a pair is unobserved).
        pairs: weight of each pair's observations, > 0 where observed; None: all pairs.

    Returns:
        (delta, W): delta is 0 where model i has no complete triplet, and W counts model
        i's complete ordered triplets (0: not estimable).
    """
    m = distances.shape[-1]
    off_diagonal = jnp.broadcast_to(~jnp.eye(m, dtype=bool), distances.shape)
    observed = off_diagonal if pairs is None else off_diagonal & (pairs > 0)
    c = observed.astype(distances.dtype)
    d = jnp.where(c > 0, distances, 0.0)  # unobserved entries never enter a sum
    c2 = jnp.matmul(c, c, precision=_HIGHEST)
    a = jnp.sum(c * d * c2, axis=-1)
    b = jnp.sum(jnp.matmul(c, c * d, precision=_HIGHEST) * c, axis=-1)
    w = jnp.sum(c2 * c, axis=-1)
    return jnp.where(w > 0, (2 * a - b) / (2 * jnp.maximum(w, 1)), 0.0), w


def triplet_delta(
    distances: Float[ArrayLike, "*batch n_models n_models"],
    pairs: Float[ArrayLike, "*batch n_models n_models"] | None = None,
) -> Float[Array, "*batch n_models"]:
    """Estimated E||lambda_i - y||^2 for each model, averaged over all triplets.

    With every pair observed, the average over the C(m-1, 2) pairs {j, k} without i of
    (D_ij + D_ik - D_jk) / 2 is ((m - 1) r_i - S) / ((m - 1)(m - 2)), where
    r_i = sum_j D_ij and S = sum_{j<k} D_jk: no loop over triplets (the reference code's
    O(m^3) loop). `triplets` computes it, for any mask of observed pairs.

    Args:
        distances: a mean squared-distance matrix D (symmetric, zero diagonal), or a
            batch of them (leading axes broadcast: one neighbourhood per input).
        pairs: where some pairs are unobserved, > 0 where observed (see `triplets`).

    Returns:
        delta, which can be <= 0 on real data where independence fails (0 where a model
        has no complete triplet).

    >>> triplet_delta(jnp.array([[0.0, 3.0, 4.0], [3.0, 0.0, 5.0], [4.0, 5.0, 0.0]]))
    Array([1., 2., 3.], dtype=float32)
    """
    return triplets(distances, pairs)[0]


def theta_from_distances(
    distances: Float[ArrayLike, "*batch n_models n_models"],
    dim: int,
    *,
    eps: float | Float[ArrayLike, ""] = DEFAULT_EPS,
    pairs: Float[ArrayLike, "*batch n_models n_models"] | None = None,
) -> Float[Array, "*batch n_models"]:
    """Smoothie's quality theta_i = dim / (2 delta_i), the canonical parameter.

    Args:
        distances: mean squared-distance matrix D of the data set, or one per
            neighbourhood (leading batch axes: Smoothie-Local's theta per input).
        dim: embedding dimension, so theta is 1 / (2 sigma_i^2) per axis.
        eps: floor on delta in squared embedding units. A delta <= eps (possible on real
            data, and exactly 0 when two models' outputs coincide) is clamped to eps, so
            theta is finite and at most dim / (2 eps).
        pairs: where some models did not answer some inputs: which pairs have an
            observed mean distance (> 0; see `triplets`). A model without a complete
            triplet gets theta 0, so it is never chosen.

    Returns:
        theta, unnormalised; larger is better.

    >>> theta_from_distances(jnp.array([[0.0, 3.0, 4.0], [3.0, 0.0, 5.0], [4.0, 5.0, 0.0]]), 2)
    Array([1.        , 0.5       , 0.33333334], dtype=float32)
    """
    delta, w = triplets(distances, pairs)
    return jnp.where(w > 0, dim / (2 * jnp.maximum(delta, eps)), 0.0)
