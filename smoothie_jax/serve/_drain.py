"""The gateway's shutdown, bounded: in-flight requests get a grace period, then an answer.

When the server begins to shut down (Ctrl-C, SIGTERM), it stops accepting connections
and calls `Drain.begin`; requests still waiting on an upstream (or relaying a stream)
have `grace` seconds to finish. Then, or at once on a second Ctrl-C (`Drain.hurry`),
every wait still open is cancelled, and its client gets a proper error instead of a
dropped connection: a 503 `{"error": {"code": "shutting_down", ...}}`, or a stream's
last event saying so. An upstream's own timeout no longer decides how long a stop takes.

Waits are guarded with anyio cancel scopes (`Drain.guard`), one per wait, so a request
costs nothing extra while the server runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

from ._errors import SERVER, ApiError

DEFAULT_GRACE = 20.0  # seconds in-flight requests get at shutdown (under Kubernetes' 30 s)


class ShuttingDown(ApiError):
    """A wait cut short by the shutdown: answered 503."""

    def __init__(self) -> None:
        super().__init__(
            503,
            "the gateway is shutting down and could not finish this request; retry it",
            SERVER,
            code="shutting_down",
        )


class Drain:
    """Bounds the waits of in-flight requests once a shutdown begins.

    Args:
        grace: seconds in-flight requests get after the shutdown begins (0: none).

    >>> async def main():
    ...     drain = Drain(grace=0.0)
    ...     drain.open()
    ...     drain.begin()  # no grace: every wait is cut short
    ...     with drain.guard():
    ...         await asyncio.sleep(60)
    >>> asyncio.run(main())
    Traceback (most recent call last):
    smoothie_jax.serve._drain.ShuttingDown: the gateway is shutting down and could not finish this request; retry it
    """  # noqa: E501

    def __init__(self, grace: float = DEFAULT_GRACE) -> None:
        self.grace = grace
        self.closing = False  # the shutdown has begun
        self.over = False  # the grace has ended: waits are cancelled
        self.scopes: set[Any] = set()  # the open waits' anyio.CancelScope
        self.loop: asyncio.AbstractEventLoop | None = None

    def open(self) -> None:
        """Binds to the running event loop (the app's startup)."""
        self.loop = asyncio.get_running_loop()
        self.closing = self.over = False

    def begin(self) -> None:
        """The shutdown begins (on the loop): the grace period starts."""
        if self.closing or self.loop is None:
            return
        self.closing = True
        if self.grace > 0:
            self.loop.call_later(self.grace, self._end)
        else:
            self._end()

    def hurry(self) -> None:
        """Ends the grace now; safe from a signal handler or another thread."""
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._end)

    def _end(self) -> None:
        self.over = True
        for scope in list(self.scopes):
            scope.cancel()

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """The block runs until the grace ends, then raises `ShuttingDown`.

        Guard awaits only: never a `yield` of an async generator (an anyio rule).
        """
        import anyio

        scope = anyio.CancelScope()
        if self.over:
            scope.cancel()
        self.scopes.add(scope)
        try:
            with scope:
                yield
        finally:
            self.scopes.discard(scope)
        if scope.cancelled_caught:
            raise ShuttingDown
