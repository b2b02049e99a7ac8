"""Approximate kNN with an inverted file (IVF): k-means cells, exact float32 re-ranking.

Exact search costs n_queries x n_points, hours on a CPU at a million inputs. The inverted
file cuts it to n_queries x (nprobe cells' points): k-means (trained on a sample) puts
every point in the cell of its nearest centroid, cells are stored in fixed-size padded
blocks, and a query scores only the points of the `nprobe` cells nearest it, with the
exact search's float32 score and total order: it can only miss a neighbour whose cell
was not probed.

Two searches share the index: `index_self_knn`, the points as queries (test-time
Smoothie-Local: a cell's points scored against the union of its `nprobe` nearest cells
by dense matmuls, no per-query gathers), and `index_knn`, any queries (routing new
inputs: each query probes its own cells, one at a time, with a running top-k).

Building and the probe tables need concrete sizes (shapes depend on the data), so the
three entry points are eager and call jitted kernels; they cannot be traced themselves.
"""

from __future__ import annotations

import math
from typing import final

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from ._knn import canonical
from ._validate import ArrayLike, check_int

_HIGHEST = jax.lax.Precision.HIGHEST  # exact float32 scores on GPU/TPU too (no tf32)
DEFAULT_INDEX_BLOCK = 128
DEFAULT_NPROBE = 4  # recall >= 0.99 on clustered inputs at 1e5 and 1e6 (bench_search.py)
DEFAULT_ITERATIONS = 10
DEFAULT_SAMPLE_PER_CELL = 32
DEFAULT_QUERY_BLOCK = 16
DEFAULT_STEP_BLOCKS = 8
# Ties at rank k are broken on the point id as a float32 key: exact up to 2^24.
MAX_POINTS = 2**24


@final
class IVFIndex(eqx.Module):
    """An inverted file over `n_points` points: k-means cells in padded blocks.

    Points are sorted by (cell, id) and each cell is padded to whole blocks of
    `block_size` slots; one extra all-padding block at the end fills the fixed-size
    candidate lists. A padding slot has id `n_points` and half squared norm +inf, so its
    score is -inf and never beats a real point. Cells left empty by k-means are dropped,
    so `n_cells` can be below the number asked for. Arrays and static ints only: saves
    with `eqx.tree_serialise_leaves` (load into an index built with the same statics).

    Attributes:
        centroids: one per non-empty cell.
        blocks: the points, cell by cell; `cell_start[c]` is cell c's first block.
        block_ids: original id of each slot (`n_points` for padding).
        half_sq_norms: |x|^2 / 2 of each slot (+inf for padding).
        cell_start: first block of each cell.
        cell_blocks: blocks of each cell.
        cell_sizes: points of each cell.
        n_points: points indexed.
        n_cells: non-empty cells.
        block_size: slots per block.
        max_cell_blocks: blocks of the largest cell.
    """

    centroids: Float[Array, "n_cells dim"]
    blocks: Float[Array, "n_blocks block_size dim"]
    block_ids: Int[Array, "n_blocks block_size"]
    half_sq_norms: Float[Array, "n_blocks block_size"]
    cell_start: Int[Array, " n_cells"]
    cell_blocks: Int[Array, " n_cells"]
    cell_sizes: Int[Array, " n_cells"]
    n_points: int = eqx.field(static=True)
    n_cells: int = eqx.field(static=True)
    block_size: int = eqx.field(static=True)
    max_cell_blocks: int = eqx.field(static=True)

    def __check_init__(self) -> None:
        if self.centroids.shape[0] != self.n_cells or self.cell_sizes.shape != (self.n_cells,):
            raise ValueError("centroids and cell arrays must have n_cells rows")
        if self.blocks.shape[:2] != self.block_ids.shape or self.blocks.shape[1] != self.block_size:
            raise ValueError("blocks and block_ids must be (n_blocks, block_size, ...)")

    @property
    def filler(self) -> int:
        """The all-padding block that pads candidate lists."""
        return self.blocks.shape[0] - 1


