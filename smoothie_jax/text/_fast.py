"""Faster variants of the default embedder, made locally from MiniLM's shipped weights.

Embedding is the cost of routing text (the estimator is milliseconds), so three variants
of all-MiniLM-L6-v2 trade agreement with it for speed. Each is a model folder prepared
once, on first use, under `<cache>/models/<name>` (nothing is downloaded), and each is a
model of its own: its folder's fingerprint keys the embedding cache and a router's
`Embedder` record, so vectors of different variants never mix.

- "minilm-onnx": the same network exported to ONNX and run by ONNX Runtime, float32
  (the same vectors to ~1e-6; needs the `onnx` extra, and no torch once prepared).
- "minilm-int8": that export with its matrix products quantised to int8 (dynamic,
  per channel): cosine ~0.995 with MiniLM's vectors.
- "minilm-static": a static token table distilled from MiniLM (each word piece of its
  vocabulary embedded alone, reduced to 256 dimensions by PCA); a text is the mean of
  its word pieces' rows, as model2vec does. Tens of times faster; other vectors.

Which to use is a measured choice (docs/results/embedders.md): the default stays "minilm".
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

FAST_MODELS = ("minilm-onnx", "minilm-int8", "minilm-static")
RECIPE_FILE = "smoothie_jax.json"  # marks a prepared variant and says how it was made
STATIC_DIM = 256  # PCA dimensions of the static table (model2vec's default)
STATIC_MAX_LENGTH = 512  # word pieces a static embedding reads (reading is nearly free)
_ONNX_OPSET = 17
# What a variant is made from: MiniLM's folder, its fingerprint, the loaded model.
Source = tuple[Path, str, "SentenceTransformer"]


def is_fast_dir(path: Path) -> bool:
    """A folder prepared by `prepare_fast` (it holds the recipe file)."""
    return (path / RECIPE_FILE).is_file()


def prepare_fast(name: str, root: Path, source: Callable[[], Source]) -> Path:
    """The folder of variant `name` under `root/models`, made first if it is not there.

    `source()` gives MiniLM (its folder, fingerprint and loaded model); it is called only
    to prepare. Built in a temporary folder beside the target and renamed into place
    only once complete, so an interrupted or concurrent preparation never leaves half a
    model.
    """
    if name not in FAST_MODELS:
        raise ValueError(f"unknown fast embedder {name!r}; one of {FAST_MODELS}")
    target = root / "models" / name
    if is_fast_dir(target):
        return target.resolve()
    if target.exists():
        raise ValueError(f"{target} exists but is not a prepared {name}: remove it and retry")
    folder, source_id, st = source()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{name}."))
    os.chmod(tmp, 0o755)  # mkdtemp makes 0700; the cache may be shared
    try:
        with _quiet():
            _build(name, st, folder, source_id, tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not is_fast_dir(target):  # only losing the race to another process is fine
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target.resolve()


def _build(name: str, st: SentenceTransformer, source: Path, source_id: str, out: Path) -> None:
    """Writes variant `name` of the model `st` (loaded from `source`) into `out`."""
    shutil.copy(source / "tokenizer.json", out / "tokenizer.json")
    recipe: dict[str, Any] = {"name": name, "source": source_id}
    if name == "minilm-static":
        np.save(out / "embeddings.npy", _distil_static(st))
        recipe.update(kind="static", dim=STATIC_DIM, max_seq_length=STATIC_MAX_LENGTH)
    else:
        _export_onnx(st, out / "model.onnx")
        if name == "minilm-int8":
            _quantize(out / "model.onnx")
        hidden = int(st[0].auto_model.config.hidden_size)  # what the mean-pooled graph outputs
        recipe.update(kind="onnx", dim=hidden, max_seq_length=int(st.max_seq_length))
    (out / RECIPE_FILE).write_text(json.dumps(recipe, indent=1) + "\n")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Hides the exporter's tracer warnings and the quantiser's advice while preparing."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def _export_onnx(st: SentenceTransformer, path: Path) -> None:
    """MiniLM with its mean pooling and normalisation, as one ONNX graph."""
    import torch

    try:
        import onnx  # noqa: F401  (the exporter and the quantiser need it)
    except ImportError as e:
        raise ImportError(
            "the ONNX embedders need onnx and onnxruntime: pip install 'smoothie-jax[onnx]'"
        ) from e

    class Pooled(torch.nn.Module):
        def __init__(self, bert: torch.nn.Module) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=-1)

    example = st.tokenizer(
        ["an example", "and a longer example text"], padding=True, return_tensors="pt"
    )
    axes = {"input_ids": {0: "batch", 1: "length"}, "attention_mask": {0: "batch", 1: "length"}}
    with torch.inference_mode():
        torch.onnx.export(
            Pooled(st[0].auto_model).eval(),
            (example["input_ids"], example["attention_mask"]),
            str(path),
            input_names=list(axes),
            output_names=["embedding"],
            dynamic_axes={**axes, "embedding": {0: "batch"}},
            opset_version=_ONNX_OPSET,
            dynamo=False,  # the tracing exporter: no onnxscript, and dynamic axes as named
        )


def _quantize(path: Path) -> None:
    """Int8 weights, activations quantised on the fly; per channel keeps cosine ~0.995."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = path.with_suffix(".int8.onnx")
    quantize_dynamic(str(path), str(out), per_channel=True, weight_type=QuantType.QInt8)
    os.replace(out, path)


