"""Approximate search wired through the fits: equal to exact with every cell probed."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import smoothie_jax as sj

N = 400


@pytest.fixture(scope="module")
def problem() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    theta = jnp.array([4.0, 2.0, 1.0, 0.5, 3.0])
    x, inputs, _ = sj.simulate_tasks(
        jax.random.key(0), jnp.stack([theta, theta[::-1]]), n_samples=N, dim=16, input_dim=6
    )
    lengths = np.asarray(jax.random.randint(jax.random.key(1), (N, 5), 0, 3000), np.float64)
    return np.asarray(x), np.asarray(inputs), lengths


ALL_CELLS = sj.Search("approximate", n_cells=8, nprobe=8)


@pytest.mark.slow
def test_knn_approximate_with_every_cell_is_exact(problem) -> None:
    _, inputs, _ = problem
    for include_self in (True, False):
        exact = sj.knn(inputs, inputs, 7, include_self=include_self)
        approx = sj.knn(inputs, inputs, 7, include_self=include_self, search=ALL_CELLS)
        np.testing.assert_array_equal(approx, exact)
    queries = inputs[:30] + 0.05
    np.testing.assert_array_equal(
        sj.knn(queries, inputs, 5, search=ALL_CELLS),
        sj.knn(queries, inputs, 5),
    )


@pytest.mark.slow
def test_fits_with_every_cell_equal_exact(problem, tmp_path) -> None:
    x, inputs, lengths = problem
    np.testing.assert_allclose(
        sj.fit_local(x, inputs, k=10, search=ALL_CELLS).theta,
        sj.fit_local(x, inputs, k=10).theta,
        rtol=1e-5,
    )
    queries = inputs[:40] + 0.01
    for method, extra in (("smoothie", {}), ("auto", {"lengths": lengths})):
        exact = sj.fit_router(x, inputs, k=10, method=method, **extra)
        approx = sj.fit_router(x, inputs, k=10, method=method, search=ALL_CELLS, **extra)
        np.testing.assert_allclose(
            approx.scores(queries), exact.scores(queries), rtol=1e-4, atol=1e-6
        )
        sj.save_router(tmp_path / f"{method}.eqx", approx)
        loaded = sj.load_router(tmp_path / f"{method}.eqx")
        assert loaded.index is not None and loaded.search == ALL_CELLS
        np.testing.assert_array_equal(loaded.route(queries), approx.route(queries))


@pytest.mark.slow
def test_approximate_recall_and_decisions_on_clustered_inputs(problem) -> None:
    x, inputs, _ = problem
    exact = sj.knn(inputs, inputs, 10, include_self=True)
    found = sj.knn(
        inputs, inputs, 10, include_self=True, search=sj.Search("approximate", n_cells=8, nprobe=4)
    )
    assert float(sj.knn_recall(found, exact)) > 0.9
    same = np.mean(
        np.asarray(sj.fit_local(x, inputs, k=10, search=sj.Search("approximate", 8, 4)).route())
        == np.asarray(sj.fit_local(x, inputs, k=10).route())
    )
    assert same > 0.95


@pytest.mark.slow
def test_streaming_with_the_index(problem, tmp_path) -> None:
    x, inputs, lengths = problem
    streamed = sj.scale.fit_local_stream(x, inputs, k=10, chunk_size=128, search=ALL_CELLS)
    np.testing.assert_allclose(streamed.theta, sj.fit_local(x, inputs, k=10).theta, rtol=1e-5)
    router = sj.fit_router(x, inputs, k=10, method="auto", lengths=lengths, search=ALL_CELLS)
    n = sj.scale.route_stream(router, inputs[:50], tmp_path / "w.npy", chunk_size=16)
    assert n == 50
    np.testing.assert_allclose(np.load(tmp_path / "w.npy"), router.weights(inputs[:50]), rtol=1e-5)


@pytest.mark.slow
@pytest.mark.unchecked  # search=3 breaks the annotation
def test_bad_search_arguments(problem) -> None:
    x, inputs, _ = problem
    with pytest.raises(ValueError, match="method must be one of"):
        sj.knn(inputs, inputs, 3, method="hnsw")
    with pytest.raises(ValueError, match="search method must be one of"):
        sj.Search("fast")
    with pytest.raises(ValueError, match="search must be"):
        sj.fit_local(x, inputs, k=3, search=3)
    with pytest.raises(ValueError, match="nprobe"):
        sj.fit_local(x, inputs, k=3, search=sj.Search("approximate", n_cells=4, nprobe=5))
