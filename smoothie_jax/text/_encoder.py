"""Text encoders of routers: the `Embedder` record of a model, and the encoder of new
queries checked against a router's record.

`describe_embedder` records what embedded a router's past inputs (the core `Embedder`);
`text_encoder` gives the function that embeds new queries the same way, and refuses a
model whose fingerprint differs from the recorded one.

Nothing here imports torch: describing a model loads it (once per process), but checking
a recorded embedder against a named one only hashes the model folder's small files.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._embedder import Embedder
from .._validate import is_int
from ._embed import embed
from ._models import MODEL_ALIASES, embedding_dim, fingerprint, load_model, resolve_model


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
    path = resolve_model(model, cache_dir=cache_dir)
    st = load_model(str(path))
    length = getattr(st, "max_seq_length", None)
    return Embedder(
        name=_name_of(model, path),
        fingerprint=fingerprint(str(path)),
        dim=embedding_dim(st),
        max_seq_length=int(length) if is_int(length) else None,
        whole_text=bool(whole_text),
    )


def _name_of(model: str | os.PathLike | None, path: Path) -> str:
    if model is None:
        return "minilm"
    # An alias stays a name (found again wherever it is installed); any other model is
    # recorded by its path.
    return str(model) if str(model) in MODEL_ALIASES else str(path)


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
