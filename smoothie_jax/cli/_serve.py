"""`smoothie-jax serve`: a saved router as an OpenAI-compatible gateway.

Checks every file and variable (`serve.gateway_app`), says where it listens, then serves
until Ctrl-C or SIGTERM (`serve.run_gateway`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from ..serve import (
    AUTO,
    DEFAULT_GRACE,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_TIMEOUT,
    DEPTH_CEILING,
    EMBED_THREADS,
    MAX_BODY,
    MAX_DEPTH,
    ROUTER_NAME,
    gateway_app,
    run_gateway,
)
from ._args import SUBCOMMAND, Subcommands, examples, help_text, natural, positive
from ._exit import EXIT_OK

_WEB_STACK = ("fastapi", "starlette", "uvicorn", "httpx", "anyio", "tomli")
_DESCRIPTION = (
    "Serves a router saved by 'route --train ... --save-router' in front of the models' "
    "own OpenAI-compatible APIs. POST /v1/route answers the decision only (model, "
    "score, weights, ranking, method, reason); POST /v1/chat/completions (streamed or "
    "not) routes on the conversation's user text, forwards to the chosen model's "
    "upstream, retries once on the next-best model if it fails or times out (else "
    "502), and names the routed model in the answer; its 'model' may instead name one "
    "of the models, to send the request there alone. GET /v1/models, GET /health, "
    "GET /metrics (Prometheus). Every error is OpenAI's error object. UPSTREAMS is TOML, "
    'one table per model of the router: [models.NAME] base_url = "http://host:port/v1", '
    'model = "upstream name", api_key_env = "VAR" (optional), cost = 1.0 (optional). '
    "Keys are read from the environment and never logged or echoed."
)


def _number(low: float, *, strict: bool) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (value > low if strict else value >= low) or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be {'>' if strict else '>='} {low:g}")
        return value

    return parse


def _depth(text: str) -> int:
    value = positive(text)
    if not 3 <= value <= DEPTH_CEILING:
        raise argparse.ArgumentTypeError(f"must be in [3, {DEPTH_CEILING}], got {value}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be in [0, 65535], got {value}")
    return value


def add_parser(commands: Subcommands) -> None:
    """Adds `serve` to the subcommands."""
    serve = commands.add_parser(
        "serve",
        help="run a saved router as an OpenAI-compatible gateway",
        description=help_text(_DESCRIPTION),
        epilog=examples(
            "smoothie-jax serve --router router.eqx --upstreams examples/upstreams.toml --port 6060"
        ),
        **SUBCOMMAND,
    )
    serve.add_argument("--router", required=True, metavar="SAVED", help="a saved router")
    serve.add_argument(
        "--upstreams", required=True, metavar="UPSTREAMS.toml", help="where each model is served"
    )
    serve.add_argument(
        "--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})"
    )
    serve.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})"
    )
    serve.add_argument(
        "--tradeoff",
        type=_number(0, strict=False),
        default=0.0,
        help="with a cost for every model in UPSTREAMS: rank models by weight - "
        "TRADEOFF x cost (the cost_aware policy; default 0, quality only)",
    )
    serve.add_argument(
        "--token-env",
        metavar="VAR",
        default=None,
        help="require 'Authorization: Bearer <token>' on every route but /health, the "
        "token read from this environment variable (default: no token)",
    )
    serve.add_argument(
        "--timeout",
        type=_number(0, strict=True),
        default=DEFAULT_TIMEOUT,
        help=f"seconds an upstream has to answer, or to start a stream (default "
        f"{DEFAULT_TIMEOUT:g}); then the next-best model is tried. A stream silent this "
        "long after its start ends with an error event",
    )
    serve.add_argument(
        "--grace",
        type=_number(0, strict=False),
        default=DEFAULT_GRACE,
        metavar="S",
        help=f"at shutdown, seconds in-flight requests get to finish before they are "
        f"answered 503 (default {DEFAULT_GRACE:g}); a second Ctrl-C ends it at once",
    )
    serve.add_argument(
        "--max-body",
        type=positive,
        default=MAX_BODY,
        metavar="BYTES",
        help=f"largest request body, else 413 (default {MAX_BODY}, 4 MiB)",
    )
    serve.add_argument(
        "--max-depth",
        type=_depth,
        default=MAX_DEPTH,
        metavar="N",
        help=f"deepest JSON nesting of a request body, else 400 (default {MAX_DEPTH}, at most 256)",
    )
    serve.add_argument(
        "--name",
        default=ROUTER_NAME,
        help=f"the gateway's model name: a chat request naming it (or '{AUTO}') is routed "
        f"(default {ROUTER_NAME})",
    )
    serve.add_argument(
        "--embedder",
        metavar="MODEL",
        default=None,
        help="embed queries with MODEL where the router does not record its embedder (or "
        "its folder moved); refused unless it is the one the router was fit with",
    )
    serve.add_argument(
        "--embed-threads",
        type=natural,
        default=EMBED_THREADS,
        metavar="N",
        help=f"torch threads for embedding queries (default {EMBED_THREADS}: as fast for "
        "one query, and far faster than several when the cores are busy); 0: torch's default",
    )
    serve.add_argument(
        "--log-level",
        choices=("critical", "error", "warning", "info", "debug"),
        default="info",
        help="server log level (default info)",
    )
    serve.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Checks, then serves until interrupted."""
    try:
        app = gateway_app(
            args.router,
            args.upstreams,
            embedder=args.embedder,
            tradeoff=args.tradeoff,
            token_env=args.token_env,
            timeout=args.timeout,
            name=args.name,
            max_body=args.max_body,
            max_depth=args.max_depth,
            grace=args.grace,
        )
    except ImportError as e:
        if e.name not in _WEB_STACK:
            raise RuntimeError(str(e)) from None
        raise RuntimeError(
            f"the gateway needs its web stack ({e.name}): pip install 'smoothie-jax[serve]'"
        ) from None
    if args.token_env is None and args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"smoothie-jax serve: warning: listening on {args.host} without a token; "
            "anyone who reaches it can spend the upstreams' keys (--token-env VAR)",
            file=sys.stderr,
        )
    print(
        f"smoothie-jax serve: the router {args.router} on http://{args.host}:{args.port} "
        "(POST /v1/route, POST /v1/chat/completions, GET /health, GET /metrics); Ctrl-C "
        f"stops it (in-flight requests get {args.grace:g} s; a second Ctrl-C: none).",
        file=sys.stderr,
    )
    run_gateway(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        torch_threads=args.embed_threads or None,
    )
    return EXIT_OK
