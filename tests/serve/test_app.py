"""The gateway app, served on loopback in front of fake upstreams: routes, forwarding,
streaming, failover, malformed requests, auth, keys, the request's `model`. A fake
embedder keeps it fast."""

from __future__ import annotations

import contextlib
import json
import logging

import pytest

import smoothie_jax as sj

from .helpers import MODELS, events, fake_encode, held_upstream

pytest.importorskip("fastapi")  # the serve extra: FastAPI, uvicorn, httpx

PROMPT = "how do I sort a python list"


def ranking(router: sj.Router, text: str = PROMPT) -> tuple[str, ...]:
    return sj.serve.TextRouter(router, fake_encode).decide([text])[0].ranking


def chat(text: str = PROMPT, **extra: object) -> dict:
    return {"model": "smoothie-jax", "messages": [{"role": "user", "content": text}], **extra}


def test_health_and_models_list(gateway, router) -> None:
    client = gateway()
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["models"] == list(MODELS)
    assert health["embedder"].startswith("fake (8-dim")
    assert (health["name"], health["router"]) == ("smoothie-jax", router.kind)
    decision = client.post("/v1/route", json={"prompt": PROMPT}).json()
    assert health["method"] == router.method == decision["method"]  # one name, everywhere
    listed = client.get("/v1/models").json()
    assert listed["object"] == "list"
    assert [m["id"] for m in listed["data"]] == ["smoothie-jax", *MODELS]
    for model in listed["data"]:
        assert model["object"] == "model" and isinstance(model["created"], int)
        assert client.get(f"/v1/models/{model['id']}").json() == model
    assert client.get("/v1/models/auto").json()["id"] == "auto"
    missing = client.get("/v1/models/gpt-4")
    assert missing.status_code == 404
    assert missing.json()["error"] == {
        "message": missing.json()["error"]["message"],
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }


def test_route_answers_the_decision_only(gateway, router, reset) -> None:
    client = gateway()
    response = client.post("/v1/route", json={"prompt": PROMPT})
    assert response.status_code == 200
    decision = response.json()
    expected = sj.serve.TextRouter(router, fake_encode).decide([PROMPT])[0]
    assert decision["model"] == expected.model == response.headers["x-smoothie-model"]
    assert decision["ranking"] == list(expected.ranking)
    assert sum(decision["weights"].values()) == pytest.approx(1.0, abs=1e-5)
    assert decision["score"] == decision["weights"][decision["model"]]
    assert decision["method"].startswith("smoothie-local") and decision["reason"]
    assert all(not app.state.requests for app, _ in reset.values())  # no model called


def test_route_reads_the_user_text_of_a_conversation(gateway) -> None:
    client = gateway()
    messages = [
        {"role": "system", "content": "french poem rhyme"},
        {"role": "user", "content": [{"type": "text", "text": PROMPT}]},
        {"role": "assistant", "content": "tax law court"},
    ]
    by_messages = client.post("/v1/route", json={"messages": messages}).json()
    by_prompt = client.post("/v1/route", json={"prompt": PROMPT}).json()
    assert by_messages["weights"] == by_prompt["weights"]


def test_chat_is_forwarded_to_the_routed_model(gateway, router, reset) -> None:
    client = gateway()
    best = ranking(router)[0]
    response = client.post("/v1/chat/completions", json=chat(temperature=0.2))
    assert response.status_code == 200
    answer = response.json()
    assert answer["model"] == best == response.headers["x-smoothie-model"]
    assert answer["choices"][0]["message"]["content"] == f"{best} says hello"
    assert "x-smoothie-failover" not in response.headers
    (headers, body), *more = reset[best][0].state.requests
    assert not more
    assert body["model"] == f"upstream-{best}" and body["temperature"] == 0.2
    assert body["messages"] == chat()["messages"]
    assert headers["authorization"] == f"Bearer key-{best}"
    others = [name for name in MODELS if name != best]
    assert all(not reset[name][0].state.requests for name in others)


