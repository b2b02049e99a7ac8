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


def test_stream_null_is_no_stream_and_model_must_be_a_string() -> None:
    messages = [{"role": "user", "content": "Hi"}]
    assert chat_request({"messages": messages, "stream": None}) == ("Hi", False)
    assert chat_request({"messages": messages, "model": None}) == ("Hi", False)
    with pytest.raises(RequestError, match="'model' must be a string") as info:
        chat_request({"messages": messages, "model": ["a"]})
    assert info.value.param == "model"


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b'{"prompt": "\\ud800"}', "prompt holds a lone surrogate (U+D800) at character 0"),
        (b'{"a": [1, {"b c": "x\\udc00"}]}', 'a[1]["b c"] holds a lone surrogate (U+DC00)'),
        (b'{"a": {"\\udbff": 1}}', "a key of a holds a lone surrogate (U+DBFF)"),
    ],
)
def test_a_lone_surrogate_anywhere_is_refused_naming_where(body: bytes, where: str) -> None:
    with pytest.raises(RequestError) as info:
        parse_json(body)
    assert where in str(info.value) and info.value.code == "invalid_unicode"


def test_surrogate_pairs_are_text() -> None:
    assert parse_json(b'{"prompt": "\\ud83d\\ude00"}') == {"prompt": "\U0001f600"}
    assert parse_json(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}  # a UTF-8 BOM is allowed


@pytest.mark.parametrize(
    "body",
    [b'{"a": "\xed\xa0\x80"}', '{"a": 1}'.encode("utf-16"), b'{"a": "\xff"}'],
)
def test_a_body_must_be_utf8(body: bytes) -> None:
    """An encoded surrogate (ED A0 80) or UTF-16 is refused: json.loads(bytes) takes both."""
    with pytest.raises(RequestError, match="not UTF-8 text"):
        parse_json(body)


def test_depth_is_counted_from_the_body() -> None:
    assert parse_json(b'{"a": [[1]]}', max_depth=3) == {"a": [[1]]}
    with pytest.raises(RequestError, match=r"deeper than 2 levels \(at a\[0\]\)"):
        parse_json(b'{"a": [[1]]}', max_depth=2)
    with pytest.raises(RequestError, match="deeper than 64 levels"):
        parse_json(b'{"a": ' + b"[" * 50_000 + b"]" * 50_000 + b"}")  # beyond json's recursion
