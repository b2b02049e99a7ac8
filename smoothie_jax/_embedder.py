"""The embedder a router was fit with: a record kept with the router and saved with it.

A train-time router compares a new query's embedding with its past inputs' embeddings,
so a query embedded by another model (or truncated otherwise) is routed silently wrong.
An `Embedder` records what embedded the past inputs (the model's name, its fingerprint,
the dimension, how much of a text it reads); `fit_router(..., embedder=)` keeps it and
`save_router` writes it. The record is plain data: the text theme makes one
(`text.describe_embedder`) and checks a model against it (`text.text_encoder`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ._validate import is_int


@dataclasses.dataclass(frozen=True)
class Embedder:
    """How a router's inputs were embedded (hashable: it is a static field of `Router`).

    Attributes:
        name: "minilm", "mpnet", or the absolute path of a sentence-transformers folder.
        fingerprint: the model folder's id: its name and a hash of its configuration,
            tokenizer, and weights' names and sizes.
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
