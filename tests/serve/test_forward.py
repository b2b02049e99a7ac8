"""Forwarding details: server-sent events renamed across chunk boundaries (the faults
and failover are exercised end to end in test_app.py)."""

from __future__ import annotations

import json

import pytest

from smoothie_jax.serve._forward import EventRenamer

EVENTS = (
    b'data: {"model": "up", "choices": [{"delta": {"content": "h\\u00e9"}}]}\n\n'
    b": a comment\n"
    b'data: {"choices": []}\n\n'
    b"event: ping\ndata: not json\n\n"
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
