"""Forwarding a chat completion to the chosen model's upstream, with one failover.

The request goes to the best model's upstream with its own model name and key. An
upstream that cannot be reached, times out (`timeout` seconds to its answer, or to a
stream's first bytes), or answers anything but 2xx is given up, and the request goes
once to the next-best model; if that fails too, the gateway answers 502, naming both
models and what went wrong (never a key, a URL or the upstream's body, which may quote
a key). A stream that fails after its first bytes cannot change model: it ends with an
error event. Answers name the model that answered, as the router names it: in the
header `x-smoothie-model`, and in the body's (or every stream event's) "model".
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from ._upstreams import Upstream

if TYPE_CHECKING:
    import httpx
    from starlette.responses import Response

ATTEMPTS = 2  # the route, then once the next-best model
MODEL_HEADER = "x-smoothie-model"  # the model that answered
FAILOVER_HEADER = "x-smoothie-failover"  # the model given up, where one was

log = logging.getLogger("smoothie_jax.serve")


class UpstreamFailure(Exception):
    """One upstream's failure, as the 502 answer and the log say it."""

    def __init__(self, upstream: Upstream, why: str) -> None:
        super().__init__(f"{upstream.name}: {why}")
        self.model, self.why = upstream.name, why


async def forward(
    client: httpx.AsyncClient,
    ranking: Sequence[Upstream],
    body: dict[str, Any],
    *,
    stream: bool,
    timeout: float,
) -> Response:
    """The answer of the first of `ranking[:ATTEMPTS]` that answers, else a 502.

    Args:
        client: the gateway's HTTP client (connections are pooled across requests).
        ranking: the choosable models' upstreams, best first.
        body: the client's chat request; "model" is replaced by each upstream's own.
        stream: relay a server-sent event stream.
        timeout: seconds to wait for an answer (a stream's first bytes).
    """
    from starlette.responses import JSONResponse

    failures: list[UpstreamFailure] = []
    for upstream in ranking[:ATTEMPTS]:
        try:
            send = _stream if stream else _complete
            response = await send(client, upstream, body, timeout)
        except UpstreamFailure as e:
            log.warning("upstream of %s failed: %s", e.model, e.why)
            failures.append(e)
            continue
        if failures:
            response.headers[FAILOVER_HEADER] = failures[0].model
        return response
    tried = "; then ".join(str(f) for f in failures)
    return JSONResponse(
        {
            "error": {
                "message": f"no upstream answered: {tried}",
                "type": "upstream_error",
                "attempts": [{"model": f.model, "error": f.why} for f in failures],
            }
        },
        status_code=502,
    )


def _request(client: httpx.AsyncClient, upstream: Upstream, body: dict[str, Any]) -> httpx.Request:
    headers = {"content-type": "application/json", "accept": "application/json"}
    if upstream.api_key:
        headers["authorization"] = f"Bearer {upstream.api_key}"
    payload = {**body, "model": upstream.model}
    return client.build_request("POST", upstream.url, json=payload, headers=headers)


def _transport_failure(upstream: Upstream, error: BaseException, timeout: float) -> UpstreamFailure:
    """What went wrong on the wire, in words that hold no URL and no header."""
    import httpx

    if isinstance(error, (TimeoutError, httpx.TimeoutException)):
        return UpstreamFailure(upstream, f"timed out after {timeout:g} s")
    if isinstance(error, httpx.ConnectError):
        return UpstreamFailure(upstream, "could not connect")
    if isinstance(error, httpx.RemoteProtocolError):
        return UpstreamFailure(upstream, "closed the connection without a complete answer")
    return UpstreamFailure(upstream, f"transport error ({type(error).__name__})")


