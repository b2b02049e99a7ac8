"""`smoothie-jax serve` (cli/_serve) through the CLI's entry point, the gateway swapped
for a fake where it would serve; a slow test runs `python -m smoothie_jax serve` as a
process with MiniLM in front of fake upstreams."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import smoothie_jax as sj
from smoothie_jax.cli import _serve, main

from .helpers import MODELS, fake_encode

pytest.importorskip("fastapi")  # the serve extra: FastAPI, uvicorn, httpx
httpx = pytest.importorskip("httpx")

ROOT = Path(__file__).resolve().parents[2]


def serve(*argv: object) -> int:
    """`smoothie-jax serve ARGV...`, run in this process."""
    return main(["serve", *map(str, argv)])


def upstreams_file(path: Path, fakes: dict, key_env: str | None = None) -> Path:
    tables = []
    for name, (_, url) in fakes.items():
        table = f'[models.{name}]\nbase_url = "{url}"\nmodel = "upstream-{name}"\n'
        tables.append(table + (f'api_key_env = "{key_env}"\n' if key_env else ""))
    path.write_text("\n".join(tables))
    return path


def test_run_assembles_the_gateway_and_serves_it(router, reset, tmp_path, monkeypatch, capsys):
    seen = {}

    def gateway_app(router_path, upstreams_path, **options):
        seen.update(options, router=router_path)
        upstreams = sj.serve.read_upstreams(upstreams_path, MODELS)
        return sj.serve.build_app(router, upstreams, encoder=fake_encode)

    def run_gateway(app, *, host, port, log_level, torch_threads):
        seen.update(host=host, port=port, log_level=log_level, threads=torch_threads)
        with sj.serve.serve_in_thread(app) as url:
            seen["health"] = httpx.get(f"{url}/health").json()

    monkeypatch.setattr(_serve, "gateway_app", gateway_app)
    monkeypatch.setattr(_serve, "run_gateway", run_gateway)
    path = upstreams_file(tmp_path / "u.toml", reset)
    assert serve("--router", "r.eqx", "--upstreams", path, "--port", 7001, "--tradeoff", 0.5) == 0
    assert seen["health"]["models"] == list(MODELS)
    assert seen["threads"] == 1
    assert (seen["host"], seen["port"], seen["tradeoff"], seen["timeout"]) == (
        "127.0.0.1",
        7001,
        0.5,
        60.0,
    )
    limits = (seen["grace"], seen["max_body"], seen["max_depth"], seen["name"])
    assert limits == (20.0, 4 * 2**20, 64, "smoothie-jax")
    assert "http://127.0.0.1:7001" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["--router", "r"],  # no --upstreams
        ["--router", "r", "--upstreams", "u", "--port", "70000"],
        ["--router", "r", "--upstreams", "u", "--timeout", "0"],
        ["--router", "r", "--upstreams", "u", "--tradeoff", "-1"],
        ["--router", "r", "--upstreams", "u", "--grace", "-1"],
        ["--router", "r", "--upstreams", "u", "--max-body", "0"],
        ["--router", "r", "--upstreams", "u", "--max-depth", "2"],
        ["--router", "r", "--upstreams", "u", "--max-depth", "257"],
    ],
)
def test_bad_usage_exits_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        serve(*argv)
    assert info.value.code == 2


def test_bad_files_are_errors_before_serving(router, tmp_path, capsys) -> None:
    sj.save_router(tmp_path / "r.eqx", router)
    (tmp_path / "u.toml").write_text("[models.alpha]\n")
    argv = ["--router", tmp_path / "r.eqx", "--upstreams"]
    assert serve(*argv, tmp_path / "none.toml") == 1
    assert serve(*argv, tmp_path / "u.toml") == 1
    err = capsys.readouterr().err
    assert "no such file" in err.lower()
    assert "[models.alpha]: missing ['base_url', 'model']" in err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_the_command_serves_minilm_routes_until_interrupted(minilm_router, tmp_path: Path):
    """The quiz router (MiniLM recorded) behind `python -m smoothie_jax serve` in a
    process, with fake upstreams named as its models; a key in the environment never
    reaches a log."""
    path, router, _ = minilm_router
    with contextlib.ExitStack() as stack:
        fakes = {}
        for name in router.models:
            app = sj.serve.fake_upstream(f"{name} answers")
            fakes[name] = (app, stack.enter_context(sj.serve.serve_in_thread(app)) + "/v1")
        upstreams = upstreams_file(tmp_path / "u.toml", fakes, key_env="QUIZ_KEY")
        port = free_port()
        env = {**os.environ, "QUIZ_KEY": "sk-live-secret", "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "smoothie_jax", "serve", "--router"]
        command += [str(path), "--upstreams", str(upstreams), "--port", str(port)]
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 180
            while True:
                assert process.poll() is None, process.stdout.read()
                try:
                    if httpx.get(f"{url}/health").status_code == 200:
                        break
                except httpx.ConnectError:
                    assert time.monotonic() < deadline, "the gateway did not start"
                    time.sleep(0.5)
            decision = httpx.post(f"{url}/v1/route", json={"prompt": "Compute 12 minus 5."})
            assert decision.json()["model"] in router.models
            chat = {"messages": [{"role": "user", "content": "Compute 12 minus 5."}]}
            answer = httpx.post(f"{url}/v1/chat/completions", json=chat, timeout=30).json()
            assert answer["model"] == decision.json()["model"]
            assert answer["choices"][0]["message"]["content"] == f"{answer['model']} answers"
            headers, _ = fakes[answer["model"]][0].state.requests[0]
            assert headers["authorization"] == "Bearer sk-live-secret"
        finally:
            process.send_signal(signal.SIGINT)
            try:
                output, _ = process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()  # reap it: no leak into later tests
                raise
    assert process.returncode in (0, 130), output
    assert "sk-live-secret" not in output
    assert "POST /v1/chat/completions" in output  # the access log, without keys
