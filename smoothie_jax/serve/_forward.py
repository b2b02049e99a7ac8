"""Forwarding a chat completion to the chosen model's upstream, with one failover.

The request goes to the best model's upstream with its own model name and key. An
upstream that cannot be reached, times out (`timeout` seconds to its answer, or to a
stream's first bytes), or answers anything but 2xx is given up, and the request goes
once to the next-best model; if that fails too, the gateway answers 502, naming both
models and what went wrong (never a key, a URL or the upstream's body, which may quote
a key). A request that names its model is sent there alone, without failover.

A stream that fails after its first bytes cannot change model: it ends with an error
event a client can parse, `data: {"error": {...}}`, whether the upstream broke, fell
silent for `timeout` seconds, or sent a line that is not an event (data that is not a
JSON object). Answers name the model that answered, as the router names it: in the
header `x-smoothie-model`, and in the body's (or every stream event's) "model".

Every wait on an upstream is bounded by the shutdown too (`_drain`): once its grace has
ended, a request is answered 503 and a stream ends with an error event.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from ._drain import Drain, ShuttingDown
from ._errors import UPSTREAM, error_body
from ._metrics import Metrics
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


class Forwarder:
    """Sends chat requests to upstreams: timeouts, failover, the shutdown's bound, metrics.

    Args:
        timeout: seconds an upstream has to answer (a stream: to send its first bytes,
            then between any two of its chunks).
        drain: the gateway's shutdown bound.
        metrics: where calls, their times and failovers are counted.

    The HTTP client (`client`) is set when the app starts: its connections are pooled
    across requests.
    """

    def __init__(self, timeout: float, drain: Drain, metrics: Metrics) -> None:
        self.timeout, self.drain, self.metrics = timeout, drain, metrics
        self.client: httpx.AsyncClient | None = None

    async def forward(
        self,
        ranking: Sequence[Upstream],
        body: dict[str, Any],
        *,
        stream: bool,
        attempts: int = ATTEMPTS,
    ) -> Response:
        """The answer of the first of `ranking[:attempts]` that answers, else a 502.

        Args:
            ranking: the upstreams to try, best first.
            body: the client's chat request; "model" is replaced by each upstream's own.
            stream: relay a server-sent event stream.
            attempts: upstreams tried at most.

        Raises:
            ShuttingDown: the shutdown's grace ended first (answered 503).
        """
        from starlette.responses import JSONResponse

        failures: list[UpstreamFailure] = []
        for upstream in ranking[:attempts]:
            start = time.perf_counter()
            try:
                with self.drain.guard():
                    send = self._stream if stream else self._complete
                    response = await send(upstream, body)
            except UpstreamFailure as e:
                self.metrics.upstream_call(upstream.name, False, time.perf_counter() - start)
                log.warning("upstream of %s failed: %s", e.model, e.why)
                failures.append(e)
                continue
            self.metrics.upstream_call(upstream.name, True, time.perf_counter() - start)
            if failures:
                self.metrics.failover(failures[0].model)
                response.headers[FAILOVER_HEADER] = failures[0].model
            return response
        tried = "; then ".join(str(f) for f in failures)
        attempted = [{"model": f.model, "error": f.why} for f in failures]
        body = error_body(
            f"no upstream answered: {tried}", UPSTREAM, code="upstream_failed", attempts=attempted
        )
        return JSONResponse(body, status_code=502)

    def _request(self, upstream: Upstream, body: dict[str, Any]) -> httpx.Request:
        assert self.client is not None, "the app has not started"
        headers = {"content-type": "application/json", "accept": "application/json"}
        if upstream.api_key:
            headers["authorization"] = f"Bearer {upstream.api_key}"
        payload = {**body, "model": upstream.model}
        return self.client.build_request("POST", upstream.url, json=payload, headers=headers)

    async def _complete(self, upstream: Upstream, body: dict[str, Any]) -> Response:
        import anyio
        import httpx
        from starlette.responses import JSONResponse

        assert self.client is not None, "the app has not started"
        start = time.monotonic()
        try:
            with anyio.fail_after(self.timeout):
                response = await self.client.send(self._request(upstream, body))
        except (TimeoutError, httpx.HTTPError) as e:
            raise transport_failure(upstream, e, time.monotonic() - start) from None
        if not response.is_success:
            raise UpstreamFailure(upstream, f"answered HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise UpstreamFailure(upstream, "answered something other than a JSON object")
        answer["model"] = upstream.name
        try:
            return JSONResponse(answer, headers={MODEL_HEADER: upstream.name})
        except UnicodeEncodeError:  # a lone surrogate escaped in its JSON: no UTF-8 for it
            raise UpstreamFailure(upstream, "answered text that is not valid Unicode") from None

    async def _stream(self, upstream: Upstream, body: dict[str, Any]) -> Response:
        import anyio
        import httpx
        from starlette.responses import StreamingResponse

        assert self.client is not None, "the app has not started"
        start = time.monotonic()
        try:
            with anyio.fail_after(self.timeout):
                response = await self.client.send(self._request(upstream, body), stream=True)
        except (TimeoutError, httpx.HTTPError) as e:
            raise transport_failure(upstream, e, time.monotonic() - start) from None
        chunks = response.aiter_bytes()
        try:
            if not response.is_success:
                raise UpstreamFailure(upstream, f"answered HTTP {response.status_code}")
            # The first bytes decide: until they come, the next-best model can still answer.
            with anyio.fail_after(self.timeout):
                first = await chunks.__anext__()
        except StopAsyncIteration:
            await response.aclose()
            raise UpstreamFailure(upstream, "answered an empty stream") from None
        except (TimeoutError, httpx.HTTPError) as e:
            await response.aclose()
            raise transport_failure(upstream, e, time.monotonic() - start) from None
        except BaseException:  # UpstreamFailure, or the shutdown's cancellation
            await response.aclose()
            raise
        return StreamingResponse(
            self._relay(first, chunks, response, upstream),
            status_code=response.status_code,
            media_type="text/event-stream",
            headers={MODEL_HEADER: upstream.name, "cache-control": "no-cache"},
        )

    async def _relay(
        self,
        first: bytes,
        chunks: AsyncIterator[bytes],
        response: httpx.Response,
        upstream: Upstream,
    ) -> AsyncIterator[bytes]:
        """The upstream's stream as it comes, events renamed; an error event where it
        breaks, stalls, sends a malformed event or the shutdown's grace ends."""
        import httpx

        rename = EventRenamer(upstream.name)
        try:
            yield rename(first)
            while not rename.failed:
                start = time.monotonic()
                try:
                    with self.drain.guard():  # around the wait only: never around a yield
                        chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    break
                except httpx.HTTPError as e:
                    failure = transport_failure(upstream, e, time.monotonic() - start)
                    log.warning("upstream of %s failed mid-stream: %s", failure.model, failure.why)
                    message = f"the upstream of {failure.model} failed mid-stream: {failure.why}"
                    error = error_body(message, UPSTREAM, code="stream_broken")
                    yield rename.flush() + event(error)
                    return
                except ShuttingDown as e:
                    yield rename.flush() + event(e.body())
                    return
                yield rename(chunk)
            yield rename.flush()
        finally:
            await response.aclose()


