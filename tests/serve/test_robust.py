"""One bad request breaks nothing else: each is checked on its own, a text that fails to
embed fails alone, bodies are bounded in size and depth, every error is OpenAI's error
object, the request's `model` selects, and stream faults end in an error event."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
from collections.abc import Sequence

import numpy as np
import pytest

import smoothie_jax as sj
from smoothie_jax.serve._batch import Batcher

from .helpers import MODELS, events, fake_encode, held_upstream

pytest.importorskip("fastapi")  # the serve extra: FastAPI, uvicorn, httpx

PROMPT = "how do I sort a python list"
ERROR_KEYS = {"message", "type", "param", "code"}


def chat(text: str = PROMPT, **extra: object) -> dict:
    return {"model": "smoothie-jax", "messages": [{"role": "user", "content": text}], **extra}


def ranking(router: sj.Router, text: str = PROMPT) -> tuple[str, ...]:
    return sj.serve.TextRouter(router, fake_encode).decide([text])[0].ranking


def refusing(word: str):  # noqa: ANN201
    """The fake encoder, raising for any batch that holds a text with `word`."""

    def encode(texts: Sequence[str]) -> np.ndarray:
        if any(word in t for t in texts):
            raise UnicodeEncodeError("utf-8", word, 0, 1, "this encoder refuses it")
        return fake_encode(texts)

    return encode


def at_once(client: object, bodies: list[bytes]) -> list[object]:
    """Posts every body to /v1/chat/completions from its own thread, released together."""
    start = threading.Barrier(len(bodies))

    def post(body: bytes) -> object:
        start.wait(30)
        headers = {"content-type": "application/json"}
        return client.post("/v1/chat/completions", content=body, headers=headers)

    with concurrent.futures.ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(post, bodies))


def test_a_poisoned_request_among_eleven_fails_alone(gateway, reset) -> None:
    client = gateway()
    good = [json.dumps(chat(f"{PROMPT} number {i}")).encode() for i in range(11)]
    poisoned = b'{"messages": [{"role": "user", "content": "hi \\ud800"}]}'
    answers = at_once(client, [*good[:5], poisoned, *good[5:]])
    assert [r.status_code for r in answers] == [200] * 5 + [400] + [200] * 6
    error = answers[5].json()["error"]
    assert error["param"] == "messages[0].content" and "lone surrogate" in error["message"]
    assert sum(len(app.state.requests) for app, _ in reset.values()) == 11


def test_a_text_the_encoder_refuses_fails_alone_in_its_batch(router) -> None:
    """In one batch (held together), the refused text gets its error, the rest decisions."""
    decider = sj.serve.TextRouter(router, refusing("POISON"))
    calls: list[list[str]] = []
    release = threading.Event()

    def decide(texts: Sequence[str]) -> list:
        calls.append(list(texts))
        if len(calls) == 1:
            assert release.wait(30), "never released"
        return decider.decide_each(texts)

    async def main() -> list:
        batcher = Batcher(decide)
        first = asyncio.create_task(batcher("first " + PROMPT))
        for _ in range(1000):  # until "first" is being decided: counted steps, no clock
            if calls:
                break
            await asyncio.sleep(0)
        rest = [asyncio.create_task(batcher(t)) for t in ["a POISON b", PROMPT, "tax law"]]
        for _ in range(1000):
            if len(batcher.pending) == 3:
                break
            await asyncio.sleep(0)
        release.set()
        return await asyncio.gather(first, *rest, return_exceptions=True)

    first, poisoned, *others = asyncio.run(main())
    assert calls[1] == ["a POISON b", PROMPT, "tax law"]  # decided as one batch
    assert isinstance(poisoned, UnicodeEncodeError)
    assert [d.model for d in others] == [
        d.model for d in sj.serve.TextRouter(router, fake_encode).decide([PROMPT, "tax law"])
    ]
    assert isinstance(first, sj.serve.RouteDecision)


def test_a_text_the_encoder_refuses_is_a_500_for_that_request_only(gateway, reset) -> None:
    client = gateway(encoder=refusing("POISON"))
    bodies = [json.dumps(chat(t)).encode() for t in ["POISON pill", PROMPT, "tax law court"]]
    refused, *answered = at_once(client, bodies)
    assert [r.status_code for r in answered] == [200, 200]
    assert refused.status_code == 500
    assert refused.json()["error"]["code"] == "routing_failed"
    assert refused.json()["error"].keys() == ERROR_KEYS


def test_a_non_finite_embedding_fails_its_text_only(router) -> None:
    def encode(texts: Sequence[str]) -> np.ndarray:
        x = fake_encode(texts)
        x[[i for i, t in enumerate(texts) if "nan" in t]] = np.nan
        return x

    decisions = sj.serve.TextRouter(router, encode).decide_each(["a", "nan here", "b"])
    assert isinstance(decisions[1], ValueError) and "non-finite" in str(decisions[1])
    assert [type(d) for d in decisions[::2]] == [sj.serve.RouteDecision] * 2


def test_the_body_size_is_bounded(gateway, reset) -> None:
    client = gateway(max_body=2000)
    small = json.dumps(chat("x" * 1500)).encode()
    large = json.dumps(chat("x" * 3000)).encode()
    assert client.post("/v1/chat/completions", content=small).status_code == 200

    def chunked() -> object:  # no content-length: counted as it comes
        yield large[:1000]
        yield large[1000:]

    for content in (large, chunked()):
        response = client.post("/v1/chat/completions", content=content)
        assert response.status_code == 413
        error = response.json()["error"]
        assert error["code"] == "request_too_large" and "2000 bytes" in error["message"]
    assert client.post("/v1/route", content=large).status_code == 413
    assert sum(len(app.state.requests) for app, _ in reset.values()) == 1  # the small one


@pytest.mark.parametrize("depth", [65, 100_000])
def test_the_json_depth_is_bounded(gateway, depth: int) -> None:
    client = gateway()
    deep = b'{"messages": [{"role": "user", "content": "x"}], "n": ' + b"[" * depth
    deep += b"]" * depth + b"}"
    response = client.post("/v1/chat/completions", content=deep)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "too_deep" and "deeper than 64 levels" in error["message"]
    at_limit = b'{"prompt": "x", "n": ' + b"[" * 63 + b"]" * 63 + b"}"  # 64 deep in all
    assert client.post("/v1/route", content=at_limit).status_code == 200
    assert gateway(max_depth=3).post("/v1/route", content=at_limit).status_code == 400


def test_a_huge_prompt_is_embedded_as_far_as_the_embedder_reads(gateway, router) -> None:
    """MiniLM reads 256 word pieces; this router's fake embedder records 32: the
    encoder is given at most 32 x 64 characters of any text, so a huge prompt costs what
    a short one does, and is routed as its beginning."""
    seen: list[int] = []

    def encode(texts: Sequence[str]) -> np.ndarray:
        seen.extend(len(t) for t in texts)
        return fake_encode(texts)

    client = gateway(encoder=encode)
    huge = PROMPT + " and more" * 200_000
    decision = client.post("/v1/route", json={"prompt": huge}).json()
    assert max(seen) == router.embedder.max_seq_length * 64 == 2048
    expected = sj.serve.TextRouter(router, fake_encode).decide([huge[:2048]])[0]
    assert decision["model"] == expected.model


def test_every_error_is_openais_error_object(gateway) -> None:
    client = gateway(encoder=refusing("POISON"))
    unknown = client.get("/v1/nothing")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    assert "GET /v1/nothing" in unknown.json()["error"]["message"]
    wrong_method = client.delete("/v1/route")
    assert wrong_method.status_code == 405 and "POST" in wrong_method.headers["allow"]
    refused = client.post("/v1/route", json={"prompt": "POISON"})
    assert refused.status_code == 500
    for response in (unknown, wrong_method, refused):
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"].keys() == ERROR_KEYS


def test_an_unexpected_error_is_a_json_500(router, reset) -> None:
    import httpx

    upstreams = {m: sj.serve.Upstream(m, url, m) for m, (_, url) in reset.items()}
    app = sj.serve.build_app(router, upstreams, encoder=fake_encode)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    with sj.serve.serve_in_thread(app) as url:
        response = httpx.get(f"{url}/boom")
    assert response.status_code == 500
    assert response.json()["error"] == {
        "message": "internal error of the gateway (see its log)",
        "type": "server_error",
        "param": None,
        "code": None,
    }


@pytest.mark.parametrize("model", ["smoothie-jax", "auto", None, "absent"])
def test_the_routers_name_auto_or_no_model_routes(gateway, router, reset, model) -> None:
    body = chat()
    if model == "absent":
        del body["model"]
    else:
        body["model"] = model
    response = gateway().post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    assert response.json()["model"] == ranking(router)[0]


@pytest.mark.parametrize("stream", [False, True])
def test_a_listed_model_is_pinned_without_failover(gateway, router, reset, stream) -> None:
    client = gateway()
    last = ranking(router)[-1]
    response = client.post("/v1/chat/completions", json=chat(model=last, stream=stream))
    assert response.status_code == 200 and response.headers["x-smoothie-model"] == last
    assert len(reset[last][0].state.requests) == 1
    reset[last][0].state.status = 503  # the pinned model fails: no other is tried
    response = client.post("/v1/chat/completions", json=chat(model=last, stream=stream))
    assert response.status_code == 502
    assert [a["model"] for a in response.json()["error"]["attempts"]] == [last]
    assert sum(len(app.state.requests) for app, _ in reset.values()) == 2


def test_an_unknown_model_is_a_404_naming_the_choices(gateway, reset) -> None:
    response = gateway().post("/v1/chat/completions", json=chat(model="gpt-4o"))
    assert response.status_code == 404
    error = response.json()["error"]
    assert (error["param"], error["code"]) == ("model", "model_not_found")
    assert all(name in error["message"] for name in ("gpt-4o", "smoothie-jax", "auto", *MODELS))
    assert all(not app.state.requests for app, _ in reset.values())


def test_the_gateways_name_is_its_own(gateway, router, reset) -> None:
    client = gateway(name="router")
    assert client.post("/v1/chat/completions", json=chat(model="router")).status_code == 200
    assert client.post("/v1/chat/completions", json=chat()).status_code == 404
    upstreams = {m: sj.serve.Upstream(m, url, m) for m, (_, url) in reset.items()}
    with pytest.raises(ValueError, match="a model is named 'alpha'"):
        sj.serve.build_app(router, upstreams, encoder=fake_encode, name="alpha")


def test_stream_null_is_no_stream(gateway) -> None:
    response = gateway().post("/v1/chat/completions", json=chat(stream=None))
    assert response.status_code == 200 and response.json()["object"] == "chat.completion"


def test_a_malformed_upstream_event_becomes_an_error_event(gateway, router, reset) -> None:
    best = ranking(router)[0]
    reset[best][0].state.bad_event = True
    with gateway().stream("POST", "/v1/chat/completions", json=chat(stream=True)) as response:
        assert response.status_code == 200
        received = events(response)  # every line parses: no raw JSON error in a client
    first, last = received
    assert first["model"] == best
    assert last["error"]["code"] == "malformed_stream"


def test_a_stalled_stream_says_how_long_it_waited(gateway, router, reset) -> None:
    best = ranking(router)[0]
    upstreams = {m: sj.serve.Upstream(m, url, m) for m, (_, url) in reset.items()}
    with held_upstream(best, "held after one piece", before=1) as (_, upstreams[best]):
        client = gateway(upstreams, timeout=0.3)
        with client.stream("POST", "/v1/chat/completions", json=chat(stream=True)) as response:
            received = events(response)
    error = received[-1]["error"]
    assert error["code"] == "stream_broken" and "timed out after" in error["message"]
    waited = float(error["message"].split("timed out after ")[1].split(" s")[0])
    assert waited >= 0.25  # the stall it measured (0.3 s), never "0 s"


def test_an_answer_that_is_not_unicode_fails_over(gateway, router, reset) -> None:
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    async def answer(request: object) -> Response:  # JSON whose text has a lone surrogate
        body = b'{"object": "chat.completion", "choices": [{"message": {"content": "\\ud800"}}]}'
        return Response(body, media_type="application/json")

    best, second, _ = ranking(router)
    broken = Starlette(routes=[Route("/v1/chat/completions", answer, methods=["POST"])])
    upstreams = {m: sj.serve.Upstream(m, url, m) for m, (_, url) in reset.items()}
    with sj.serve.serve_in_thread(broken) as url:
        upstreams[best] = sj.serve.Upstream(best, url + "/v1", best)
        response = gateway(upstreams).post("/v1/chat/completions", json=chat())
    assert response.status_code == 200 and response.headers["x-smoothie-failover"] == best
    assert response.json()["model"] == second
