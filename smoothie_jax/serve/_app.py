"""The gateway as an ASGI app (FastAPI): a router and its upstreams behind these routes.

- `GET /health`: liveness and what is served (never behind the token).
- `GET /metrics`: Prometheus' text format (`_metrics`).
- `GET /v1/models`, `GET /v1/models/{model}`: the router's own name and the models that
  may be chosen, OpenAI's model objects.
- `POST /v1/route`: `{"messages": [...]}` or `{"prompt": ...}` -> the decision only
  (model, score, weights, ranking, method, reason), for platforms that call models
  themselves.
- `POST /v1/chat/completions`: an OpenAI chat request, streamed or not. Its `model`
  selects: absent, the gateway's name or "auto" routes it on its user text to the
  chosen model's upstream, with one failover (`_forward`); a listed model's name sends
  it to that model alone; anything else is a 404 naming the choices.

Each request is read and checked on its own (`_requests`: at most `max_body` bytes,
JSON at most `max_depth` deep, valid Unicode) before its text joins a batch of
decisions (`_batch`); a text that fails there fails alone. Every error, from any route,
is OpenAI's error object (`_errors`), and `/openapi.json` declares every request body
and answer (`_schema`). FastAPI and httpx are imported when the app is built, never by
`import smoothie_jax`.
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations, and
# their types (Request) are imported inside `build_app`, where it can see them only as
# objects, not as names to look up in this module.
import asyncio
import contextlib
import hmac
import logging
import math
import time
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from .._router import Router
from .._validate import check_int, is_number
from ..text import text_encoder
from . import _schema
from ._batch import MAX_BATCH, Batcher
from ._decide import Encoder, RouteDecision, TextRouter
from ._drain import DEFAULT_GRACE, Drain
from ._errors import INVALID, SERVER, ApiError, error_body
from ._forward import ATTEMPTS, MODEL_HEADER, Forwarder
from ._metrics import CONTENT_TYPE, Metrics, MetricsMiddleware
from ._requests import (
    DEPTH_CEILING,
    MAX_BODY,
    MAX_DEPTH,
    chat_request,
    parse_json,
    read_body,
    route_request,
)
from ._upstreams import Upstream

if TYPE_CHECKING:
    from fastapi import FastAPI

DEFAULT_TIMEOUT = 60.0  # seconds an upstream has to answer (a stream: its first bytes)
ROUTER_NAME = "smoothie-jax"  # the `model` that asks the gateway to route
AUTO = "auto"  # the other name that routes, as routers in the wild accept it
PARSE_IN_THREAD = 64 * 2**10  # bodies above this many bytes are parsed off the event loop

log = logging.getLogger("smoothie_jax.serve")


def build_app(
    router: Router,
    upstreams: Mapping[str, Upstream],
    *,
    encoder: Encoder | None = None,
    tradeoff: float = 0.0,
    token: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    name: str = ROUTER_NAME,
    max_body: int = MAX_BODY,
    max_depth: int = MAX_DEPTH,
    grace: float = DEFAULT_GRACE,
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
        token: if given, every route but /health needs `Authorization: Bearer <token>`.
        timeout: seconds an upstream has to answer (a stream: its first bytes, then
            between any two chunks).
        name: the gateway's own model name: a chat request naming it (or "auto", or no
            model) is routed.
        max_body: bytes of a request body at most (413 beyond).
        max_depth: JSON nesting of a request body at most, in [3, 256] (400 beyond).
        grace: seconds in-flight requests get once a shutdown begins (then 503).

    Returns:
        A FastAPI app; run it with uvicorn (`run_gateway`, `serve_in_thread`).

    Raises:
        ValueError: a bad option, no upstreams, or a model named as the gateway.

    >>> import jax, smoothie_jax as sj
    >>> x = jax.random.normal(jax.random.key(0), (20, 3, 4))
    >>> router = sj.fit_router(x, x[:, 0], k=3, models=["a", "b", "c"])
    >>> up = {m: sj.serve.Upstream(m, "http://127.0.0.1:9/v1", m) for m in "abc"}
    >>> build_app(router, up, encoder=lambda texts: x[: len(texts), 0]).title
    'smoothie-jax gateway'
    """
    import httpx
    from fastapi import Depends, FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, PlainTextResponse
    from starlette.exceptions import HTTPException

    class PrometheusText(PlainTextResponse):
        media_type = CONTENT_TYPE

    if not (is_number(timeout) and math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")
    if not (is_number(grace) and math.isfinite(grace) and grace >= 0):
        raise ValueError(f"grace must be a number of seconds >= 0, got {grace!r}")
    max_body = check_int("max_body", max_body, 1)
    max_depth = check_int("max_depth", max_depth, 3, DEPTH_CEILING)
    if token is not None and not token:
        raise ValueError("token must be a non-empty string, or None for no token")
    if not upstreams:
        raise ValueError("no upstreams: give one per model the gateway may choose")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    routes_by = (name, AUTO)
    clash = [m for m in upstreams if m in routes_by]
    if clash:
        raise ValueError(
            f"a model is named {clash[0]!r}, which asks the gateway to route: give the "
            "gateway another name"
        )
    if encoder is None:
        encoder = text_encoder(router.embedder, cache=False)
    priced = all(u.cost is not None for u in upstreams.values())
    decider = TextRouter(
        router,
        encoder,
        models=list(upstreams),
        costs={m: u.cost for m, u in upstreams.items()} if priced else None,
        tradeoff=tradeoff,
    )
    decide: Batcher[RouteDecision] = Batcher(decider.decide_each, MAX_BATCH)
    drain, metrics = Drain(grace), Metrics()
    forwarder = Forwarder(timeout, drain, metrics)
    created = int(time.time())
    listed = [name, *upstreams]  # the models /v1/models lists; "auto" is an alias

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        drain.open()
        # Loads the embedder and compiles every batch shape before the first request.
        await asyncio.to_thread(decider.warm_up, MAX_BATCH)
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
        async with httpx.AsyncClient(timeout=httpx.Timeout(timeout), limits=limits) as client:
            forwarder.client = client
            log.info(
                "routing %s over %s (failover once, upstream timeout %g s, shutdown grace %g s%s)",
                decider.method,
                ", ".join(upstreams),
                timeout,
                grace,
                ", bearer token required" if token is not None else "",
            )
            yield
            forwarder.client = None

    app = FastAPI(
        title="smoothie-jax gateway",
        summary="Routes each query to one model with a train-time Smoothie router.",
        lifespan=lifespan,
    )
    app.state.drain = drain  # the server's shutdown starts it (`_gateway`)
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    def answer(e: ApiError) -> JSONResponse:
        return JSONResponse(e.body(), status_code=e.status, headers=e.headers)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError) -> JSONResponse:
        return answer(e)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> JSONResponse:
        where = f"{request.method} {request.url.path}"
        if e.status_code == 404:
            message = (
                f"no such route: {where}; the gateway answers POST /v1/chat/completions, "
                "POST /v1/route, GET /v1/models, GET /v1/models/{model}, GET /health, "
                "GET /metrics"
            )
        elif e.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        else:
            message = str(e.detail)
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code)
        error = ApiError(e.status_code, message, INVALID, code=code, headers=e.headers)
        return answer(error)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, e: RequestValidationError) -> JSONResponse:
        return answer(ApiError(400, f"malformed request: {e.errors()}", INVALID))

    @app.exception_handler(Exception)
    async def server_error(request: Request, e: Exception) -> JSONResponse:
        # The server logs the traceback; the client gets OpenAI's shape, not plain text.
        body = error_body("internal error of the gateway (see its log)", SERVER)
        return JSONResponse(body, status_code=500)

    expected = None if token is None else token.encode()

    async def authorise(request: Request) -> None:
        """The token's check: the scheme in any case (RFC 7235), the token compared in
        constant time, never logged or echoed."""
        if expected is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise ApiError(
                401,
                "missing or wrong bearer token (Authorization: Bearer <token>)",
                "authentication_error",
                code="invalid_api_key",
                headers={"www-authenticate": "Bearer"},
            )

    guarded = {"dependencies": [Depends(authorise)]}
    v1 = (401, 500)  # what any guarded route may answer

    async def json_body(request: Request) -> dict[str, Any]:
        raw = await read_body(request, max_body)
        if len(raw) > PARSE_IN_THREAD:  # megabytes of JSON would stall every stream
            return await asyncio.to_thread(parse_json, raw, max_depth=max_depth)
        return parse_json(raw, max_depth=max_depth)

    async def decision(text: str) -> RouteDecision:
        try:
            with drain.guard():
                return await decide(text)
        except ApiError:
            raise
        except Exception as e:  # this text alone failed to embed or route
            log.warning("a query could not be routed: %s: %s", type(e).__name__, e)
            raise ApiError(
                500,
                f"the query could not be routed ({type(e).__name__}); see the gateway's log",
                SERVER,
                code="routing_failed",
            ) from None

    def pinned(model: str | None) -> str | None:
        """The model a chat request names, or None where it asks to be routed."""
        if model is None or model in routes_by:
            return None
        if model in upstreams:
            return model
        raise ApiError(
            404,
            f"the model {model!r} does not exist here: name {name!r} (or {AUTO!r}) to be "
            f"routed, or one of {list(upstreams)}",
            INVALID,
            param="model",
            code="model_not_found",
        )

    def model_object(model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": created, "owned_by": "smoothie-jax"}

    @app.get(
        "/health",
        responses=_schema.answers({"application/json": _schema.ref("Health")}, 500, 503),
    )
    async def health() -> Any:
        """Liveness, and what is served (never behind the token)."""
        if drain.closing:
            raise ApiError(503, "the gateway is shutting down", SERVER, code="shutting_down")
        return {
            "status": "ok",
            "name": name,
            "router": router.kind,
            "method": decider.method,
            "models": list(upstreams),
            "embedder": None if router.embedder is None else router.embedder.describe(),
        }

    @app.get(
        "/metrics",
        response_class=PrometheusText,
        responses=_schema.answers({CONTENT_TYPE: {"type": "string"}}, *v1),
        **guarded,
    )
    async def metrics_text() -> Any:
        """The gateway's metrics, in Prometheus' text format."""
        return PrometheusText(metrics.render())

    @app.get(
        "/v1/models",
        responses=_schema.answers({"application/json": _schema.ref("ModelList")}, *v1),
        **guarded,
    )
    async def models() -> Any:
        """The gateway's own name (to be routed) and the models it may choose."""
        return {"object": "list", "data": [model_object(m) for m in listed]}

    @app.get(
        "/v1/models/{model}",
        responses=_schema.answers({"application/json": _schema.ref("Model")}, 404, *v1),
        **guarded,
    )
    async def model(model: str) -> Any:
        """One model: the gateway's name, "auto", or a model it may choose."""
        pinned(model)  # a 404 for a model that is not here
        return model_object(model)

    @app.post(
        "/v1/route",
        openapi_extra=_schema.body(_schema.ROUTE_REQUEST),
        responses=_schema.answers(
            {"application/json": _schema.ref("Decision")}, 400, 413, 503, *v1
        ),
        **guarded,
    )
    async def route(request: Request) -> Any:
        """The decision only: model, score, weights, ranking, method, reason."""
        text = route_request(await json_body(request))
        decided = await decision(text)
        return JSONResponse(decided.to_json(), headers={MODEL_HEADER: decided.model})

    @app.post(
        "/v1/chat/completions",
        openapi_extra=_schema.body(_schema.chat_request([name, AUTO, *upstreams])),
        responses=_schema.answers(
            {
                "application/json": _schema.ref("ChatCompletion"),
                "text/event-stream": _schema.ref("StreamEvent"),
            },
            400,
            404,
            413,
            502,
            503,
            *v1,
        ),
        **guarded,
    )
    async def chat_completions(request: Request) -> Any:
        """An OpenAI chat request, routed (or sent to the model it names) and forwarded."""
        body = await json_body(request)
        text, stream = chat_request(body)
        chosen = pinned(body.get("model"))
        if chosen is None:
            decided = await decision(text)
            log.debug("routed to %s (%s)", decided.model, ", ".join(decided.ranking))
            ranking, attempts = [upstreams[m] for m in decided.ranking], ATTEMPTS
        else:
            ranking, attempts = [upstreams[chosen]], 1
        metrics.decided(ranking[0].name, "routed" if chosen is None else "pinned")
        return await forwarder.forward(ranking, body, stream=stream, attempts=attempts)

    def openapi() -> dict[str, Any]:
        """FastAPI's schema, with the shared schemas, the token, and no 422 (the
        handlers read raw bodies: a malformed one is a 400)."""
        if app.openapi_schema is None:
            import sys

            from fastapi.openapi.utils import get_openapi

            # The package's version, read where it is set (an import of the package
            # from here would be an import circle).
            version = sys.modules["smoothie_jax"].__version__
            schema = get_openapi(
                title=app.title, version=version, summary=app.summary, routes=app.routes
            )
            components = schema.setdefault("components", {})
            shared = components.setdefault("schemas", {})
            for unused in ("HTTPValidationError", "ValidationError"):
                shared.pop(unused, None)
            shared.update(_schema.COMPONENTS)
            if token is not None:
                components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            for path, operations in schema["paths"].items():
                for operation in operations.values():
                    operation["responses"].pop("422", None)
                    for parameter in operation.get("parameters", ()):
                        if parameter["name"] == "model":  # the models that exist
                            parameter["schema"] = {"enum": [name, AUTO, *upstreams]}
                    if token is not None and path != "/health":
                        operation["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
