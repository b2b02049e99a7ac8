"""Brute-force k nearest neighbours, blocked: the exact search and the two-stage one.

Everything works on blocks of queries, so memory is O(block_size x tile_size) for the
exact search and O(block_size x n_points) for the two-stage search, never
n_queries x n_points.

The exact search scans the points in fixed-shape tiles and keeps a running top-k per
query. Fixed shapes matter beyond memory: a matmul's rounding depends on its shape, so
scoring every (query block, point tile) pair with the same shapes is what lets the
sharded search (`sharded_knn`) and the streaming one return bit-identical neighbours.

The two-stage search scores every point cheaply (a reduced-precision matmul, and/or
`lax.approx_max_k`), keeps a few candidates per query and re-ranks them with exact
float32 scores in the same total order; only its first stage can lose a neighbour.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, Shaped

from ._validate import ArrayLike

DEFAULT_BLOCK_SIZE = 1024
DEFAULT_TILE_SIZE = 16384
# XLA's fast GPU top-k kernel (one pass, a running top-k per thread in registers) takes
# k <= 16; larger k falls back to sorting every row. The two-stage search keeps at most
# this many candidates per chunk of points so that stage stays on the fast path.
GPU_FAST_TOP_K = 16
_HIGHEST = jax.lax.Precision.HIGHEST  # exact float32 search on GPU/TPU too (no tf32)


def blocks(queries: Float[ArrayLike, "n_queries d"], block_size: int) -> tuple[Array, Array]:
    """Pads the queries to whole blocks: (n_blocks, block, d) and their row numbers."""
    n = queries.shape[0]
    block = min(block_size, n)
    n_blocks = math.ceil(n / block)
    padded = jnp.pad(queries, ((0, n_blocks * block - n), (0, 0)))
    rows = jnp.arange(n_blocks * block).reshape(n_blocks, block)
    return padded.reshape(n_blocks, block, -1), rows


def _query_blocks(
    queries: Array, query_ids: ArrayLike | None, block_size: int
) -> tuple[Array, Array]:
    """`blocks`, with each row's point id (-1 for padding) when queries are points."""
    q_blocks, rows = blocks(queries, block_size)
    if query_ids is not None:
        query_ids = jnp.asarray(query_ids, jnp.int32)
        rows = jnp.pad(query_ids, (0, rows.size - query_ids.shape[0]), constant_values=-1)
        rows = rows.reshape(q_blocks.shape[:2])
    return q_blocks, rows


def unblock(x: Shaped[ArrayLike, "n_blocks block ..."], n: int) -> Shaped[Array, "n ..."]:
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


def canonical(scores: Array) -> Array:
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
        top, pos = jax.lax.top_k(canonical(scores), k_tile)
        return None, (top, ids[pos])

    _, (top, ids) = jax.lax.scan(tile_top_k, None, tiles)  # (n_tiles, block, k_tile)
    top = jnp.moveaxis(top, 0, 1).reshape(q.shape[0], -1)
    ids = jnp.moveaxis(ids, 0, 1).reshape(q.shape[0], -1)
    best, pos = jax.lax.top_k(top, min(k, top.shape[1]))
    return best, jnp.take_along_axis(ids, pos, axis=1)


def exact_knn(
    queries: Float[ArrayLike, "n_queries input_dim"],
    points: Float[ArrayLike, "n_points input_dim"],
    k: int,
    *,
    query_ids: Int[ArrayLike, " n_queries"] | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    tile_size: int = DEFAULT_TILE_SIZE,
) -> Int[Array, "n_queries k"]:
    """Exact k nearest points: float32 scores of every point, tile by tile (jit-safe).

    Each block of queries scans the points in tiles, ranks them by q.x - |x|^2 / 2 (the
    order of -|q - x|^2 / 2) with one float32 matmul per tile and keeps a running top-k.
    Ties go to the lower point index, deterministically.

    Args:
        queries: points to find neighbours for.
        points: candidates.
        k: neighbours per query (static).
        query_ids: query i is point query_ids[i] (forced first), or no point where -1.
        block_size: queries per block (static).
        tile_size: points per tile (static); memory is block_size x tile_size scores.

    Returns:
        Indices into `points`, nearest first.
    """
    tile = effective_tile(tile_size, k, points.shape[0])
    n_tiles = math.ceil(points.shape[0] / tile)
    tiles = point_tiles(points, tile, n_tiles)
    q_blocks, rows = _query_blocks(queries, query_ids, block_size)

    def block(args: tuple[Array, Array]) -> Array:
        q, r = args
        return scan_tiles(q, None if query_ids is None else r, tiles, k)[1]

    return unblock(jax.lax.map(block, (q_blocks, rows)), queries.shape[0])


