"""Neighbourhoods in input-embedding space: blocked kNN (exact or two-stage) and kernels.

Everything works on blocks of queries, so memory is O(block_size x tile_size) for the
exact search and O(block_size x n_points) for the kernel and the two-stage search, never
n_queries x n_points.

The exact search scans the points in fixed-shape tiles and keeps a running top-k per
query. Fixed shapes matter beyond memory: a matmul's rounding depends on its shape, so
scoring every (query block, point tile) pair with the same shapes is what lets the
sharded search (`sharded_knn`) and the streaming one return bit-identical neighbours.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, Shaped

from ._inverted_file import DEFAULT_NPROBE, IVFIndex, build_index, index_knn, index_self_knn

ArrayLike = Array | np.ndarray  # NumPy arrays are accepted wherever JAX arrays are

DEFAULT_BLOCK_SIZE = 1024
SEARCH_METHODS = ("exact", "approximate")
DEFAULT_TILE_SIZE = 16384
# XLA's fast GPU top-k kernel (one pass, a running top-k per thread in registers) takes
# k <= 16; larger k falls back to sorting every row. The two-stage search keeps at most
# this many candidates per chunk of points so that stage stays on the fast path.
GPU_FAST_TOP_K = 16
_HIGHEST = jax.lax.Precision.HIGHEST  # exact float32 search on GPU/TPU too (no tf32)


def _blocks(queries: Float[ArrayLike, "n_queries d"], block_size: int) -> tuple[Array, Array]:
    """Pads the queries to whole blocks: (n_blocks, block, d) and their row numbers."""
    n = queries.shape[0]
    block = min(block_size, n)
    n_blocks = math.ceil(n / block)
    padded = jnp.pad(queries, ((0, n_blocks * block - n), (0, 0)))
    rows = jnp.arange(n_blocks * block).reshape(n_blocks, block)
    return padded.reshape(n_blocks, block, -1), rows


def _query_blocks(queries: Array, query_ids: Array | None, block_size: int) -> tuple[Array, Array]:
    """`_blocks`, with each row's point id (-1 for padding) when queries are points."""
    q_blocks, rows = _blocks(queries, block_size)
    if query_ids is not None:
        rows = jnp.pad(query_ids, (0, rows.size - query_ids.shape[0]), constant_values=-1)
        rows = rows.reshape(q_blocks.shape[:2])
    return q_blocks, rows


def _unblock(x: Shaped[ArrayLike, "n_blocks block ..."], n: int) -> Shaped[Array, "n ..."]:
    return x.reshape(-1, *x.shape[2:])[:n]