def _check_points(points: object, name: str = "points") -> Array:
    points = jnp.asarray(points)
    if points.ndim != 2 or points.shape[0] < 1 or points.shape[1] < 1:
        raise ValueError(f"{name} must be (n, dim) with n, dim >= 1, got shape {points.shape}")
    if not jnp.issubdtype(points.dtype, jnp.floating):
        points = points.astype(jnp.float32)
    return points


def default_n_cells(n_points: int) -> int:
    """round(sqrt(n)), at most n: ~1000 cells of ~1000 points at a million.

    sqrt(n) balances the two costs of a query: scoring the centroids (n_cells) and
    scoring the probed cells' points (nprobe n / n_cells).
    """
    return max(1, min(n_points, round(math.sqrt(n_points))))


def _cell_scores(x: Array, centroids: Array) -> Array:
    # Nearest centroid = highest c.x - |c|^2 / 2, the same score as the point search.
    half = 0.5 * jnp.sum(centroids * centroids, axis=-1)
    return jnp.matmul(x, centroids.T, precision=_HIGHEST) - half[None, :]


@jax.jit
def _chunk_stats(x: Array, valid: Array, centroids: Array) -> tuple[Array, Array, Array]:
    """One fixed-size chunk: each row's nearest centroid (ties: lower cell), and the
    per-cell sums and counts of the valid rows (for a k-means step)."""
    n_cells = centroids.shape[0]
    cells = jnp.argmax(_cell_scores(x, centroids), axis=-1).astype(jnp.int32)
    w = valid.astype(x.dtype)
    sums = jax.ops.segment_sum(x * w[:, None], cells, num_segments=n_cells)
    return cells, sums, jax.ops.segment_sum(w, cells, num_segments=n_cells)


def _chunks(x: Array, chunk: int):
    """(rows, valid) in chunks of exactly `chunk` rows (the last zero-padded): every
    call of `_chunk_stats` has one shape, so building compiles once whatever n is."""
    n_chunks = math.ceil(x.shape[0] / chunk)
    padded = jnp.pad(x, ((0, n_chunks * chunk - x.shape[0]), (0, 0))).reshape(n_chunks, chunk, -1)
    valid = (jnp.arange(n_chunks * chunk) < x.shape[0]).reshape(n_chunks, chunk)
    for i in range(n_chunks):
        yield padded[i], valid[i]


def _assign(points: Array, centroids: Array, chunk: int) -> Int[Array, " n"]:
    """Nearest centroid of every point, `chunk` points at a time."""
    cells = [_chunk_stats(x, v, centroids)[0] for x, v in _chunks(points, chunk)]
    return jnp.concatenate(cells)[: points.shape[0]]


def _kmeans(sample: Array, init: Array, iterations: int, chunk: int) -> Array:
    """Lloyd's k-means; a cell that loses all its points keeps its old centroid."""
    centroids = init
    for _ in range(iterations):
        sums = jnp.zeros_like(centroids)
        counts = jnp.zeros(centroids.shape[0], centroids.dtype)
        for x, v in _chunks(sample, chunk):
            _, s, c = _chunk_stats(x, v, centroids)
            sums, counts = sums + s, counts + c
        new = sums / jnp.maximum(counts, 1)[:, None]
        centroids = jnp.where(counts[:, None] > 0, new, centroids)
    return centroids


@jax.jit(static_argnames=("n_blocks", "block_size"))
def _layout(
    points: Array,
    cells: Array,
    cell_start: Array,
    first_in_cell: Array,
    n_blocks: int,
    block_size: int,
) -> tuple[Array, Array, Array]:
    """Points sorted by cell into padded blocks, with their ids and half squared norms."""
    n, dim = points.shape
    # Stable sort by cell keeps ids increasing within a cell (not needed for
    # correctness, the re-ranking orders ties by id, but it keeps the layout canonical).
    order = jnp.argsort(cells, stable=True)
    sorted_cells = cells[order]
    rank = jnp.arange(n, dtype=jnp.int32) - first_in_cell[sorted_cells]
    slots = cell_start[sorted_cells] * block_size + rank
    total = n_blocks * block_size
    blocks = jnp.zeros((total, dim), points.dtype).at[slots].set(points[order])
    ids = jnp.full((total,), n, jnp.int32).at[slots].set(order.astype(jnp.int32))
    half = jnp.where(ids < n, 0.5 * jnp.sum(blocks * blocks, axis=-1), jnp.inf)
    return (
        blocks.reshape(n_blocks, block_size, dim),
        ids.reshape(n_blocks, block_size),
        half.reshape(n_blocks, block_size),
    )


