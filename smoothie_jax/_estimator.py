"""The Smoothie estimator: quality from the mean squared-distance matrix, in closed form.

Model (Guha et al., 2024): lambda_i = y + e_i with e_i ~ N(0, sigma_i^2 I) independent
across models. Then E||lambda_i - lambda_j||^2 = delta_i + delta_j with
delta_i = E||lambda_i - y||^2, so any triplet gives delta_i = (D_ij + D_ik - D_jk) / 2.
Smoothie averages that over all pairs {j, k} not containing i.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

DEFAULT_EPS = 1e-6


def triplet_delta(
    distances: Float[Array, "n_models n_models"],
) -> Float[Array, " n_models"]:
    """Estimated E||lambda_i - y||^2 for each model, averaged over all triplets.

    The average over the C(m-1, 2) pairs {j, k} without i of (D_ij + D_ik - D_jk) / 2
    has the closed form ((m - 1) r_i - S) / ((m - 1)(m - 2)), where r_i = sum_j D_ij and
    S = sum_{j<k} D_jk: O(m^2) instead of the reference code's O(m^3) loop.

    Args:
        distances: a mean squared-distance matrix D (symmetric, zero diagonal).

    Returns:
        delta, which can be <= 0 on real data where independence fails.

    >>> triplet_delta(jnp.array([[0.0, 3.0, 4.0], [3.0, 0.0, 5.0], [4.0, 5.0, 0.0]]))
    Array([1., 2., 3.], dtype=float32)
    """
    m = distances.shape[-1]
    row = jnp.sum(distances, axis=-1)
    total = jnp.sum(row) / 2
    return ((m - 1) * row - total) / ((m - 1) * (m - 2))


def theta_from_distances(
    distances: Float[Array, "n_models n_models"],
    dim: int,
    *,
    eps: float = DEFAULT_EPS,
) -> Float[Array, " n_models"]:
    """Smoothie's quality theta_i = dim / (2 delta_i), the canonical parameter.

    Args:
        distances: mean squared-distance matrix D of one neighbourhood (or the data set).
        dim: embedding dimension, so theta is 1 / (2 sigma_i^2) per axis.
        eps: floor on delta in squared embedding units. A delta <= eps (possible on real
            data, and exactly 0 when two models' outputs coincide) is clamped to eps, so
            theta is finite and at most dim / (2 eps).

    Returns:
        theta, unnormalised; larger is better.

    >>> theta_from_distances(jnp.array([[0.0, 3.0, 4.0], [3.0, 0.0, 5.0], [4.0, 5.0, 0.0]]), 2)
    Array([1.        , 0.5       , 0.33333334], dtype=float32)
    """
    delta = jnp.maximum(triplet_delta(distances), eps)
    return dim / (2 * delta)
