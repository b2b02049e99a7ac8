"""The gateway's OpenAPI declarations: request bodies, answers and errors, as JSON Schema.

The handlers read raw bodies (their checks live in `_requests`, and their messages are
OpenAI's), so FastAPI cannot infer these: each route declares its request body and every
answer it can give, and `/openapi.json` describes the gateway well enough for a client
generator or a fuzzer (schemathesis) to use. Shared schemas live under
`#/components/schemas` (`COMPONENTS`).
"""

from __future__ import annotations

from typing import Any

_NULLABLE_STRING = {"type": ["string", "null"]}

COMPONENTS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type", "param", "code"],
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                    "param": _NULLABLE_STRING,
                    "code": _NULLABLE_STRING,
                },
            }
        },
    },
    "Message": {
        "type": "object",
        "required": ["role"],
        "properties": {
            "role": {"enum": ["system", "developer", "user", "assistant", "tool", "function"]},
            "content": {"anyOf": [{"type": "string"}, {"$ref": "#/components/schemas/Parts"}]},
        },
        # Only a turn that is not the user's may hold no content (e.g. only tool calls).
        "if": {"properties": {"role": {"const": "user"}}},
        "then": {"required": ["content"]},
        "else": {"properties": {"content": {"type": ["string", "array", "null"]}}},
    },
    "Parts": {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["type"],
            "properties": {"type": {"type": "string"}},
            # A text part holds its text; other parts (images, audio) are passed on.
            "if": {"properties": {"type": {"const": "text"}}},
            "then": {"required": ["text"], "properties": {"text": {"type": "string"}}},
        },
    },
    "Model": {
        "type": "object",
        "required": ["id", "object", "created", "owned_by"],
        "properties": {
            "id": {"type": "string"},
            "object": {"const": "model"},
            "created": {"type": "integer"},
            "owned_by": {"type": "string"},
        },
    },
    "ModelList": {
        "type": "object",
        "required": ["object", "data"],
        "properties": {
            "object": {"const": "list"},
            "data": {"type": "array", "items": {"$ref": "#/components/schemas/Model"}},
        },
    },
    "Decision": {
        "type": "object",
        "required": ["model", "score", "weights", "method", "ranking", "reason"],
        "properties": {
            "model": {"type": "string"},
            "score": {"type": "number"},
            "weights": {"type": "object", "additionalProperties": {"type": "number"}},
            "method": {"type": "string"},
            "ranking": {"type": "array", "items": {"type": "string"}},
            "reason": {"type": "string"},
            "net": {"type": "object", "additionalProperties": {"type": "number"}},
        },
    },
    "ChatCompletion": {
        "type": "object",
        "required": ["model", "choices"],
        "properties": {
            "id": {"type": "string"},
            "object": {"type": "string"},
            "model": {"type": "string"},
            "choices": {"type": "array", "items": {"type": "object"}},
        },
    },
    "StreamEvent": {  # each server-sent event of a stream (OpenAPI 3.1 reads it so)
        "type": "object",
        "required": ["data"],
        "properties": {
            "event": {"type": "string"},
            "data": {
                "type": "string",
                "description": "a chat.completion.chunk as JSON, an error object as JSON "
                "(the stream's last event, where it failed), or [DONE]",
            },
            "id": {"type": "string"},
            "retry": {"type": "integer"},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "name", "router", "method", "models", "embedder"],
        "properties": {
            "status": {"type": "string"},
            "name": {"type": "string"},
            "router": {"type": "string"},
            "method": {"type": "string"},
            "models": {"type": "array", "items": {"type": "string"}},
            "embedder": _NULLABLE_STRING,
        },
    },
}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


TEXT = {"type": "string", "pattern": "\\S"}  # not only whitespace
MESSAGES = {
    "type": "array",
    "minItems": 1,
    "items": ref("Message"),
    "description": "the conversation; the router reads the text of its user messages",
    "contains": {  # a user message with text to route on
        "type": "object",
        "required": ["role", "content"],
        "properties": {"role": {"const": "user"}, "content": TEXT},
    },
}


def chat_request(models: list[str]) -> dict[str, Any]:
    """An OpenAI chat request: `model` one of `models` (or absent), any other field passed on."""
    return {
        "type": "object",
        "required": ["messages"],
        "properties": {
            "model": {
                "enum": [*models, None],
                "description": "the gateway's name, 'auto' or none: routed; a model: pinned",
            },
            "messages": MESSAGES,
            "stream": {"type": ["boolean", "null"]},
        },
    }


ROUTE_REQUEST: dict[str, Any] = {
    "type": "object",
    "description": "exactly one of prompt and messages",
    "properties": {"prompt": TEXT, "messages": MESSAGES},
    "oneOf": [{"required": ["prompt"]}, {"required": ["messages"]}],
}


def body(schema: dict[str, Any]) -> dict[str, Any]:
    """`openapi_extra` declaring a required JSON request body."""
    content = {"application/json": {"schema": schema}}
    return {"requestBody": {"required": True, "content": content}}


def answers(ok: dict[str, Any] | None = None, *errors: int, **more: dict[str, Any]) -> dict:
    """FastAPI's `responses`: 200 with `ok` (JSON schemas by media type), and the error
    statuses, each an `Error`."""
    why = {
        400: "a malformed request",
        401: "a missing or wrong bearer token",
        404: "no such model, or no such route",
        405: "a method the route does not answer",
        413: "a request body over --max-body",
        500: "an internal error",
        502: "no upstream answered",
        503: "the gateway is shutting down",
    }
    error = {"application/json": {"schema": ref("Error")}}
    out: dict[int | str, dict[str, Any]] = {
        status: {"description": why[status], "content": error} for status in errors
    }
    if ok is not None:
        content = {media: {"schema": schema} for media, schema in ok.items()}
        out[200] = {"description": "the answer", "content": content, **more}
    return out