def effective_tile(tile_size: int, k: int, n_points: int) -> int:
    """The tile width used: about tile_size, at least k, balanced so padding stays small.

    n = 5000 with tile_size 4096 gives two tiles of 2560, not 4096 + 904 padded to 4096.
    Widths of 64 or more are multiples of 64 (full matmul kernels), at most n_points.
    """
    tile = min(max(tile_size, k), n_points)
    n_tiles = math.ceil(n_points / tile)
    align = 64 if tile >= 64 else 1
    tile = -(-math.ceil(n_points / n_tiles) // align) * align
    return min(tile, n_points)


def point_tiles(
    points: Float[ArrayLike, "n_rows d"],
    tile: int,
    n_tiles: int,
    *,
    first_id: int | Array = 0,
    n_points: int | None = None,
) -> tuple[Array, Array, Array]:
    """Points as (n_tiles, tile, d), with half squared norms and global ids per slot.

    Row i has global id first_id + i. Slots with an id >= n_points (default: past the
    given rows) are padding: a zero row with an infinite norm, so a score of -inf that
    never beats a real point.
    """
    padded = jnp.pad(points, ((0, n_tiles * tile - points.shape[0]), (0, 0)))
    ids = first_id + jnp.arange(n_tiles * tile, dtype=jnp.int32)
    limit = first_id + points.shape[0] if n_points is None else n_points
    half_sq_norms = jnp.where(ids < limit, 0.5 * jnp.sum(padded * padded, axis=-1), jnp.inf)
    return (
        padded.reshape(n_tiles, tile, -1),
        half_sq_norms.reshape(n_tiles, tile),
        ids.reshape(n_tiles, tile),
    )


def _canonical(scores: Array) -> Array:
    # top_k orders -0.0 below +0.0 but sort ties them; one sign of zero keeps them agreeing.
    return jnp.where(scores == 0, 0.0, scores)


def merge_top_k(
    scores: Float[ArrayLike, "block a"],
    ids: Int[ArrayLike, "block a"],
    new_scores: Float[ArrayLike, "block b"],
    new_ids: Int[ArrayLike, "block b"],
    k: int,
) -> tuple[Float[Array, "block k"], Int[Array, "block k"]]:
    """Best k of two candidate lists: higher score first, then lower id (a total order)."""
    neg, ids = jax.lax.sort(
        (-jnp.concatenate([scores, new_scores], axis=1), jnp.concatenate([ids, new_ids], axis=1)),
        num_keys=2,
    )
    return -neg[:, :k], ids[:, :k]


def init_top_k(block: int, k: int, dtype: jnp.dtype = jnp.float32) -> tuple[Array, Array]:
    """An empty running top-k: scores -inf, ids past any real point."""
    return (
        jnp.full((block, k), -jnp.inf, dtype),
        jnp.full((block, k), jnp.iinfo(jnp.int32).max, jnp.int32),
    )


def scan_tiles(
    q: Float[ArrayLike, "block d"],
    query_ids: Int[ArrayLike, " block"] | None,
    tiles: tuple[ArrayLike, Array, Array],
    k: int,
) -> tuple[Float[Array, "block k"], Int[Array, "block k"]]:
    """Exact top-k of one query block over point tiles whose ids increase tile by tile.

    Scores are q.x - |x|^2 / 2 (same order as -|q - x|^2 / 2), float32 at HIGHEST
    precision; with `query_ids`, a point whose global id equals the query's scores +inf.
    Each tile keeps its own top-k; one `top_k` over them all, laid out in id order, then
    breaks ties by position, which is the lower id. Memory: block x (tile + n_tiles k).
    """
    k_tile = min(k, tiles[0].shape[1])

    def tile_top_k(_: None, tile_args: tuple[Array, Array, Array]) -> tuple[None, tuple]:
        x, half_sq_norms, ids = tile_args
        scores = jnp.matmul(q, x.T, precision=_HIGHEST) - half_sq_norms[None, :]
        if query_ids is not None:
            scores = jnp.where(query_ids[:, None] == ids[None, :], jnp.inf, scores)
        top, pos = jax.lax.top_k(_canonical(scores), k_tile)
        return None, (top, ids[pos])

    _, (top, ids) = jax.lax.scan(tile_top_k, None, tiles)  # (n_tiles, block, k_tile)
    top = jnp.moveaxis(top, 0, 1).reshape(q.shape[0], -1)
    ids = jnp.moveaxis(ids, 0, 1).reshape(q.shape[0], -1)
    best, pos = jax.lax.top_k(top, min(k, top.shape[1]))
    return best, jnp.take_along_axis(ids, pos, axis=1)


def _exact_knn(
    queries: Array, query_ids: Array | None, points: Array, k: int, block_size: int, tile: int
) -> Array:
    n_tiles = math.ceil(points.shape[0] / tile)
    tiles = point_tiles(points, tile, n_tiles)
    q_blocks, rows = _query_blocks(queries, query_ids, block_size)

    def block(args: tuple[Array, Array]) -> Array:
        q, r = args
        return scan_tiles(q, None if query_ids is None else r, tiles, k)[1]

    return _unblock(jax.lax.map(block, (q_blocks, rows)), queries.shape[0])


def _search_operand(x: Array, search_dtype: object) -> tuple[Array, jax.lax.Precision | None]:
    """Stage-1 operand and matmul precision: float32 means full float32, even on GPU/TPU."""
    if search_dtype is None:
        return x, _HIGHEST
    if search_dtype == "tf32":  # float32 operands at default precision: tf32 on NVIDIA GPUs
        return x, None
    dtype = np.dtype(search_dtype)
    return x.astype(dtype), _HIGHEST if dtype == np.float32 else None


def _two_stage_knn(
    queries: Array,
    query_ids: Array | None,
    points: Array,
    k: int,
    block_size: int,
    *,
    search_dtype: object,
    recall_target: float | None,
    candidates: int,
) -> Array:
    n = points.shape[0]
    per_chunk = min(GPU_FAST_TOP_K, k)
    n_chunks = math.ceil(candidates / per_chunk)
    chunk = math.ceil(n / n_chunks)
    # Chunk c holds points c, c + n_chunks, c + 2 n_chunks...: interleaved, so inputs
    # sorted by topic do not pile one query's neighbours into one chunk.
    padded = jnp.pad(points, ((0, n_chunks * chunk - n), (0, 0)))
    order = jnp.arange(n_chunks * chunk, dtype=jnp.int32).reshape(chunk, n_chunks).T.reshape(-1)
    layout = padded[order]
    half_sq_norms = jnp.where(order < n, 0.5 * jnp.sum(layout * layout, axis=-1), jnp.inf)
    layout, precision = _search_operand(layout, search_dtype)
    exact_half_sq_norms = 0.5 * jnp.sum(points * points, axis=-1)
    q_blocks, rows = _query_blocks(queries, query_ids, block_size)

    def stage_one(q: Array) -> Array:
        """Candidate ids (block, n_chunks * per_chunk) from cheap scores."""
        q_search, _ = _search_operand(q, search_dtype)
        scores = (
            jnp.matmul(q_search, layout.T, precision=precision, preferred_element_type=jnp.float32)
            - half_sq_norms[None, :]
        )
        if recall_target is not None:
            _, pos = jax.lax.approx_max_k(scores, n_chunks * per_chunk, recall_target=recall_target)
        else:
            # Rows of (block * n_chunks, chunk): XLA's GPU top-k kernel takes rank <= 2.
            _, within = jax.lax.top_k(scores.reshape(-1, chunk), per_chunk)
            within = within.reshape(q.shape[0], n_chunks, per_chunk)
            pos = (within + chunk * jnp.arange(n_chunks)[None, :, None]).reshape(q.shape[0], -1)
        return order[pos]

    def block(args: tuple[Array, Array]) -> Array:
        q, r = args
        if n_chunks * per_chunk >= n:  # every point is a candidate: stage 2 alone is exact
            found = jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32), (q.shape[0], n))
        else:
            found = stage_one(q)
        # Stage 2: exact float32 scores of the candidates, the same total order as `knn`.
        safe = jnp.minimum(found, n - 1)
        exact = jnp.einsum("bd,bcd->bc", q, points[safe], precision=_HIGHEST)
        exact = jnp.where(found < n, exact - exact_half_sq_norms[safe], -jnp.inf)
        if query_ids is not None:
            # The query itself goes first even if stage 1 missed it; drop any second copy.
            exact = jnp.concatenate(
                [
                    jnp.full((q.shape[0], 1), jnp.inf),
                    jnp.where(found == r[:, None], -jnp.inf, exact),
                ],
                axis=1,
            )
            found = jnp.concatenate([r[:, None], found], axis=1)
        running = init_top_k(q.shape[0], k, exact.dtype)
        return merge_top_k(*running, _canonical(exact), found, k)[1]

    return _unblock(jax.lax.map(block, (q_blocks, rows)), queries.shape[0])


