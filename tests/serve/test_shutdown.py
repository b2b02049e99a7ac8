"""The shutdown, bounded by its grace: in-flight requests are answered (503, or a stream's
error event) instead of waiting for their upstream's timeout; a second Ctrl-C answers
them at once. Slow tests run the gateway as a process and press Ctrl-C."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import smoothie_jax as sj

from .helpers import MODELS, fake_encode, held_upstream

pytest.importorskip("fastapi")  # the serve extra: FastAPI, uvicorn, httpx
httpx = pytest.importorskip("httpx")

ROOT = Path(__file__).resolve().parents[2]
CHAT = {"messages": [{"role": "user", "content": "a python list"}]}


@contextlib.contextmanager
def held_gateway(router: sj.Router, **options: object) -> Iterator[tuple[object, object, str]]:
    """(held upstream, app, url): a gateway whose every model is one upstream that never
    answers until released (the gateway's shutdown is left to the test)."""
    with held_upstream("alpha", "too late", before=options.pop("before", 0)) as (held, up):
        upstreams = {m: sj.serve.Upstream(m, up.base_url, m) for m in MODELS}
        app = sj.serve.build_app(router, upstreams, encoder=fake_encode, timeout=100, **options)
        yield held, app, upstreams


def serve_until_asked(app: object) -> tuple[str, threading.Event, concurrent.futures.Future]:
    """Serves `app` in a thread until `stop` is set: (url, stop, the server's end)."""
    ready: queue.Queue[str] = queue.Queue()
    stop = threading.Event()

    def run() -> None:
        with sj.serve.serve_in_thread(app) as url:
            ready.put(url)
            assert stop.wait(60), "the test never stopped the gateway"
        # leaving serve_in_thread shuts the server down, as Ctrl-C does

    pool = concurrent.futures.ThreadPoolExecutor(1)
    done = pool.submit(run)
    pool.shutdown(wait=False)
    return ready.get(timeout=60), stop, done


@pytest.mark.parametrize("stream", [False, True])
def test_in_flight_requests_are_answered_when_the_grace_ends(router, stream: bool) -> None:
    with held_gateway(router, grace=0.0, before=int(stream)) as (held, app, _):
        url, stop, done = serve_until_asked(app)
        first = threading.Event()  # a stream's first piece reached the client

        def post() -> tuple[int, list[str]]:
            body = {**CHAT, "stream": stream}
            lines = []
            with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=60) as r:
                for line in r.iter_lines():
                    lines.append(line)
                    first.set()
            return r.status_code, lines

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            answer = pool.submit(post)
            assert held.requested.wait(30)  # the request waits on its upstream
            if stream:  # under load the piece can lag the upstream's call: wait for it
                assert first.wait(30)
            stop.set()  # shut down: no grace, so it is answered now
            status, lines = answer.result(timeout=60)
        done.result(timeout=60)
        assert "answer" not in held.log  # the upstream never answered
    if stream:
        assert status == 200
        data = [line[6:] for line in lines if line.startswith("data: ")]
        assert json.loads(data[0])["choices"]  # the piece sent before the hold
        assert json.loads(data[-1])["error"]["code"] == "shutting_down"
    else:
        assert status == 503
        assert json.loads("".join(lines))["error"]["code"] == "shutting_down"


def test_hurry_ends_the_grace_at_once(router) -> None:
    with held_gateway(router, grace=600.0) as (held, app, _):
        url, stop, done = serve_until_asked(app)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            answer = pool.submit(httpx.post, f"{url}/v1/chat/completions", json=CHAT, timeout=60)
            assert held.requested.wait(30)
            stop.set()  # shutdown begins, with 600 s of grace...
            app.state.drain.hurry()  # ...which a second Ctrl-C ends
            response = answer.result(timeout=60)
        done.result(timeout=60)
    assert response.status_code == 503 and response.json()["error"]["code"] == "shutting_down"


def test_health_says_when_the_gateway_is_shutting_down(router) -> None:
    with held_gateway(router) as (_, app, _):
        with sj.serve.serve_in_thread(app) as url:
            assert httpx.get(f"{url}/health").status_code == 200
            app.state.drain.closing = True  # as the server's shutdown sets it
            response = httpx.get(f"{url}/health")
            app.state.drain.closing = False
    assert response.status_code == 503 and response.json()["error"]["code"] == "shutting_down"


