"""Small symmetric positive-definite algebra in plain XLA ops (Cholesky, solve, inverse).

jnp.linalg's cholesky and inv call LAPACK (OpenBLAS from numpy/scipy, with its own
pthreads); called from XLA's threads on many small matrices at once it deadlocked (0% CPU,
never returns) on the shared 2-core machine. These loops are O(p^3) like LAPACK, and p is
at most ~50 in the posteriors that use them (the additive model, the label model).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


def cholesky(a: Float[Array, "p p"]) -> Float[Array, "p p"]:
    """Lower Cholesky factor of one SPD matrix.

    A pivot that rounds to <= 0 is floored at the dtype's smallest normal number rather
    than giving NaN (the callers add a ridge, so this only guards round-off).

    >>> a = jnp.array([[4.0, 2.0], [2.0, 2.0]])
    >>> cholesky(a)
    Array([[2., 0.],
           [1., 1.]], dtype=float32)
    """
    p = a.shape[-1]
    idx = jnp.arange(p)

    def column(j: Array, low: Array) -> Array:
        row_j = jax.lax.dynamic_index_in_dim(low, j, axis=0, keepdims=False)
        v = jax.lax.dynamic_index_in_dim(a, j, axis=1, keepdims=False) - low @ row_j
        d = jnp.sqrt(jnp.maximum(v[j], jnp.finfo(a.dtype).tiny))
        col = jnp.where(idx > j, v / d, 0.0) + jnp.where(idx == j, d, 0.0)
        return jax.lax.dynamic_update_index_in_dim(low, col, j, axis=1)

    return jax.lax.fori_loop(0, p, column, jnp.zeros_like(a))


def solve_lower(low: Float[Array, "p p"], b: Float[Array, "p ..."]) -> Float[Array, "p ..."]:
    """Solve low @ x = b by forward substitution; low lower-triangular, b (p,) or (p, r)."""
    p = low.shape[-1]

    def row(j: Array, x: Array) -> Array:
        l_j = jax.lax.dynamic_index_in_dim(low, j, axis=0, keepdims=False)
        b_j = jax.lax.dynamic_index_in_dim(b, j, axis=0, keepdims=False)
        x_j = (b_j - l_j @ x) / l_j[j]
        return jax.lax.dynamic_update_index_in_dim(x, x_j, j, axis=0)

    return jax.lax.fori_loop(0, p, row, jnp.zeros_like(b))


def spd_inv(a: Float[Array, "p p"]) -> Float[Array, "p p"]:
    """Inverse of one SPD matrix from its Cholesky factor: inv(L)^T inv(L)."""
    low_inv = solve_lower(cholesky(a), jnp.eye(a.shape[-1], dtype=a.dtype))
    return low_inv.T @ low_inv