def _check_search_options(
    k: int, n_points: int, search_dtype: object, recall_target: float | None, candidates: int | None
) -> int | None:
    """Validates the two-stage options; returns the candidates per query, None if exact."""
    if search_dtype is None and recall_target is None:
        if candidates is not None:
            raise ValueError("candidates needs search_dtype or recall_target (a two-stage search)")
        return None
    if search_dtype is not None and search_dtype != "tf32":
        if not jnp.issubdtype(np.dtype(search_dtype), jnp.floating):
            raise ValueError(f"search_dtype must be a float dtype or 'tf32', got {search_dtype!r}")
    if recall_target is not None and not 0 < recall_target <= 1:
        raise ValueError(f"recall_target must be in (0, 1], got {recall_target!r}")
    if candidates is None:
        candidates = max(2 * k, 4 * GPU_FAST_TOP_K)
    if isinstance(candidates, bool) or not isinstance(candidates, (int, np.integer)):
        raise ValueError(f"candidates must be an int, got {candidates!r}")
    if candidates < k:
        raise ValueError(f"candidates must be >= k={k}, got {candidates}")
    per_chunk = min(GPU_FAST_TOP_K, k)
    return min(n_points, math.ceil(candidates / per_chunk) * per_chunk)


def knn(
    queries: Float[ArrayLike, "n_queries input_dim"],
    points: Float[ArrayLike, "n_points input_dim"],
    k: int,
    *,
    include_self: bool = False,
    query_ids: Int[ArrayLike, " n_queries"] | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    tile_size: int = DEFAULT_TILE_SIZE,
    search_dtype: object = None,
    recall_target: float | None = None,
    candidates: int | None = None,
    method: str = "exact",
    n_cells: int | None = None,
    nprobe: int = DEFAULT_NPROBE,
) -> Int[Array, "n_queries k"]:
    """k nearest neighbours by Euclidean distance, computed block by block.

    Exact by default: each block of queries scans the points in tiles, ranks them by
    q.x - |x|^2 / 2 (same order as -|q - x|^2 / 2) with one float32 matmul per tile and
    keeps a running top-k. Ties go to the lower point index, deterministically.

    Two-stage (approximate) when `search_dtype` or `recall_target` is set: stage 1
    scores every point cheaply (a reduced-precision matmul, and/or `lax.approx_max_k`)
    and keeps `candidates` per query; stage 2 re-ranks them with exact float32
    distances, in the same total order as the exact search. Only stage 1 can lose a
    neighbour; measure it with `knn_recall`. Without `recall_target`, stage 1 keeps the
    best min(k, 16) of each of candidates / min(k, 16) interleaved chunks of the points
    (16: the largest k of XLA's one-pass GPU top-k kernel).

    Approximate (`method="approximate"`): an inverted file (`build_index`): k-means cells
    over the points, `nprobe` cells scored per query with the exact float32 score and
    order; n log n-ish instead of n^2 on a million inputs, and equal to the exact search
    when every cell is probed. It builds the index eagerly, so it cannot run under a
    caller's `jax.jit`; build it once with `build_index` and call `index_knn` to reuse it.

    Args:
        queries: points to find neighbours for.
        points: candidates.
        k: neighbours per query (static).
        include_self: queries are `points` in the same order, and query i must be its
            own first neighbour even where rounding or duplicate points say otherwise.
        query_ids: the general form of `include_self`: query i is point query_ids[i]
            (forced first), or no point where it is -1. Lets a chunk of the points be
            searched on its own (streaming) with the neighbours of the whole search.
        block_size: queries per block (static).
        tile_size: points per tile of the exact search (static); memory is
            block_size x tile_size scores.
        search_dtype: stage-1 matmul dtype, e.g. `jnp.bfloat16`, or "tf32" (float32
            operands at default precision: TF32 on NVIDIA GPUs, exact on CPU).
        recall_target: stage 1 uses `lax.approx_max_k` with this recall target (TPUs
            run it approximately and fast; CPUs and GPUs compute it exactly).
        candidates: stage-1 candidates per query, >= k; default max(2 k, 64), rounded up
            to whole chunks and capped at n_points.
        method: "exact" (default) or "approximate" (the inverted file).
        n_cells: approximate: k-means cells; default about sqrt(n_points).
        nprobe: approximate: cells probed per query, 1 <= nprobe <= the cells.

    Returns:
        Indices into `points`, nearest first.

    >>> x = jnp.array([[0.0], [1.0], [3.0]])
    >>> knn(x, x, 2, include_self=True)
    Array([[0, 1],
           [1, 0],
           [2, 1]], dtype=int32)
    """
    if method not in SEARCH_METHODS:
        raise ValueError(f"method must be one of {SEARCH_METHODS}, got {method!r}")
    queries, points = jnp.asarray(queries), jnp.asarray(points)
    if include_self and query_ids is not None:
        raise ValueError("give include_self or query_ids, not both")
    if method == "approximate":
        index = build_index(points, n_cells=n_cells)
        if include_self and queries.shape[0] == points.shape[0]:
            return index_self_knn(index, k, nprobe=nprobe)
        return index_knn(
            index, queries, k, nprobe=nprobe, include_self=include_self, query_ids=query_ids
        )
    if include_self:
        query_ids = jnp.arange(queries.shape[0], dtype=jnp.int32)
    n_points = points.shape[0]
    n_candidates = _check_search_options(k, n_points, search_dtype, recall_target, candidates)
    if n_candidates is None:
        tile = effective_tile(tile_size, k, n_points)
        return _exact_knn(queries, query_ids, points, k, block_size, tile)
    return _two_stage_knn(
        queries,
        query_ids,
        points,
        k,
        block_size,
        search_dtype=search_dtype,
        recall_target=recall_target,
        candidates=n_candidates,
    )


