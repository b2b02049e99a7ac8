"""The gateway driven by the official `openai` client, as a user drives it: plain and
streamed completions, failover, the request's `model`, models, and each error (400, 401,
404, 502, a malformed stream event) raised as the client's own typed error."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

import smoothie_jax as sj

from .helpers import MODELS, fake_encode

pytest.importorskip("fastapi")  # the serve extra: FastAPI, uvicorn, httpx
openai = pytest.importorskip("openai")
pytestmark = pytest.mark.slow  # importing openai and its types takes seconds

PROMPT = "how do I sort a python list"
MESSAGES = [{"role": "user", "content": PROMPT}]


def ranking(router: sj.Router) -> tuple[str, ...]:
    return sj.serve.TextRouter(router, fake_encode).decide([PROMPT])[0].ranking


@contextlib.contextmanager
def client(http: object, api_key: str = "unused") -> Iterator[object]:
    """An OpenAI client of the gateway behind `http`; no retries (each test counts calls)."""
    with openai.OpenAI(base_url=f"{http.base_url}/v1", api_key=api_key, max_retries=0) as ai:
        yield ai


def test_a_plain_completion(gateway, router) -> None:
    best = ranking(router)[0]
    with client(gateway()) as ai:
        answer = ai.chat.completions.create(model="smoothie-jax", messages=MESSAGES)
        raw = ai.chat.completions.with_raw_response.create(model="auto", messages=MESSAGES)
    assert answer.model == best and answer.choices[0].message.content == f"{best} says hello"
    assert raw.headers["x-smoothie-model"] == best and raw.parse().model == best


def test_a_streamed_completion(gateway, router) -> None:
    best = ranking(router)[0]
    with client(gateway()) as ai:
        chunks = list(ai.chat.completions.create(model="auto", messages=MESSAGES, stream=True))
    assert {c.model for c in chunks} == {best}
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == f"{best} says hello"


@pytest.mark.parametrize("stream", [False, True])
def test_failover_is_invisible_but_for_its_header(gateway, router, reset, stream) -> None:
    best, second, _ = ranking(router)
    reset[best][0].state.status = 500
    with client(gateway()) as ai:
        raw = ai.chat.completions.with_raw_response.create(
            model="smoothie-jax", messages=MESSAGES, stream=stream
        )
        answer = raw.parse()
        model = next(iter(answer)).model if stream else answer.model
    assert model == second and raw.headers["x-smoothie-failover"] == best


def test_a_named_model_is_pinned(gateway, router) -> None:
    last = ranking(router)[-1]
    with client(gateway()) as ai:
        answer = ai.chat.completions.create(model=last, messages=MESSAGES)
    assert answer.model == last


def test_models_are_listed_and_retrieved(gateway) -> None:
    with client(gateway()) as ai:
        assert [m.id for m in ai.models.list()] == ["smoothie-jax", *MODELS]
        model = ai.models.retrieve("alpha")
        assert (model.id, model.object, model.owned_by) == ("alpha", "model", "smoothie-jax")
        with pytest.raises(openai.NotFoundError) as info:
            ai.models.retrieve("gpt-4o")
    assert (info.value.code, info.value.param) == ("model_not_found", "model")


def test_a_malformed_request_is_a_bad_request_error(gateway, reset) -> None:
    with client(gateway()) as ai, pytest.raises(openai.BadRequestError) as info:
        ai.chat.completions.create(model="auto", messages=[{"role": "boss", "content": "x"}])
    assert info.value.status_code == 400 and info.value.param == "messages[0].role"
    assert "role must be one of" in info.value.message
    assert all(not app.state.requests for app, _ in reset.values())


def test_an_unknown_model_is_a_not_found_error(gateway) -> None:
    with client(gateway()) as ai, pytest.raises(openai.NotFoundError) as info:
        ai.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert info.value.code == "model_not_found" and "smoothie-jax" in info.value.message


@pytest.mark.parametrize("stream", [False, True])
def test_no_upstream_answering_is_a_502(gateway, router, reset, stream) -> None:
    best, second, _ = ranking(router)
    reset[best][0].state.status = 503
    reset[second][0].state.status = 500
    with client(gateway()) as ai, pytest.raises(openai.InternalServerError) as info:
        ai.chat.completions.create(model="auto", messages=MESSAGES, stream=stream)
    assert info.value.status_code == 502 and info.value.code == "upstream_failed"
    assert best in info.value.message and second in info.value.message


def test_a_malformed_stream_event_is_an_api_error(gateway, router, reset) -> None:
    reset[ranking(router)[0]][0].state.bad_event = True
    with client(gateway()) as ai:
        stream = ai.chat.completions.create(model="auto", messages=MESSAGES, stream=True)
        with pytest.raises(openai.APIError) as info:
            for _ in stream:
                pass
    assert "malformed stream event" in info.value.message


def test_the_token_is_checked(gateway) -> None:
    http = gateway(token="s3cret")
    with client(http, api_key="wrong") as ai, pytest.raises(openai.AuthenticationError):
        ai.models.list()
    with client(http, api_key="s3cret") as ai:
        assert ai.chat.completions.create(model="auto", messages=MESSAGES).choices
