"""The brute-force searches (`_knn`): two-stage (cheap candidates, exact re-ranking) recall,
and the `Search` specs that name them."""

from __future__ import annotations

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference import brute_force_knn, grid_points

import smoothie_jax as sj
from smoothie_jax import knn_recall

# ---------------------------------------------------------------- the exact search


# 7 and 16 do not divide n = 101; 1024 is one block.
@pytest.mark.slow
@pytest.mark.parametrize(("k", "block_size"), [(1, 7), (5, 16), (12, 7), (12, 1024)])
def test_blocked_knn_with_self_equals_brute_force_ties_included(block_size: int, k: int) -> None:
    points = grid_points(0, 101)
    got = sj.knn(
        jnp.asarray(points), jnp.asarray(points), k, include_self=True, block_size=block_size
    )
    chex.assert_shape(got, (101, k))
    np.testing.assert_array_equal(
        np.asarray(got), brute_force_knn(points, points, k, include_self=True)
    )
    np.testing.assert_array_equal(np.asarray(got[:, 0]), np.arange(101))


@pytest.mark.parametrize("block_size", [6, 50])
def test_blocked_knn_queries_against_points_equals_brute_force(block_size: int) -> None:
    points = grid_points(1, 97)
    queries = grid_points(2, 23)
    got = sj.knn(jnp.asarray(queries), jnp.asarray(points), 9, block_size=block_size)
    np.testing.assert_array_equal(np.asarray(got), brute_force_knn(queries, points, 9))


def test_duplicate_points_go_lower_index_first_self_first() -> None:
    x = jnp.array([[0.0], [5.0], [0.0], [0.0], [5.0]])
    got = sj.knn(x, x, 3, include_self=True, block_size=2)
    np.testing.assert_array_equal(
        np.asarray(got), [[0, 2, 3], [1, 4, 0], [2, 0, 3], [3, 0, 2], [4, 1, 0]]
    )
    without_self = sj.knn(x, x, 3, block_size=2)
    np.testing.assert_array_equal(
        np.asarray(without_self), [[0, 2, 3], [1, 4, 0], [0, 2, 3], [0, 2, 3], [1, 4, 0]]
    )


@pytest.mark.slow
def test_random_knn_equals_brute_force() -> None:
    rng = np.random.default_rng(3)
    points = rng.normal(size=(300, 16)).astype(np.float32)
    got = sj.knn(jnp.asarray(points), jnp.asarray(points), 20, include_self=True, block_size=64)
    np.testing.assert_array_equal(
        np.asarray(got), brute_force_knn(points, points, 20, include_self=True)
    )


# Tiles of 7 and 30 do not divide n = 101; 200 is one tile; 3 < k is raised to k.
@pytest.mark.slow
@pytest.mark.parametrize("tile_size", [3, 7, 30, 200])
def test_tiled_knn_equals_brute_force_ties_included(tile_size: int) -> None:
    points = grid_points(8, 101)
    got = sj.knn(
        jnp.asarray(points),
        jnp.asarray(points),
        6,
        include_self=True,
        block_size=16,
        search=sj.Search(tile_size=tile_size),
    )
    np.testing.assert_array_equal(
        np.asarray(got), brute_force_knn(points, points, 6, include_self=True)
    )
    queries = grid_points(9, 13)
    got = sj.knn(
        jnp.asarray(queries), jnp.asarray(points), 6, search=sj.Search(tile_size=tile_size)
    )
    np.testing.assert_array_equal(np.asarray(got), brute_force_knn(queries, points, 6))


