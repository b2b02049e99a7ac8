"""The fake upstream: an OpenAI-compatible answer, streamed or not, or a fault."""

from __future__ import annotations

import pytest

import smoothie_jax as sj

pytest.importorskip("fastapi")  # the serve extra: FastAPI, uvicorn, httpx
httpx = pytest.importorskip("httpx")

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def test_it_answers_records_and_fails_on_request() -> None:
    app = sj.serve.fake_upstream("one two three", chunks=2)
    with sj.serve.serve_in_thread(app) as url:
        answer = httpx.post(f"{url}/v1/chat/completions", json=CHAT).json()
        assert answer["choices"][0]["message"]["content"] == "one two three"
        streamed = httpx.post(f"{url}/v1/chat/completions", json={**CHAT, "stream": True})
        lines = [line for line in streamed.text.split("\n") if line.startswith("data: ")]
        assert len(lines) == 3 and lines[-1] == "data: [DONE]"
        app.state.status = 429
        assert httpx.post(f"{url}/v1/chat/completions", json=CHAT).status_code == 429
    assert [body["model"] for _, body in app.state.requests] == ["m"] * 3
