"""Helpers of the serve tests: a cheap fake embedder and a small router fitted with it.

The fake embedder hashes words into 8 dimensions: texts sharing words land near each
other, as with a sentence embedder, at no cost (no model, no torch).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import jax
import numpy as np

import smoothie_jax as sj

DIM = 8
MODELS = ("alpha", "beta", "gamma")
TOPICS = ("python code list", "french poem rhyme", "tax law court", "integral calculus proof")


def fake_encode(texts: Sequence[str]) -> np.ndarray:
    """Unit vectors: a hashed bag of words (plus a constant, so no text maps to 0)."""
    out = np.zeros((len(texts), DIM), np.float32)
    for i, text in enumerate(texts):
        out[i, 0] = 0.1
        for word in text.lower().split():
            h = zlib.crc32(word.encode())
            out[i, h % DIM] += 1.0 if (h >> 8) % 2 else -1.0
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def training_texts(n: int = 120) -> list[str]:
    return [f"{TOPICS[i % len(TOPICS)]} question number {i}" for i in range(n)]


def fake_router(embedder: sj.serve.Embedder | None = None) -> sj.Router:
    """A Smoothie-Local router over fake-embedded past inputs; outputs drawn at random."""
    texts = training_texts()
    outputs = jax.random.normal(jax.random.key(3), (len(texts), len(MODELS), 16))
    return sj.fit_router(outputs, fake_encode(texts), k=10, models=list(MODELS), embedder=embedder)


def fake_embedder() -> sj.serve.Embedder:
    return sj.serve.Embedder("fake", "fake-0000", DIM, 32)
