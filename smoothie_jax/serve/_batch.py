"""Decisions for concurrent requests, made together.

Embedding a batch of short queries costs little more than embedding one, so while one
batch is decided, the requests that arrive wait for the next batch (at most `max_batch`
texts), instead of each waiting for every one before it. One batch is decided at a
time, in a worker thread (the decision is CPU-bound: embedding, then routing), so the
event loop keeps relaying answers meanwhile. A lone request is decided at once.

A batch's results are per text: a text whose decision failed gets its own exception,
and the others their results (`TextRouter.decide_each`). Only a `decide` that raises as
a whole fails its whole batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Result = TypeVar("Result")
MAX_BATCH = 32  # texts decided together at most


class Batcher(Generic[Result]):
    """`await batcher(text)` -> `decide([..., text, ...])`'s result for `text`.

    Args:
        decide: texts -> one result per text, in order; a result that is an exception
            is raised to its text's caller alone (thread-safe is not needed: one call
            at a time).
        max_batch: texts per call at most.

    >>> async def main():
    ...     batcher = Batcher(lambda texts: [len(texts)] * len(texts))
    ...     return await asyncio.gather(*(batcher(t) for t in "abc"))
    >>> asyncio.run(main())  # three requests at once: one batch of three
    [3, 3, 3]
    """

    def __init__(
        self,
        decide: Callable[[Sequence[str]], Sequence[Result | Exception]],
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.decide, self.max_batch = decide, max_batch
        self.pending: list[tuple[str, asyncio.Future[Result]]] = []
        self.worker: asyncio.Task[None] | None = None

    async def __call__(self, text: str) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self.pending.append((text, future))
        if self.worker is None or self.worker.done():
            self.worker = asyncio.create_task(self._work())
        return await future

    async def _work(self) -> None:
        while self.pending:
            batch = self.pending[: self.max_batch]
            del self.pending[: self.max_batch]
            try:
                results = await asyncio.to_thread(self.decide, [text for text, _ in batch])
            except Exception as e:  # the whole call failed: every waiting request answers it
                results = [e] * len(batch)
            for (_, future), result in zip(batch, results):
                if future.done():  # a client that left has cancelled its own
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)
