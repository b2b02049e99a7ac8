"""`GET /metrics`: Prometheus' text format, read back by Prometheus' own parser
(prometheus_client): requests by route and status, latency histograms, decisions,
upstream calls and failovers per model."""

from __future__ import annotations

import pytest

import smoothie_jax as sj
from smoothie_jax.serve._metrics import Metrics

from .helpers import fake_encode

pytest.importorskip("fastapi")  # the serve extra: FastAPI, uvicorn, httpx
parser = pytest.importorskip("prometheus_client.parser")

PROMPT = "how do I sort a python list"
CHAT = {"messages": [{"role": "user", "content": PROMPT}]}


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """{(name, labels): value} of every sample, as Prometheus reads them."""
    out = {}
    for family in parser.text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(seen: dict, name: str, **labels: str) -> float:
    return seen.get((f"smoothie_gateway_{name}", frozenset(labels.items())), 0.0)


def test_metrics_count_requests_decisions_upstreams_and_failovers(gateway, router, reset) -> None:
    best, second, last = sj.serve.TextRouter(router, fake_encode).decide([PROMPT])[0].ranking
    client = gateway()
    assert client.post("/v1/chat/completions", json=CHAT).status_code == 200
    assert client.post("/v1/chat/completions", json={**CHAT, "model": last}).status_code == 200
    reset[best][0].state.status = 500
    assert client.post("/v1/chat/completions", json=CHAT).status_code == 200  # failed over
    assert client.post("/v1/route", content=b"{").status_code == 400
    assert client.get("/v1/models/no-such-model").status_code == 404
    assert client.get("/.env").status_code == 404
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    seen = samples(response.text)

    route = "/v1/chat/completions"
    assert value(seen, "requests_total", route=route, code="200") == 3
    assert value(seen, "requests_total", route="/v1/route", code="400") == 1
    assert value(seen, "requests_total", route="/v1/models/{model}", code="404") == 1
    assert value(seen, "requests_total", route="other", code="404") == 1  # no label per path
    assert value(seen, "request_duration_seconds_count", route=route) == 3
    assert value(seen, "request_duration_seconds_bucket", route=route, le="+Inf") == 3
    assert value(seen, "requests_in_flight") == 1  # this very request
    assert value(seen, "decisions_total", model=best, how="routed") == 2
    assert value(seen, "decisions_total", model=last, how="pinned") == 1
    assert value(seen, "upstream_requests_total", model=best, outcome="ok") == 1
    assert value(seen, "upstream_requests_total", model=best, outcome="failed") == 1
    assert value(seen, "upstream_requests_total", model=second, outcome="ok") == 1
    assert value(seen, "upstream_duration_seconds_count", model=best) == 2
    assert value(seen, "failovers_total", model=best) == 1


def test_label_values_are_escaped() -> None:
    metrics = Metrics()
    metrics.failover('a "quoted"\\ne\nline')
    metrics.upstream_call("m", True, 0.3)
    seen = samples(metrics.render())
    assert value(seen, "failovers_total", model='a "quoted"\\ne\nline') == 1
    assert value(seen, "upstream_duration_seconds_bucket", model="m", le="0.25") == 0
    assert value(seen, "upstream_duration_seconds_bucket", model="m", le="0.5") == 1
    assert value(seen, "upstream_duration_seconds_sum", model="m") == 0.3