@dataclasses.dataclass(frozen=True)
class Search:
    """How the fits find neighbours: exact (the default), or an inverted file.

    Pass `search="approximate"` (default cells and nprobe) or a `Search` to `fit_local`,
    `fit_router` and `evaluate`.

    Attributes:
        method: "exact" or "approximate".
        n_cells: approximate: k-means cells (default about sqrt(n)).
        nprobe: approximate: cells probed per query.
    """

    method: str = "exact"
    n_cells: int | None = None
    nprobe: int = DEFAULT_NPROBE

    def __post_init__(self) -> None:
        if self.method not in SEARCH_METHODS:
            raise ValueError(f"search method must be one of {SEARCH_METHODS}, got {self.method!r}")

    @property
    def exact(self) -> bool:
        return self.method == "exact"

    def index(self, points: Float[ArrayLike, "n_points input_dim"]) -> IVFIndex:
        """The inverted file over `points` (approximate only)."""
        return build_index(points, n_cells=self.n_cells)


def as_search(search: object) -> Search:
    """A `Search` from "exact", "approximate" or a `Search`; ValueError otherwise."""
    if isinstance(search, Search):
        return search
    if isinstance(search, str):
        return Search(search)
    raise ValueError(f"search must be 'exact', 'approximate' or a Search, got {search!r}")


