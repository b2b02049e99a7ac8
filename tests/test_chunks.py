"""Routing in fixed-size padded chunks (`_chunks`): the decisions of one big call, one
compiled shape, and a NaN named by its rows."""

from __future__ import annotations

import chex
import jax
import numpy as np
import pytest

import smoothie_jax as sj
from smoothie_jax._chunks import bucket, chunk_rows, decide_chunks, decide_padded, padded_chunk

MODELS = ("a", "b", "c")


@pytest.fixture(scope="module")
def router() -> sj.Router:
    x = np.asarray(jax.random.normal(jax.random.key(0), (80, 3, 6)))
    return sj.fit_router(x, x[:, 0], k=7, block_size=16, models=MODELS)


@pytest.fixture(scope="module")
def queries() -> np.ndarray:
    return np.asarray(jax.random.normal(jax.random.key(1), (37, 6)))


def test_sizes() -> None:
    assert chunk_rows(250, 50, 32) == 64  # whole blocks
    assert chunk_rows(10, 1000, 32) == 10  # no more than the rows fill
    assert chunk_rows(100, 1000, 32) == 128
    assert [bucket(n) for n in (0, 1, 2, 3, 4, 5, 32, 33)] == [1, 1, 2, 4, 4, 8, 32, 64]
    with pytest.raises(ValueError, match="must be >= 1"):
        chunk_rows(10, 0, 32)


def test_padded_chunk_pads_and_checks() -> None:
    rows = np.arange(12, dtype=np.float64).reshape(6, 2)
    part = padded_chunk(rows, 4, 4, "queries")
    assert part.dtype == np.float32 and part.shape == (4, 2)
    np.testing.assert_array_equal(part, [[8, 9], [10, 11], [0, 0], [0, 0]])
    rows[5, 0] = np.nan
    with pytest.raises(ValueError, match="queries rows 4..5 contains NaN"):
        padded_chunk(rows, 4, 4, "queries")


@pytest.mark.parametrize("size", [8, 16, 37, 64])
def test_chunks_decide_as_one_call(router, queries, size: int) -> None:
    whole = router.decide(queries)
    parts = list(decide_chunks(router, queries, size))
    assert [len(p.choice) for p in parts][-1] == len(queries) - size * (len(parts) - 1)
    chex.assert_trees_all_equal(np.concatenate([p.choice for p in parts]), np.asarray(whole.choice))
    np.testing.assert_allclose(
        np.concatenate([p.weights for p in parts]), whole.weights, rtol=1e-6, atol=1e-7
    )
    assert {p.method for p in parts} == {whole.method}


def test_decide_padded_trims_to_the_real_rows(router, queries) -> None:
    decision = decide_padded(router, queries[:3], bucket(3))
    chex.assert_shape([decision.choice, decision.weights], [(3,), (3, 3)])
    chex.assert_shape(decision.probabilities, (3, 3))
    np.testing.assert_allclose(decision.weights, router.weights(queries[:3]), rtol=1e-6)
    assert decide_padded(router, queries[:0], 1).weights.shape == (0, 3)
    with pytest.raises(ValueError, match="do not fit a chunk of 2"):
        decide_padded(router, queries[:3], 2)
