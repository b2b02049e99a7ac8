"""Two-stage kNN (reduced-precision and approximate candidates, exact re-ranking): recall."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference import brute_force_knn
from test_neighbours import grid_points

import smoothie_jax as sj
from smoothie_jax._neighbours import knn_recall

TWO_STAGE = {
    "bf16": {"search_dtype": jnp.bfloat16},
    "tf32": {"search_dtype": "tf32"},
    "approx": {"recall_target": 0.95},
    "approx_bf16": {"search_dtype": jnp.bfloat16, "recall_target": 0.9},
}


@pytest.fixture(scope="module")
def clustered() -> tuple[np.ndarray, np.ndarray]:
    """60 tight clusters of 40 points in 64-d, stored cluster by cluster (sorted data)."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(60, 64))
    points = (np.repeat(centres, 40, axis=0) + 0.3 * rng.normal(size=(2400, 64))).astype(np.float32)
    return points, brute_force_knn(points, points, 20, include_self=True)


@pytest.mark.parametrize("options", TWO_STAGE.values(), ids=TWO_STAGE.keys())
def test_every_point_a_candidate_is_exact_ties_included(options: dict) -> None:
    # 101 points <= candidates: stage 1 keeps all, so stage 2 alone must give the exact
    # order, including ties to the lower index and the query first.
    points = grid_points(0, 101)
    got = sj.knn(
        jnp.asarray(points), jnp.asarray(points), 12, include_self=True, candidates=128, **options
    )
    np.testing.assert_array_equal(
        np.asarray(got), brute_force_knn(points, points, 12, include_self=True)
    )


@pytest.mark.slow
@pytest.mark.parametrize("options", TWO_STAGE.values(), ids=TWO_STAGE.keys())
def test_two_stage_recall_on_clustered_sorted_data(clustered, options: dict) -> None:
    points, exact = clustered
    got = sj.knn(jnp.asarray(points), jnp.asarray(points), 20, include_self=True, **options)
    recall = float(knn_recall(got, jnp.asarray(exact)))
    misses = round((1 - recall) * exact.size)
    print(f"{options}: recall {recall:.6f}, {misses} of {exact.size} missed")
    assert recall >= 0.99
    np.testing.assert_array_equal(np.asarray(got[:, 0]), np.arange(len(points)))
    if jax.default_backend() == "cpu" and options.get("search_dtype") != jnp.bfloat16:
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
    got = np.asarray(sj.knn(jnp.asarray(points), jnp.asarray(points), 20, search_dtype="bfloat16"))
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
                sj.knn(points[:200], points, 10, search_dtype=jnp.bfloat16, candidates=c), exact
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
            lambda q, x: sj.knn(q, x, 5, search_dtype=jnp.bfloat16, candidates=32, block_size=8),
            n=1,
        )
    )
    for _ in range(3):
        x = jnp.asarray(rng.normal(size=(90, 6)), jnp.float32)
        chex.assert_shape(fn(x[:20], x), (20, 5))


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"candidates": 40}, "candidates needs"),
        ({"search_dtype": jnp.int8}, "search_dtype"),
        ({"recall_target": 1.5}, "recall_target"),
        ({"recall_target": 0.9, "candidates": 3}, "candidates must be >= k"),
    ],
)
def test_bad_two_stage_options_raise(options: dict, match: str) -> None:
    x = jnp.zeros((30, 2))
    with pytest.raises(ValueError, match=match):
        sj.knn(x, x, 5, **options)
