"""The embedding cache: one SQLite file of (model id, text key) -> float32 vector.

The file is `<cache_dir>/embeddings.sqlite3`, `cache_dir` defaulting to
`default_cache_dir()`. SQLite (stdlib) gives what a cache needs without code of our own:
each batch is committed in its own transaction as soon as it is embedded, so a crash or
Ctrl-C keeps every finished batch and loses at most the one in flight (never a
half-written row; the rerun embeds only the rest); several processes may read and append
at once (writers wait on a lock); and lookups by key need no index file kept in step with
data files. The model id is `_models.fingerprint` of the model folder, so two models, or
one model's config edited, never share entries. The text key is the sha256 of the text
together with the `whole_text` flag.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

CACHE_FILE = "embeddings.sqlite3"
_SQL_VARS = 500  # keys per SELECT ... IN (...): under SQLite's oldest 999-variable limit


def default_cache_dir() -> Path:
    """The cache folder: `$SMOOTHIE_JAX_CACHE` if set, else `~/.cache/smoothie_jax`.

    It holds `embeddings.sqlite3` and `models/` (where `prepare_mpnet` unpacks mpnet).

    >>> default_cache_dir().name
    'smoothie_jax'
    """
    env = os.environ.get("SMOOTHIE_JAX_CACHE")
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/smoothie_jax").expanduser()


def cache_file(cache_dir: str | os.PathLike | None = None) -> Path:
    """The embedding cache's file: `embeddings.sqlite3` in `cache_dir`, or in
    `default_cache_dir()` where None.

    >>> cache_file("/tmp/c").as_posix()
    '/tmp/c/embeddings.sqlite3'
    """
    root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    return root / CACHE_FILE


def text_key(text: str, whole_text: bool) -> bytes:
    """A text's cache key: whole-text and truncated embeddings of one text differ."""
    return hashlib.sha256((b"W\0" if whole_text else b"T\0") + text.encode()).digest()


@contextlib.contextmanager
def open_cache(root: Path, *, enabled: bool) -> Iterator[sqlite3.Connection | None]:
    """The cache in `root`, created if absent; None when disabled (`cache=False`)."""
    if not enabled:
        yield None
        return
    root.mkdir(parents=True, exist_ok=True)
    path = root / CACHE_FILE
    # Other processes may be writing: wait for their lock rather than fail.
    db = sqlite3.connect(path, timeout=60)
    try:
        with db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS embeddings (model TEXT NOT NULL, key BLOB NOT NULL, "
                "dim INTEGER NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (model, key)) "
                "WITHOUT ROWID"
            )
    except sqlite3.DatabaseError as e:
        db.close()
        raise RuntimeError(
            f"the embedding cache {path} is unreadable ({e}); delete it, or pass cache=False"
        ) from e
    try:
        yield db
    finally:
        db.close()


def cache_get(db: sqlite3.Connection, model_id: str, keys: list[bytes]) -> dict[bytes, Any]:
    """The cached vectors of `model_id` among `keys`, by key; absent keys are left out."""
    found: dict[bytes, np.ndarray] = {}
    for lo in range(0, len(keys), _SQL_VARS):
        chunk = keys[lo : lo + _SQL_VARS]
        rows = db.execute(
            "SELECT key, vector FROM embeddings WHERE model = ? AND key IN "
            f"({','.join('?' * len(chunk))})",
            (model_id, *chunk),
        )
        for key, blob in rows:
            found[key] = np.frombuffer(blob, dtype="<f4")
    return found


def cache_put(
    db: sqlite3.Connection, model_id: str, keys: list[bytes], vectors: np.ndarray
) -> None:
    """Stores one batch of vectors in one transaction (committed on return)."""
    little = np.ascontiguousarray(vectors, dtype="<f4")
    with db:  # one transaction: all of these rows land, or none do
        db.executemany(
            "INSERT OR IGNORE INTO embeddings (model, key, dim, vector) VALUES (?, ?, ?, ?)",
            (
                (model_id, k, little.shape[1], v.tobytes())
                for k, v in zip(keys, little, strict=True)
            ),
        )
