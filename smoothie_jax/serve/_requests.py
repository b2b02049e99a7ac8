"""The gateway's requests, checked: what to route on, or a 400 saying what is wrong.

`POST /v1/route` takes `{"messages": [...]}` or `{"prompt": "..."}`; `POST
/v1/chat/completions` takes an OpenAI chat request. Either way the router reads the
conversation's user text: every user message's text (a string, or the "text" parts of
a list of content parts), joined by blank lines, as the past inputs were instructions.
"""

from __future__ import annotations

import json
from typing import Any

_ROLES = ("system", "developer", "user", "assistant", "tool", "function")


class RequestError(ValueError):
    """A malformed request; the message is the reason the 400 answer gives."""


def parse_json(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object.

    >>> parse_json(b'[1]')
    Traceback (most recent call last):
    smoothie_jax.serve._requests.RequestError: the body must be a JSON object, got list
    """
    try:
        value = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RequestError(f"the body is not valid JSON: {e}") from None
    if not isinstance(value, dict):
        raise RequestError(f"the body must be a JSON object, got {type(value).__name__}")
    return value


def user_text(messages: object) -> str:
    """The conversation's user text, checked (OpenAI's message format).

    >>> user_text([{"role": "system", "content": "Be brief."},
    ...            {"role": "user", "content": [{"type": "text", "text": "Hi"}]}])
    'Hi'
    """
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list of {role, content} objects")
    texts = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise RequestError(f"messages[{i}] must be an object, got {type(message).__name__}")
        role = message.get("role")
        if role not in _ROLES:
            raise RequestError(f"messages[{i}].role must be one of {list(_ROLES)}, got {role!r}")
        text = _content_text(message.get("content"), f"messages[{i}].content", role)
        if role == "user" and text.strip():
            texts.append(text)
    if not texts:
        raise RequestError("no user message with text: nothing to route on")
    return "\n\n".join(texts)


def _content_text(content: object, where: str, role: str) -> str:
    if isinstance(content, str):
        return content
    if content is None and role != "user":  # an assistant turn holding only tool calls
        return ""
    if not isinstance(content, list):
        raise RequestError(f"{where} must be a string or a list of content parts")
    parts = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise RequestError(f"{where}[{j}] must be an object with a 'type'")
        if part["type"] == "text":
            if not isinstance(part.get("text"), str):
                raise RequestError(f"{where}[{j}].text must be a string")
            parts.append(part["text"])
    return "\n".join(parts)


def route_request(body: dict[str, Any]) -> str:
    """The text `POST /v1/route` routes: its prompt, or its messages' user text.

    >>> route_request({"prompt": "What is 2 + 2?"})
    'What is 2 + 2?'
    """
    if ("prompt" in body) == ("messages" in body):
        raise RequestError("give exactly one of 'prompt' (a string) and 'messages' (a list)")
    if "messages" in body:
        return user_text(body["messages"])
    prompt = body["prompt"]
    if not isinstance(prompt, str) or not prompt.strip():
        raise RequestError("'prompt' must be a non-empty string")
    return prompt


def chat_request(body: dict[str, Any]) -> tuple[str, bool]:
    """The user text of an OpenAI chat request, and whether it asks for a stream.

    >>> chat_request({"messages": [{"role": "user", "content": "Hi"}], "stream": True})
    ('Hi', True)
    """
    if "messages" not in body:
        raise RequestError("missing 'messages'")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise RequestError(f"'stream' must be true or false, got {stream!r}")
    return user_text(body["messages"]), stream
