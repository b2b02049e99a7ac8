"""Batch routing of text: a file of new instructions, routed by a fitted or saved router.

Each chunk of queries is embedded with the router's own embedder (`text_encoder`, with
the embedding cache), routed in one call of `Router.weights` (zero-padded to one shape,
so one compilation), and written as JSON lines; the output appears atomically once the
last line is written. Memory: the router plus one chunk of texts and embeddings.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from .._embedder import text_encoder
from .._router import Router
from .._validate import check_int
from ..data import write_jsonl
from ..scale._stream import _Progress
from ._queries import check_queries, iter_query_chunks

DEFAULT_CHUNK_SIZE = 1024  # queries embedded and routed at once
SHOW_PROGRESS_ABOVE = 1000  # progress=None shows a bar above this many queries on a tty

Encoder = Callable[[Sequence[str]], np.ndarray]  # texts -> (n, input_dim) embeddings


def route_texts(
    router: Router,
    queries: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    encoder: Encoder | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: bool | None = None,
) -> int:
    """Routes a file of text queries, one decision per line, in bounded memory.

    Every line is checked before anything is embedded. Each output line is
    `{"idx", "instruction", "model", "score", "weights"}`: the query's id (its `idx`,
    else its line number), its text, the chosen model, that model's weight, and every
    model's weight (summing to 1). Models are named as the router names them (by column
    index if it has no names).

    Args:
        router: a fitted or loaded `Router`.
        queries: JSON lines (optionally gzipped), one `{"instruction": ...}` a line.
        out_path: where to write the decisions (gzipped if it ends in .gz), atomically.
        encoder: texts -> embeddings; default: the router's recorded embedder
            (`text_encoder(router.embedder)`, which refuses a router without one).
        chunk_size: queries embedded and routed at once.
        progress: a progress bar on stderr; None shows one for more than 1000 queries
            when stderr is a terminal.

    Returns:
        The number of queries routed.

    Raises:
        ValueError: a malformed query file (`DataError`: every bad line), a router
            without a recorded embedder and no `encoder`, or embeddings whose dimension
            is not the router's.
    """
    chunk_size = check_int("chunk_size", chunk_size, 1)
    encoder = text_encoder(router.embedder) if encoder is None else encoder
    n = check_queries(queries)
    size = min(chunk_size, n)
    show = progress if progress is not None else n > SHOW_PROGRESS_ABOVE and sys.stderr.isatty()
    names: Sequence[Any] = router.models or range(router.n_models)

    def records() -> Iterator[dict[str, Any]]:
        bar = _Progress(n, "routing", show)
        try:
            for chunk in iter_query_chunks(queries, size):
                weights = _chunk_weights(router, encoder, [text for _, text in chunk], size)
                for (idx, text), row in zip(chunk, weights):
                    best = int(row.argmax())
                    yield {
                        "idx": idx,
                        "instruction": text,
                        "model": names[best],
                        "score": round(float(row[best]), 6),
                        "weights": {str(m): round(float(w), 6) for m, w in zip(names, row)},
                    }
                bar.update(len(chunk))
        finally:
            bar.close()

    return write_jsonl(out_path, records())


def _chunk_weights(router: Router, encoder: Encoder, texts: list[str], size: int) -> np.ndarray:
    """The router's weights for `texts`, routed zero-padded to `size` rows."""
    x = np.asarray(encoder(texts), np.float32)
    dim = router.inputs.shape[1]
    if x.shape != (len(texts), dim):
        raise ValueError(
            f"the encoder gave embeddings of shape {x.shape} for {len(texts)} texts; the "
            f"router was fit on {dim}-dim inputs: embed queries with the router's embedder"
        )
    padded = np.zeros((size, dim), np.float32)
    padded[: len(texts)] = x
    return np.asarray(router.weights(padded))[: len(texts)]