def test_bad_shutdown_options_are_refused(router) -> None:
    upstreams = {m: sj.serve.Upstream(m, "http://127.0.0.1:9/v1", m) for m in MODELS}
    for options, message in (
        ({"grace": -1.0}, "grace"),
        ({"max_body": 0}, "max_body"),
        ({"max_depth": 2}, "max_depth"),
        ({"max_depth": 257}, "max_depth"),
        ({"name": ""}, "name"),
    ):
        with pytest.raises(ValueError, match=message):
            sj.serve.build_app(router, upstreams, encoder=fake_encode, **options)


CHILD = """
import sys
import smoothie_jax as sj
sys.path.insert(0, sys.argv[1])
from helpers import fake_encode
router = sj.load_router(sys.argv[2])
upstreams = sj.serve.read_upstreams(sys.argv[3], router.models)
app = sj.serve.build_app(
    router, upstreams, encoder=fake_encode, timeout=100, grace=float(sys.argv[5])
)
try:
    sj.serve.run_gateway(app, port=int(sys.argv[4]), log_level="info")
except KeyboardInterrupt:  # uvicorn raises the Ctrl-C again once stopped, as the CLI sees
    sys.exit(130)
"""


@contextlib.contextmanager
def gateway_process(router: sj.Router, tmp_path: Path, grace: float) -> Iterator[tuple]:
    """(held upstream, process, url, lines): the gateway run by `run_gateway` in a child
    process, every model served by one held upstream; `lines` queues its output."""
    from .test_cli_serve import free_port

    sj.save_router(tmp_path / "router.eqx", router)
    with held_upstream("alpha", "too late") as (held, up):
        tables = [f'[models.{m}]\nbase_url = "{up.base_url}"\nmodel = "{m}"\n' for m in MODELS]
        (tmp_path / "u.toml").write_text("\n".join(tables))
        port = free_port()
        argv = [str(Path(__file__).parent), str(tmp_path / "router.eqx"), str(tmp_path / "u.toml")]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        process = subprocess.Popen(
            [sys.executable, "-c", CHILD, *argv, str(port), str(grace)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(
            target=lambda: [lines.put(x) for x in process.stdout], daemon=True
        )
        reader.start()
        try:
            wait_for(lines, "Application startup complete", process)
            yield held, process, f"http://127.0.0.1:{port}", lines
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=60)
            reader.join(timeout=10)
            process.stdout.close()


def wait_for(lines: queue.Queue[str], text: str, process: subprocess.Popen) -> list[str]:
    """The process's output up to the line holding `text`."""
    seen = []
    while True:
        try:
            line = lines.get(timeout=120)
        except queue.Empty:
            raise AssertionError(f"no {text!r} in the output: {''.join(seen)}") from None
        seen.append(line)
        if text in line:
            return seen


def rest_of(lines: queue.Queue[str]) -> str:
    out = []
    while not lines.empty():
        out.append(lines.get_nowait())
    return "".join(out)


@pytest.mark.slow
@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_answers_in_flight_requests(
    router, tmp_path: Path, ctrl_c: None, presses: int
) -> None:
    """One Ctrl-C: in-flight requests get the grace (here 1 s, against an upstream timeout
    of 100 s), then a 503; a second Ctrl-C (the grace now 600 s) answers them at once.
    Either way the client gets OpenAI's error object and the log holds no traceback."""
    grace = 1.0 if presses == 1 else 600.0
    with gateway_process(router, tmp_path, grace) as (held, process, url, lines):
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            answer = pool.submit(httpx.post, f"{url}/v1/chat/completions", json=CHAT, timeout=60)
            assert held.requested.wait(60)
            process.send_signal(signal.SIGINT)
            if presses == 2:
                wait_for(lines, "Waiting for connections to close", process)
                process.send_signal(signal.SIGINT)
            response = answer.result(timeout=60)
        assert process.wait(timeout=60) == 130
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "shutting_down"
    output = rest_of(lines)
    assert "Traceback" not in output and "Exception in ASGI application" not in output
