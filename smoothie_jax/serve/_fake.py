"""A fake OpenAI-compatible upstream, on loopback: for tests, benchmarks and dry runs.

It answers `POST /v1/chat/completions` (streamed or not) with a fixed reply, after an
optional delay, or with an error status, and keeps every request it received (headers
and JSON body) in `app.state.requests`, so a test can see what the gateway forwarded.
Its behaviour lives in `app.state` (reply, status, delay, chunks, chunk_delay,
break_stream, bad_event) and is read at each request: one running server can play every
fault. Starlette (a FastAPI dependency) is imported when an app is made.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any


def fake_upstream(
    reply: str = "Hello from a fake model.",
    *,
    status: int = 200,
    delay: float = 0.0,
    chunks: int = 3,
    chunk_delay: float = 0.0,
    break_stream: bool = False,
    bad_event: bool = False,
) -> Any:
    """A Starlette app serving one fake model at `/v1/chat/completions`.

    Args:
        reply: the assistant's answer (a stream sends it in `chunks` pieces).
        status: the HTTP status of every answer; not 200: an error body.
        delay: seconds to wait before answering (to test timeouts).
        chunks: events of a streamed reply.
        chunk_delay: seconds between streamed events.
        break_stream: drop the connection after the first streamed event.
        bad_event: send a malformed event (data that is not JSON) after the first one.

    Returns:
        The app; `app.state` holds these settings (change them at will) and
        `requests`, the (headers, body) of each request.

    >>> app = fake_upstream(status=500)
    >>> app.state.requests
    []
    """
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    async def completions(request: Request) -> Response:
        body = json.loads(await request.body())
        state = request.app.state
        state.requests.append((dict(request.headers), body))
        if state.delay:
            await asyncio.sleep(state.delay)
        if state.status != 200:
            message = f"fake failure {state.status}"
            error = {"error": {"message": message, "type": "server_error"}}
            return JSONResponse(error, status_code=state.status)
        model = body.get("model", "fake")
        if body.get("stream"):
            events = _events(
                model,
                state.reply,
                state.chunks,
                state.chunk_delay,
                state.break_stream,
                state.bad_event,
            )
            return StreamingResponse(events, media_type="text/event-stream")
        return JSONResponse(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": 0,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": state.reply},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )

    app = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])
    app.state.requests = []
    app.state.reply, app.state.status, app.state.delay = reply, status, delay
    app.state.chunks, app.state.chunk_delay = chunks, chunk_delay
    app.state.break_stream, app.state.bad_event = break_stream, bad_event
    return app


async def _events(
    model: str, reply: str, chunks: int, chunk_delay: float, break_stream: bool, bad_event: bool
) -> AsyncIterator[bytes]:
    size = -(-len(reply) // max(chunks, 1))
    pieces = [reply[i : i + size] for i in range(0, len(reply), size)] or [""]
    for i, piece in enumerate(pieces):
        event = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
        }
        yield f"data: {json.dumps(event)}\n\n".encode()
        if break_stream and i == 0:
            raise ConnectionResetError("fake upstream: the stream breaks here")
        if bad_event and i == 0:
            yield b'data: {"choices": [{"delta": \n\n'  # cut short: not JSON
        if chunk_delay:
            await asyncio.sleep(chunk_delay)
    yield b"data: [DONE]\n\n"
