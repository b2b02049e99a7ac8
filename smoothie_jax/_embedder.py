"""The embedder a router was fit with: recorded with it, and asked for again to route text.

A train-time router compares a new query's embedding with its past inputs' embeddings,
so a query embedded by another model (or truncated otherwise) is routed silently wrong.
`describe_embedder` records what embedded the past inputs (an `Embedder`: the model's
name, its fingerprint, the dimension, how much of a text it reads); `fit_router(...,
embedder=)` keeps it and `save_router` writes it. `text_encoder` gives the function that
embeds new queries the same way, and refuses a model whose fingerprint differs.

Nothing here imports torch: describing a model loads it (once per process), but checking
a recorded embedder against a named one only hashes the model folder's small files.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._validate import is_int

ALIASES = ("minilm", "mpnet")  # names that stay names; any other model is recorded by path


@dataclasses.dataclass(frozen=True)
class Embedder:
    """How a router's inputs were embedded (hashable: it is a static field of `Router`).

    Attributes:
        name: "minilm", "mpnet", or the absolute path of a sentence-transformers folder.
        fingerprint: the model folder's id (`text._models.fingerprint`): its name and a
            hash of its configuration, tokenizer, and weights' names and sizes.
        dim: the embedding dimension.
        max_seq_length: word pieces read from each text (the rest is cut off), or None
            where unknown.
        whole_text: True where long texts were embedded whole (split, embedded, averaged)
            instead of cut at `max_seq_length`.

    >>> Embedder("minilm", "model-0123", 384, 256).to_json()["dim"]
    384
    """

    name: str
    fingerprint: str
    dim: int
    max_seq_length: int | None = None
    whole_text: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Embedder name must be a non-empty str, got {self.name!r}")
        if not isinstance(self.fingerprint, str) or not self.fingerprint:
            raise ValueError(f"Embedder fingerprint must be a non-empty str: {self.fingerprint!r}")
        if not is_int(self.dim) or self.dim < 1:
            raise ValueError(f"Embedder dim must be an int >= 1, got {self.dim!r}")
        if self.max_seq_length is not None and (
            not is_int(self.max_seq_length) or self.max_seq_length < 1
        ):
            raise ValueError(
                f"Embedder max_seq_length must be an int >= 1 or None, got {self.max_seq_length!r}"
            )
        if not isinstance(self.whole_text, bool):
            raise ValueError(f"Embedder whole_text must be a bool, got {self.whole_text!r}")

    def to_json(self) -> dict[str, Any]:
        """The record `save_router` writes in its header."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, record: object) -> Embedder:
        """The inverse of `to_json`; ValueError on anything else."""
        fields = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(record, dict) or not {"name", "fingerprint", "dim"} <= set(record):
            raise ValueError(f"an embedder record needs name, fingerprint and dim: {record!r}")
        unknown = set(record) - fields
        if unknown:
            raise ValueError(f"an embedder record has unknown keys {sorted(unknown)}")
        return cls(**record)

    def describe(self) -> str:
        """One phrase for messages: 'minilm (384-dim, first 256 word pieces)'."""
        if self.whole_text:
            reads = "whole texts"
        elif self.max_seq_length is None:
            reads = "truncation unknown"
        else:
            reads = f"first {self.max_seq_length} word pieces"
        return f"{self.name} ({self.dim}-dim, {reads})"


def describe_embedder(
    model: str | os.PathLike | None = None,
    *,
    whole_text: bool = False,
    cache_dir: str | os.PathLike | None = None,
) -> Embedder:
    """The `Embedder` record of a model as `text.embed` would use it (loads the model once).

    Args:
        model: as `text.embed`'s: None or "minilm", "mpnet", or a local folder.
        whole_text: as `text.embed`'s (the CLI embeds inputs with whole_text=False).
        cache_dir: where "mpnet" was prepared; None is the default cache.

    Returns:
        An `Embedder` to pass to `fit_router(..., embedder=)`.

    >>> describe_embedder("minilm").describe()
    'minilm (384-dim, first 256 word pieces)'
    """
    from .text._models import fingerprint, load_model, resolve_model

    path = resolve_model(model, cache_dir=cache_dir)
    st = load_model(str(path))
    get_dim = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
    length = getattr(st, "max_seq_length", None)
    return Embedder(
        name=_name_of(model, path),
        fingerprint=fingerprint(str(path)),
        dim=int(get_dim()),
        max_seq_length=int(length) if is_int(length) else None,
        whole_text=bool(whole_text),
    )


def _name_of(model: str | os.PathLike | None, path: Path) -> str:
    if model is None:
        return "minilm"
    return str(model) if str(model) in ALIASES else str(path)


@dataclasses.dataclass(frozen=True)
class TextEncoder:
    """Texts -> unit-norm embeddings with one model, as `text.embed` makes them.

    Call it with a list of texts; it returns float32 (n, dim). Built by `text_encoder`.

    Attributes:
        path: the model folder.
        whole_text: as `text.embed`'s.
        cache_dir: the embedding cache's folder (None: the default).
        cache: read and write the embedding cache (a gateway embeds without it).
    """

    path: Path
    whole_text: bool = False
    cache_dir: str | os.PathLike | None = None
    cache: bool = True

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        from .text import embed

        return embed(
            texts,
            model=self.path,
            whole_text=self.whole_text,
            cache_dir=self.cache_dir,
            cache=self.cache,
            progress=False,
        )


def text_encoder(
    embedder: Embedder | None,
    model: str | os.PathLike | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    cache: bool = True,
) -> TextEncoder:
    """The encoder of new queries for a router fit with `embedder`, checked against it.

    Args:
        embedder: the router's record (`router.embedder`); None for a router saved
            without one, which then needs `model`.
        model: a model to use instead of the recorded name (e.g. the folder moved);
            refused if its fingerprint is not the recorded one.
        cache_dir: the embedding cache's folder (None: the default). As on the command
            line, it moves the embeddings, not the models: "mpnet" is looked up where
            `prepare_mpnet` puts it by default (elsewhere: name its folder as `model`).
        cache: read and write the embedding cache.

    Raises:
        ValueError: no embedder recorded and none named, or a model that is not the
            router's (another fingerprint).

    >>> text_encoder(None)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: this router was saved without its embedder...
    """
    from .text._models import fingerprint, resolve_model

    if embedder is None and model is None:
        raise ValueError(
            "this router was saved without its embedder (by an older smoothie-jax, or fit "
            "without embedder=), so queries cannot be embedded as its past inputs were: "
            "name the embedder it was fit with (--embedder, or model=)"
        )
    name = model if model is not None else embedder.name  # type: ignore[union-attr]
    try:
        path = resolve_model(name)
    except (ValueError, FileNotFoundError) as e:
        if model is None:
            raise ValueError(
                f"the router's embedder {name} cannot be found ({e}); name where it is now "
                "(--embedder, or model=)"
            ) from None
        raise
    if embedder is not None and fingerprint(str(path)) != embedder.fingerprint:
        raise ValueError(
            f"the embedder {name} ({fingerprint(str(path))}) is not the one this router was "
            f"fit with, {embedder.describe()} ({embedder.fingerprint}): queries embedded "
            "otherwise would be routed wrongly"
        )
    whole_text = embedder.whole_text if embedder is not None else False
    return TextEncoder(path, whole_text=whole_text, cache_dir=cache_dir, cache=cache)
