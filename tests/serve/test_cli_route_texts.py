"""`route --router SAVED QUERIES.jsonl -o OUT` (cli/_route_texts): `run` on namespaces
its own parser builds. The fast tests swap the embedder for the fake one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import smoothie_jax as sj
from smoothie_jax.cli import _route_texts

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


def parse(*argv: object) -> object:
    return _route_texts.build_parser().parse_args([str(a) for a in argv])


def test_routes_with_the_routers_own_embedder(saved, tmp_path, encoders, capsys) -> None:
    router, queries = saved
    out = tmp_path / "out.jsonl"
    assert _route_texts.run(parse(queries, "-o", out, "--router", router)) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["instruction"] for r in records] == [f"{t} now" for t in TOPICS]
    expected = sj.load_router(router).route(fake_encode([r["instruction"] for r in records]))
    assert [r["model"] for r in records] == [sj.load_router(router).models[j] for j in expected]
    (recorded, named, options), *_ = encoders
    assert recorded.name == "fake" and named is None  # the default --embedder is not a name
    assert options == {"cache_dir": None, "cache": True}
    assert "Routed 4 queries" in capsys.readouterr().out


def test_a_typed_embedder_and_the_cache_options_are_passed(saved, tmp_path, encoders) -> None:
    router, queries = saved
    argv = [queries, "-o", tmp_path / "o.jsonl", "--router", router, "--embedder", "minilm"]
    _route_texts.run(parse(*argv, "--no-cache", "--chunk-size", 2))
    _, named, options = encoders[0]
    assert named == "minilm" and options["cache"] is False


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"train": "t.jsonl"}, "--train"),
        ({"save_router": "r.eqx", "k": 5}, "--save-router, -k"),
        ({"posterior": True}, "--posterior"),
        ({"search": "bf16"}, "--search does not apply"),
    ],
)
def test_options_that_do_not_apply_are_refused(saved, tmp_path, extra, message) -> None:
    router, queries = saved
    args = parse(queries, "-o", tmp_path / "o.jsonl", "--router", router)
    for name, value in extra.items():
        setattr(args, name, value)  # as the route command's own options would set them
    with pytest.raises(ValueError, match=message):
        _route_texts.run(args)


def test_the_route_parser_keeps_its_defaults_as_plain_strings() -> None:
    args = parse("q.jsonl", "-o", "o.jsonl")
    assert args.embedder == "minilm" and args.search == "exact"  # what `route` reads
    assert isinstance(args.embedder, _route_texts.Unnamed)
    typed = parse("q", "-o", "o", "--embedder", "minilm").embedder
    assert not isinstance(typed, _route_texts.Unnamed)


def test_bad_paths_and_routers(saved, tmp_path) -> None:
    router, queries = saved
    with pytest.raises(ValueError, match="does not exist"):
        _route_texts.run(parse(queries, "-o", tmp_path / "no" / "o.jsonl", "--router", router))
    with pytest.raises(ValueError, match="give --router"):
        _route_texts.run(parse(queries, "-o", tmp_path / "o.jsonl"))
    old = tmp_path / "old.eqx"
    sj.save_router(old, fake_router())
    with pytest.raises(ValueError, match="saved without its embedder"):
        _route_texts.run(parse(queries, "-o", tmp_path / "o.jsonl", "--router", old))
    assert _route_texts.main([str(queries), "-o", str(tmp_path / "o.jsonl")]) == 1


@pytest.mark.slow
def test_minilm_end_to_end(minilm_router, tmp_path: Path, capsys) -> None:
    """A router fit with MiniLM recorded routes the quiz queries by text: the decisions
    are the router's on the same texts embedded by sj.embed."""
    path, router, cache = minilm_router
    queries = ROOT / "examples" / "data" / "quiz_queries.jsonl"
    out = tmp_path / "routes.jsonl"
    argv = [str(queries), "-o", str(out), "--router", str(path), "--cache-dir", str(cache)]
    assert _route_texts.main(argv) == 0
    assert "embedded with minilm (384-dim, first 256 word pieces)" in capsys.readouterr().out
    records = [json.loads(line) for line in out.read_text().splitlines()]
    texts = sj.read_routing(queries, require_outputs=False).instructions
    weights = np.asarray(router.weights(sj.embed(texts, cache_dir=cache)))
    assert [r["model"] for r in records] == [router.models[j] for j in weights.argmax(axis=1)]
