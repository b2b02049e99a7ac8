"""Arguments shared by the commands: value types, option groups, and --help text.

A bad value caught here is bad usage (argparse exits 2 naming the option); a value that
needs a file or the data to check (`families_arg`, `search_of`) raises `ValueError`
(exit 1) when the command runs, before any embedding.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import textwrap
from collections.abc import Callable
from pathlib import Path

from .._search import Search

# ---------------------------------------------------------------- value types


def _int_at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an int >= low."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an int, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    return parse


positive = _int_at_least(1)
natural = _int_at_least(0)


def level(text: str) -> float:
    """A credible level, strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {value}")
    return value


def ks(text: str) -> list[int]:
    """Comma-separated neighbourhood sizes, each >= 1."""
    try:
        values = [int(k) for k in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints, got {text!r}") from None
    if any(k < 1 for k in values):
        raise argparse.ArgumentTypeError(f"every k must be >= 1, got {text!r}")
    return values


def families_arg(text: str | None) -> dict[str, str] | None:
    """--families: a JSON object {model: family}, inline or in a file."""
    if text is None:
        return None
    source = Path(text).read_text() if Path(text).is_file() else text
    try:
        families = json.loads(source)
    except json.JSONDecodeError as e:
        raise ValueError(f"--families: not a JSON object {{model: family}}: {e}") from None
    if not isinstance(families, dict):
        raise ValueError("--families must be a JSON object {model: family}")
    return {str(k): str(v) for k, v in families.items()}


# ---------------------------------------------------------------- --help text

# Where embeddings are cached, for --help and the README.
CACHE_HELP = (
    "Embeddings are cached in $SMOOTHIE_JAX_CACHE/embeddings.sqlite3 when that variable "
    "is set, else in ~/.cache/smoothie_jax/embeddings.sqlite3 (one SQLite file; every "
    "finished batch is committed, so an interrupted run resumes where it stopped). "
    "--cache-dir DIR uses DIR/embeddings.sqlite3 instead; --no-cache neither reads nor "
    "writes it."
)

DATA_HELP = (
    "An empty output is read as an answer (a poor one). A null or absent output means "
    "that model did not answer that input: it is masked, and never chosen there. A later "
    "line may not name a model absent from the first line. Every malformed line is "
    "reported at once (the first 20, then a count), and every argument, path and file is "
    "checked before any embedding: a failed run writes nothing. Ctrl-C stops with exit "
    "code 130, keeping the embeddings finished so far."
)

# Every subcommand's parser keeps its help's paragraphs as `help_text` wrapped them.
SUBCOMMAND = {"formatter_class": argparse.RawDescriptionHelpFormatter}
# What each command module's `add_parser` adds its subcommand to.
Subcommands = argparse._SubParsersAction


def help_text(*paragraphs: str) -> str:
    """Paragraphs wrapped for --help (the formatter keeps them as they are)."""
    return "\n\n".join(textwrap.fill(p, width=78) for p in paragraphs)


def examples(*lines: str, cache: bool = False) -> str:
    """The --help epilog: the cache's location if asked, then example command lines."""
    text = "example:\n" + "\n".join(f"  {line}" for line in lines)
    return (help_text(CACHE_HELP) + "\n\n" if cache else "") + text


# ---------------------------------------------------------------- option groups


def add_embedder_options(parser: argparse.ArgumentParser) -> None:
    """--embedder, --whole-text, --clean, and --cache-dir or --no-cache."""
    parser.add_argument(
        "--embedder",
        default="minilm",
        metavar="MODEL",
        help="sentence embedder: 'minilm' (default, all-MiniLM-L6-v2, ships with the "
        "package), 'mpnet' (the paper's all-mpnet-base-v2; run 'smoothie-jax "
        "prepare-mpnet' once first), a faster variant of MiniLM made locally on first use "
        "('minilm-onnx', 'minilm-int8' with the onnx extra; 'minilm-static'; see the "
        "embedder table in the docs) or a local sentence-transformers folder",
    )
    parser.add_argument(
        "--whole-text",
        action="store_true",
        help="embed all of each long output (chunks, averaged) instead of "
        "its first 256 word pieces",
    )
    parser.add_argument(
        "--clean",
        action="store_true",
        help="strip special tokens (<s>, </s>, <pad>...) and keep the first "
        "line of each output before embedding, as the paper did for NLG",
    )
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument(
        "--cache-dir",
        metavar="DIR",
        default=None,
        help="keep the embedding cache in DIR/embeddings.sqlite3 (default: "
        "$SMOOTHIE_JAX_CACHE, else ~/.cache/smoothie_jax)",
    )
    cache.add_argument(
        "--no-cache",
        action="store_true",
        help="embed everything afresh; read and write no cache",
    )


# Old spellings of a search name, kept as aliases.
_SEARCH_ALIASES = {"approx": "approx-max-k"}
SEARCH_NAMES = (
    "exact", "bf16", "tf32", "bf16-chunks", "approx-max-k", "approximate", "ivf", "approx"
)  # fmt: skip


def add_search_options(parser: argparse.ArgumentParser, *, default: str | None = "exact") -> None:
    """--search, and --cells and --nprobe for the inverted file."""
    parser.add_argument(
        "--search",
        choices=SEARCH_NAMES,
        default=default,
        help="neighbour search: exact (default); bf16 or tf32 (two-stage: cheap candidates "
        "re-ranked exactly, for GPUs); bf16-chunks (the best point of 2,048 chunks, "
        "re-ranked: a million inputs in seconds on a GPU); approx-max-k (two-stage with "
        "lax.approx_max_k, fast on TPUs); approximate or ivf (an inverted file: k-means "
        "cells, --nprobe of them scored per query, exact re-ranking; for hundreds of "
        "thousands of inputs on a CPU). A router fitted with an inverted file keeps it. "
        "See sj.knn_recall",
    )
    parser.add_argument(
        "--cells",
        type=positive,
        default=None,
        help="approximate: k-means cells (default ~sqrt(n))",
    )
    parser.add_argument(
        "--nprobe",
        type=positive,
        default=None,
        help="approximate: cells probed per query (default 4)",
    )


def add_answer_options(parser: argparse.ArgumentParser) -> None:
    """--answer-pattern and --no-answers (one or the other): where final answers come from."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--answer-pattern",
        default=None,
        metavar="REGEX",
        help="exact-answer tasks: extract each output's final answer with this regular "
        "expression (its last match; its first group if it has one), e.g. "
        "'answer is\\s*(\\S+)'. Without it an \"answers\" field of the data is read if "
        'present, else the usual answer forms are detected (JSON "answer", \\boxed{}, '
        "'#### X', 'the answer is X', a final option letter or number) and used where the "
        "data show answers on most outputs. The recommended router then votes on the answers",
    )
    group.add_argument(
        "--no-answers",
        action="store_true",
        help='route without final answers: neither an "answers" field nor detection',
    )


def search_of(args: argparse.Namespace) -> Search:
    """--search / --cells / --nprobe as the library's `Search` (one vocabulary everywhere)."""
    spec = Search.parse(_SEARCH_ALIASES.get(args.search, args.search))
    if spec.method == "approximate":
        nprobe = spec.nprobe if args.nprobe is None else args.nprobe
        return dataclasses.replace(spec, n_cells=args.cells, nprobe=nprobe)
    if args.cells is not None or args.nprobe is not None:
        raise ValueError(f"--cells and --nprobe apply to --search approximate, not {args.search}")
    return spec
