"""The two-stage search whose first stage keeps each chunk's best point (`Search(chunks=)`):
the accelerators' fast path (a max, no sort), exact where every point is a candidate."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from reference import brute_force_knn, grid_points

import smoothie_jax as sj


def test_every_point_its_own_chunk_is_exact_ties_included() -> None:
    points = grid_points(0, 101)
    search = sj.Search("two-stage", dtype="float32", chunks=101, candidates=101)
    got = sj.knn(jnp.asarray(points), jnp.asarray(points), 12, include_self=True, search=search)
    np.testing.assert_array_equal(
        np.asarray(got), brute_force_knn(points, points, 12, include_self=True)
    )


@pytest.mark.slow  # seconds of work: a recall measurement
def test_recall_on_clustered_sorted_data() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(60, 32))
    points = (np.repeat(centres, 40, axis=0) + 0.3 * rng.normal(size=(2400, 32))).astype(np.float32)
    exact = brute_force_knn(points, points, 20, include_self=True)
    for chunks in (256, 1024):
        search = sj.Search("two-stage", dtype="bfloat16", chunks=chunks)
        got = sj.knn(jnp.asarray(points), jnp.asarray(points), 20, include_self=True, search=search)
        assert float(sj.knn_recall(got, jnp.asarray(exact))) >= 0.99
        np.testing.assert_array_equal(np.asarray(got[:, 0]), np.arange(len(points)))
    queries = points[::7] + 0.01
    search = sj.Search("two-stage", dtype="bfloat16", chunks=512)
    got = sj.knn(jnp.asarray(queries), jnp.asarray(points), 10, search=search)
    assert float(sj.knn_recall(got, jnp.asarray(brute_force_knn(queries, points, 10)))) >= 0.99
