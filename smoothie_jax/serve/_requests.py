"""The gateway's requests, checked: what to route on, or an error saying what is wrong.

`POST /v1/route` takes `{"messages": [...]}` or `{"prompt": "..."}`; `POST
/v1/chat/completions` takes an OpenAI chat request. Either way the router reads the
conversation's user text: every user message's text (a string, or the "text" parts of
a list of content parts), joined by blank lines, as the past inputs were instructions.

Each request is checked on its own, before it joins a batch of decisions: its body at
most `max_body` bytes (else 413), JSON nested at most `max_depth` deep, and every string
valid Unicode (JSON's `\\ud800` escapes can spell a lone surrogate, which no encoder can
embed and no upstream can be sent), else 400 naming the field.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ._errors import INVALID, ApiError, RequestError

MAX_BODY = 4 * 2**20  # bytes of a request body, at most (413 beyond)
MAX_DEPTH = 64  # JSON nesting of a request body, at most (400 beyond)
DEPTH_CEILING = 256  # the largest max_depth allowed: deeper, Python's JSON recursion fails
_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")  # how one reaches a JSON body
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


async def read_body(request: Any, max_body: int = MAX_BODY) -> bytes:
    """The body of a Starlette request, refused 413 beyond `max_body` bytes.

    A body too large is still read to its end, without being kept: a client that is
    still sending when the connection closes would see a reset instead of the 413.
    """
    from starlette.requests import ClientDisconnect

    declared = request.headers.get("content-length", "")
    too_large = declared.isdigit() and int(declared) > max_body
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            too_large = too_large or size > max_body
            if not too_large:
                chunks.append(chunk)
    except ClientDisconnect:
        raise RequestError("the client left before sending its whole body") from None
    if too_large:
        raise ApiError(
            413,
            f"the request body is larger than {max_body} bytes, the gateway's limit (--max-body)",
            INVALID,
            code="request_too_large",
        )
    return b"".join(chunks)


def parse_json(body: bytes, *, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """The request body as a JSON object, nested at most `max_depth` deep, its strings
    valid Unicode.

    >>> parse_json(b'[1]')
    Traceback (most recent call last):
    smoothie_jax.serve._errors.RequestError: the body must be a JSON object, got list
    >>> parse_json(b'{"prompt": "hi \\\\ud800"}')
    Traceback (most recent call last):
    smoothie_jax.serve._errors.RequestError: prompt holds a lone surrogate (U+D800) at character 3: not valid Unicode text
    """  # noqa: E501
    try:
        # Strict UTF-8 (RFC 8259), a BOM allowed: json.loads(bytes) would also take
        # UTF-16 and encoded surrogates ("surrogatepass"), so a lone one could come
        # otherwise than through an escape.
        value = json.loads(body.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise RequestError(f"the body is not UTF-8 text: {e}", code="invalid_json") from None
    except json.JSONDecodeError as e:
        raise RequestError(f"the body is not valid JSON: {e}", code="invalid_json") from None
    except RecursionError:  # far deeper than any max_depth allowed
        raise _too_deep(max_depth, ()) from None
    if not isinstance(value, dict):
        raise RequestError(f"the body must be a JSON object, got {type(value).__name__}")
    _check_tree(value, max_depth, check_text=_ESCAPED_SURROGATE.search(body) is not None)
    return value


def _check_tree(value: dict[str, Any], max_depth: int, *, check_text: bool) -> None:
    """Depth and (where escapes could spell one) lone surrogates, walked without recursion."""
    stack: list[tuple[Any, int, tuple[str | int, ...]]] = [(value, 1, ())]
    while stack:
        node, depth, path = stack.pop()
        if depth > max_depth:
            raise _too_deep(max_depth, path)
        for key, child in node.items() if isinstance(node, dict) else enumerate(node):
            if check_text and isinstance(key, str):
                check_text_field(key, f"a key of {_where(path)}")
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1, (*path, key)))
            elif check_text and isinstance(child, str):
                check_text_field(child, _where((*path, key)))


def _too_deep(max_depth: int, path: tuple[str | int, ...]) -> RequestError:
    where = f" (at {_where(path)})" if path else ""
    return RequestError(
        f"the body nests JSON deeper than {max_depth} levels{where}, the gateway's limit "
        "(--max-depth)",
        code="too_deep",
    )


def _where(path: tuple[str | int, ...]) -> str:
    """A field's path as a person writes it: messages[0].content."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _NAME.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out or "the body"


def check_text_field(text: str, where: str) -> str:
    """`text`, refused if it holds a lone surrogate (it cannot be encoded as UTF-8).

    >>> check_text_field("ok", "prompt")
    'ok'
    """
    bad = _SURROGATE.search(text)
    if bad is not None:
        raise RequestError(
            f"{where} holds a lone surrogate (U+{ord(bad.group()):04X}) at character "
            f"{bad.start()}: not valid Unicode text",
            param=where.removeprefix("a key of "),
            code="invalid_unicode",
        )
    return text


def user_text(messages: object) -> str:
    """The conversation's user text, checked (OpenAI's message format).

    >>> user_text([{"role": "system", "content": "Be brief."},
    ...            {"role": "user", "content": [{"type": "text", "text": "Hi"}]}])
    'Hi'
    """
    if not isinstance(messages, list) or not messages:
        raise RequestError(
            "'messages' must be a non-empty list of {role, content} objects", param="messages"
        )
    texts = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise RequestError(
                f"{where} must be an object, got {type(message).__name__}", param=where
            )
        role = message.get("role")
        if role not in _ROLES:
            raise RequestError(
                f"{where}.role must be one of {list(_ROLES)}, got {role!r}", param=f"{where}.role"
            )
        text = _content_text(message.get("content"), f"{where}.content", role)
        if role == "user" and text.strip():
            texts.append(text)
    if not texts:
        raise RequestError("no user message with text: nothing to route on", param="messages")
    return "\n\n".join(texts)


def _content_text(content: object, where: str, role: str) -> str:
    if isinstance(content, str):
        return check_text_field(content, where)
    if content is None and role != "user":  # an assistant turn holding only tool calls
        return ""
    if not isinstance(content, list):
        raise RequestError(f"{where} must be a string or a list of content parts", param=where)
    parts = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise RequestError(f"{where}[{j}] must be an object with a 'type'", param=where)
        if part["type"] == "text":
            if not isinstance(part.get("text"), str):
                raise RequestError(f"{where}[{j}].text must be a string", param=f"{where}[{j}]")
            parts.append(check_text_field(part["text"], f"{where}[{j}].text"))
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
        raise RequestError("'prompt' must be a non-empty string", param="prompt")
    return check_text_field(prompt, "prompt")


def chat_request(body: dict[str, Any]) -> tuple[str, bool]:
    """The user text of an OpenAI chat request, and whether it asks for a stream
    ("stream": null is no stream, as OpenAI's API has it).

    >>> chat_request({"messages": [{"role": "user", "content": "Hi"}], "stream": True})
    ('Hi', True)
    """
    if "messages" not in body:
        raise RequestError("missing 'messages'", param="messages")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise RequestError(f"'stream' must be true, false or null, got {stream!r}", param="stream")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise RequestError(f"'model' must be a string, got {type(model).__name__}", param="model")
    return user_text(body["messages"]), bool(stream)
