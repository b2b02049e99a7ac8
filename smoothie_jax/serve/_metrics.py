"""The gateway's metrics, served at `GET /metrics` in Prometheus' text format (0.0.4).

- `smoothie_gateway_requests_total{route, code}`: requests answered, by route and status.
- `smoothie_gateway_request_duration_seconds{route}`: histogram, from the request's
  arrival to its answer's last byte (a stream's end).
- `smoothie_gateway_requests_in_flight`: requests being answered now.
- `smoothie_gateway_decisions_total{model, how}`: chat requests by the model chosen for
  them (before any failover), `how` = "routed" (the router chose it) or "pinned" (the
  request named it).
- `smoothie_gateway_upstream_requests_total{model, outcome}`: calls to each model's
  upstream, `outcome` = "ok" or "failed".
- `smoothie_gateway_upstream_duration_seconds{model}`: histogram, from the call to the
  upstream's answer (a stream: its first bytes), failures included.
- `smoothie_gateway_failovers_total{model}`: requests moved off `model` to the next-best.

Routes are the app's own paths ("/v1/models/{model}" for any model, "other" for a path
the app does not serve), so a client cannot grow the label set. Everything is updated on
the event loop's thread only, so no lock is needed; nothing is imported (no
prometheus_client).
"""

from __future__ import annotations

import bisect
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
PREFIX = "smoothie_gateway_"
ROUTES = ("/health", "/metrics", "/v1/models", "/v1/route", "/v1/chat/completions")

Labels = tuple[tuple[str, str], ...]


class Histogram:
    """Observations counted in `BUCKETS` (upper bounds, seconds), with their sum."""

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)  # the last: above every bound
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.sum += seconds


class Metrics:
    """The gateway's counters and histograms.

    >>> metrics = Metrics()
    >>> metrics.failover("alpha")
    >>> [line for line in metrics.render().splitlines() if line.startswith(PREFIX + "failovers")]
    ['smoothie_gateway_failovers_total{model="alpha"} 1']
    """

    def __init__(self) -> None:
        self.requests: dict[Labels, int] = defaultdict(int)
        self.durations: dict[Labels, Histogram] = defaultdict(Histogram)
        self.in_flight = 0
        self.decisions: dict[Labels, int] = defaultdict(int)
        self.upstream: dict[Labels, int] = defaultdict(int)
        self.upstream_durations: dict[Labels, Histogram] = defaultdict(Histogram)
        self.failovers: dict[Labels, int] = defaultdict(int)

    def decided(self, model: str, how: str) -> None:
        """A chat request is first sent to `model`, "routed" or "pinned"."""
        self.decisions[(("model", model), ("how", how))] += 1

    def upstream_call(self, model: str, ok: bool, seconds: float) -> None:
        """One call to `model`'s upstream, to its answer (a stream: its first bytes)."""
        self.upstream[(("model", model), ("outcome", "ok" if ok else "failed"))] += 1
        self.upstream_durations[(("model", model),)].observe(seconds)

    def failover(self, model: str) -> None:
        """A request moved off `model` to the next-best one."""
        self.failovers[(("model", model),)] += 1

    def render(self) -> str:
        """Every metric in Prometheus' text format."""
        out: list[str] = []
        _counter(out, "requests_total", "HTTP requests answered.", self.requests)
        _histogram(
            out, "request_duration_seconds", "Time to a request's last byte.", self.durations
        )
        out += [
            f"# HELP {PREFIX}requests_in_flight Requests being answered.",
            f"# TYPE {PREFIX}requests_in_flight gauge",
            f"{PREFIX}requests_in_flight {self.in_flight}",
        ]
        _counter(out, "decisions_total", "Chat requests by the model chosen.", self.decisions)
        _counter(out, "upstream_requests_total", "Calls to each upstream.", self.upstream)
        _histogram(
            out,
            "upstream_duration_seconds",
            "Time to an upstream's answer (a stream's first bytes).",
            self.upstream_durations,
        )
        _counter(out, "failovers_total", "Requests moved off a model.", self.failovers)
        return "\n".join(out) + "\n"


def _labels(labels: Iterable[tuple[str, str]]) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    inner = ",".join(f'{name}="{escape(value)}"' for name, value in labels)
    return f"{{{inner}}}" if inner else ""


def _number(x: float) -> str:
    return repr(float(x)) if isinstance(x, float) else str(x)


def _counter(out: list[str], name: str, help_: str, values: dict[Labels, int]) -> None:
    out += [f"# HELP {PREFIX}{name} {help_}", f"# TYPE {PREFIX}{name} counter"]
    out += [f"{PREFIX}{name}{_labels(labels)} {n}" for labels, n in sorted(values.items())]


def _histogram(out: list[str], name: str, help_: str, values: dict[Labels, Histogram]) -> None:
    out += [f"# HELP {PREFIX}{name} {help_}", f"# TYPE {PREFIX}{name} histogram"]
    for labels, h in sorted(values.items()):
        total = 0
        for bound, count in zip((*map(_number, BUCKETS), "+Inf"), h.counts):
            total += count
            out.append(f"{PREFIX}{name}_bucket{_labels((*labels, ('le', bound)))} {total}")
        out.append(f"{PREFIX}{name}_sum{_labels(labels)} {_number(h.sum)}")
        out.append(f"{PREFIX}{name}_count{_labels(labels)} {total}")


def route_of(path: str) -> str:
    """The route label of a request path: one of the app's routes, or "other".

    >>> route_of("/v1/models/alpha"), route_of("/v1/models/alpha/x"), route_of("/.env")
    ('/v1/models/{model}', 'other', 'other')
    """
    if path in ROUTES:
        return path
    if path.startswith("/v1/models/") and "/" not in path[len("/v1/models/") :]:
        return "/v1/models/{model}"
    return "other"


class MetricsMiddleware:
    """ASGI middleware counting every HTTP request, timed to its answer's last byte."""

    def __init__(self, app: Callable[..., Awaitable[None]], metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Without an answer started, the app raised: the outer error handler answers 500.
        route, start, status = route_of(scope["path"]), time.perf_counter(), 500

        async def counted_send(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight += 1
        try:
            await self.app(scope, receive, counted_send)
        finally:
            self.metrics.in_flight -= 1
            self.metrics.requests[(("route", route), ("code", str(status)))] += 1
            self.metrics.durations[(("route", route),)].observe(time.perf_counter() - start)
