"""The gateway's decision: a text in, the models to try in order, and why.

A `TextRouter` is a router with its text encoder, the models it may choose (those with
an upstream) and, optionally, their costs. Its ranking is `cost_aware`'s objective over
the router's weights, w_i - tradeoff * cost_i (`net_of_cost`; tradeoff 0 or no costs:
the weights alone), best first: the first model is the route, the next one the failover.
A decision answers as a decision record (`_decision_records`) plus its ranking, reason
and net scores.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .._chunks import bucket, decide_padded
from .._cost import net_of_cost
from .._decision_records import decision_record
from .._router import Router
from .._validate import is_number

Encoder = Callable[[Sequence[str]], np.ndarray]  # texts -> (n, input_dim) embeddings
CHARS_PER_PIECE = 64  # characters given to the embedder per word piece it reads


@dataclasses.dataclass(frozen=True)
class RouteDecision:
    """One query's decision.

    Attributes:
        model: the chosen model (the router's name for it).
        ranking: every model that may be chosen, best first (`model` first).
        weights: every model's weight from the router, summing to 1 over all models.
        method: the router's method (with the cost trade-off where one applies).
        reason: one sentence saying why that method.
        net: with costs, each choosable model's weight - tradeoff * cost; else None.
    """

    model: str
    ranking: tuple[str, ...]
    weights: dict[str, float]
    method: str
    reason: str
    net: dict[str, float] | None = None

    @property
    def score(self) -> float:
        """What the route maximised for the chosen model: its net score or its weight."""
        return (self.net or self.weights)[self.model]

    def to_json(self) -> dict[str, Any]:
        """The decision as `POST /v1/route` answers it: its decision record (model, score,
        weights, method; no idx), then its ranking, reason and, with costs, net scores."""
        models = tuple(self.weights)
        record = decision_record(
            np.array(list(self.weights.values())),
            models,
            choice=models.index(self.model),
            score=self.score,
            method=self.method,
        )
        record["ranking"] = list(self.ranking)
        record["reason"] = self.reason
        if self.net is not None:
            record["net"] = self.net
        return record


class TextRouter:
    """A router that decides from text: embeds, routes, ranks the choosable models.

    A router whose embedder reads only a text's first `max_seq_length` word pieces (the
    default; not `whole_text`) is given at most `CHARS_PER_PIECE` characters a word piece
    of each text (16,384 for MiniLM), so a huge prompt costs no more to embed than a
    short one: the cut only matters to a text whose first 16,384 characters hold fewer
    than 256 word pieces (a long run of spaces, or one 16,000-letter word).

    Args:
        router: a fitted or loaded `Router` with model names.
        encoder: texts -> embeddings, as the router's past inputs were embedded.
        models: the models that may be chosen (those with an upstream); default all.
        costs: {model: cost} for every choosable model, or None.
        tradeoff: quality given up per unit of cost (>= 0), as in `cost_aware`.

    >>> import jax, numpy as np, smoothie_jax as sj
    >>> x = jax.random.normal(jax.random.key(0), (50, 3, 4))
    >>> router = sj.fit_router(x, x[:, 0], k=5, models=["a", "b", "c"])
    >>> encode = lambda texts: np.ones((len(texts), 4), np.float32)
    >>> TextRouter(router, encode, models=["a", "c"]).decide(["hi"])[0].ranking
    ('c', 'a')
    """

    def __init__(
        self,
        router: Router,
        encoder: Encoder,
        *,
        models: Sequence[str] | None = None,
        costs: Mapping[str, float] | None = None,
        tradeoff: float = 0.0,
    ) -> None:
        if not router.models:
            raise ValueError("the router has no model names: fit it with models=[...]")
        names = tuple(router.models)
        chosen = names if models is None else tuple(models)
        unknown = [m for m in chosen if m not in names]
        if unknown or not chosen:
            raise ValueError(f"models {unknown or '[]'} are not among the router's {list(names)}")
        if not (is_number(tradeoff) and math.isfinite(tradeoff) and tradeoff >= 0):
            raise ValueError(f"tradeoff must be a number >= 0, got {tradeoff!r}")
        if costs is not None and any(m not in costs for m in chosen):
            raise ValueError(f"costs must cover every model that may be chosen: {list(chosen)}")
        self.router, self.encoder, self.names = router, encoder, names
        self.allowed = np.array([m in chosen for m in names])
        self.costs = None if costs is None else np.array([float(costs.get(m, 0.0)) for m in names])
        self.tradeoff = float(tradeoff)
        embedder = router.embedder
        reads = None if embedder is None or embedder.whole_text else embedder.max_seq_length
        self.max_chars = None if reads is None else reads * CHARS_PER_PIECE

    @property
    def priced(self) -> bool:
        """Whether models are ranked net of cost."""
        return self.costs is not None and self.tradeoff > 0

    @property
    def method(self) -> str:
        """The route's name, as every decision says it (with the cost trade-off)."""
        suffix = f", cost-aware (tradeoff {self.tradeoff:g})" if self.priced else ""
        return self.router.method + suffix

    def decide(self, texts: Sequence[str]) -> list[RouteDecision]:
        """One decision per text (texts embedded and routed together).

        The embeddings are routed zero-padded to a power of two rows (`_chunks.bucket`),
        so batches of any size reuse a few compiled shapes (`warm_up` compiles them
        ahead).

        Raises:
            ValueError: embeddings of the wrong shape, or not finite.
        """
        return self._rank(self._embed(texts))

    def decide_each(self, texts: Sequence[str]) -> list[RouteDecision | Exception]:
        """`decide`, where a text that fails fails alone: its place holds the exception.

        The texts are embedded together; if that raises, each is embedded on its own, so
        one text the encoder refuses costs the others one more embedding, never their
        answer. A text whose embedding is not finite fails too; the rest are routed.

        >>> import jax, numpy as np, smoothie_jax as sj
        >>> x = jax.random.normal(jax.random.key(0), (50, 3, 4))
        >>> router = sj.fit_router(x, x[:, 0], k=5, models=["a", "b", "c"])
        >>> def encode(texts):
        ...     return np.array([[float("nan") if "?" in t else 1.0] * 4 for t in texts])
        >>> [type(d).__name__ for d in TextRouter(router, encode).decide_each(["ok", "?"])]
        ['RouteDecision', 'ValueError']
        """
        out: list[RouteDecision | Exception | None] = [None] * len(texts)
        try:
            rows: list[np.ndarray | Exception] = list(self._embed(texts, finite=False))
        except Exception:
            rows = [self._embed_one(text) for text in texts]
        good = []
        for i, row in enumerate(rows):
            if isinstance(row, Exception):
                out[i] = row
            elif not np.isfinite(row).all():
                out[i] = ValueError("the encoder gave a non-finite embedding for this text")
            else:
                good.append(i)
        if good:
            decisions = self._rank(np.stack([rows[i] for i in good]))  # type: ignore[misc]
            for i, decision in zip(good, decisions):
                out[i] = decision
        return out  # type: ignore[return-value]

    def _embed_one(self, text: str) -> np.ndarray | Exception:
        try:
            return self._embed([text], finite=False)[0]
        except Exception as e:
            return e

    def _embed(self, texts: Sequence[str], *, finite: bool = True) -> np.ndarray:
        """(n, input_dim) float32 embeddings, each text cut to what the embedder reads."""
        cut = self.max_chars
        x = np.asarray(self.encoder([t if cut is None else t[:cut] for t in texts]), np.float32)
        if x.shape != (len(texts), self.router.input_dim):
            raise ValueError(
                f"the encoder gave embeddings of shape {x.shape} for {len(texts)} texts; the "
                f"router routes {self.router.input_dim}-dim inputs"
            )
        if finite and not np.isfinite(x).all():
            raise ValueError("the encoder gave non-finite embeddings")
        return x

    def _rank(self, x: np.ndarray) -> list[RouteDecision]:
        decision = decide_padded(self.router, x, bucket(len(x)))
        weights = np.asarray(decision.weights, np.float64)
        method, reason = decision.method, decision.reason
        priced = self.priced
        score = net_of_cost(weights, self.costs, self.tradeoff) if priced else weights
        if priced:
            method = self.method
            reason += f" Ranked by weight - {self.tradeoff:g} x cost."
        score = np.where(self.allowed, score, -np.inf)
        order = np.argsort(-score, axis=-1, kind="stable")  # ties: the first model, as argmax
        n_allowed = int(self.allowed.sum())
        out = []
        for w, s, rank in zip(weights, score, order):
            ranking = tuple(self.names[j] for j in rank[:n_allowed])
            out.append(
                RouteDecision(
                    model=ranking[0],
                    ranking=ranking,
                    weights={m: round(float(x), 6) for m, x in zip(self.names, w)},
                    method=method,
                    reason=reason,
                    net={m: round(float(s[self.names.index(m)]), 6) for m in ranking}
                    if priced
                    else None,
                )
            )
        return out

    def warm_up(self, max_batch: int = 1) -> None:
        """Decides batches of every padded size up to `max_batch`: nothing compiles later."""
        size = 1
        while size <= bucket(max_batch):
            self.decide(["warm up"] * size)
            size *= 2
