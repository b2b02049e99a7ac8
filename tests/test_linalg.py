"""The small SPD algebra in plain XLA ops (`_linalg.py`) against NumPy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from smoothie_jax._linalg import cholesky, solve_lower, spd_inv


def spd(key: jax.Array, p: int) -> jax.Array:
    a = jax.random.normal(key, (p, p))
    return a @ a.T + p * jnp.eye(p)


@pytest.mark.parametrize("p", [1, 3, 10])
def test_cholesky_matches_numpy(key: jax.Array, p: int) -> None:
    a = spd(key, p)
    low = cholesky(a)
    np.testing.assert_allclose(low, np.linalg.cholesky(np.asarray(a)), rtol=1e-4, atol=1e-5)
    assert bool(jnp.all(jnp.triu(low, 1) == 0))


def test_solve_lower_vector_and_matrix(key: jax.Array) -> None:
    low = cholesky(spd(key, 6))
    b = jax.random.normal(jax.random.key(1), (6, 2))
    np.testing.assert_allclose(low @ solve_lower(low, b), b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(low @ solve_lower(low, b[:, 0]), b[:, 0], rtol=1e-4, atol=1e-5)


def test_spd_inv_is_the_inverse(key: jax.Array) -> None:
    a = spd(key, 8)
    np.testing.assert_allclose(spd_inv(a) @ a, np.eye(8), atol=1e-4)


def test_vmaps_over_a_batch(key: jax.Array) -> None:
    a = jax.vmap(lambda k: spd(k, 4))(jax.random.split(key, 5))
    inv = jax.vmap(spd_inv)(a)
    np.testing.assert_allclose(
        jnp.einsum("bij,bjk->bik", inv, a), np.tile(np.eye(4), (5, 1, 1)), atol=1e-4
    )
