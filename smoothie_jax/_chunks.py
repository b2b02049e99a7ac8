"""A router over many rows in fixed-size, zero-padded chunks: one compiled shape for all.

A router's neighbour search compiles once per query shape, so rows are decided in chunks
of one size, the last chunk padded with zero rows, and each chunk's `Decision` trimmed
back to its real rows (a padded row is a query of its own: it changes no other row's
neighbours). The three loops that route many queries use it: `route-stream` over a
memory-mapped `.npy` (`decide_chunks`), `route --router` over chunks of embedded texts
and the gateway over each batch of requests (`decide_padded`; the gateway pads to a
power of two, `bucket`, so batches of any size share a few compiled shapes).
`fit_local_stream` reads its output embeddings with the same `padded_chunk`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import jax
import numpy as np
from jaxtyping import Float, Shaped

from ._decision import Decision
from ._router import Router
from ._validate import ArrayLike, check_block_size, check_finite


def chunk_rows(n_rows: int, chunk_size: int, block_size: int) -> int:
    """Rows per chunk: `chunk_size` rounded up to whole search blocks, and no more
    blocks than `n_rows` fill (whole blocks: the neighbours are those of one big call).

    >>> chunk_rows(250, 50, 32), chunk_rows(10, 1000, 32)
    (64, 10)
    """
    chunk_size = check_block_size(chunk_size)
    block = min(block_size, n_rows)
    return min(math.ceil(chunk_size / block) * block, math.ceil(n_rows / block) * block)


def bucket(n_rows: int) -> int:
    """The padded size of a batch of `n_rows` that come in any number: the next power
    of two (at least 1).

    >>> [bucket(n) for n in (0, 1, 3, 4, 5)]
    [1, 1, 4, 4, 8]
    """
    return 1 << max(n_rows - 1, 0).bit_length()


def padded_chunk(
    rows: Shaped[ArrayLike, " n_rows *rest"], start: int, size: int, name: str
) -> Float[np.ndarray, " size *rest"]:
    """Rows [start, start + size) as float32, checked finite, zero-padded to `size` rows.

    Reads only those rows of a memory-mapped array.
    """
    part = np.asarray(rows[start : start + size], dtype=np.float32)
    check_finite(f"{name} rows {start}..{start + len(part) - 1}", part)
    return _pad(part, size)


def _pad(part: np.ndarray, size: int) -> np.ndarray:
    if len(part) == size:
        return part
    return np.pad(part, [(0, size - len(part))] + [(0, 0)] * (part.ndim - 1))


def decide_padded(
    router: Router, queries: Float[ArrayLike, "n_queries input_dim"], size: int
) -> Decision:
    """`router.decide(queries)`, routed zero-padded to `size` rows and trimmed back.

    Raises:
        ValueError: more than `size` queries.
    """
    n = len(queries)
    if n > size:
        raise ValueError(f"{n} queries do not fit a chunk of {size}")
    return _trim(router.decide(_pad(np.asarray(queries, np.float32), size)), n)


def decide_chunks(
    router: Router,
    queries: Float[ArrayLike, "n_queries input_dim"],
    size: int,
    *,
    name: str = "queries",
) -> Iterator[Decision]:
    """The decisions of `queries`, one chunk of `size` rows at a time (the last one
    padded), reading one chunk of a memory-mapped array at a time.

    Args:
        router: any router.
        queries: input embeddings (an array or a `.npy` memmap).
        size: rows per chunk (`chunk_rows`).
        name: what the rows are, for the message on a NaN.

    Yields:
        Each chunk's `Decision`, trimmed to its real rows.
    """
    for start in range(0, len(queries), size):
        decision = router.decide(padded_chunk(queries, start, size, name))
        yield _trim(decision, min(size, len(queries) - start))


def _trim(decision: Decision, n: int) -> Decision:
    """The first n rows of a decision: every array of a `Decision` is per query."""
    return jax.tree.map(lambda leaf: leaf[:n], decision)