def test_stream_is_relayed_as_it_comes(gateway, router, reset) -> None:
    best = ranking(router)[0]
    upstreams = {
        name: sj.serve.Upstream(name, url, f"upstream-{name}") for name, (_, url) in reset.items()
    }
    with held_upstream(best, f"{best} says hello", before=1) as (held, upstream):
        upstreams[best] = upstream
        client = gateway(upstreams)
        sent_at_first = None
        with client.stream("POST", "/v1/chat/completions", json=chat(stream=True)) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["x-smoothie-model"] == best
            received = []
            for line in response.iter_lines():
                if line.startswith("data: "):
                    if not received:  # the upstream holds the rest until we have this one
                        sent_at_first = list(held.log)
                        held.release.set()
                    data = line[len("data: ") :]
                    received.append(data if data == "[DONE]" else json.loads(data))
    # The first event came while the upstream still held the rest: relayed, not buffered.
    assert sent_at_first == ["request", "event"]
    assert held.log[:3] == ["request", "event", "released"] and held.log[-1] == "answer"
    assert received[-1] == "[DONE]"
    chunks = received[:-1]
    assert "".join(c["choices"][0]["delta"]["content"] for c in chunks) == f"{best} says hello"
    assert {c["model"] for c in chunks} == {best}  # renamed from the upstream's name


@pytest.mark.parametrize("fault", ["status", "timeout", "unreachable"])
@pytest.mark.parametrize("stream", [False, True])
def test_a_failing_upstream_fails_over_to_the_next_best(
    gateway, router, reset, closed_url, fault: str, stream: bool
) -> None:
    best, second, _ = ranking(router)
    upstreams = {
        name: sj.serve.Upstream(name, url, f"upstream-{name}") for name, (_, url) in reset.items()
    }
    with contextlib.ExitStack() as stack:
        if fault == "status":
            reset[best][0].state.status = 500
        elif fault == "timeout":  # answers only once released: after the gateway's answer
            held, upstreams[best] = stack.enter_context(held_upstream(best, "too late"))
        else:
            upstreams[best] = sj.serve.Upstream(best, closed_url, "gone")
        client = gateway(upstreams, timeout=0.5)
        response = client.post("/v1/chat/completions", json=chat(stream=stream))
        if fault == "timeout":  # the gateway answered without waiting for the held one
            assert held.log == ["request"]
    assert response.status_code == 200
    assert response.headers["x-smoothie-model"] == second
    assert response.headers["x-smoothie-failover"] == best
    if stream:
        assert events(response)[0]["model"] == second
    else:
        assert response.json()["model"] == second
    assert len(reset[second][0].state.requests) == 1


@pytest.mark.parametrize("stream", [False, True])
def test_two_failures_answer_502_naming_both(gateway, router, reset, stream: bool) -> None:
    best, second, third = ranking(router)
    reset[best][0].state.status = 503
    upstreams = {
        name: sj.serve.Upstream(name, url, f"upstream-{name}") for name, (_, url) in reset.items()
    }
    with held_upstream(second, "too late") as (held, upstreams[second]):
        client = gateway(upstreams, timeout=0.5)
        response = client.post("/v1/chat/completions", json=chat(stream=stream))
        assert held.log == ["request"]  # timed out: the gateway did not wait for its answer
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["type"] == "upstream_error"
    assert [a["model"] for a in error["attempts"]] == [best, second]
    assert "HTTP 503" in error["attempts"][0]["error"]
    assert "timed out" in error["attempts"][1]["error"]
    assert not reset[third][0].state.requests  # retried once, not twice


def test_a_stream_breaking_midway_ends_with_an_error_event(gateway, router, reset) -> None:
    best = ranking(router)[0]
    reset[best][0].state.break_stream = True
    client = gateway()
    with client.stream("POST", "/v1/chat/completions", json=chat(stream=True)) as response:
        assert response.status_code == 200
        received = events(response)
    assert received[0]["model"] == best
    assert received[-1]["error"]["type"] == "upstream_error"
    assert "mid-stream" in received[-1]["error"]["message"]


