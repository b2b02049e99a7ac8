"""Request checks: the text routed on, and a reason for every malformed request."""

from __future__ import annotations

import pytest

from smoothie_jax.serve import RequestError
from smoothie_jax.serve._requests import chat_request, parse_json, route_request, user_text


def test_user_text_joins_every_user_turn_and_skips_the_rest() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "First question"},
        {"role": "assistant", "content": None, "tool_calls": []},
        {"role": "tool", "content": "42"},
        {"role": "user", "content": [{"type": "image_url"}, {"type": "text", "text": "Then"}]},
    ]
    assert user_text(messages) == "First question\n\nThen"


@pytest.mark.parametrize(
    ("messages", "reason"),
    [
        (None, "non-empty list"),
        ("hi", "non-empty list"),
        ([], "non-empty list"),
        (["hi"], r"messages\[0\] must be an object"),
        ([{"content": "hi"}], "role"),
        ([{"role": "user", "content": None}], "string or a list"),
        ([{"role": "user", "content": [{"text": "x"}]}], "'type'"),
        ([{"role": "user", "content": [{"type": "text", "text": 1}]}], "text must be a string"),
        ([{"role": "user", "content": "   "}], "no user message"),
    ],
)
def test_malformed_messages_say_why(messages: object, reason: str) -> None:
    with pytest.raises(RequestError, match=reason):
        user_text(messages)


def test_parse_json_refuses_what_is_not_an_object() -> None:
    assert parse_json(b'{"a": 1}') == {"a": 1}
    for body in (b"", b"\xff", b"nope", b'"text"'):
        with pytest.raises(RequestError):
            parse_json(body)


def test_route_and_chat_requests() -> None:
    messages = [{"role": "user", "content": "Hi"}]
    assert route_request({"messages": messages}) == "Hi"
    assert route_request({"prompt": "Hi there"}) == "Hi there"
    assert chat_request({"messages": messages}) == ("Hi", False)
    with pytest.raises(RequestError, match="exactly one"):
        route_request({"prompt": "a", "messages": messages})
    with pytest.raises(RequestError, match="'prompt' must be"):
        route_request({"prompt": ["a"]})
    with pytest.raises(RequestError, match="'stream'"):
        chat_request({"messages": messages, "stream": 1})
