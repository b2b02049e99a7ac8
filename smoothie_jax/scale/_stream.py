"""Routing files larger than memory: embeddings read in chunks, decisions written as made.

Embeddings come from `.npy` files opened as NumPy memmaps, so only one chunk of rows is
in memory at a time. Decisions are written as decision records (`_decision_records`, the
format of `smoothie-jax route` too) to a temporary file beside the output, renamed over it
once the last row is written: a failed run leaves no partial output.

- Train-time (`route_stream`): a query stream against a fitted or saved `Router`.
  Memory: the router plus one chunk of queries.
- Test-time (`fit_local_stream`): the (n, m, dim) output embeddings stay on disk; each
  chunk becomes per-sample D (chunk, m, m). The neighbour search needs every input
  embedding, which fits (n x input_dim is m x dim / input_dim times smaller). Memory:
  O(n (m^2 + input_dim + k) + chunk m dim).
"""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .. import _validate
from .._chunks import chunk_rows, decide_chunks, padded_chunk
from .._decision_records import DEFAULT_CHUNK_SIZE, PathLike, decision_writer
from .._distances import sample_distances
from .._estimator import DEFAULT_EPS
from .._knn import DEFAULT_BLOCK_SIZE
from .._progress import Progress
from .._router import Router
from .._search import Search, knn
from .._smoothie import Smoothie, neighbourhood_theta


def open_rows(source: PathLike | np.ndarray | Array, ndim: int, name: str) -> np.ndarray | Array:
    """A `.npy` path opened as a read-only memmap (nothing read yet), or the array itself.

    >>> np.save("/tmp/q.npy", np.zeros((3, 2), np.float32))
    >>> open_rows("/tmp/q.npy", 2, "queries").shape
    (3, 2)
    """
    if isinstance(source, (str, os.PathLike)):
        try:
            rows = np.load(source, mmap_mode="r")
        except (OSError, ValueError) as e:
            raise ValueError(f"{name}: cannot read {source} as a .npy array: {e}") from None
    else:
        rows = source
    if not hasattr(rows, "shape") or len(rows.shape) != ndim or 0 in rows.shape:
        shape = getattr(rows, "shape", None)
        raise ValueError(f"{name} must be a non-empty {ndim}-d array, got shape {shape}")
    return rows


def route_stream(
    router: Router,
    queries: PathLike | Float[_validate.ArrayLike, "n_queries input_dim"],
    out_path: PathLike,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: bool = False,
    search: Search | str | None = None,
) -> int:
    """Routes a stream of query embeddings chunk by chunk, writing decisions as it goes.

    Each chunk is one call of `router.decide` (the last one zero-padded, so one
    compilation: `_chunks.decide_chunks`); the neighbours are those of
    `router.route(queries)` in one call.

    Args:
        router: a fitted or loaded `Router`.
        queries: a `.npy` file of (n_queries, input_dim) embeddings (memory-mapped), or
            an array.
        out_path: `.npy` for the (n_queries, n_models) float32 weights, anything else
            for JSON lines {"idx", "model", "weights"} (idx: the query's 0-based row;
            see `smoothie_jax._decision_records`); written atomically.
        chunk_size: queries in memory at once (rounded up to whole search blocks).
        progress: show a tqdm progress bar on stderr.
        search: a neighbour search to use instead of the router's own (a `Search` or its
            name, e.g. "bf16" on a GPU); a router saved with an inverted file keeps it.

    Returns:
        The number of queries routed.

    >>> x = jax.random.normal(jax.random.key(0), (100, 3, 8))
    >>> from smoothie_jax import fit_router
    >>> router = fit_router(x, x[:, 0], k=10)
    >>> route_stream(router, np.asarray(x[:, 1]), "/tmp/routes.jsonl", chunk_size=32)
    100
    """
    if search is not None:
        router = router.with_search(search)
    rows = open_rows(queries, 2, "queries")
    n, input_dim = rows.shape
    if input_dim != router.input_dim:
        raise ValueError(
            f"queries have input_dim {input_dim}, the router was fit on "
            f"{router.input_dim}: embed them with the same embedder"
        )
    size = chunk_rows(n, chunk_size, router.block_size)
    with (
        Progress(n, "routing", enabled=progress) as bar,
        decision_writer(out_path, n, router.n_models, router.models) as write,
    ):
        for decision in decide_chunks(router, rows, size, name="queries"):
            write(decision.weights, choice=np.asarray(decision.choice))
            bar.update(len(decision.choice))
    return n


