"""The approximate search's CPU backend: faiss's inverted file and k-NN kernels.

faiss (an optional extra: `pip install 'smoothie-jax[faiss]'`) runs the algorithm of
`_inverted_file.py`: k-means cells trained on a sample, every point in the cell of its
nearest centroid, each query scoring the points of `nprobe` cells. It is trained here
with the JAX index's settings (cell count, sample per cell, Lloyd iterations), so a
`Search` means the same index on either backend. The two searches are those of the JAX
index too:

- `faiss_self_knn`, the points as queries (test-time Smoothie-Local): points grouped
  by cell, each cell's points scored against the `nprobe` cells nearest its centroid by
  faiss's BLAS k-NN, cells in parallel; at least as fast as the JAX index's grouped
  search on a CPU (no compilation, faster k-means) and several times faster than
  `IndexIVFFlat.search` at a million points, whose per-query scans are memory-bound;
- `faiss_knn`, any queries (routing new inputs): `IndexIVFFlat.search`, each query
  probing its own `nprobe` nearest cells; many times faster than the JAX index's
  per-query gathers. benchmarks/bench_search.py has the figures.

The JAX index stays the one for accelerators, under tracing, and the one a `Router`
keeps (a faiss index is no pytree: it neither saves with `eqx.tree_serialise_leaves`
nor runs on a GPU or TPU here). The library's semantics are kept on top of faiss's
answers: indices are int32, nearest first, equal distances in id order; with
`include_self` / `query_ids` the query itself comes first; a query whose probed cells
hold fewer than k points raises the JAX index's error instead of returning faiss's -1
padding. faiss ranks by its own float32 squared distance, so where two distances differ
only by rounding the order can differ from the exact search's; with every cell probed
the neighbours are the exact ones.
"""

from __future__ import annotations

import importlib.util
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from ._inverted_file import DEFAULT_ITERATIONS, DEFAULT_SAMPLE_PER_CELL, default_n_cells
from ._validate import ArrayLike, check_int


def available() -> bool:
    """Whether faiss can be imported (without importing it: that takes a while).

    >>> isinstance(available(), bool)
    True
    """
    return importlib.util.find_spec("faiss") is not None


def _faiss() -> Any:
    if not available():
        raise ImportError(
            "the faiss backend of the approximate search needs faiss-cpu: "
            "pip install 'smoothie-jax[faiss]' (or use backend='jax')"
        )
    import faiss

    return faiss


