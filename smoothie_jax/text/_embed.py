"""Text -> unit-norm sentence embeddings, with an on-disk cache; first stage of the pipeline.

`embed` keys each distinct text (`_cache.text_key`), reads what the cache already holds
for the model (`_cache`, `_models.fingerprint`), and runs the rest through the model
(`_models`) in batches of `batch_size`, committing each batch to the cache as soon as it
is embedded: a crash or Ctrl-C loses at most the batch in flight (`EmbedInterrupted`
says what was kept). New texts go longest first: a batch is padded to its longest text,
so batches of similar lengths waste little work. Embedding is the slow part: a second
run over the same texts reads them back and does not even import torch.

The reference implementation embeds generations after `clean_generation`; here cleaning
is opt-in (`clean=True`) and happens before cache keying.

Test-only hook: if `SMOOTHIE_JAX_HOLD_AFTER_BATCH` names a file that does not exist yet,
the embedder creates it right after its first batch is committed, then waits (at most
`HOLD_SECONDS`) for a signal. A test waits for the file and sends SIGINT: the interrupt
lands part-way through the run whatever the machine's load, never after the run has
ended (tests/cli/test_main.py). Unset, it costs one environment lookup per batch.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._progress import Progress
from .._validate import check_int
from ._cache import CACHE_FILE, cache_get, cache_put, default_cache_dir, open_cache, text_key
from ._models import embedding_dim, fingerprint, load_model, resolve_model
from ._texts import clean_generation, split_long

# Imported lazily (heavy): the suite's runtime checks skip annotations that name it.
if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

SHOW_PROGRESS_ABOVE = 1000  # progress=None shows a bar above this many texts to embed
HOLD_AFTER_BATCH = "SMOOTHIE_JAX_HOLD_AFTER_BATCH"  # the test-only hook (module docstring)
HOLD_SECONDS = 600  # the hook's longest wait: a run whose signal never comes goes on


class EmbedInterrupted(KeyboardInterrupt):
    """Ctrl-C during `embed`: a KeyboardInterrupt that says what the cache kept.

    Attributes:
        n_kept: texts embedded by this call and committed to the cache before the stop.
        n_todo: texts this call had to embed (not in the cache when it started).
        cache_path: the cache file, or None with `cache=False` (then nothing is kept).
    """

    def __init__(self, n_kept: int, n_todo: int, cache_path: Path | None) -> None:
        super().__init__(n_kept, n_todo)
        self.n_kept, self.n_todo, self.cache_path = n_kept, n_todo, cache_path

    def __str__(self) -> str:
        if self.cache_path is None:
            return f"interrupted after embedding {self.n_kept} of {self.n_todo} texts (no cache)"
        return (
            f"interrupted; {self.n_kept} of {self.n_todo} new embeddings are kept in "
            f"{self.cache_path}, and a rerun embeds only the rest"
        )


@dataclasses.dataclass(frozen=True)
class EmbedStats:
    """What one `embed_with_stats` call did.

    Attributes:
        n_texts: texts passed in.
        n_unique: distinct (cleaned) texts among them.
        n_cached: distinct texts read from the cache.
        n_embedded: distinct texts run through the model.
        n_pieces: model inputs encoded: `n_embedded`, or more with `whole_text` splitting.
        seconds: wall time of the call.
    """

    n_texts: int = 0
    n_unique: int = 0
    n_cached: int = 0
    n_embedded: int = 0
    n_pieces: int = 0
    seconds: float = 0.0


def embed(
    texts: Sequence[str],
    *,
    model: str | os.PathLike | None = None,
    batch_size: int = 64,
    progress: bool | None = None,
    cache_dir: str | os.PathLike | None = None,
    whole_text: bool = False,
    clean: bool = False,
    cache: bool = True,
) -> np.ndarray:
    """Embeds texts with a local sentence-transformers model, reusing cached embeddings.

    Each distinct text is embedded once; repeats and texts cached by earlier calls (in
    any process) are read back. The model is loaded on first need, once per process.
    Runs on CPU with torch; it is not jitted (this is the stage before JAX).

    Args:
        texts: the texts, a sequence of str (a bare str is refused: wrap it in a list).
        model: None or "minilm" (all-MiniLM-L6-v2, dim 384), "mpnet" (the paper's
            all-mpnet-base-v2, dim 768, after `prepare_mpnet`), or a path to a local
            sentence-transformers folder. Hub names are not downloaded.
        batch_size: texts per forward pass.
        progress: show a tqdm bar on stderr; None shows one when more than 1000 texts need
            embedding and stderr is a terminal.
        cache_dir: where the cache (and the prepared mpnet) lives; None is
            `default_cache_dir()`.
        whole_text: embed all of a long text: split it at word boundaries into pieces of
            at most the model's `max_seq_length` word pieces, embed each, and average them
            weighted by their word-piece counts, then re-normalise. Off by default: the
            model then reads only the first `max_seq_length` word pieces (256 for minilm,
            384 for mpnet), as sentence-transformers does.
        clean: apply `clean_generation` to each text first (before cache keying).
        cache: read and write the on-disk cache; False embeds everything afresh.

    Returns:
        float32 array (len(texts), dim), rows of unit L2 norm, in the order of `texts`.
        An empty `texts` gives shape (0, dim): embedding is a map over texts, so an empty
        shard is not an error here (the estimators downstream do reject empty arrays).

    Raises:
        ValueError: texts is not a sequence of str, batch_size < 1, or `model` is neither
            an alias nor a folder holding a sentence-transformers model.
        FileNotFoundError: model="mpnet" before `prepare_mpnet`; the message gives the
            command to run.
        EmbedInterrupted: Ctrl-C (a KeyboardInterrupt); every finished batch is already
            in the cache, and the exception says how many texts were kept.

    >>> x = embed(["The cat sat.", "A cat was sitting."])
    >>> x.shape, x.dtype
    ((2, 384), dtype('float32'))
    """
    return embed_with_stats(
        texts,
        model=model,
        batch_size=batch_size,
        progress=progress,
        cache_dir=cache_dir,
        whole_text=whole_text,
        clean=clean,
        cache=cache,
    )[0]


def embed_with_stats(
    texts: Sequence[str],
    *,
    model: str | os.PathLike | None = None,
    batch_size: int = 64,
    progress: bool | None = None,
    cache_dir: str | os.PathLike | None = None,
    whole_text: bool = False,
    clean: bool = False,
    cache: bool = True,
) -> tuple[np.ndarray, EmbedStats]:
    """`embed`, and an `EmbedStats` saying what came from the cache and what was embedded.

    >>> _ = embed(["a cat"]); _, stats = embed_with_stats(["a cat"])
    >>> stats.n_embedded
    0
    """
    start = time.perf_counter()
    texts = _check_texts(texts)
    batch_size = check_int("batch_size", batch_size, 1)
    if clean:
        texts = [clean_generation(t) for t in texts]
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = resolve_model(model, cache_dir=root)
    model_id = fingerprint(str(path))

    keys = [text_key(t, whole_text) for t in texts]
    first = dict(zip(keys, texts, strict=True))  # key -> text, one per distinct text
    found: dict[bytes, np.ndarray] = {}
    n_pieces = 0
    with open_cache(root, enabled=cache) as db:
        if db is not None:
            found = cache_get(db, model_id, list(first))
        # Longest first (see the module docstring); the progress bar's first rate is then
        # its slowest, never an optimistic one.
        todo = sorted((k for k in first if k not in found), key=lambda k: -len(first[k]))
        n_cached = len(first) - len(todo)
        if todo:
            st = load_model(str(path))
            show = progress if progress is not None else _want_progress(len(todo))
            kept = 0
            try:
                with Progress(len(todo), "embedding", enabled=show, unit="text") as bar:
                    # One commit per batch: Ctrl-C loses at most the batch in flight.
                    for lo in range(0, len(todo), batch_size):
                        chunk = todo[lo : lo + batch_size]
                        vectors, pieces = _embed_texts(
                            st, [first[k] for k in chunk], whole_text, batch_size
                        )
                        n_pieces += pieces
                        if db is not None:
                            cache_put(db, model_id, chunk, vectors)
                        kept += len(chunk)
                        found.update(zip(chunk, vectors, strict=True))
                        bar.update(len(chunk))
                        _hold_after_batch()
            except KeyboardInterrupt as e:
                if isinstance(e, EmbedInterrupted):
                    raise
                where = root / CACHE_FILE if db is not None else None
                raise EmbedInterrupted(kept if db is not None else 0, len(todo), where) from None
        if texts:
            out = np.stack([found[k] for k in keys]).astype(np.float32, copy=False)
        else:
            out = np.zeros((0, _model_dim(db, model_id, str(path))), np.float32)
    stats = EmbedStats(
        n_texts=len(texts),
        n_unique=len(first),
        n_cached=n_cached,
        n_embedded=len(todo),
        n_pieces=n_pieces,
        seconds=time.perf_counter() - start,
    )
    return out, stats


def _check_texts(texts: object) -> list[str]:
    """`texts` as a list of str; a bare string, a non-sequence or a non-str item is refused."""
    if isinstance(texts, (str, bytes)):
        raise ValueError("texts must be a sequence of str, got a single string: wrap it, [text]")
    try:
        texts = list(texts)  # type: ignore[call-overload]
    except TypeError:
        raise ValueError(f"texts must be a sequence of str, got {type(texts).__name__}") from None
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise ValueError(f"texts[{i}] is a {type(t).__name__}, not a str: {t!r:.80}")
    return texts


def _model_dim(db: sqlite3.Connection | None, model_id: str, path: str) -> int:
    """The model's embedding size, from a cached row if there is one (no model load)."""
    if db is not None:
        rows = db.execute(
            "SELECT dim FROM embeddings WHERE model = ? LIMIT 1", (model_id,)
        ).fetchall()
        if rows:
            return int(rows[0][0])
    return embedding_dim(load_model(path))