def _search_operand(x: Array, search_dtype: str | None) -> tuple[Array, jax.lax.Precision | None]:
    """Stage-1 operand and matmul precision: float32 means full float32, even on GPU/TPU."""
    if search_dtype is None:
        return x, _HIGHEST
    if search_dtype == "tf32":  # float32 operands at default precision: tf32 on NVIDIA GPUs
        return x, None
    dtype = np.dtype(search_dtype)
    return x.astype(dtype), _HIGHEST if dtype == np.float32 else None


def _interleaved(
    points: Array, n_chunks: int, dtype: str | None
) -> tuple[int, Array, Array, Array, jax.lax.Precision | None]:
    """Stage 1's layout of the points in `n_chunks` equal chunks: (chunk length, point id
    of each slot, the stage-1 operand, half squared norms with inf in the padding, the
    matmul precision). Chunk c holds points c, c + n_chunks, c + 2 n_chunks...:
    interleaved, so inputs sorted by topic do not pile one query's neighbours into one
    chunk."""
    n = points.shape[0]
    chunk = math.ceil(n / n_chunks)
    padded = jnp.pad(points, ((0, n_chunks * chunk - n), (0, 0)))
    order = jnp.arange(n_chunks * chunk, dtype=jnp.int32).reshape(chunk, n_chunks).T.reshape(-1)
    layout = padded[order]
    half = jnp.where(order < n, 0.5 * jnp.sum(layout * layout, axis=-1), jnp.inf)
    layout, precision = _search_operand(layout, dtype)
    return chunk, order, layout, half, precision


def two_stage_knn(
    queries: Float[ArrayLike, "n_queries input_dim"],
    points: Float[ArrayLike, "n_points input_dim"],
    k: int,
    *,
    query_ids: Int[ArrayLike, " n_queries"] | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    dtype: str | None = "bfloat16",
    recall_target: float | None = None,
    candidates: int | None = None,
    chunks: int | None = None,
) -> Int[Array, "n_queries k"]:
    """Cheap scores for every point, then exact float32 re-ranking of a few (jit-safe).

    Stage 1 scores every point in `dtype` (and/or with `lax.approx_max_k` at
    `recall_target`) and keeps `candidates` per query; stage 2 re-ranks them with exact
    float32 scores, in the same total order as `exact_knn`. Only stage 1 can lose a
    neighbour; measure it with `knn_recall`. Without `recall_target`, stage 1 keeps the
    best min(k, 16) of each of candidates / min(k, 16) interleaved chunks of the points
    (16: the largest k of XLA's one-pass GPU top-k kernel).

    Args:
        queries: points to find neighbours for.
        points: candidates.
        k: neighbours per query (static).
        query_ids: query i is point query_ids[i] (forced first), or no point where -1.
        block_size: queries per block (static); memory is block_size x n_points scores.
        dtype: stage-1 matmul dtype: "bfloat16", "float16", "float32", or "tf32" (float32
            operands at default precision: TF32 on NVIDIA GPUs, exact on CPU); None is
            float32 (with `recall_target`).
        recall_target: stage 1 uses `lax.approx_max_k` with this recall target (TPUs run
            it approximately and fast; CPUs and GPUs compute it exactly).
        candidates: stage-1 candidates per query, >= k; default max(2 k, 64), rounded up
            to whole chunks and capped at n_points.
        chunks: instead, stage 1 takes the best point of each of `chunks` interleaved
            chunks (a max over each chunk: a reduction, no sort), then the best
            `candidates` of those; a neighbour is lost only where two share a chunk
            (about k^2 / (2 chunks) of them).

    Returns:
        Indices into `points`, nearest first.
    """
    n = points.shape[0]
    if chunks is not None:
        return _chunk_max_knn(
            queries, points, k, query_ids, block_size, dtype, chunks,
            max(2 * k, 4 * GPU_FAST_TOP_K) if candidates is None else candidates,
        )  # fmt: skip
    per_chunk = min(GPU_FAST_TOP_K, k)
    if candidates is None:
        candidates = max(2 * k, 4 * GPU_FAST_TOP_K)
    candidates = min(n, math.ceil(candidates / per_chunk) * per_chunk)  # whole chunks
    n_chunks = math.ceil(candidates / per_chunk)
    chunk, order, layout, half_sq_norms, precision = _interleaved(points, n_chunks, dtype)
    exact_half = 0.5 * jnp.sum(points * points, axis=-1)
    q_blocks, rows = _query_blocks(queries, query_ids, block_size)

    def stage_one(q: Array) -> Array:
        """Candidate ids (block, n_chunks * per_chunk) from cheap scores."""
        q_search, _ = _search_operand(q, dtype)
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
        return _rerank(q, None if query_ids is None else r, found, points, exact_half, k)

    return unblock(jax.lax.map(block, (q_blocks, rows)), queries.shape[0])