def _rows(x: object, name: str) -> np.ndarray:
    """`x` as a C-contiguous float32 (n, dim) array, what faiss reads."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"{name} must be (n, dim) with n, dim >= 1, got shape {x.shape}")
    return np.ascontiguousarray(x, dtype=np.float32)


def build_faiss_index(
    points: Float[ArrayLike, "n_points dim"],
    *,
    n_cells: int | None = None,
    sample_per_cell: int = DEFAULT_SAMPLE_PER_CELL,
    iterations: int = DEFAULT_ITERATIONS,
    seed: int = 0,
    add: bool = True,
) -> Any:
    """A trained `faiss.IndexIVFFlat` over `points` (ids 0..n-1).

    Args:
        points: the points to search (converted to float32).
        n_cells: k-means cells, 1 <= n_cells <= n_points; default `default_n_cells`.
        sample_per_cell: k-means trains on at most this many points per cell (faiss's
            `max_points_per_centroid`; the JAX index's default sample).
        iterations: Lloyd iterations of the k-means.
        seed: faiss's sampling and initialisation.
        add: add the points (False: only the cells, for the grouped self search).

    Returns:
        The index; its `nprobe` is set by `faiss_knn`.
    """
    faiss = _faiss()
    points = _rows(points, "points")
    n, dim = points.shape
    n_cells = default_n_cells(n) if n_cells is None else check_int("n_cells", n_cells, 1, n)
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(dim), dim, n_cells)
    index.cp.niter = check_int("iterations", iterations, 1)
    index.cp.max_points_per_centroid = check_int("sample_per_cell", sample_per_cell, 1)
    # faiss warns on stderr below 39 points a cell; few points a cell is allowed here.
    index.cp.min_points_per_centroid = 1
    index.cp.seed = seed
    index.train(points)
    if add:
        index.add(points)
    return index


def faiss_knn(
    queries: Float[ArrayLike, "n_queries dim"],
    points: Float[ArrayLike, "n_points dim"],
    k: int,
    *,
    n_cells: int | None = None,
    nprobe: int,
    include_self: bool = False,
    query_ids: Int[ArrayLike, " n_queries"] | None = None,
) -> Int[Array, "n_queries k"]:
    """k nearest `points` of each query among its `nprobe` nearest cells, with faiss.

    The faiss counterpart of `build_index` + `index_knn` (eager: not under `jax.jit`).

    Args:
        queries: points to find neighbours for, same dim as `points`.
        points: candidates; the index is built over them.
        k: neighbours per query, at most the points in any query's probed cells.
        n_cells: k-means cells; default round(sqrt(n_points)).
        nprobe: cells probed per query, 1 <= nprobe <= n_cells.
        include_self: queries are `points` in order; query i is forced first.
        query_ids: query i is point `query_ids[i]` (forced first), or none where -1.

    Returns:
        Indices into `points`, nearest first.

    >>> x = np.array([[0.0], [1.0], [3.0], [10.0]], np.float32)
    >>> faiss_knn(x, x, 2, n_cells=2, nprobe=2, include_self=True)
    Array([[0, 1],
           [1, 0],
           [2, 1],
           [3, 2]], dtype=int32)
    """
    queries, points = _rows(queries, "queries"), _rows(points, "points")
    n, n_points = queries.shape[0], points.shape[0]
    if queries.shape[1] != points.shape[1]:
        raise ValueError(f"queries have dim {queries.shape[1]}, the points {points.shape[1]}")
    n_cells = default_n_cells(n_points) if n_cells is None else n_cells
    n_cells = check_int("n_cells", n_cells, 1, n_points)
    nprobe = check_int("nprobe", nprobe, 1, n_cells)
    k = check_int("k", k, 1, n_points)
    if include_self and query_ids is not None:
        raise ValueError("give include_self or query_ids, not both")
    if include_self:
        if n != n_points:
            raise ValueError(f"include_self needs the {n_points} points as queries, got {n}")
        query_ids = np.arange(n)
    if query_ids is not None:
        query_ids = np.asarray(query_ids).astype(np.int64)
        if query_ids.shape != (n,):
            raise ValueError(f"query_ids must have shape ({n},), got {query_ids.shape}")
    index = build_faiss_index(points, n_cells=n_cells)
    index.nprobe = nprobe
    distances, ids = index.search(queries, k)
    del index  # its copy of the points, before the post-processing allocates
    valid = np.sum(ids >= 0, axis=1)  # faiss pads with -1 where the cells run out
    if np.any(valid < k):
        raise ValueError(
            f"k={k} exceeds the candidates of some query ({int(valid.min())} points in its "
            f"nprobe={nprobe} nearest cells); raise nprobe or lower k"
        )
    ids = _ties_in_id_order(distances, ids)
    if query_ids is not None:
        ids = _self_first(ids, query_ids)
    return jnp.asarray(ids.astype(np.int32))


def faiss_self_knn(
    points: Float[ArrayLike, "n_points dim"],
    k: int,
    *,
    n_cells: int | None = None,
    nprobe: int,
) -> Int[Array, "n_points k"]:
    """k nearest points of every point, itself first: `index_self_knn` on faiss.

    The points are grouped by cell, and each cell's points are scored against every
    point of the `nprobe` cells nearest its centroid (its own cell first) by faiss's
    BLAS k-NN: one matrix product per cell instead of one scan per query, which is
    what makes it several times faster than `IndexIVFFlat.search` at a million points
    (benchmarks/bench_search.py). Empty cells are dropped before probing, as in the
    JAX index, so with nprobe = n_cells it is the exact search.

    Args:
        points: the points, which are also the queries.
        k: neighbours per point, at most the candidates of every cell.
        n_cells: k-means cells; default round(sqrt(n_points)).
        nprobe: cells probed per cell of queries, 1 <= nprobe <= non-empty cells.

    Returns:
        Indices into `points`, nearest first, each point first in its own row.

    >>> x = np.array([[0.0], [1.0], [3.0], [10.0]], np.float32)
    >>> faiss_self_knn(x, 2, n_cells=2, nprobe=2)
    Array([[0, 1],
           [1, 0],
           [2, 1],
           [3, 2]], dtype=int32)
    """
    faiss = _faiss()
    points = _rows(points, "points")
    n = points.shape[0]
    k = check_int("k", k, 1, n)
    index = build_faiss_index(points, n_cells=n_cells, add=False)
    quantizer = index.quantizer  # a view: `index` owns it, so keep `index` alive
    _, cells = quantizer.search(points, 1)
    cells = cells[:, 0]
    sizes = np.bincount(cells, minlength=quantizer.ntotal)
    kept = np.flatnonzero(sizes)  # empty cells would only waste probes
    nprobe = check_int("nprobe", nprobe, 1, kept.size)
    centroids = quantizer.reconstruct_n(0, quantizer.ntotal)[kept]
    _, near = faiss.knn(centroids, centroids, nprobe)
    near = _self_first(near, np.arange(kept.size))  # a cell probes itself first
    fewest = int(np.min(np.sum(sizes[kept][near], axis=1)))
    if k > fewest:
        raise ValueError(
            f"k={k} exceeds the candidates of some cell ({fewest} points in its "
            f"nprobe={nprobe} nearest cells); raise nprobe or lower k"
        )
    order = np.argsort(cells, kind="stable")  # the points cell by cell, ids increasing
    ends = np.cumsum(sizes)
    members = [order[ends[c] - sizes[c] : ends[c]] for c in kept]
    distances = np.empty((n, k), np.float32)
    ids = np.empty((n, k), np.int64)

    def cell(c: int) -> None:  # each cell writes its own rows: safe from threads
        queries, candidates = members[c], np.concatenate([members[p] for p in near[c]])
        d, i = faiss.knn(points[queries], points[candidates], k)
        distances[queries], ids[queries] = d, candidates[i]

    # Cells in parallel, each product on one thread: faiss's OpenMP threads inside
    # many small products cost more than they give (4x slower on 2 busy cores).
    threads = faiss.omp_get_max_threads()
    with ThreadPoolExecutor(threads, initializer=faiss.omp_set_num_threads, initargs=(1,)) as pool:
        list(pool.map(cell, range(kept.size)))
    ids = _self_first(_ties_in_id_order(distances, ids), np.arange(n))
    return jnp.asarray(ids.astype(np.int32))


def _ties_in_id_order(distances: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Rows re-sorted by (distance, id) where two distances tie: faiss's heap leaves equal
    distances in scan order, the library puts the lower id first. Only tied rows are
    sorted (rare on real data)."""
    rows = np.flatnonzero(np.any(distances[:, 1:] == distances[:, :-1], axis=1))
    if rows.size:
        order = np.lexsort((ids[rows], distances[rows]), axis=1)
        ids[rows] = np.take_along_axis(ids[rows], order, axis=1)
    return ids


def _self_first(ids: np.ndarray, query_ids: np.ndarray) -> np.ndarray:
    """Each row with a query id: that point first, then the others in order, k in all
    (as `knn(..., include_self=True)`: rounding or duplicates never put it later)."""
    k = ids.shape[1]
    own = query_ids >= 0
    keep = ids != query_ids[:, None]
    column = np.cumsum(keep, axis=1)  # where each kept id goes, 1-based after the query
    move = own[:, None] & keep & (column < k)
    out = ids.copy()
    out[own, 0] = query_ids[own]
    rows, cols = np.nonzero(move)
    out[rows, column[rows, cols]] = ids[rows, cols]
    return out