@pytest.mark.parametrize(
    ("path", "body", "reason"),
    [
        ("/v1/chat/completions", b"{not json", "not valid JSON"),
        ("/v1/chat/completions", b"[1, 2]", "JSON object"),
        ("/v1/chat/completions", b"{}", "missing 'messages'"),
        ("/v1/chat/completions", b'{"messages": []}', "non-empty list"),
        ("/v1/chat/completions", b'{"messages": [{"role": "boss", "content": "x"}]}', "role"),
        ("/v1/chat/completions", b'{"messages": [{"role": "user", "content": 3}]}', "content"),
        ("/v1/chat/completions", b'{"messages": [{"role": "system", "content": "x"}]}', "user"),
        (
            "/v1/chat/completions",
            b'{"messages": [{"role": "user", "content": "x"}], "stream": "yes"}',
            "stream",
        ),
        ("/v1/route", b'{"prompt": "x", "messages": []}', "exactly one"),
        ("/v1/route", b'{"prompt": "  "}', "non-empty string"),
        ("/v1/route", b"{}", "exactly one"),
        ("/v1/route", b'{"prompt": "hi \\ud800"}', "prompt holds a lone surrogate (U+D800)"),
        (
            "/v1/chat/completions",
            b'{"messages": [{"role": "user", "content": "x"}], "user": "\\udfff"}',
            "user holds a lone surrogate",
        ),
        (
            "/v1/chat/completions",
            b'{"messages": [{"role": "user", "content": "x"}], "\\ud800": 1}',
            "a key of the body holds a lone surrogate",
        ),
        (
            "/v1/chat/completions",
            b'{"messages": [{"role": "user", "content": "x"}], "model": 4}',
            "'model' must be a string",
        ),
    ],
)
def test_malformed_requests_get_400_with_the_reason(
    gateway, reset, path: str, body: bytes, reason: str
) -> None:
    client = gateway()
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and reason in error["message"]
    assert set(error) == {"message", "type", "param", "code"}  # OpenAI's error object
    assert all(not app.state.requests for app, _ in reset.values())


def test_the_bearer_token_guards_v1_routes_only(gateway, router, reset) -> None:
    client = gateway(token="s3cret-token")
    bad = ({}, {"authorization": "Bearer wrong"}, {"authorization": "s3cret-token"})
    for headers in (*bad, {"authorization": "Basic s3cret-token"}):
        response = client.post("/v1/route", json={"prompt": PROMPT}, headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"]["type"] == "authentication_error"
        assert response.json()["error"]["code"] == "invalid_api_key"
        assert "s3cret" not in response.text
    assert client.get("/v1/models").status_code == 401
    assert client.get("/metrics").status_code == 401
    assert client.get("/health").status_code == 200
    good = {"authorization": "Bearer s3cret-token"}
    assert client.post("/v1/route", json={"prompt": PROMPT}, headers=good).status_code == 200
    lower = {"authorization": "bearer s3cret-token"}  # the scheme is case-insensitive
    assert client.get("/v1/models", headers=lower).status_code == 200
    assert client.post("/v1/chat/completions", json=chat(), headers=good).status_code == 200
    # The gateway's token is its own: the upstream gets its own key instead.
    (headers, _), *_ = reset[ranking(router)[0]][0].state.requests
    assert headers["authorization"] == f"Bearer key-{ranking(router)[0]}"


def test_keys_are_never_logged_or_echoed(gateway, router, reset, caplog) -> None:
    best, second, _ = ranking(router)
    reset[best][0].state.status = 401  # e.g. a wrong key upstream
    reset[second][0].state.status = 500
    caplog.set_level(logging.DEBUG)
    client = gateway()
    texts = [client.post("/v1/chat/completions", json=chat()).text]
    reset[second][0].state.status = 200
    response = client.post("/v1/chat/completions", json=chat(stream=True))
    texts += [response.text, str(response.headers), client.get("/health").text]
    assert reset[best][0].state.requests[0][0]["authorization"] == f"Bearer key-{best}"
    for text in [*texts, caplog.text]:
        assert "key-" not in text
    assert "upstream of" in caplog.text  # the failures were logged, without keys


def test_costs_and_tradeoff_rank_by_net_quality(gateway, router, reset) -> None:
    order = ranking(router)
    costs = {order[0]: 10.0, order[1]: 0.0, order[2]: 0.0}
    upstreams = {
        name: sj.serve.Upstream(name, url, name, cost=costs[name])
        for name, (_, url) in reset.items()
    }
    quality = gateway(upstreams).post("/v1/route", json={"prompt": PROMPT}).json()
    assert quality["model"] == order[0] and "net" not in quality
    priced = gateway(upstreams, tradeoff=1.0).post("/v1/route", json={"prompt": PROMPT}).json()
    assert priced["model"] != order[0] and priced["ranking"][-1] == order[0]
    assert "cost-aware" in priced["method"]
    assert priced["score"] == priced["net"][priced["model"]]


def test_a_model_without_upstream_is_never_chosen(gateway, router, reset) -> None:
    best = ranking(router)[0]
    upstreams = {
        name: sj.serve.Upstream(name, url, name) for name, (_, url) in reset.items() if name != best
    }
    client = gateway(upstreams)
    decision = client.post("/v1/route", json={"prompt": PROMPT}).json()
    assert best not in decision["ranking"] and len(decision["ranking"]) == 2
    assert client.post("/v1/chat/completions", json=chat()).status_code == 200
    assert not reset[best][0].state.requests
