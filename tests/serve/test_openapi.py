"""`/openapi.json` declares every request body and every answer, errors included; a slow
test fuzzes the running gateway from it with schemathesis (bounded examples, positive
and negative data) and finds no server error and no answer outside the schema."""

from __future__ import annotations

import pytest

from .helpers import MODELS

pytest.importorskip("fastapi")  # the serve extra: FastAPI, uvicorn, httpx

ERROR = {"$ref": "#/components/schemas/Error"}


def test_openapi_declares_bodies_answers_and_errors(gateway) -> None:
    spec = gateway(token="t0k").get("/openapi.json").json()
    paths = spec["paths"]
    assert set(paths) == {
        "/health",
        "/metrics",
        "/v1/models",
        "/v1/models/{model}",
        "/v1/route",
        "/v1/chat/completions",
    }
    chat = paths["/v1/chat/completions"]["post"]
    body = chat["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["messages"]
    assert body["properties"]["model"]["enum"] == ["smoothie-jax", "auto", *MODELS, None]
    assert set(chat["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    for status in ("400", "401", "404", "413", "500", "502", "503"):
        assert chat["responses"][status]["content"]["application/json"]["schema"] == ERROR
    assert "requestBody" in paths["/v1/route"]["post"]
    for path, operations in paths.items():
        for operation in operations.values():
            assert "422" not in operation["responses"]  # malformed bodies are 400s
            assert ("security" in operation) == (path != "/health")
    error = spec["components"]["schemas"]["Error"]["properties"]["error"]
    assert error["required"] == ["message", "type", "param", "code"]
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    gateway, reset, tmp_path
) -> None:
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from hypothesis.configuration import set_hypothesis_home_dir
    from hypothesis.errors import Unsatisfiable
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    client = gateway(max_body=20_000)
    schema = schemathesis.openapi.from_url(f"{client.base_url}/openapi.json")
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    seen: list[tuple[str, int, str]] = []  # (operation, status, media type) of every call
    set_hypothesis_home_dir(tmp_path / "hypothesis")  # its caches: not in the checkout
    try:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            for result in schema.get_all_operations():
                operation = result.ok()

                @given(case=operation.as_strategy(generation_mode=mode))
                @settings(
                    max_examples=40,
                    deadline=None,
                    database=None,  # no examples kept between runs
                    derandomize=True,  # the same examples on every run
                    suppress_health_check=list(HealthCheck),
                )
                def fuzz(case: schemathesis.Case) -> None:
                    response = case.call_and_validate(checks=checks)
                    media = response.headers.get("content-type", [""])[0].split(";")[0]
                    seen.append((case.operation.label, response.status_code, media))

                try:
                    fuzz()
                except Unsatisfiable:  # negative data of an operation with no input at all
                    assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label
    finally:
        set_hypothesis_home_dir(None)
    assert len(seen) > 100
    answered = {(label, media) for label, status, media in seen if status == 200}
    assert {
        ("POST /v1/chat/completions", "application/json"),  # forwarded
        ("POST /v1/chat/completions", "text/event-stream"),  # relayed as a stream
        ("POST /v1/route", "application/json"),  # decided
    } <= answered