def knn_recall(
    found: Int[ArrayLike, "n_queries k"], exact: Int[ArrayLike, "n_queries k"]
) -> Float[Array, ""]:
    """Mean fraction of each query's exact neighbours that `found` contains (order ignored).

    >>> knn_recall(jnp.array([[0, 1], [2, 5]]), jnp.array([[1, 0], [2, 3]]))
    Array(0.75, dtype=float32)
    """
    hits = jnp.any(exact[:, :, None] == found[:, None, :], axis=-1)
    return jnp.mean(hits.astype(jnp.float32))


def neighbour_mean(
    values: Shaped[ArrayLike, "n_points ..."], indices: Int[ArrayLike, "n_queries k"]
) -> Shaped[Array, "n_queries ..."]:
    """Average of `values` over each query's neighbours (the Smoothie-Local smoothing)."""
    return jnp.mean(values[indices], axis=1)


def local_distances(
    distances: Float[ArrayLike, "n_points n_models n_models"],
    points: Float[ArrayLike, "n_points input_dim"],
    queries: Float[ArrayLike, "n_queries input_dim"],
    k: int,
    **search: object,
) -> Float[Array, "n_queries n_models n_models"]:
    """Smoothie-Local's statistic: each query's mean D over its k nearest points.

    The one place where neighbours become the smoothed distance matrix: test-time fits
    (queries are the points, `include_self=True`), the router, streaming and the Local
    posterior all call it. `search` takes `knn`'s keyword options.

    >>> d = jnp.arange(3.0)[:, None, None] * jnp.ones((3, 2, 2))
    >>> x = jnp.array([[0.0], [1.0], [5.0]])
    >>> local_distances(d, x, x, 2, include_self=True)[:, 0, 0]
    Array([0.5, 0.5, 1.5], dtype=float32)
    """
    return neighbour_mean(distances, knn(queries, points, k, **search))


