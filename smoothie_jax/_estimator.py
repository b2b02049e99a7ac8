"""The Smoothie estimator: quality from the mean squared-distance matrix, in closed form.

Model (Guha et al., 2024): lambda_i = y + e_i with e_i ~ N(0, sigma_i^2 I) independent
across models. Then E||lambda_i - lambda_j||^2 = delta_i + delta_j with
delta_i = E||lambda_i - y||^2, so any triplet gives delta_i = (D_ij + D_ik - D_jk) / 2.
Smoothie averages that over all pairs {j, k} not containing i.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

ArrayLike = Array | np.ndarray  # NumPy arrays are accepted wherever JAX arrays are

DEFAULT_EPS = 1e-6


def triplet_delta(
    distances: Float[ArrayLike, "*batch n_models n_models"],
) -> Float[Array, "*batch n_models"]:
    """Estimated E||lambda_i - y||^2 for each model, averaged over all triplets.

    The average over the C(m-1, 2) pairs {j, k} without i of (D_ij + D_ik - D_jk) / 2
    has the closed form ((m - 1) r_i - S) / ((m - 1)(m - 2)), where r_i = sum_j D_ij and
    S = sum_{j<k} D_jk: O(m^2) instead of the reference code's O(m^3) loop.

    Args:
        distances: a mean squared-distance matrix D (symmetric, zero diagonal), or a
            batch of them (leading axes broadcast: one neighbourhood per input).

    Returns:
        delta, which can be <= 0 on real data where independence fails.

    >>> triplet_delta(jnp.array([[0.0, 3.0, 4.0], [3.0, 0.0, 5.0], [4.0, 5.0, 0.0]]))
    Array([1., 2., 3.], dtype=float32)
    """
    m = distances.shape[-1]
    row = jnp.sum(distances, axis=-1)
    total = jnp.sum(row, axis=-1, keepdims=True) / 2
    return ((m - 1) * row - total) / ((m - 1) * (m - 2))


def masked_triplet_delta(
    distances: Float[ArrayLike, "*batch n_models n_models"],
    pairs: Float[ArrayLike, "*batch n_models n_models"],
) -> tuple[Float[Array, "*batch n_models"], Float[Array, "*batch n_models"]]:
    """`triplet_delta` over the triplets whose three pairs were all observed.

    With c_jk = 1 where pair {j, k} has an observed mean distance (`pairs` > 0, zero
    diagonal), delta_i averages (D_ij + D_ik - D_jk) / 2 over the pairs {j, k} with
    c_ij c_ik c_jk = 1. In matrix form, O(m^3) by three matmuls: with C = c,
    A_i = sum_j c_ij D_ij (C^2)_ij, B_i = (C (C * D) C)_ii, W_i = (C^3)_ii and
    delta_i = (2 A_i - B_i) / (2 W_i). With every pair observed this is exactly
    `triplet_delta`.

    Args:
        distances: mean squared distances (any value where a pair is unobserved).
        pairs: weight of each pair's observations; only > 0 versus 0 matters here.

    Returns:
        (delta, triplets): delta is 0 where model i has no complete triplet, and
        `triplets` counts model i's complete ordered triplets (0: not estimable).

    >>> d = jnp.array([[0.0, 3.0, 4.0], [3.0, 0.0, 5.0], [4.0, 5.0, 0.0]])
    >>> masked_triplet_delta(d, jnp.ones((3, 3)) - jnp.eye(3))[0]
    Array([1., 2., 3.], dtype=float32)
    """
    m = distances.shape[-1]
    c = jnp.where(jnp.eye(m, dtype=bool), 0.0, (pairs > 0).astype(distances.dtype))
    d = jnp.where(c > 0, distances, 0.0)  # unobserved entries never enter a sum
    c2 = c @ c
    a = jnp.sum(c * d * c2, axis=-1)
    b = jnp.sum((c @ (c * d)) * c, axis=-1)
    w = jnp.sum(c2 * c, axis=-1)
    return jnp.where(w > 0, (2 * a - b) / (2 * jnp.maximum(w, 1)), 0.0), w


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
            observed mean distance (> 0; see `masked_triplet_delta`). A model without
            a complete triplet gets theta 0, so it is never chosen.

    Returns:
        theta, unnormalised; larger is better.

    >>> theta_from_distances(jnp.array([[0.0, 3.0, 4.0], [3.0, 0.0, 5.0], [4.0, 5.0, 0.0]]), 2)
    Array([1.        , 0.5       , 0.33333334], dtype=float32)
    """
    if pairs is None:
        return dim / (2 * jnp.maximum(triplet_delta(distances), eps))
    delta, triplets = masked_triplet_delta(distances, pairs)
    return jnp.where(triplets > 0, dim / (2 * jnp.maximum(delta, eps)), 0.0)
