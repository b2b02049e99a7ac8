"""`route --router SAVED QUERIES.jsonl -o OUT` (cli/_route_texts), run through the CLI's
entry point. The fast tests swap the embedder for the fake one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import smoothie_jax as sj
from smoothie_jax.cli import _route_texts, main
from smoothie_jax.cli._main import build_parser

from .helpers import TOPICS, fake_encode, fake_router

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def saved(tmp_path: Path, router: sj.Router) -> tuple[Path, Path]:
    sj.save_router(tmp_path / "router.eqx", router)
    queries = tmp_path / "queries.jsonl"
    queries.write_text("".join(json.dumps({"instruction": f"{t} now"}) + "\n" for t in TOPICS))
    return tmp_path / "router.eqx", queries


@pytest.fixture
def encoders(monkeypatch) -> list:
    """The (recorded, named, options) of each text_encoder call; the fake encoder runs."""
    calls = []

    def fake(recorded, named=None, **options):
        calls.append((recorded, named, options))
        return fake_encode

    monkeypatch.setattr(_route_texts, "text_encoder", fake)
    return calls


def route(*argv: object) -> int:
    """`smoothie-jax route ARGV...`, run in this process."""
    return main(["route", *map(str, argv)])


def test_routes_with_the_routers_own_embedder(saved, tmp_path, encoders, capsys) -> None:
    router, queries = saved
    out = tmp_path / "out.jsonl"
    assert route(queries, "-o", out, "--router", router) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["instruction"] for r in records] == [f"{t} now" for t in TOPICS]
    expected = sj.load_router(router).route(fake_encode([r["instruction"] for r in records]))
    assert [r["model"] for r in records] == [sj.load_router(router).models[j] for j in expected]
    assert list(records[0]) == ["idx", "instruction", "model", "score", "weights"]
    (recorded, named, options), *_ = encoders
    assert recorded.name == "fake" and named is None  # the default --embedder is not a name
    assert options == {"cache_dir": None, "cache": True}
    assert "Routed 4 queries" in capsys.readouterr().out


def test_a_typed_embedder_and_the_cache_options_are_passed(saved, tmp_path, encoders) -> None:
    router, queries = saved
    argv = [queries, "-o", tmp_path / "o.jsonl", "--router", router, "--embedder", "minilm"]
    assert route(*argv, "--no-cache", "--chunk-size", 2) == 0
    _, named, options = encoders[0]
    assert named == "minilm" and options["cache"] is False


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--train", "t.jsonl"], "--train"),
        (["--save-router", "r.eqx", "-k", "5"], "--save-router, -k"),
        (["--posterior"], "--posterior"),
        (["--search", "bf16"], "--search does not apply"),
    ],
)
def test_options_that_do_not_apply_are_refused(
    saved, tmp_path, capsys, extra: list[str], message: str
) -> None:
    router, queries = saved
    assert route(queries, "-o", tmp_path / "o.jsonl", "--router", router, *extra) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()


def test_the_route_parser_keeps_its_defaults_as_plain_strings() -> None:
    def parse(*argv: str) -> object:
        return build_parser().parse_args(["route", *argv])

    args = parse("q.jsonl", "-o", "o.jsonl")
    assert args.embedder == "minilm" and args.search == "exact"  # what `route` reads
    assert isinstance(args.embedder, _route_texts.Unnamed)
    typed = parse("q", "-o", "o", "--embedder", "minilm").embedder
    assert not isinstance(typed, _route_texts.Unnamed)


def test_bad_paths_and_routers(saved, tmp_path, capsys) -> None:
    router, queries = saved
    assert route(queries, "-o", tmp_path / "no" / "o.jsonl", "--router", router) == 1
    assert "does not exist" in capsys.readouterr().err
    old = tmp_path / "old.eqx"
    sj.save_router(old, fake_router())
    assert route(queries, "-o", tmp_path / "o.jsonl", "--router", old) == 1
    assert "saved without its embedder" in capsys.readouterr().err


@pytest.mark.slow
def test_minilm_end_to_end(minilm_router, tmp_path: Path, capsys) -> None:
    """A router fit with MiniLM recorded routes the quiz queries by text: the decisions
    are the router's on the same texts embedded by sj.text.embed."""
    path, router, cache = minilm_router
    queries = ROOT / "examples" / "data" / "quiz_queries.jsonl"
    out = tmp_path / "routes.jsonl"
    assert route(queries, "-o", out, "--router", path, "--cache-dir", cache) == 0
    assert "embedded with minilm (384-dim, first 256 word pieces)" in capsys.readouterr().out
    records = [json.loads(line) for line in out.read_text().splitlines()]
    texts = sj.data.read_routing(queries, require_outputs=False).instructions
    weights = np.asarray(router.weights(sj.text.embed(texts, cache_dir=cache)))
    assert [r["model"] for r in records] == [router.models[j] for j in weights.argmax(axis=1)]