def build_index(
    points: Float[ArrayLike, "n_points dim"],
    *,
    n_cells: int | None = None,
    sample_size: int | None = None,
    iterations: int = DEFAULT_ITERATIONS,
    block_size: int = DEFAULT_INDEX_BLOCK,
    seed: int = 0,
) -> IVFIndex:
    """Builds an inverted file: k-means on a sample, then every point into its cell.

    Args:
        points: the points to search (float32 recommended; they are stored as given).
        n_cells: k-means cells, 1 <= n_cells <= n_points; default `default_n_cells`,
            round(sqrt(n_points)).
        sample_size: points k-means trains on, n_cells <= sample_size <= n_points;
            default min(n_points, 32 n_cells). Centroids start at distinct sample points.
        iterations: Lloyd iterations (>= 0; 0 keeps the sampled points as centroids).
        block_size: slots per padded block; each cell wastes < block_size slots.
        seed: picks the sample.

    Returns:
        The `IVFIndex`; empty cells are dropped.

    >>> x = jnp.arange(12.0).reshape(6, 2)
    >>> build_index(x, n_cells=2).n_cells
    2
    """
    points = _check_points(points)
    n, dim = points.shape
    if n >= MAX_POINTS:
        raise ValueError(f"an IVFIndex holds fewer than 2^24 points, got {n}")
    n_cells = default_n_cells(n) if n_cells is None else check_int("n_cells", n_cells, 1, n)
    if sample_size is None:
        sample_size = min(n, DEFAULT_SAMPLE_PER_CELL * n_cells)
    sample_size = check_int("sample_size", sample_size, n_cells, n)
    iterations = check_int("iterations", iterations, 0)
    block_size = check_int("block_size", block_size, 1)

    chunk = 4096
    perm = jax.random.permutation(jax.random.key(seed), n)[:sample_size]
    sample = points[perm]
    chunk = min(chunk, n)
    centroids = _kmeans(sample, sample[:n_cells], iterations, chunk)
    cells = _assign(points, centroids, chunk)

    sizes = np.bincount(np.asarray(cells), minlength=n_cells)
    keep = np.flatnonzero(sizes)  # empty cells would only waste probes
    remap = np.full(n_cells, -1, np.int64)
    remap[keep] = np.arange(keep.size)
    centroids, sizes = centroids[keep], sizes[keep]
    cell_blocks = -(-sizes // block_size)
    cell_start = np.concatenate([[0], np.cumsum(cell_blocks)[:-1]])
    n_blocks = int(cell_blocks.sum()) + 1  # + the filler block
    blocks, ids, half = _layout(
        points,
        jnp.asarray(remap, jnp.int32)[cells],
        jnp.asarray(cell_start, jnp.int32),
        jnp.asarray(np.concatenate([[0], np.cumsum(sizes)[:-1]]), jnp.int32),
        n_blocks,
        block_size,
    )
    return IVFIndex(
        centroids=centroids,
        blocks=blocks,
        block_ids=ids,
        half_sq_norms=half,
        cell_start=jnp.asarray(cell_start, jnp.int32),
        cell_blocks=jnp.asarray(cell_blocks, jnp.int32),
        cell_sizes=jnp.asarray(sizes, jnp.int32),
        n_points=n,
        n_cells=int(keep.size),
        block_size=block_size,
        max_cell_blocks=int(cell_blocks.max()),
    )


def _select(scores: Array, ids: Array, k: int, exact: bool) -> tuple[Array, Array, Array]:
    """Best k candidates per row in the exact search's order: higher score, then lower id.

    Fast (exact=False): `top_k` of k + 1, then the k sorted by (score, id). `top_k`
    breaks ties by position and candidates are not in id order, so the k kept are the
    right set unless the k-th and (k+1)-th scores tie; such rows come back flagged and
    the caller redoes them with exact=True (a full sort by (score, id): slow, but real
    data rarely ties). Not a `lax.cond`: inside `lax.map` it slows XLA's CPU top_k ~10x.

    Returns:
        Scores and ids of the k kept, and per row whether a tie at rank k may have
        picked the higher id (always False when exact).
    """
    scores = canonical(scores)
    if exact:
        neg, best = jax.lax.sort((-scores, ids), num_keys=2)
        return -neg[:, :k], best[:, :k], jnp.zeros(scores.shape[0], bool)
    kk = min(k + 1, scores.shape[1])
    top, pos = jax.lax.top_k(scores, kk)
    neg, best = jax.lax.sort((-top, jnp.take_along_axis(ids, pos, axis=1)), num_keys=2)
    if kk > k:
        # Read the tie off the sorted copy: comparing `top` columns directly makes XLA's
        # CPU top_k ~10x slower (measured). -inf ties are padding, never ahead of a point.
        tied = (neg[:, k] == neg[:, k - 1]) & (neg[:, k - 1] < jnp.inf)
    else:
        tied = jnp.zeros(scores.shape[0], bool)
    return -neg[:, :k], best[:, :k], tied


def _pad_pow2(rows: np.ndarray) -> np.ndarray:
    """Rows padded (repeating the first) to a power of 2: few shapes, few compilations."""
    size = 1 << max(0, int(rows.size - 1).bit_length())
    return np.concatenate([rows, np.full(size - rows.size, rows[0], rows.dtype)])


# ----------------------------------------------------------------------------------------
# Points as queries: grouped by cell, one dense matmul per block.


def _self_probe_table(
    index: IVFIndex, nprobe: int, step_blocks: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per query block, its candidate blocks (filler-padded) and their number of steps.

    Cell c's candidates are the blocks of the `nprobe` cells nearest its centroid, c
    itself always first (a point's own cell must be probed). Each list is scanned
    `step_blocks` blocks at a time for as many steps as it needs (a loop with a
    data-dependent trip count: one compiled shape, padding < step_blocks blocks).
    """
    scores = _cell_scores(index.centroids, index.centroids)
    scores = scores.at[jnp.arange(index.n_cells), jnp.arange(index.n_cells)].set(jnp.inf)
    probe = np.asarray(jax.lax.top_k(scores, nprobe)[1])  # (n_cells, nprobe)
    start, count = np.asarray(index.cell_start), np.asarray(index.cell_blocks)
    lists = [np.concatenate([start[c] + np.arange(count[c]) for c in row]) for row in probe]
    steps = -(-np.array([len(x) for x in lists]) // step_blocks)
    table = np.full((index.n_cells, int(steps.max()) * step_blocks), index.filler, np.int32)
    for c, cand in enumerate(lists):
        table[c, : cand.size] = cand
    return table, steps.astype(np.int32)


@jax.jit(static_argnames=("k", "exact", "step_blocks"))
def _self_search(
    index: IVFIndex,
    query_blocks: Array,
    table: Array,
    steps: Array,
    k: int,
    exact: bool,
    step_blocks: int,
) -> tuple[Array, Array]:
    """Neighbours of every slot of `query_blocks`, scanning each block's candidate list."""
    dim = index.blocks.shape[-1]

    def one(args: tuple[Array, Array, Array]) -> tuple[Array, Array]:
        b, cand, n_steps = args
        q, qids = index.blocks[b], index.block_ids[b]

        def step(s: Array, running: tuple[Array, Array, Array]) -> tuple[Array, Array, Array]:
            blk = jax.lax.dynamic_slice_in_dim(cand, s * step_blocks, step_blocks)
            x = index.blocks[blk].reshape(-1, dim)
            ids = index.block_ids[blk].reshape(-1)
            scores = (
                jnp.matmul(q, x.T, precision=_HIGHEST)
                - index.half_sq_norms[blk].reshape(-1)[None, :]
            )
            # include_self: the query is its own first neighbour whatever rounding says.
            scores = jnp.where(qids[:, None] == ids[None, :], jnp.inf, scores)
            top, best, tied = _select(
                jnp.concatenate([running[0], scores], axis=1),
                jnp.concatenate([running[1], jnp.broadcast_to(ids, scores.shape)], axis=1),
                k,
                exact,
            )
            return top, best, running[2] | tied

        init = (
            jnp.full((q.shape[0], k), -jnp.inf, q.dtype),
            jnp.full((q.shape[0], k), index.n_points, jnp.int32),
            jnp.zeros(q.shape[0], bool),
        )
        _, found, tied = jax.lax.fori_loop(0, n_steps, step, init)
        # Padding rows (zeros) tie everywhere; they are dropped, so never redo for them.
        return found, jnp.any(tied & (qids < index.n_points))

    return jax.lax.map(one, (query_blocks, table, steps))


def index_self_knn(
    index: IVFIndex, k: int, *, nprobe: int, step_blocks: int = DEFAULT_STEP_BLOCKS
) -> Int[Array, "n_points k"]:
    """k nearest indexed points of every indexed point, itself first (include_self).

    The fast path for test-time Smoothie-Local: queries are grouped by their own cell,
    and each block of a cell's points is scored against every point of the `nprobe`
    cells nearest that cell's centroid (its own cell included), `step_blocks` blocks
    per dense matmul, then ranked like `knn(points, points, k, include_self=True)`:
    itself first, then higher q.x - |x|^2 / 2, then lower id. With nprobe = n_cells it
    is the exact search.

    Args:
        index: from `build_index`.
        k: neighbours per point (static), at most the candidates of every cell.
        nprobe: cells probed per cell of queries, 1 <= nprobe <= index.n_cells.
        step_blocks: candidate blocks per matmul (static); memory per query block is
            block_size x step_blocks x block_size scores.

    Returns:
        Indices into the indexed points, nearest first.

    >>> x = jnp.array([[0.0], [1.0], [3.0], [10.0]])
    >>> index_self_knn(build_index(x, n_cells=2), 2, nprobe=2)
    Array([[0, 1],
           [1, 0],
           [2, 1],
           [3, 2]], dtype=int32)
    """
    nprobe = check_int("nprobe", nprobe, 1, index.n_cells)
    k = check_int("k", k, 1, index.n_points)
    step_blocks = check_int("step_blocks", step_blocks, 1)
    table, steps = _self_probe_table(index, nprobe, step_blocks)
    sizes = np.concatenate([np.asarray(index.cell_sizes), [0]])
    cell_blocks = np.asarray(index.cell_blocks)
    cell_of_block = np.concatenate(
        [np.repeat(np.arange(index.n_cells), cell_blocks), [index.n_cells]]
    )
    # Real candidates of a cell: points of its candidate blocks' cells (filler: none).
    fewest = int(np.min(_candidates(table, cell_of_block, sizes)))
    if k > fewest:
        raise ValueError(
            f"k={k} exceeds the candidates of some cell ({fewest} points in its "
            f"nprobe={nprobe} nearest cells); raise nprobe or lower k"
        )
    query_blocks = np.arange(index.filler, dtype=np.int32)  # every block but the filler
    cells = cell_of_block[query_blocks]
    found, tied = _self_search(
        index,
        jnp.asarray(query_blocks),
        jnp.asarray(table[cells]),
        jnp.asarray(steps[cells]),
        k,
        False,
        step_blocks,
    )
    redo = np.flatnonzero(np.asarray(tied))
    if redo.size:  # blocks with a tie at rank k: again, fully sorted by (score, id)
        redo = _pad_pow2(redo)
        fixed, _ = _self_search(
            index,
            jnp.asarray(query_blocks[redo]),
            jnp.asarray(table[cells[redo]]),
            jnp.asarray(steps[cells[redo]]),
            k,
            True,
            step_blocks,
        )
        found = found.at[jnp.asarray(redo)].set(fixed)
    rows = index.block_ids[jnp.asarray(query_blocks)].reshape(-1)
    out = jnp.zeros((index.n_points, k), jnp.int32)
    return out.at[rows].set(found.reshape(-1, k), mode="drop")  # padding rows: id n


def _candidates(table: np.ndarray, cell_of_block: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Points per candidate list: each distinct cell listed counts its size once."""
    cells = cell_of_block[table]
    first = np.zeros_like(cells, dtype=bool)
    # A cell's blocks are contiguous in a list; count the cell at its first block only.
    first[:, 0] = True
    first[:, 1:] = cells[:, 1:] != cells[:, :-1]
    return np.sum(np.where(first, sizes[cells], 0), axis=1)


# ----------------------------------------------------------------------------------------
# Any queries: each probes its own nprobe nearest cells.


@jax.jit(static_argnames=("nprobe",))
def _probe(index: IVFIndex, queries: Array, nprobe: int) -> tuple[Array, Array]:
    """Each query's nprobe nearest cells (ties: lower cell) and their points in all."""

    def one(q: Array) -> Array:
        return jax.lax.top_k(_cell_scores(q[None], index.centroids)[0], nprobe)[1]

    probe = jax.lax.map(one, queries, batch_size=1024)
    return probe, jnp.sum(index.cell_sizes[probe], axis=1)


@jax.jit(static_argnames=("k", "block_size", "with_ids", "exact"))
def _foreign_knn(
    index: IVFIndex,
    queries: Array,
    query_ids: Array,
    probe: Array,
    k: int,
    block_size: int,
    with_ids: bool,
    exact: bool,
) -> tuple[Array, Array]:
    n = queries.shape[0]
    n_blocks = math.ceil(n / block_size)
    pad = n_blocks * block_size - n
    q_blocks = jnp.pad(queries, ((0, pad), (0, 0))).reshape(n_blocks, block_size, -1)
    r_blocks = jnp.pad(query_ids, (0, pad), constant_values=-1).reshape(n_blocks, block_size)
    p_blocks = jnp.pad(probe, ((0, pad), (0, 0))).reshape(n_blocks, block_size, -1)
    within = jnp.arange(index.max_cell_blocks, dtype=jnp.int32)

    def one(args: tuple[Array, Array, Array]) -> tuple[Array, Array]:
        q, r, probe = args

        def cell(
            running: tuple[Array, Array, Array], c: Array
        ) -> tuple[tuple[Array, Array, Array], None]:
            b = index.cell_start[c][:, None] + within[None, :]
            b = jnp.where(within[None, :] < index.cell_blocks[c][:, None], b, index.filler)
            x = index.blocks[b].reshape(q.shape[0], -1, q.shape[1])  # (block, cands, dim)
            ids = index.block_ids[b].reshape(q.shape[0], -1)
            scores = jnp.einsum("qd,qcd->qc", q, x, precision=_HIGHEST)
            scores = scores - index.half_sq_norms[b].reshape(q.shape[0], -1)
            if with_ids:  # the query itself is already in the running list
                scores = jnp.where(ids == r[:, None], -jnp.inf, scores)
            top, best, tied = _select(
                jnp.concatenate([running[0], scores], axis=1),
                jnp.concatenate([running[1], ids], axis=1),
                k,
                exact,
            )
            return (top, best, running[2] | tied), None

        scores0 = jnp.full((q.shape[0], k), -jnp.inf, queries.dtype)
        ids0 = jnp.full((q.shape[0], k), index.n_points, jnp.int32)
        if with_ids:
            # The query first even if its cell is not probed (as knn's include_self).
            scores0 = scores0.at[:, 0].set(jnp.inf)
            ids0 = ids0.at[:, 0].set(r)
        tied0 = jnp.zeros(q.shape[0], bool)
        (_, found, tied), _ = jax.lax.scan(cell, (scores0, ids0, tied0), probe.T)
        return found, tied

    found, tied = jax.lax.map(one, (q_blocks, r_blocks, p_blocks))
    return found.reshape(-1, k)[:n], tied.reshape(-1)[:n]


def index_knn(
    index: IVFIndex,
    queries: Float[ArrayLike, "n_queries dim"],
    k: int,
    *,
    nprobe: int,
    include_self: bool = False,
    query_ids: Int[ArrayLike, " n_queries"] | None = None,
    block_size: int = DEFAULT_QUERY_BLOCK,
) -> Int[Array, "n_queries k"]:
    """k nearest indexed points of each query among its `nprobe` nearest cells.

    Each query scores the points of the `nprobe` cells whose centroids are nearest it,
    with the exact search's score and order (higher q.x - |x|^2 / 2, then lower id).
    With nprobe = index.n_cells it equals `knn(queries, points, k)`. For the points
    themselves as queries, `index_self_knn` is much faster.

    Args:
        index: from `build_index`.
        queries: points to find neighbours for, same dim as the index.
        k: neighbours per query (static), at most the points in any query's `nprobe`
            nearest cells (checked: the cells are found first, eagerly).
        nprobe: cells probed per query, 1 <= nprobe <= index.n_cells.
        include_self: queries are the indexed points in order (query i is point i).
        query_ids: query i is indexed point `query_ids[i]`; either way that point is
            forced to be its first neighbour, as in `knn(..., include_self=True)`.
        block_size: queries per block (static); memory is block_size x largest cell x dim.

    Returns:
        Indices into the indexed points, nearest first.

    >>> x = jnp.array([[0.0], [1.0], [3.0], [10.0]])
    >>> index_knn(build_index(x, n_cells=2), jnp.array([[2.9], [9.0]]), 2, nprobe=2)
    Array([[2, 1],
           [3, 2]], dtype=int32)
    """
    queries = _check_points(queries, "queries")
    if queries.shape[1] != index.centroids.shape[1]:
        raise ValueError(
            f"queries have dim {queries.shape[1]}, the index {index.centroids.shape[1]}"
        )
    nprobe = check_int("nprobe", nprobe, 1, index.n_cells)
    k = check_int("k", k, 1, index.n_points)
    block_size = check_int("block_size", block_size, 1)
    n = queries.shape[0]
    if include_self and query_ids is not None:
        raise ValueError("give include_self or query_ids, not both")
    if include_self:
        if n != index.n_points:
            raise ValueError(
                f"include_self needs the {index.n_points} indexed points as queries, got {n}"
            )
        query_ids = jnp.arange(n, dtype=jnp.int32)
    with_ids = query_ids is not None
    if with_ids:
        query_ids = jnp.asarray(query_ids, jnp.int32)
        if query_ids.shape != (n,):
            raise ValueError(f"query_ids must have shape ({n},), got {query_ids.shape}")
    probe, n_candidates = _probe(index, queries, nprobe)
    fewest = int(jnp.min(n_candidates))
    if k > fewest:
        raise ValueError(
            f"k={k} exceeds the candidates of some query ({fewest} points in its "
            f"nprobe={nprobe} nearest cells); raise nprobe or lower k"
        )
    ids = query_ids if with_ids else jnp.full((n,), -1, jnp.int32)
    block = min(block_size, n)
    found, tied = _foreign_knn(index, queries, ids, probe, k, block, with_ids, False)
    redo = np.flatnonzero(np.asarray(tied))
    if redo.size:  # queries with a tie at rank k: again, fully sorted by (score, id)
        redo = jnp.asarray(_pad_pow2(redo))
        fixed, _ = _foreign_knn(
            index, queries[redo], ids[redo], probe[redo], k, min(block, redo.size), with_ids, True
        )
        found = found.at[redo].set(fixed)
    return found
