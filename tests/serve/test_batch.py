"""Concurrent decisions made together: batches, order, errors, clients that leave."""

from __future__ import annotations

import asyncio
import threading

import pytest

from smoothie_jax.serve._batch import Batcher


def test_requests_arriving_during_a_decision_share_the_next_batch() -> None:
    calls: list[list[str]] = []
    release = threading.Event()

    def decide(texts: list[str]) -> list[str]:
        calls.append(list(texts))
        if len(calls) == 1:
            release.wait(5)  # the first decision is slow: the others queue meanwhile
        return [t.upper() for t in texts]

    async def main() -> list[str]:
        batcher = Batcher(decide, max_batch=3)
        first = asyncio.create_task(batcher("a"))
        await asyncio.sleep(0.05)
        rest = [asyncio.create_task(batcher(t)) for t in "bcdef"]
        await asyncio.sleep(0.05)
        release.set()
        return [await first, *[await r for r in rest]]

    assert asyncio.run(main()) == ["A", "B", "C", "D", "E", "F"]
    assert calls == [["a"], ["b", "c", "d"], ["e", "f"]]


def test_an_error_reaches_every_request_of_its_batch_only() -> None:
    def decide(texts: list[str]) -> list[str]:
        if "bad" in texts:
            raise RuntimeError("the embedder failed")
        return list(texts)

    async def main() -> tuple:
        batcher = Batcher(decide)
        together = await asyncio.gather(batcher("bad"), batcher("x"), return_exceptions=True)
        return together, await batcher("alone")

    together, alone = asyncio.run(main())
    assert all(isinstance(r, RuntimeError) for r in together) and alone == "alone"


def test_a_client_that_left_is_skipped() -> None:
    async def main() -> str:
        batcher = Batcher(lambda texts: list(texts))
        gone = asyncio.create_task(batcher("gone"))
        await asyncio.sleep(0)
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        return await batcher("stays")

    assert asyncio.run(main()) == "stays"