def transport_failure(upstream: Upstream, error: BaseException, seconds: float) -> UpstreamFailure:
    """What went wrong on the wire, in words that hold no URL and no header; a timeout
    says how long was waited."""
    import httpx

    if isinstance(error, (TimeoutError, httpx.TimeoutException)):
        return UpstreamFailure(upstream, f"timed out after {seconds:.3g} s")
    if isinstance(error, httpx.ConnectError):
        return UpstreamFailure(upstream, "could not connect")
    if isinstance(error, httpx.RemoteProtocolError):
        return UpstreamFailure(upstream, "closed the connection without a complete answer")
    return UpstreamFailure(upstream, f"transport error ({type(error).__name__})")


def event(data: dict[str, Any]) -> bytes:
    """One server-sent event holding `data` as JSON."""
    return f"data: {json.dumps(data)}\n\n".encode()


class EventRenamer:
    """Sets "model" in each server-sent event's JSON data, across chunk boundaries.

    A data line that is neither `[DONE]` nor a JSON object (a client would fail to
    parse it) becomes an error event, and the stream ends there (`failed`).

    >>> rename = EventRenamer("small")
    >>> rename(b'data: {"model": "llama-3-8b", "choices": []}\\n\\nda')
    b'data: {"model": "small", "choices": []}\\n\\n'
    >>> rename(b'ta: [DONE]\\n\\n')
    b'data: [DONE]\\n\\n'
    """

    def __init__(self, model: str) -> None:
        self.model = model
        self.pending = b""
        self.failed = False

    def __call__(self, chunk: bytes) -> bytes:
        if self.failed:
            return b""
        *lines, self.pending = (self.pending + chunk).split(b"\n")
        out = []
        for line in lines:
            out.append(self._line(line))
            if self.failed:
                self.pending = b""
                break
        return b"".join(out)

    def flush(self) -> bytes:
        """What is left after the last newline (a stream should not leave any)."""
        rest, self.pending = self.pending, b""
        return self._line(rest) if rest and not self.failed else b""

    def _line(self, line: bytes) -> bytes:
        """One line, newline included: renamed if it is an event's JSON data."""
        if not line.startswith(b"data:"):
            return line + b"\n"
        end = b"\r" if line.endswith(b"\r") else b""
        data = line[5:].strip()
        if data == b"[DONE]":
            return line + b"\n"
        try:
            value = json.loads(data)
        except ValueError:  # not JSON, or not UTF-8
            value = None
        if not isinstance(value, dict):
            self.failed = True
            log.warning("the upstream of %s sent a malformed stream event", self.model)
            message = (
                f"the upstream of {self.model} sent a malformed stream event (its data is not "
                "a JSON object); the stream ends here"
            )
            return event(error_body(message, UPSTREAM, code="malformed_stream"))
        if "model" in value:
            value["model"] = self.model
        try:
            data = json.dumps(value, ensure_ascii=False).encode()
        except UnicodeEncodeError:  # a lone surrogate: passed on as the escape it came as
            data = json.dumps(value).encode()
        return b"data: " + data + end + b"\n"