def _encode(st: SentenceTransformer, texts: list[str], batch_size: int) -> np.ndarray:
    """The one place texts meet the model; tests may wrap it to count calls."""
    vectors = st.encode(
        texts,
        batch_size=batch_size,
        show_progress_bar=False,
        normalize_embeddings=True,
        convert_to_numpy=True,
    )
    return np.asarray(vectors, dtype=np.float32)


def _embed_texts(
    st: SentenceTransformer, texts: list[str], whole_text: bool, batch_size: int
) -> tuple[np.ndarray, int]:
    """Unit-norm embeddings of `texts` and the number of model inputs used."""
    if not whole_text:
        return _encode(st, texts, batch_size), len(texts)
    pieces, owner, weight = split_long(st, texts)
    vectors = _encode(st, pieces, batch_size)
    out = np.zeros((len(texts), vectors.shape[1]), np.float64)
    np.add.at(out, np.asarray(owner), vectors * np.asarray(weight, np.float64)[:, None])
    # Every row has at least one piece of positive weight; the average of unit vectors
    # is far from 0 unless pieces point in opposite directions, hence the tiny floor.
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out.astype(np.float32), len(pieces)


def _hold_after_batch() -> None:
    """The test-only hook of the module docstring: after the first finished batch, create
    `$SMOOTHIE_JAX_HOLD_AFTER_BATCH` and wait for a signal (its KeyboardInterrupt ends
    the wait inside `embed_with_stats`'s handler, with that batch counted as kept)."""
    path = os.environ.get(HOLD_AFTER_BATCH)
    if not path:
        return
    try:
        Path(path).touch(exist_ok=False)
    except FileExistsError:
        return  # held once already: later batches run on
    time.sleep(HOLD_SECONDS)


def _want_progress(n_todo: int) -> bool:
    return n_todo > SHOW_PROGRESS_ABOVE and sys.stderr.isatty()