def _distil_static(st: SentenceTransformer, batch: int = 2048) -> np.ndarray:
    """(vocab, STATIC_DIM) float32: each word piece embedded alone, then PCA."""
    import torch

    tokenizer = st.tokenizer
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    bert = st[0].auto_model
    rows = []
    with torch.inference_mode():
        for lo in range(0, len(tokenizer), batch):
            ids = torch.arange(lo, min(lo + batch, len(tokenizer)))
            x = torch.stack([torch.full_like(ids, cls), ids, torch.full_like(ids, sep)], 1)
            hidden = bert(input_ids=x, attention_mask=torch.ones_like(x)).last_hidden_state
            rows.append(hidden.mean(1).numpy())  # as MiniLM pools a one-word text
    table = np.concatenate(rows).astype(np.float64)
    centred = table - table.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return (centred @ vt[:STATIC_DIM].T).astype(np.float32)


class FastEncoder:
    """A prepared variant with the part of SentenceTransformer's interface `embed` uses.

    Tokenises with the Rust `tokenizers` (batches in parallel) and runs the ONNX graph or
    averages the static table; imports neither torch nor sentence-transformers.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        from tokenizers import Tokenizer

        self.path = Path(path)
        recipe = json.loads((self.path / RECIPE_FILE).read_text())
        self.kind: str = recipe["kind"]
        self.max_seq_length: int = int(recipe["max_seq_length"])
        self._dim = int(recipe["dim"])
        self._tokens = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        self._tokens.enable_truncation(self.max_seq_length)
        self._hf_tokenizer: Any = None
        if self.kind == "static":
            self._table = np.load(self.path / "embeddings.npy")
            self._tokens.no_padding()
            self._empty = self._tokens.encode("").ids  # [CLS] [SEP]: what "" reads as
        else:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = os.cpu_count() or 1
            self._session = onnxruntime.InferenceSession(
                str(self.path / "model.onnx"), options, providers=["CPUExecutionProvider"]
            )
            self._tokens.enable_padding()

    def get_sentence_embedding_dimension(self) -> int:
        return self._dim

    @property
    def tokenizer(self) -> Any:
        """A transformers fast tokenizer (for `whole_text` splitting), made on first use."""
        if self._hf_tokenizer is None:
            from transformers import PreTrainedTokenizerFast

            self._hf_tokenizer = PreTrainedTokenizerFast(
                tokenizer_file=str(self.path / "tokenizer.json")
            )
        return self._hf_tokenizer

    def encode(self, texts: Sequence[str], batch_size: int = 64, **_: object) -> np.ndarray:
        """Unit-norm float32 (len(texts), dim), as `SentenceTransformer.encode` returns."""
        out = np.zeros((len(texts), self._dim), np.float32)
        for lo in range(0, len(texts), batch_size):
            out[lo : lo + batch_size] = self._batch(list(texts[lo : lo + batch_size]))
        return out

    def _batch(self, texts: list[str]) -> np.ndarray:
        if self.kind == "static":
            encodings = self._tokens.encode_batch(texts, add_special_tokens=False)
            vectors = np.stack([self._table[e.ids or self._empty].mean(axis=0) for e in encodings])
            return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        encodings = self._tokens.encode_batch(texts)
        feed = {
            "input_ids": np.array([e.ids for e in encodings], np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], np.int64),
        }
        return self._session.run(None, feed)[0]
