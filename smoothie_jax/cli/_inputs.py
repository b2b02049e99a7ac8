"""What a command reads: routing files (with their notes) and their embeddings.

Notes go to stderr (`say`), so stdout holds only the command's report.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from typing import Literal

import numpy as np

from ..data import RoutingData, answer_codes, detect_answers, read_routing
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


@dataclasses.dataclass(frozen=True, eq=False)  # codes is an array
class AnswerSource:
    """A command's final answers and where they came from, for its report.

    Attributes:
        codes: (n, m) int32 answer codes (`sj.data.answer_codes`), or None: no answers.
        source: "pattern" (--answer-pattern), "field" (the data's "answers"), "detected"
            (`sj.data.detect_answers`, on), or "none" (--no-answers, detection off or not
            run for a route option that takes no answers, or a query file).
        detail: what was done, in a few words (the detection's findings where it ran).

    >>> AnswerSource(None, "none", "--no-answers").describe()
    'Answers: none (--no-answers).'
    """

    codes: np.ndarray | None
    source: Literal["pattern", "field", "detected", "none"]
    detail: str

    def describe(self) -> str:
        """One line for the report: "Answers: <where they came from> (<detail>)."."""
        where = {
            "pattern": "extracted with --answer-pattern",
            "field": 'the data\'s "answers" field',
            "detected": "detected in the outputs",
            "none": "none",
        }[self.source]
        return f"Answers: {where} ({self.detail})."


def answer_source(data: RoutingData, args: argparse.Namespace) -> AnswerSource:
    """The answers a command votes on: --no-answers turns them off; else --answer-pattern,
    else the data's "answers" field, else detection (`sj.data.detect_answers`) where it is
    on for this file and the command votes on answers (`_no_vote` says where not).

    Raises:
        ValueError: --answer-pattern is not a regular expression, or DATA has no outputs.
    """
    pattern = getattr(args, "answer_pattern", None)
    if getattr(args, "no_answers", False):
        return AnswerSource(None, "none", "--no-answers")
    if pattern is not None:
        try:
            extracted = data.with_answers(pattern)
        except re.error as e:
            raise ValueError(
                f"--answer-pattern {pattern!r} is not a regular expression: {e}"
            ) from None
        n_found = sum(a is not None for row in extracted.answers for a in row)
        n_outputs = int(extracted.observed.sum())
        detail = f"{pattern!r} matched {n_found:,} of {n_outputs:,} outputs"
        return AnswerSource(extracted.answer_codes(), "pattern", detail)
    if data.answers is not None:
        n_found = sum(a is not None for row in data.answers for a in row)
        detail = f"{n_found:,} of {len(data) * len(data.models):,} filled in"
        return AnswerSource(data.answer_codes(), "field", detail)
    if data.outputs is None:
        return AnswerSource(None, "none", "no outputs")
    why_not = _no_vote(args)
    if why_not:
        return AnswerSource(None, "none", f"not detected: {why_not} takes no answers")
    found = detect_answers(data.outputs)
    if not found.on:
        return AnswerSource(None, "none", found.describe())
    return AnswerSource(answer_codes(found.answers), "detected", found.describe())


def _no_vote(args: argparse.Namespace) -> str:
    """The route option that takes no answers (--method local/global, --posterior), or ''.
    Only route has --method; evaluate's --posterior adds rows and keeps the answers."""
    if not hasattr(args, "method"):
        return ""
    if args.method != "auto":
        return f"--method {args.method}"
    return "--posterior" if getattr(args, "posterior", False) else ""


def answers_of(data: RoutingData, args: argparse.Namespace) -> np.ndarray | None:
    """The codes of `answer_source`: a command that does not report where they came from."""
    return answer_source(data, args).codes


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
