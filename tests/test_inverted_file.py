"""The inverted-file (IVF) search: exact when every cell is probed, recall, edge cases."""

from __future__ import annotations

import chex
import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest
from reference import brute_force_knn, grid_points

import smoothie_jax as sj
from smoothie_jax._inverted_file import IVFIndex, build_index, index_knn, index_self_knn


@pytest.fixture(scope="module")
def grid() -> tuple[np.ndarray, IVFIndex]:
    # Small integers: every score is exact in float32, so ties are real ties and the
    # tie order (lower id first) is checked exactly; many duplicates.
    points = grid_points(0, 301)
    return points, build_index(points, n_cells=7, block_size=8)


@pytest.fixture(scope="module")
def clustered() -> tuple[np.ndarray, np.ndarray]:
    """40 tight clusters of 40 points in 64-d, stored cluster by cluster (sorted data)."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(40, 64))
    points = (np.repeat(centres, 40, axis=0) + 0.3 * rng.normal(size=(1600, 64))).astype(np.float32)
    return points, brute_force_knn(points, points, 20, include_self=True)


def _exact(queries: np.ndarray, points: np.ndarray, k: int, **kw) -> np.ndarray:
    return np.asarray(sj.knn(jnp.asarray(queries), jnp.asarray(points), k, **kw))


@pytest.mark.slow
@pytest.mark.parametrize("k", [1, 12])
def test_self_search_probing_every_cell_is_exact_ties_included(grid, k: int) -> None:
    points, index = grid
    got = index_self_knn(index, k, nprobe=index.n_cells)
    np.testing.assert_array_equal(np.asarray(got), _exact(points, points, k, include_self=True))


@pytest.mark.slow
@pytest.mark.parametrize("include_self", [False, True])
def test_query_search_probing_every_cell_is_exact_ties_included(grid, include_self: bool) -> None:
    points, index = grid
    queries = points if include_self else grid_points(1, 57)
    got = index_knn(
        index, queries, 12, nprobe=index.n_cells, include_self=include_self, block_size=5
    )
    np.testing.assert_array_equal(
        np.asarray(got), _exact(queries, points, 12, include_self=include_self)
    )


@pytest.mark.slow
def test_query_ids_force_the_query_first(grid) -> None:
    points, index = grid
    ids = np.array([3, 150, 1, 300], np.int32)  # 1 and 150 are duplicates
    got = np.asarray(index_knn(index, points[ids], 6, nprobe=index.n_cells, query_ids=ids))
    full = _exact(points, points, 6, include_self=True)
    np.testing.assert_array_equal(got, full[ids])


@pytest.mark.slow
def test_real_valued_data_probing_every_cell_matches_exact() -> None:
    rng = np.random.default_rng(1)
    points = rng.normal(size=(200, 8)).astype(np.float32)
    index = build_index(points, n_cells=5, block_size=16)
    exact = _exact(points, points, 10, include_self=True)
    np.testing.assert_array_equal(np.asarray(index_self_knn(index, 10, nprobe=5)), exact)
    got = index_knn(index, points, 10, nprobe=5, include_self=True)
    np.testing.assert_array_equal(np.asarray(got), exact)


@pytest.mark.slow
def test_recall_on_clustered_sorted_data(clustered) -> None:
    points, exact = clustered
    index = build_index(points, block_size=32)
    assert index.n_cells <= 40  # round(sqrt(1600)), less any cell k-means left empty
    got = index_self_knn(index, 20, nprobe=3, step_blocks=4)
    chex.assert_shape(got, (1600, 20))
    np.testing.assert_array_equal(np.asarray(got[:, 0]), np.arange(1600))
    assert float(sj.knn_recall(got, jnp.asarray(exact))) >= 0.98
    got = index_knn(index, points[::8], 20, nprobe=3, query_ids=np.arange(0, 1600, 8))
    assert float(sj.knn_recall(got, jnp.asarray(exact[::8]))) >= 0.98


@pytest.mark.slow
def test_all_points_identical_is_one_cell_and_exact() -> None:
    points = np.ones((50, 4), np.float32)
    index = build_index(points, n_cells=5, block_size=8)
    assert index.n_cells == 1  # k-means leaves four cells empty; they are dropped
    expected = _exact(points, points, 7, include_self=True)
    np.testing.assert_array_equal(np.asarray(index_self_knn(index, 7, nprobe=1)), expected)
    got = index_knn(index, points[:3] + 1, 7, nprobe=1)
    np.testing.assert_array_equal(np.asarray(got), _exact(points[:3] + 1, points, 7))


@pytest.mark.slow
def test_fewer_distinct_points_than_cells_and_tiny_n() -> None:
    points = np.repeat(np.array([[0.0, 0.0], [5.0, 5.0]], np.float32), 6, axis=0)
    index = build_index(points, n_cells=6, block_size=4)
    assert index.n_cells == 2
    np.testing.assert_array_equal(
        np.asarray(index_self_knn(index, 8, nprobe=2)),
        _exact(points, points, 8, include_self=True),
    )
    one = np.array([[1.0, 2.0]], np.float32)  # n = 1: one cell, one neighbour
    np.testing.assert_array_equal(np.asarray(index_self_knn(build_index(one), 1, nprobe=1)), [[0]])


@pytest.mark.slow
def test_index_round_trips_through_serialisation(tmp_path, grid) -> None:
    points, index = grid
    path = tmp_path / "index.eqx"
    eqx.tree_serialise_leaves(path, index)
    # The statics (n_cells, block sizes) come from the skeleton; only arrays are stored.
    like = eqx.tree_at(
        lambda i: (
            (i.centroids, i.blocks, i.block_ids, i.half_sq_norms)
            + (i.cell_start, i.cell_blocks, i.cell_sizes)
        ),
        index,
        replace_fn=jnp.zeros_like,
    )
    loaded = eqx.tree_deserialise_leaves(path, like)
    chex.assert_trees_all_equal(loaded, index)


@pytest.mark.unchecked  # a rank-1 points and misaligned query_ids break the annotations
def test_bad_parameters_raise(grid) -> None:
    points, index = grid
    with pytest.raises(ValueError, match="nprobe"):
        index_self_knn(index, 3, nprobe=0)
    with pytest.raises(ValueError, match="nprobe"):
        index_knn(index, points, 3, nprobe=index.n_cells + 1)
    with pytest.raises(ValueError, match="n_cells"):
        build_index(points, n_cells=len(points) + 1)
    with pytest.raises(ValueError, match="n_cells"):
        build_index(points, n_cells=0)
    with pytest.raises(ValueError, match="sample_size"):
        build_index(points, n_cells=10, sample_size=5)
    with pytest.raises(ValueError, match="iterations"):
        build_index(points, iterations=-1)
    with pytest.raises(ValueError, match="block_size"):
        build_index(points, block_size=0)
    with pytest.raises(ValueError, match="points"):
        build_index(points[0])
    with pytest.raises(ValueError, match="k must be"):
        index_self_knn(index, 302, nprobe=index.n_cells)
    small = int(np.min(np.asarray(index.cell_sizes)))
    with pytest.raises(ValueError, match="candidates"):  # k above a probe's candidates
        index_self_knn(index, len(points), nprobe=1)
    with pytest.raises(ValueError, match="candidates"):
        index_knn(index, points, small + 1, nprobe=1)
    with pytest.raises(ValueError, match="dim"):
        index_knn(index, points[:, :2], 3, nprobe=1)
    with pytest.raises(ValueError, match="include_self"):
        index_knn(index, points[:5], 3, nprobe=1, include_self=True)
    with pytest.raises(ValueError, match="query_ids"):
        index_knn(index, points[:5], 3, nprobe=1, query_ids=np.arange(4))