def _rerank(
    q: Array, r: Array | None, found: Array, points: Array, half_sq_norms: Array, k: int
) -> Array:
    """Stage 2: exact float32 scores of the candidates, in `exact_knn`'s total order; with
    query ids, the query itself first even if stage 1 missed it (any second copy dropped)."""
    n = points.shape[0]
    safe = jnp.minimum(found, n - 1)
    exact = jnp.einsum("bd,bcd->bc", q, points[safe], precision=_HIGHEST)
    exact = jnp.where(found < n, exact - half_sq_norms[safe], -jnp.inf)
    if r is not None:
        exact = jnp.concatenate(
            [jnp.full((q.shape[0], 1), jnp.inf), jnp.where(found == r[:, None], -jnp.inf, exact)],
            axis=1,
        )
        found = jnp.concatenate([r[:, None], found], axis=1)
    running = init_top_k(q.shape[0], k, exact.dtype)
    return merge_top_k(*running, canonical(exact), found, k)[1]


def _chunk_max_knn(
    queries: Array,
    points: Array,
    k: int,
    query_ids: Array | None,
    block_size: int,
    dtype: str | None,
    chunks: int,
    candidates: int,
) -> Array:
    """Two-stage search whose first stage keeps each interleaved chunk's best point."""
    n = points.shape[0]
    chunks = min(chunks, n)
    candidates = min(candidates, chunks)
    chunk, order, layout, half, precision = _interleaved(points, chunks, dtype)
    exact_half = 0.5 * jnp.sum(points * points, axis=-1)
    q_blocks, rows = _query_blocks(queries, query_ids, block_size)

    def block(args: tuple[Array, Array]) -> Array:
        q, r = args
        q_search, _ = _search_operand(q, dtype)
        scores = (
            jnp.matmul(q_search, layout.T, precision=precision, preferred_element_type=jnp.float32)
            - half[None, :]
        )
        scores = scores.reshape(q.shape[0], chunks, chunk)
        best = jnp.max(scores, axis=-1)
        within = jnp.argmax(scores, axis=-1)
        _, top = jax.lax.top_k(best, candidates)  # the best chunks' best points
        pos = jnp.take_along_axis(within, top, axis=1) + chunk * top
        return _rerank(q, None if query_ids is None else r, order[pos], points, exact_half, k)

    return unblock(jax.lax.map(block, (q_blocks, rows)), queries.shape[0])
