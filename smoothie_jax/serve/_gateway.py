"""Running the gateway: assembled from saved files, served by uvicorn, in the foreground
(`run_gateway`, what `smoothie-jax serve` does) or in a thread (`serve_in_thread`, for
tests, benchmarks and notebooks).

The listening socket is bound before uvicorn starts, so a port in use is an `OSError`
the caller sees, and port 0 picks a free port whose URL `serve_in_thread` yields.

A shutdown (Ctrl-C, SIGTERM, or leaving `serve_in_thread`) stops accepting connections
and gives in-flight requests the app's grace (`_drain`); a second Ctrl-C ends the grace
at once, so those clients get their error now instead of a dropped connection, and a
third forces uvicorn out.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .._router_io import load_router
from ..text import text_encoder
from ._app import DEFAULT_TIMEOUT, ROUTER_NAME, build_app
from ._drain import DEFAULT_GRACE, Drain
from ._requests import MAX_BODY, MAX_DEPTH
from ._upstreams import read_upstreams

if TYPE_CHECKING:
    from fastapi import FastAPI

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 6060
START_SECONDS = 120  # the longest wait for a server in a thread to start (warm-up included)
EMBED_THREADS = 1  # torch threads of a gateway's process (see `run_gateway`)
BACKSTOP_SECONDS = 5  # after the grace, uvicorn's own bound: it cancels what is left


def gateway_app(
    router: str | os.PathLike,
    upstreams: str | os.PathLike,
    *,
    embedder: str | os.PathLike | None = None,
    tradeoff: float = 0.0,
    token_env: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    name: str = ROUTER_NAME,
    max_body: int = MAX_BODY,
    max_depth: int = MAX_DEPTH,
    grace: float = DEFAULT_GRACE,
) -> FastAPI:
    """The gateway of a saved router and an upstreams file, every file checked first.

    Args:
        router: a router saved by `save_router`.
        upstreams: the upstreams TOML (`read_upstreams`); keys are read now.
        embedder: the model to embed queries with where the router does not record its
            own (or the recorded folder moved); refused unless it is the router's.
        tradeoff: quality given up per unit of cost (with costs in the upstreams file).
        token_env: an environment variable holding the gateway's bearer token.
        timeout: seconds an upstream has to answer.
        name: the gateway's own model name (a request naming it is routed).
        max_body: bytes of a request body at most.
        max_depth: JSON nesting of a request body at most.
        grace: seconds in-flight requests get at shutdown.

    Raises:
        ValueError: a malformed file, an unset variable, the wrong embedder, or a bad
            option (`build_app`'s).
    """
    token = None
    if token_env is not None:
        token = os.environ.get(token_env)
        if not token:
            raise ValueError(f"the environment variable {token_env} (the gateway's token) is unset")
    loaded = load_router(router)
    if not loaded.models:
        raise ValueError(f"{router} has no model names: fit and save it with models=[...]")
    table = read_upstreams(upstreams, loaded.models)
    encoder = text_encoder(loaded.embedder, embedder, cache=False)
    return build_app(
        loaded,
        table,
        encoder=encoder,
        tradeoff=tradeoff,
        token=token,
        timeout=timeout,
        name=name,
        max_body=max_body,
        max_depth=max_depth,
        grace=grace,
    )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not 0: asyncio sets TCP_NODELAY only on sockets that say TCP,
    # and without it every answer waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise OSError(e.errno, f"cannot listen on {host}:{port}: {e.strerror}") from None
    return sock


def _server(app: Any, log_level: str, access_log: bool, own_logging: bool = True) -> Any:
    """A uvicorn server; `own_logging=False` leaves the host process's logging alone
    (uvicorn's own config binds handlers to whatever sys.stderr is at that moment).

    For a gateway app (one with a `Drain` in `app.state.drain`), the server starts the
    drain as it shuts down, a second Ctrl-C ends its grace, and uvicorn's own bound on
    the shutdown is the grace plus `BACKSTOP_SECONDS`.
    """
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    drain = getattr(getattr(app, "state", None), "drain", None)
    drain = drain if isinstance(drain, Drain) else None

    class Server(uvicorn.Server):
        hurried = False

        def handle_exit(self, sig: int, frame: Any) -> None:
            if drain is not None and self.should_exit and sig == signal.SIGINT and not self.hurried:
                self.hurried = True  # the second Ctrl-C: answer in-flight requests now
                drain.hurry()
                return
            super().handle_exit(sig, frame)

        async def shutdown(self, sockets: Any = None) -> None:
            if drain is not None:
                drain.begin()
            await super().shutdown(sockets)

    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=access_log,
        lifespan="on",
        ws="none",
        log_config=LOGGING_CONFIG if own_logging else None,
        timeout_graceful_shutdown=None
        if drain is None
        else math.ceil(drain.grace) + BACKSTOP_SECONDS,
    )
    return Server(config)


def run_gateway(
    app: Any,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    log_level: str = "info",
    access_log: bool = True,
    torch_threads: int | None = EMBED_THREADS,
) -> None:
    """Serves `app` on host:port until interrupted (Ctrl-C or SIGTERM end it cleanly).

    Args:
        app: the gateway (`gateway_app`, `build_app`).
        host: the address to listen on.
        port: the port to listen on.
        log_level: uvicorn's log level.
        access_log: one log line per request (method, path, status; never a header).
        torch_threads: threads torch may use in this process, or None to leave its
            default (one per core). One query at a time runs as fast on one thread, and
            several threads, each waiting for the others at every layer, are slowed many
            times over when the cores are busy (measured: 15 ms against 75-140 ms a
            MiniLM query on a loaded 2-core machine).
    """
    sock = _bind(host, port)
    _log_to_stderr(log_level)
    if torch_threads is not None:
        with contextlib.suppress(ImportError):
            import torch

            torch.set_num_threads(torch_threads)
    try:
        _server(app, log_level, access_log).run(sockets=[sock])
    finally:
        sock.close()


def _log_to_stderr(level: str) -> None:
    """The gateway's own lines (failovers, readiness) on stderr, formatted as uvicorn's."""
    from uvicorn.logging import DefaultFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(DefaultFormatter("%(levelprefix)s %(message)s"))
    log = logging.getLogger("smoothie_jax.serve")
    log.addHandler(handler)
    log.setLevel(level.upper())
    log.propagate = False


@contextlib.contextmanager
def serve_in_thread(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"
) -> Iterator[str]:
    """Serves `app` in a daemon thread; yields its base URL, stops it on exit.

    >>> from starlette.applications import Starlette
    >>> with serve_in_thread(Starlette()) as url:
    ...     url.startswith("http://127.0.0.1:")
    True
    """
    sock = _bind(host, port)
    server = _server(app, log_level, access_log=False, own_logging=False)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="smoothie-gateway", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + START_SECONDS
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start (see its log above)")
            time.sleep(0.01)
        name = f"[{host}]" if ":" in host else host
        yield f"http://{name}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
