"""Batch routing of text: a file of new instructions, routed by a fitted or saved router.

Each chunk of queries is embedded with the router's own embedder (`text_encoder`, with
the embedding cache), decided in one call of the router zero-padded to one shape (one
compilation, `_chunks.decide_padded`), and written as decision records
(`_decision_records`); the output appears atomically once the last line is written.
Memory: the router plus one chunk of texts and embeddings.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

import numpy as np

from .._chunks import decide_padded
from .._decision_records import decision_writer
from .._progress import Progress
from .._router import Router
from .._validate import check_int
from ..data import check_queries, iter_query_chunks
from ..text import text_encoder

TEXT_CHUNK_SIZE = 1024  # queries embedded and routed at once
SHOW_PROGRESS_ABOVE = 1000  # progress=None shows a bar above this many queries on a tty

Encoder = Callable[[Sequence[str]], np.ndarray]  # texts -> (n, input_dim) embeddings


def route_texts(
    router: Router,
    queries: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    encoder: Encoder | None = None,
    chunk_size: int = TEXT_CHUNK_SIZE,
    progress: bool | None = None,
) -> int:
    """Routes a file of text queries, one decision per line, in bounded memory.

    Every line is checked before anything is embedded. Each output line is a decision
    record (`smoothie_jax._decision_records`) `{"idx", "instruction", "model", "score",
    "weights"}`: the query's id (its `idx`, else its line number), its text, the chosen
    model, that model's weight, and every model's weight (summing to 1). Models are
    named as the router names them (by column index if it has no names).

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
    with (
        Progress(n, "routing", enabled=show) as bar,
        decision_writer(out_path, n, router.n_models, router.models, npy=False) as write,
    ):
        for chunk in iter_query_chunks(queries, size):
            texts = [text for _, text in chunk]
            decision = decide_padded(router, _embed(router, encoder, texts), size)
            weights, choice = np.asarray(decision.weights), np.asarray(decision.choice)
            write(
                weights,
                choice=choice,
                ids=[idx for idx, _ in chunk],
                instructions=texts,
                scores=weights[np.arange(len(chunk)), choice],
            )
            bar.update(len(chunk))
    return n


def _embed(router: Router, encoder: Encoder, texts: list[str]) -> np.ndarray:
    """`texts` embedded, checked to be one row of the router's input dimension each."""
    x = np.asarray(encoder(texts), np.float32)
    if x.shape != (len(texts), router.input_dim):
        raise ValueError(
            f"the encoder gave embeddings of shape {x.shape} for {len(texts)} texts; the "
            f"router was fit on {router.input_dim}-dim inputs: embed queries with the "
            "router's embedder"
        )
    return x
