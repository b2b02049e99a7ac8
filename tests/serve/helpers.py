"""Helpers of the serve tests: a cheap fake embedder and a small router fitted with it,
an upstream that holds its answer until a test releases it, and a stream's events.

The fake embedder hashes words into 8 dimensions: texts sharing words land near each
other, as with a sentence embedder, at no cost (no model, no torch).
"""

from __future__ import annotations

import contextlib
import json
import threading
import zlib
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

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


class HeldUpstream:
    """A fake upstream that holds its answer until the test sets `release`.

    A stream sends its first `before` events, then holds the rest; with before=0 (the
    default) it holds everything, headers included, as an upstream that times out. `log`
    says what it has done, in order ("request", "event", "released" or "never released",
    "answer"), so a test sees what the gateway passed on, or gave up on, before this
    upstream had sent it: the order of the two, seen through an event, instead of the
    time either took.
    """

    def __init__(self, reply: str, *, before: int = 0, pieces: int = 3) -> None:
        from starlette.applications import Starlette
        from starlette.routing import Route

        size = -(-len(reply) // pieces)
        self.pieces = [reply[i : i + size] for i in range(0, len(reply), size)]
        self.before, self.release, self.log = before, threading.Event(), []
        self.requested = threading.Event()  # set once a request has come
        self.app = Starlette(routes=[Route("/v1/chat/completions", self._answer, methods=["POST"])])

    async def _hold(self) -> None:
        import anyio

        released = await anyio.to_thread.run_sync(self.release.wait, 30)
        self.log.append("released" if released else "never released")

    def _event(self, model: str, piece: str) -> bytes:
        delta = {"index": 0, "delta": {"content": piece}, "finish_reason": None}
        event = {"object": "chat.completion.chunk", "model": model, "choices": [delta]}
        return f"data: {json.dumps(event)}\n\n".encode()

    async def _answer(self, request: Any) -> Any:
        from starlette.responses import JSONResponse, StreamingResponse

        body = json.loads(await request.body())
        self.log.append("request")
        self.requested.set()
        model = body["model"]
        if self.before == 0:  # nothing at all until released, not even the headers
            await self._hold()
        if not body.get("stream"):
            self.log.append("answer")
            message = {"role": "assistant", "content": "".join(self.pieces)}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            return JSONResponse({"object": "chat.completion", "model": model, "choices": [choice]})

        async def stream() -> AsyncIterator[bytes]:
            for i, piece in enumerate(self.pieces):
                if i == self.before > 0:
                    await self._hold()
                self.log.append("event")
                yield self._event(model, piece)
            self.log.append("answer")
            yield b"data: [DONE]\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")


@contextlib.contextmanager
def held_upstream(name: str, reply: str, **options: int) -> Iterator[tuple[HeldUpstream, object]]:
    """(upstream, sj.serve.Upstream) of a `HeldUpstream` serving `name`, running on
    loopback; released on exit, so its server can stop."""
    held = HeldUpstream(reply, **options)
    with sj.serve.serve_in_thread(held.app) as url:
        try:
            yield held, sj.serve.Upstream(name, url + "/v1", f"upstream-{name}")
        finally:
            held.release.set()


def events(response: object) -> list[dict | str]:
    """The data of each server-sent event: JSON objects, or the text (e.g. [DONE])."""
    out: list[dict | str] = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            data = line[len("data: ") :]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out