@jax.jit
def _chunk_distances(embeddings: Array) -> Array:
    return sample_distances(embeddings)


@functools.partial(jax.jit, static_argnames=("dim",))
def _chunk_theta(distances: Array, neighbours: Array, eps: Array, dim: int) -> Array:
    return neighbourhood_theta(distances, neighbours, dim, eps=eps)


@functools.partial(jax.jit, static_argnames=("k", "search", "block_size"))
def _chunk_neighbours(
    inputs: Array, queries: Array, query_ids: Array, *, k: int, search: Search, block_size: int
) -> Array:
    return knn(queries, inputs, k, search=search, query_ids=query_ids, block_size=block_size)


def fit_local_stream(
    embeddings: PathLike | Float[_validate.ArrayLike, "n_samples n_models dim"],
    inputs: PathLike | Float[_validate.ArrayLike, "n_samples input_dim"],
    *,
    k: int,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    eps: float = DEFAULT_EPS,
    block_size: int = DEFAULT_BLOCK_SIZE,
    progress: bool = False,
    search: str | Search = "exact",
) -> Smoothie:
    """`fit_local` for output embeddings larger than memory, read chunk by chunk.

    Pass 1 turns each chunk of embeddings into per-sample D (n, m, m); pass 2 finds each
    chunk of samples' neighbours among all inputs and smooths D. The neighbours are
    those of `fit_local`, and theta agrees with it to float32 rounding.

    Args:
        embeddings: a `.npy` file of (n_samples, n_models, dim) (memory-mapped) or array.
        inputs: a `.npy` file of (n_samples, input_dim) or array; loaded whole.
        k: neighbourhood size, 1 <= k <= n_samples.
        chunk_size: samples per chunk (rounded up to whole search blocks).
        eps: floor on the estimated squared error; see `theta_from_distances`.
        block_size: queries per block of the neighbour search.
        progress: show tqdm progress bars on stderr.
        search: how neighbours are found (a `Search` or its name): "approximate" builds
            one inverted file over the inputs and finds every neighbour list with it.

    Returns:
        `Smoothie` with theta of shape (n_samples, n_models); write its weights with
        `write_decisions`.

    >>> x = np.asarray(jax.random.normal(jax.random.key(0), (100, 3, 8)))
    >>> fit_local_stream(x, x[:, 0], k=10, chunk_size=32).theta.shape
    (100, 3)
    """
    emb = open_rows(embeddings, 3, "embeddings")
    n, m, dim = emb.shape
    if m < _validate.MIN_MODELS:
        raise ValueError(f"embeddings has {m} models; Smoothie needs at least 3")
    x = _validate.check_inputs(np.asarray(open_rows(inputs, 2, "inputs")), n)
    k = _validate.check_k(k, n)
    eps_ = jnp.asarray(_validate.check_eps(eps), jnp.float32)
    block = min(_validate.check_block_size(block_size), n)
    size = chunk_rows(n, chunk_size, block)

    distances = np.empty((n, m, m), np.float32)
    with Progress(n, "distances", enabled=progress) as bar:
        for start in range(0, n, size):
            stop = min(start + size, n)
            chunk = jnp.asarray(padded_chunk(emb, start, size, "embeddings"))
            distances[start:stop] = np.asarray(_chunk_distances(chunk))[: stop - start]
            bar.update(stop - start)

    distances_ = jnp.asarray(distances)
    del distances
    search = Search.parse(search)
    neighbours = None
    if search.method == "approximate":  # every list at once: (n, k) ints, the index is linear
        neighbours = knn(x, x, k, search=search, include_self=True)
    theta = np.empty((n, m), np.float32)
    with Progress(n, "neighbours", enabled=progress) as bar:
        for start in range(0, n, size):
            stop = min(start + size, n)
            if neighbours is not None:
                chunk_neighbours = neighbours[start:stop]
            else:
                ids = np.arange(start, start + size, dtype=np.int32)
                ids[stop - start :] = -1  # padding rows are no point
                queries = jnp.pad(x[start:stop], ((0, size - (stop - start)), (0, 0)))
                chunk_neighbours = _chunk_neighbours(
                    x, queries, jnp.asarray(ids), k=k, search=search, block_size=block
                )
            part = _chunk_theta(distances_, chunk_neighbours, eps_, dim=dim)
            theta[start:stop] = np.asarray(part)[: stop - start]
            bar.update(stop - start)
    return Smoothie(jnp.asarray(theta))