def test_negative_zero_scores_tie_with_zero() -> None:
    # q.x - |x|^2 / 2 is -0.0 for some points and +0.0 for others; they must tie (lower
    # index first), as they do in the merge of the sharded search.
    x = jnp.array([[0.0, 0.0], [-1.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    q = jnp.array([[0.5, 0.0], [-0.5, 0.0]])
    got = sj.knn(q, x, 4, search=sj.Search(tile_size=2))
    np.testing.assert_array_equal(np.asarray(got), brute_force_knn(q, x, 4))


# ---------------------------------------------------------------- the two-stage search


TWO_STAGE = {
    "bf16": sj.Search("two-stage", dtype="bfloat16"),
    "tf32": sj.Search("two-stage", dtype="tf32"),
    "approx": sj.Search("two-stage", recall_target=0.95),
    "approx_bf16": sj.Search("two-stage", dtype="bfloat16", recall_target=0.9),
}


@pytest.fixture(scope="module")
def clustered() -> tuple[np.ndarray, np.ndarray]:
    """60 tight clusters of 40 points in 64-d, stored cluster by cluster (sorted data)."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(60, 64))
    points = (np.repeat(centres, 40, axis=0) + 0.3 * rng.normal(size=(2400, 64))).astype(np.float32)
    return points, brute_force_knn(points, points, 20, include_self=True)


@pytest.mark.parametrize("search", TWO_STAGE.values(), ids=TWO_STAGE.keys())
def test_every_point_a_candidate_is_exact_ties_included(search: sj.Search) -> None:
    # 101 points <= candidates: stage 1 keeps all, so stage 2 alone must give the exact
    # order, including ties to the lower index and the query first.
    points = grid_points(0, 101)
    search = dataclasses.replace(search, candidates=128)
    got = sj.knn(jnp.asarray(points), jnp.asarray(points), 12, include_self=True, search=search)
    np.testing.assert_array_equal(
        np.asarray(got), brute_force_knn(points, points, 12, include_self=True)
    )


@pytest.mark.slow
@pytest.mark.parametrize("search", TWO_STAGE.values(), ids=TWO_STAGE.keys())
def test_two_stage_recall_on_clustered_sorted_data(clustered, search: sj.Search) -> None:
    points, exact = clustered
    got = sj.knn(jnp.asarray(points), jnp.asarray(points), 20, include_self=True, search=search)
    recall = float(knn_recall(got, jnp.asarray(exact)))
    misses = round((1 - recall) * exact.size)
    print(f"{search}: recall {recall:.6f}, {misses} of {exact.size} missed")
    assert recall >= 0.99
    np.testing.assert_array_equal(np.asarray(got[:, 0]), np.arange(len(points)))
    if jax.default_backend() == "cpu" and search.dtype != "bfloat16":
        # On CPU, tf32 is float32 and approx_max_k is exact: only the 16-per-chunk cut
        # could lose a neighbour, and interleaved chunks spread each cluster over 4. What
        # is left are float32 rounding ties at rank k (stage 2 computes a candidate's
        # distance with another reduction order than the exact search's matmul).
        assert misses <= 3


@pytest.mark.slow
def test_found_neighbours_are_in_exact_order(clustered) -> None:
    # Stage 2 re-ranks exactly: candidates come out sorted by their float32 distance
    # (float64 here, up to float32 rounding), and mostly as the exact search orders them.
    points, exact = clustered
    got = np.asarray(sj.knn(jnp.asarray(points), jnp.asarray(points), 20, search="bf16"))
    dist = np.sum((np.float64(points)[got] - np.float64(points)[:, None]) ** 2, axis=-1)
    assert np.all(np.diff(dist, axis=1) >= -1e-5 * dist[:, 1:])
    exact = np.asarray(sj.knn(jnp.asarray(points), jnp.asarray(points), 20))
    assert np.mean(np.all(got == exact, axis=1)) > 0.99


@pytest.mark.slow
def test_recall_reports_what_reduced_precision_loses() -> None:
    # Points 0.05 apart around (1, ..., 1): bf16 rounds each coordinate by up to 0.002,
    # about the gaps between neighbours' scores, so stage 1 ranks poorly and only many
    # candidates recover the neighbours. knn_recall must show both.
    rng = np.random.default_rng(1)
    points = jnp.asarray(1 + 0.05 * rng.normal(size=(1500, 16)), jnp.float32)
    exact = sj.knn(points[:200], points, 10)
    recall = {
        c: float(
            knn_recall(
                sj.knn(points[:200], points, 10, search=sj.Search("two-stage", candidates=c)),
                exact,
            )
        )
        for c in (10, 512)
    }
    print(f"bf16 recall by candidates: {recall}")
    assert recall[10] < 0.5 and recall[512] > 0.9


def test_knn_recall() -> None:
    exact = jnp.array([[0, 1, 2], [3, 4, 5]])
    assert float(knn_recall(exact, exact)) == 1.0
    assert float(knn_recall(exact[:, ::-1], exact)) == 1.0  # order is ignored
    assert float(knn_recall(jnp.array([[6, 7, 8], [3, 9, 9]]), exact)) == pytest.approx(1 / 6)


def test_two_stage_traces_once_under_jit() -> None:
    rng = np.random.default_rng(2)
    fn = jax.jit(
        chex.assert_max_traces(
            lambda q, x: sj.knn(
                q, x, 5, search=sj.Search("two-stage", candidates=32), block_size=8
            ),
            n=1,
        )
    )
    for _ in range(3):
        x = jnp.asarray(rng.normal(size=(90, 6)), jnp.float32)
        chex.assert_shape(fn(x[:20], x), (20, 5))


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"method": "exact", "candidates": 40}, "applies to another search method"),
        ({"method": "approximate", "dtype": "bfloat16"}, "applies to another search method"),
        ({"method": "two-stage", "dtype": "int8"}, "dtype"),
        ({"method": "two-stage", "recall_target": 1.5}, "recall_target"),
        ({"method": "nearest"}, "search method must be one of"),
    ],
)
def test_bad_search_specs_raise(options: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        sj.Search(**options)


def test_too_few_candidates_raise() -> None:
    x = jnp.zeros((30, 2))
    with pytest.raises(ValueError, match="candidates must be >= k"):
        sj.knn(x, x, 5, search=sj.Search("two-stage", recall_target=0.9, candidates=3))


def test_search_names_parse_to_specs() -> None:
    assert sj.Search.parse("exact") == sj.Search()
    assert sj.Search.parse("bf16") == sj.Search("two-stage", dtype="bfloat16")
    assert sj.Search.parse("ivf") == sj.Search.parse("approximate") == sj.Search("approximate")
    assert sj.Search("two-stage").dtype == "bfloat16"  # the cheap stage's default
    with pytest.raises(ValueError, match="search must be a Search or one of"):
        sj.Search.parse("fast")
    x = jnp.zeros((30, 2))
    with pytest.raises(ValueError, match="not both"):
        sj.knn(x, x, 5, search="bf16", method="approximate")
