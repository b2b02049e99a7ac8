"""What a command reads: routing files (with their notes) and their embeddings.

Notes go to stderr (`say`), so stdout holds only the command's report.
"""

from __future__ import annotations

import argparse
import re
import sys

import numpy as np

from ..data import RoutingData, read_routing
from ..text import embed, embed_with_stats


def say(message: str) -> None:
    """A note on stderr: progress, warnings, where a file went."""
    print(message, file=sys.stderr)


def read(path: str, what: str, *, require_outputs: bool = True) -> RoutingData:
    """Reads a routing file and warns (stderr) about repeated instructions."""
    data = read_routing(path, require_outputs=require_outputs)
    repeats = len(data) - len(set(data.instructions))
    if repeats:
        say(
            f"smoothie-jax: warning: {what} {path} repeats {repeats} instruction(s) "
            "(each line is kept and routed on its own)"
        )
    return data


def data_notes(data: RoutingData) -> str:
    """'N empty outputs, M missing' for the report, or ''."""
    if data.outputs is None:
        return ""
    empty = sum(o is not None and not o.strip() for row in data.outputs for o in row)
    missing = int((~data.observed).sum())
    notes = []
    if empty:
        notes.append(f"{empty} empty outputs (read and embedded as answers)")
    if missing:
        notes.append(
            f"{missing} missing outputs (null or absent: masked, a model is never chosen "
            "for an input it did not answer)"
        )
    return "; ".join(notes)


def mask(data: RoutingData) -> np.ndarray | None:
    """`observed` for the library: None when every model answered every input."""
    observed = data.observed
    return None if observed is None or observed.all() else observed


def answers_of(data: RoutingData, args: argparse.Namespace) -> np.ndarray | None:
    """Answer codes: extracted with --answer-pattern, else the data's "answers", else None."""
    pattern = getattr(args, "answer_pattern", None)
    if pattern is not None:
        try:
            data = data.with_answers(pattern)
        except re.error as e:
            raise ValueError(
                f"--answer-pattern {pattern!r} is not a regular expression: {e}"
            ) from None
    return data.answer_codes()


def _embed(texts: list[str], args: argparse.Namespace, what: str) -> np.ndarray:
    vectors, stats = embed_with_stats(
        texts,
        model=args.model_path,
        whole_text=getattr(args, "whole_text", False),
        clean=getattr(args, "clean", False),
        cache_dir=args.cache_dir,
        cache=not args.no_cache,
    )
    say(
        f"Embedded {len(texts)} {what}: {stats.n_cached} distinct texts from the cache, "
        f"{stats.n_embedded} embedded now ({stats.seconds:.0f} s)."
    )
    return vectors


def embed_outputs(data: RoutingData, args: argparse.Namespace) -> np.ndarray:
    """The models' outputs embedded, (n_samples, n_models, dim); zeros where a model did
    not answer (the estimators ignore them there: pass `observed=mask(data)`)."""
    observed = data.observed
    texts = [text for row in data.outputs for text in row if text is not None]
    missing = observed.size - len(texts)
    say(
        f"Embedding {len(texts)} outputs ({len(data)} inputs x {len(data.models)} models"
        + (f", {missing} missing" if missing else "")
        + f") with {args.embedder}..."
    )
    flat = _embed(texts, args, "outputs")
    out = np.zeros((*observed.shape, flat.shape[-1]), np.float32)
    out[observed] = flat
    return out


def embed_inputs(data: RoutingData, args: argparse.Namespace) -> np.ndarray:
    """The instructions embedded, (n_samples, dim), without a note (they are short)."""
    return embed(
        data.instructions,
        model=args.model_path,
        cache_dir=args.cache_dir,
        cache=not args.no_cache,
    )
