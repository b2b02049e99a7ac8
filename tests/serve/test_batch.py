"""Concurrent decisions made together: batches, order, errors, clients that leave."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from smoothie_jax.serve._batch import Batcher


async def until(condition: Callable[[], bool], steps: int = 1000) -> None:
    """Yields to the event loop until `condition()` holds: counted loop steps, no clock."""
    for _ in range(steps):
        if condition():
            return
        await asyncio.sleep(0)  # a bare yield: every ready task takes one step
    raise AssertionError(f"not true after {steps} steps of the event loop")


def test_requests_arriving_during_a_decision_share_the_next_batch() -> None:
    calls: list[list[str]] = []
    release = threading.Event()

    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        deciding = asyncio.Event()  # set, from the worker thread, once "a" is being decided

        def decide(texts: list[str]) -> list[str]:
            calls.append(list(texts))
            if len(calls) == 1:  # the first decision holds until the others have queued
                loop.call_soon_threadsafe(deciding.set)
                assert release.wait(30), "the test never released the first decision"
            return [t.upper() for t in texts]

        batcher = Batcher(decide, max_batch=3)
        try:
            first = asyncio.create_task(batcher("a"))
            await deciding.wait()
            rest = [asyncio.create_task(batcher(t)) for t in "bcdef"]
            await until(lambda: len(batcher.pending) == 5)  # all queued behind "a"
            assert calls == [["a"]]  # none decided while "a" was
        finally:
            release.set()  # never leave the worker thread waiting
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
        await until(lambda: len(batcher.pending) == 1)  # queued, then the client leaves
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        return await batcher("stays")

    assert asyncio.run(main()) == "stays"


def test_an_exception_among_the_results_goes_to_its_text_alone() -> None:
    def decide(texts: list[str]) -> list[object]:
        return [ValueError(t) if t.startswith("bad") else t.upper() for t in texts]

    async def main() -> list[object]:
        batcher = Batcher(decide)
        return await asyncio.gather(
            *(batcher(t) for t in ["a", "bad b", "c"]), return_exceptions=True
        )

    a, bad, c = asyncio.run(main())
    assert (a, c) == ("A", "C") and isinstance(bad, ValueError) and str(bad) == "bad b"
