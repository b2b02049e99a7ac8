"""Forwarding details: server-sent events renamed across chunk boundaries, a malformed
event turned into an error event (the faults and failover are exercised end to end in
test_app.py and test_robust.py)."""

from __future__ import annotations

import json

import pytest

from smoothie_jax.serve._forward import EventRenamer

EVENTS = (
    b'data: {"model": "up", "choices": [{"delta": {"content": "h\\u00e9"}}]}\n\n'
    b": a comment\n"
    b'data: {"choices": []}\n\n'
    b"event: ping\ndata: [DONE]\n\n"
    b"data: [DONE]\n\n"
)


@pytest.mark.parametrize("size", [1, 2, 7, 64, len(EVENTS)])
def test_events_are_renamed_whatever_the_chunking(size: int) -> None:
    rename = EventRenamer("mine")
    out = b"".join(rename(EVENTS[i : i + size]) for i in range(0, len(EVENTS), size))
    out += rename.flush()
    lines = out.split(b"\n")
    assert json.loads(lines[0][len(b"data: ") :])["model"] == "mine"
    assert json.loads(lines[0][len(b"data: ") :])["choices"][0]["delta"]["content"] == "hé"
    assert out.split(b"\n")[1:] == EVENTS.split(b"\n")[1:]  # the rest passes as it is


def test_crlf_lines_keep_their_ending() -> None:
    rename = EventRenamer("mine")
    assert rename(b'data: {"model": "up"}\r\n\r\n') == b'data: {"model": "mine"}\r\n\r\n'


@pytest.mark.parametrize("bad", [b"data: not json", b"data: [1, 2]", b'data: {"cut', b"data:"])
@pytest.mark.parametrize("size", [1, 5, 1000])
def test_a_malformed_event_becomes_an_error_event_and_ends_the_stream(bad: bytes, size: int):
    stream = b'data: {"model": "up"}\n\n' + bad + b'\n\ndata: {"model": "up"}\n\ndata: [DONE]\n\n'
    rename = EventRenamer("mine")
    out = b"".join(rename(stream[i : i + size]) for i in range(0, len(stream), size))
    out += rename.flush()
    first, second, *rest = [e for e in out.split(b"\n\n") if e]
    assert json.loads(first[len(b"data: ") :]) == {"model": "mine"}
    error = json.loads(second[len(b"data: ") :])["error"]
    assert error["type"] == "upstream_error" and error["code"] == "malformed_stream"
    assert "mine" in error["message"] and not rest  # nothing after the error
    assert rename.failed


def test_an_escaped_lone_surrogate_passes_as_its_escape() -> None:
    rename = EventRenamer("mine")
    out = rename(b'data: {"model": "up", "text": "\\ud800"}\n\n')
    assert json.loads(out.split(b"\n")[0][len(b"data: ") :]) == {"model": "mine", "text": "\ud800"}
