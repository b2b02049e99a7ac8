"""Serve: deploy a train-time router. Route files of text queries, or run a gateway.

`route_texts` routes a file of new instructions with a saved router, embedding them with
the router's own embedder (`Embedder`, recorded by `fit_router(..., embedder=)`). The
gateway (`gateway_app`, `build_app`) puts a router in front of OpenAI-compatible
upstreams: `POST /v1/route`, `POST /v1/chat/completions`, `GET /v1/models[/{model}]`,
`GET /health`, `GET /metrics`; every error is OpenAI's error object. Its web stack
(FastAPI, uvicorn, httpx: `pip install 'smoothie-jax[serve]'`, which brings the text
extra's embedder too) is imported only when an app is built.

>>> import smoothie_jax as sj
>>> sj.serve.Upstream("a", "http://127.0.0.1:8000/v1/", "llama").url
'http://127.0.0.1:8000/v1/chat/completions'
"""

from .._embedder import Embedder as Embedder
from ..data import check_queries as check_queries
from ..data import iter_query_chunks as iter_query_chunks
from ..text import TextEncoder as TextEncoder
from ..text import describe_embedder as describe_embedder
from ..text import text_encoder as text_encoder
from ._app import AUTO as AUTO
from ._app import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from ._app import ROUTER_NAME as ROUTER_NAME
from ._app import build_app as build_app
from ._decide import RouteDecision as RouteDecision
from ._decide import TextRouter as TextRouter
from ._drain import DEFAULT_GRACE as DEFAULT_GRACE
from ._errors import ApiError as ApiError
from ._errors import RequestError as RequestError
from ._fake import fake_upstream as fake_upstream
from ._gateway import DEFAULT_HOST as DEFAULT_HOST
from ._gateway import DEFAULT_PORT as DEFAULT_PORT
from ._gateway import EMBED_THREADS as EMBED_THREADS
from ._gateway import gateway_app as gateway_app
from ._gateway import run_gateway as run_gateway
from ._gateway import serve_in_thread as serve_in_thread
from ._requests import DEPTH_CEILING as DEPTH_CEILING
from ._requests import MAX_BODY as MAX_BODY
from ._requests import MAX_DEPTH as MAX_DEPTH
from ._route_texts import TEXT_CHUNK_SIZE as TEXT_CHUNK_SIZE
from ._route_texts import route_texts as route_texts
from ._upstreams import Upstream as Upstream
from ._upstreams import read_upstreams as read_upstreams

__all__ = [
    "AUTO",
    "ApiError",
    "DEFAULT_GRACE",
    "DEFAULT_HOST",
    "DEPTH_CEILING",
    "DEFAULT_PORT",
    "DEFAULT_TIMEOUT",
    "EMBED_THREADS",
    "Embedder",
    "MAX_BODY",
    "MAX_DEPTH",
    "ROUTER_NAME",
    "RequestError",
    "RouteDecision",
    "TEXT_CHUNK_SIZE",
    "TextEncoder",
    "TextRouter",
    "Upstream",
    "build_app",
    "check_queries",
    "describe_embedder",
    "fake_upstream",
    "gateway_app",
    "iter_query_chunks",
    "read_upstreams",
    "route_texts",
    "run_gateway",
    "serve_in_thread",
    "text_encoder",
]
