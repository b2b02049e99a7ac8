"""The gateway as an ASGI app (FastAPI): a router and its upstreams behind four routes.

- `GET /health`: liveness and what is served (never behind the token).
- `GET /v1/models`: the models that may be chosen, OpenAI's list format.
- `POST /v1/route`: `{"messages": [...]}` or `{"prompt": ...}` -> the decision only
  (model, score, weights, ranking, method, reason), for platforms that call models
  themselves.
- `POST /v1/chat/completions`: an OpenAI chat request, streamed or not, routed on its
  user text and forwarded to the chosen model's upstream (`_forward`).

Malformed requests are answered 400 with the reason, in OpenAI's error format.
Concurrent requests are decided together (`_batch`), in a worker thread, so the event
loop keeps relaying streams meanwhile. FastAPI and httpx are imported when the app is
built, never by `import smoothie_jax`.
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations, and
# their types (Request) are imported inside `build_app`, where it can see them only as
# objects, not as names to look up in this module.
import asyncio
import contextlib
import hmac
import logging
import math
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from .._router import Router
from .._validate import is_number
from ..text import text_encoder
from ._batch import MAX_BATCH, Batcher
from ._decide import Encoder, RouteDecision, TextRouter
from ._forward import MODEL_HEADER, forward
from ._requests import RequestError, chat_request, parse_json, route_request
from ._upstreams import Upstream

if TYPE_CHECKING:
    from fastapi import FastAPI

DEFAULT_TIMEOUT = 60.0  # seconds an upstream has to answer (a stream: its first bytes)

log = logging.getLogger("smoothie_jax.serve")


def build_app(
    router: Router,
    upstreams: Mapping[str, Upstream],
    *,
    encoder: Encoder | None = None,
    tradeoff: float = 0.0,
    token: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> "FastAPI":
    """The gateway's ASGI app.

    Args:
        router: a fitted or loaded `Router` with model names.
        upstreams: {model: Upstream} (`read_upstreams`); a model without one is never
            chosen. With a cost for every upstream and tradeoff > 0, models are ranked
            by weight - tradeoff * cost (`cost_aware`'s objective).
        encoder: texts -> embeddings; default: the router's recorded embedder, without
            the disk cache (`text_encoder(router.embedder, cache=False)`).
        tradeoff: quality given up per unit of cost, >= 0.
        token: if given, every /v1/ request needs `Authorization: Bearer <token>`.
        timeout: seconds an upstream has to answer (a stream: its first bytes).

    Returns:
        A FastAPI app; run it with uvicorn (`run_gateway`, `serve_in_thread`).
    """
    import httpx
    from fastapi import Depends, FastAPI, Request
    from fastapi.responses import JSONResponse

    if not (is_number(timeout) and math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")
    if token is not None and not token:
        raise ValueError("token must be a non-empty string, or None for no token")
    if not upstreams:
        raise ValueError("no upstreams: give one per model the gateway may choose")
    if encoder is None:
        encoder = text_encoder(router.embedder, cache=False)
    priced = all(u.cost is not None for u in upstreams.values())
    decider = TextRouter(
        router,
        encoder,
        models=list(upstreams),
        costs={name: u.cost for name, u in upstreams.items()} if priced else None,
        tradeoff=tradeoff,
    )
    decide: Batcher[RouteDecision] = Batcher(decider.decide, MAX_BATCH)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Loads the embedder and compiles every batch shape before the first request.
        await asyncio.to_thread(decider.warm_up, MAX_BATCH)
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
        async with httpx.AsyncClient(timeout=httpx.Timeout(timeout), limits=limits) as client:
            app.state.client = client
            log.info(
                "routing %s over %s (failover once, upstream timeout %g s%s)",
                decider.router.method,
                ", ".join(upstreams),
                timeout,
                ", bearer token required" if token is not None else "",
            )
            yield

    app = FastAPI(
        title="smoothie-jax gateway",
        summary="Routes each query to one model with a train-time Smoothie router.",
        lifespan=lifespan,
    )

    def error(status: int, message: str, kind: str, **headers: str) -> JSONResponse:
        body = {"error": {"message": message, "type": kind}}
        return JSONResponse(body, status_code=status, headers=headers or None)

    @app.exception_handler(RequestError)
    async def bad_request(request: Request, e: RequestError) -> JSONResponse:
        return error(400, str(e), "invalid_request_error")

    @app.exception_handler(_Unauthorised)
    async def unauthorised(request: Request, e: _Unauthorised) -> JSONResponse:
        message = "missing or wrong bearer token (Authorization: Bearer <token>)"
        return error(401, message, "authentication_error", **{"www-authenticate": "Bearer"})

    expected = None if token is None else f"Bearer {token}".encode()

    async def authorise(request: Request) -> None:
        """The /v1/ routes' check: compared in constant time, never logged or echoed."""
        given = request.headers.get("authorization", "").encode()
        if expected is not None and not hmac.compare_digest(given, expected):
            raise _Unauthorised

    v1 = {"dependencies": [Depends(authorise)]}

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "models": list(upstreams),
            "method": router.method,
            "embedder": None if router.embedder is None else router.embedder.describe(),
        }

    @app.get("/v1/models", **v1)
    async def models() -> dict[str, Any]:
        data = [{"id": name, "object": "model", "owned_by": "smoothie-jax"} for name in upstreams]
        return {"object": "list", "data": data}

    @app.post("/v1/route", **v1)
    async def route(request: Request) -> JSONResponse:
        text = route_request(parse_json(await request.body()))
        decision = await decide(text)
        return JSONResponse(decision.to_json(), headers={MODEL_HEADER: decision.model})

    @app.post("/v1/chat/completions", **v1)
    async def chat_completions(request: Request) -> Any:
        body = parse_json(await request.body())
        text, stream = chat_request(body)
        decision = await decide(text)
        log.debug("routed to %s (%s)", decision.model, ", ".join(decision.ranking))
        ranking = [upstreams[name] for name in decision.ranking]
        return await forward(
            request.app.state.client, ranking, body, stream=stream, timeout=timeout
        )

    return app


class _Unauthorised(Exception):
    """A /v1/ request without the gateway's bearer token: answered 401."""