async def _complete(
    client: httpx.AsyncClient, upstream: Upstream, body: dict[str, Any], timeout: float
) -> Response:
    import anyio
    import httpx
    from starlette.responses import JSONResponse

    try:
        with anyio.fail_after(timeout):
            response = await client.send(_request(client, upstream, body))
    except (TimeoutError, httpx.HTTPError) as e:
        raise _transport_failure(upstream, e, timeout) from None
    if not response.is_success:
        raise UpstreamFailure(upstream, f"answered HTTP {response.status_code}")
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise UpstreamFailure(upstream, "answered something other than a JSON object")
    answer["model"] = upstream.name
    return JSONResponse(answer, headers={MODEL_HEADER: upstream.name})


async def _stream(
    client: httpx.AsyncClient, upstream: Upstream, body: dict[str, Any], timeout: float
) -> Response:
    import anyio
    import httpx
    from starlette.responses import StreamingResponse

    try:
        with anyio.fail_after(timeout):
            response = await client.send(_request(client, upstream, body), stream=True)
    except (TimeoutError, httpx.HTTPError) as e:
        raise _transport_failure(upstream, e, timeout) from None
    chunks = response.aiter_bytes()
    try:
        if not response.is_success:
            raise UpstreamFailure(upstream, f"answered HTTP {response.status_code}")
        # The first bytes decide: until they come, the next-best model can still answer.
        with anyio.fail_after(timeout):
            first = await chunks.__anext__()
    except StopAsyncIteration:
        await response.aclose()
        raise UpstreamFailure(upstream, "answered an empty stream") from None
    except (TimeoutError, httpx.HTTPError) as e:
        await response.aclose()
        raise _transport_failure(upstream, e, timeout) from None
    except UpstreamFailure:
        await response.aclose()
        raise
    return StreamingResponse(
        _relay(first, chunks, response, upstream),
        status_code=response.status_code,
        media_type=response.headers.get("content-type", "text/event-stream"),
        headers={MODEL_HEADER: upstream.name, "cache-control": "no-cache"},
    )


async def _relay(
    first: bytes, chunks: AsyncIterator[bytes], response: httpx.Response, upstream: Upstream
) -> AsyncIterator[bytes]:
    """The upstream's stream as it comes, events renamed; an error event if it breaks."""
    import httpx

    rename = EventRenamer(upstream.name)
    try:
        yield rename(first)
        async for chunk in chunks:
            yield rename(chunk)
        yield rename.flush()
    except httpx.HTTPError as e:
        failure = _transport_failure(upstream, e, 0)
        log.warning("upstream of %s failed mid-stream: %s", failure.model, failure.why)
        message = f"the upstream of {failure.model} failed mid-stream: {failure.why}"
        error = {"error": {"message": message, "type": "upstream_error"}}
        yield rename.flush() + f"data: {json.dumps(error)}\n\n".encode()
    finally:
        await response.aclose()


class EventRenamer:
    """Sets "model" in each server-sent event's JSON data, across chunk boundaries.

    >>> rename = EventRenamer("small")
    >>> rename(b'data: {"model": "llama-3-8b", "choices": []}\\n\\nda')
    b'data: {"model": "small", "choices": []}\\n\\n'
    >>> rename(b'ta: [DONE]\\n\\n')
    b'data: [DONE]\\n\\n'
    """

    def __init__(self, model: str) -> None:
        self.model = model
        self.pending = b""

    def __call__(self, chunk: bytes) -> bytes:
        *lines, self.pending = (self.pending + chunk).split(b"\n")
        return b"".join(self._line(line) + b"\n" for line in lines)

    def flush(self) -> bytes:
        """What is left after the last newline (a stream should not leave any)."""
        rest, self.pending = self.pending, b""
        return self._line(rest) if rest else b""

    def _line(self, line: bytes) -> bytes:
        if not line.startswith(b"data:"):
            return line
        end = b"\r" if line.endswith(b"\r") else b""
        try:
            event = json.loads(line[5:])
        except ValueError:  # [DONE], or data that is not JSON: passed through as it is
            return line
        if not isinstance(event, dict) or "model" not in event:
            return line
        event["model"] = self.model
        return b"data: " + json.dumps(event, ensure_ascii=False).encode() + end
