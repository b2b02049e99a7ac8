"""The faiss backend of the approximate search: the library's semantics on faiss's index.

Skipped where faiss is not installed (the `faiss` extra; CI installs it with `dev`),
except the checks that the library works, and says what to install, without it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import smoothie_jax as sj
from smoothie_jax import _faiss_ivf
from smoothie_jax._faiss_ivf import faiss_knn
from smoothie_jax._search import find_knn

needs_faiss = pytest.mark.skipif(not _faiss_ivf.available(), reason="faiss is not installed")

FAISS_ALL = sj.Search("approximate", n_cells=8, nprobe=8, backend="faiss")
JAX_ALL = sj.Search("approximate", n_cells=8, nprobe=8, backend="jax")


@pytest.fixture(scope="module")
def points() -> np.ndarray:
    return np.asarray(jax.random.normal(jax.random.key(0), (300, 6)))


@pytest.fixture(scope="module")
def clustered() -> np.ndarray:
    """4,000 points in 60 tight clusters of various sizes (inputs are clustered)."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((60, 16)).astype(np.float32)
    labels = rng.choice(60, 4000, p=rng.dirichlet(np.ones(60)))
    return centres[labels] + 0.3 * rng.standard_normal((4000, 16)).astype(np.float32)


@needs_faiss
@pytest.mark.parametrize("include_self", [False, True])
def test_every_cell_probed_is_exact(points, include_self: bool) -> None:
    exact = sj.knn(points, points, 7, include_self=include_self)
    found = sj.knn(points, points, 7, include_self=include_self, search=FAISS_ALL)
    assert found.dtype == jnp.int32
    np.testing.assert_array_equal(found, exact)
    queries = points[:40] + 0.05
    np.testing.assert_array_equal(
        sj.knn(queries, points, 5, search=FAISS_ALL), sj.knn(queries, points, 5)
    )


@needs_faiss
def test_query_ids_force_the_query_first_even_unprobed_or_duplicated(points) -> None:
    x = np.concatenate([points, points[:5]])  # points 300..304 duplicate 0..4
    ids = np.array([0, 302, -1, 7], np.int32)
    queries = x[[0, 302, 2, 299]]  # query 3 is far from point 7: forced all the same
    found = np.asarray(faiss_knn(queries, x, 4, n_cells=8, nprobe=1, query_ids=ids))
    assert list(found[:, 0]) == [0, 302, 2, 7]
    assert found[0, 1] == 300 and found[1, 1] == 2  # the duplicate is next
    np.testing.assert_array_equal(
        found[2], np.asarray(sj.knn(queries[2:3], x, 4, search=FAISS_ALL))[0]
    )
    assert 7 not in found[3, 1:] and len(set(found[3])) == 4
    exact = sj.knn(queries, x, 4, query_ids=ids)
    np.testing.assert_array_equal(sj.knn(queries, x, 4, query_ids=ids, search=FAISS_ALL), exact)


@needs_faiss
def test_equal_distances_come_in_id_order() -> None:
    x = np.array([[0.0], [1.0], [-1.0], [2.0], [-2.0], [2.0]], np.float32)
    found = faiss_knn(x, x, 5, n_cells=2, nprobe=2, include_self=True)
    np.testing.assert_array_equal(found, sj.knn(x, x, 5, include_self=True))


@needs_faiss
def test_recall_on_clustered_inputs_with_the_defaults(clustered) -> None:
    exact = sj.knn(clustered, clustered, 10, include_self=True)
    found = sj.knn(clustered, clustered, 10, include_self=True, method="approximate")
    assert float(sj.knn_recall(found, exact)) >= 0.95


@pytest.mark.slow  # seconds of work: two full fits
@needs_faiss
def test_fit_local_agrees_with_the_jax_backend_at_full_probing(points) -> None:
    x = jnp.asarray(points)
    neighbours = find_knn(x, x, 9, search=FAISS_ALL, include_self=True, block_size=64)
    jax_found = find_knn(x, x, 9, search=JAX_ALL, include_self=True, block_size=64)
    np.testing.assert_array_equal(neighbours, jax_found)
    x = np.asarray(jax.random.normal(jax.random.key(1), (300, 3, 8)))
    fits = [sj.fit_local(x, points, k=9, search=s).theta for s in (FAISS_ALL, JAX_ALL)]
    np.testing.assert_allclose(fits[0], fits[1], rtol=1e-6)
    streamed = sj.scale.fit_local_stream(x, points, k=9, chunk_size=64, search=FAISS_ALL)
    np.testing.assert_allclose(streamed.theta, fits[1], rtol=1e-5)


@needs_faiss
def test_auto_is_faiss_on_the_cpu_and_jax_under_a_trace(points) -> None:
    auto = sj.Search("approximate")
    assert auto.backend == "auto" and auto.engine(jnp.asarray(points)) == "faiss"
    assert auto.engine(points) == ("faiss" if jax.default_backend() == "cpu" else "jax")
    engines = []
    jax.jit(lambda p: engines.append(auto.engine(p)) or p)(points)
    assert engines == ["jax"]
    assert sj.Search("approximate", backend="jax").engine(points) == "jax"


@needs_faiss
@pytest.mark.unchecked  # queries of the wrong dim break the annotation on purpose
def test_errors_are_the_jax_index_errors(points) -> None:
    for backend in ("faiss", "jax"):
        few = sj.Search("approximate", n_cells=30, nprobe=1, backend=backend)
        with pytest.raises(ValueError, match="exceeds the candidates of some query"):
            sj.knn(points + 0.01, points, 60, search=few)
        with pytest.raises(ValueError, match="exceeds the candidates of some cell"):
            sj.knn(points, points, 60, include_self=True, search=few)
    with pytest.raises(ValueError, match="nprobe"):
        sj.knn(points, points, 3, search=sj.Search("approximate", 4, 5, backend="faiss"))
    with pytest.raises(ValueError, match="k must be"):
        sj.knn(points, points, 301, search=FAISS_ALL)
    with pytest.raises(ValueError, match="include_self needs the 300 points"):
        faiss_knn(points[:3], points, 3, nprobe=2, include_self=True)
    with pytest.raises(ValueError, match="queries have dim 5"):
        sj.knn(points[:, :5], points, 3, search=FAISS_ALL)


def test_backend_is_an_approximate_option() -> None:
    with pytest.raises(ValueError, match="backend must be one of"):
        sj.Search("approximate", backend="annoy")
    with pytest.raises(ValueError, match="backend applies to another search method"):
        sj.Search("exact", backend="faiss")
    with pytest.raises(ValueError, match="has no backend"):
        sj.Search().engine(np.zeros((2, 2)))
    assert sj.Search.parse("approximate") == sj.Search("approximate", backend="auto")


def test_without_faiss_auto_is_jax_and_faiss_says_what_to_install(monkeypatch, points) -> None:
    monkeypatch.setattr(_faiss_ivf, "available", lambda: False)
    assert sj.Search("approximate").engine(points) == "jax"
    with pytest.raises(ImportError, match=r"smoothie-jax\[faiss\]"):
        sj.knn(points, points, 3, search=FAISS_ALL)