def masked_neighbour_mean(
    distances: Float[ArrayLike, "n_points n_models n_models"],
    pairs: Float[ArrayLike, "n_points n_models n_models"],
    neighbours: Int[ArrayLike, "n_queries k"],
) -> tuple[
    Float[Array, "n_queries n_models n_models"], Float[Array, "n_queries n_models n_models"]
]:
    """Each pair's mean distance over the neighbours where both models answered.

    `distances` must be 0 where a pair is unobserved (D x `pairs`).

    Returns:
        (mean D over co-observed neighbours, 0 where none; share of co-observed
        neighbours per pair).
    """
    summed, share = jnp.moveaxis(neighbour_mean(jnp.stack([distances, pairs], 1), neighbours), 1, 0)
    return summed / jnp.where(share > 0, share, 1.0), share


def local_masked_distances(
    distances: Float[ArrayLike, "n_points n_models n_models"],
    pairs: Float[ArrayLike, "n_points n_models n_models"],
    points: Float[ArrayLike, "n_points input_dim"],
    queries: Float[ArrayLike, "n_queries input_dim"],
    k: int,
    **search: object,
) -> tuple[
    Float[Array, "n_queries n_models n_models"], Float[Array, "n_queries n_models n_models"]
]:
    """`local_distances` where some models did not answer some inputs (`pairs`, from
    `pair_mask`; `distances` zero where a pair is unobserved): `masked_neighbour_mean`
    over the k nearest points."""
    return masked_neighbour_mean(distances, pairs, knn(queries, points, k, **search))


def kernel_mean(
    queries: Float[ArrayLike, "n_queries input_dim"],
    points: Float[ArrayLike, "n_points input_dim"],
    values: Float[ArrayLike, "n_points ..."],
    *,
    bandwidth: float | Float[ArrayLike, ""],
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> Float[Array, "n_queries ..."]:
    """Average of `values` with Gaussian weights exp(-|q - x|^2 / (2 bandwidth^2)).

    Weights are normalised per query with a softmax, so a query far from every point
    still gets a proper average (of its nearest points) instead of 0 / 0.

    Args:
        queries: where to evaluate the smoothed average.
        points: where `values` were observed.
        values: one statistic per point, any trailing shape.
        bandwidth: kernel width in input-embedding units; small approaches 1-NN, large
            approaches the global mean.
        block_size: queries per block (static).

    Returns:
        The kernel-weighted mean of `values` for each query.

    >>> x = jnp.array([[0.0], [10.0]])
    >>> kernel_mean(x, x, jnp.array([1.0, 3.0]), bandwidth=1.0)
    Array([1., 3.], dtype=float32)
    """
    half_sq_norms = 0.5 * jnp.sum(points * points, axis=-1)
    flat = values.reshape(values.shape[0], -1)

    def block(args: tuple[Array, Array]) -> Array:
        q, _ = args
        # -|q - x|^2 / 2 up to a per-query constant, which the softmax cancels.
        logits = jnp.matmul(q, points.T, precision=_HIGHEST) - half_sq_norms[None, :]
        weights = jax.nn.softmax(logits / bandwidth**2, axis=-1)
        return jnp.matmul(weights, flat, precision=_HIGHEST)

    means = _unblock(jax.lax.map(block, _blocks(queries, block_size)), queries.shape[0])
    return means.reshape(queries.shape[0], *values.shape[1:])
