"""The routing data schema: `RoutingData`, `DataError`, and the collector of bad lines.

The routing format is JSON lines, gzipped or not, one input per line:

    {"idx": 0, "instruction": "...", "outputs": {"model_a": "...", ...},
     "scores": {"model_a": 0.73, "model_b": null, ...}, "reference_output": "...", ...}

`outputs` holds each model's answer (the first line fixes the models and their order).
An empty or whitespace-only output is an answer (a poor one) and is kept. A `null` or
absent output means that model did not answer that input: `RoutingData.observed` is False
there and the output None. A later line may not name a model absent from line 1.
`scores` holds optional quality labels used only for evaluation, `answers` optional final
answers of exact-answer tasks (`{model: answer or null}`, see `_answers`), and any other
key is kept per line in `RoutingData.extra`. A query file has instructions only. Malformed files
raise `DataError` before any embedding work starts; its message lists every bad line (the
first `MAX_REPORTED`, then a count of the rest), one `file:line: problem` a line.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence

import numpy as np

from .._validate import MIN_MODELS
from ._answers import answer_codes, extract_answer, normalise_answer

RESERVED = ("idx", "instruction", "outputs", "scores", "answers")  # the format's own keys
MAX_REPORTED = 20  # malformed lines listed in one DataError; the rest are counted

PathLike = str | os.PathLike


class DataError(ValueError):
    """A data file is malformed. The message reads `file:line: problem`, one line per
    problem when a file has several (see `MAX_REPORTED`); `problems` holds them all."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems) or (message,)


class Problems:
    """Collects the malformed lines of one file, so one pass reports them all."""

    def __init__(self, path: PathLike) -> None:
        self.path = path
        self.found: list[str] = []

    def add(self, error: DataError) -> None:
        self.found.extend(error.problems)

    def raise_any(self) -> None:
        if not self.found:
            return
        if len(self.found) == 1:
            raise DataError(self.found[0])
        shown = self.found[:MAX_REPORTED]
        lines = [f"{self.path}: {len(self.found)} problems; all of them, to fix in one pass:"]
        lines += shown
        if len(self.found) > len(shown):
            lines.append(f"... and {len(self.found) - len(shown)} more problems")
        raise DataError("\n".join(lines), self.found)


def data_error(path: PathLike, line: int | None, problem: str) -> DataError:
    """A `DataError` reading `file:line: problem`, or `file: problem` without a line."""
    where = f"{path}:{line}" if line is not None else str(path)
    return DataError(f"{where}: {problem}")


@dataclasses.dataclass(frozen=True, eq=False)
class RoutingData:
    """Inputs, the models' outputs for them, and optional quality scores.

    Rows are inputs and columns follow `models`. After construction `ids` and `extra`
    are always lists of length n (filled with 1-based positions and empty dicts when
    not given), and `scores` is a read-only float64 copy.

    Attributes:
        instructions: the n input texts.
        models: the m model names; columns of `outputs` and `scores` follow this order.
        outputs: n rows of m output texts, or None for a query file (instructions only).
            An entry is None where that model did not answer that input (see `observed`).
        scores: (n, m) float64 quality labels, NaN where unknown, or None.
        ids: per-input identifiers (a line's `idx`, else its line number).
        extra: other keys of each line, e.g. `reference_output`, written back unchanged.
        answers: n rows of m normalised final answers (None where none), or None.

    >>> data = RoutingData(["2+2?"], ("a", "b", "c"), [["4", None, ""]])
    >>> data.lengths().tolist(), data.observed.tolist()
    ([[1, 0, 0]], [[True, False, True]])
    """

    instructions: list[str]
    models: Sequence[str] = ()  # stored as a tuple
    outputs: list[list[str | None]] | None = None
    scores: np.ndarray | None = None
    ids: list | None = None
    extra: list[dict] | None = None
    answers: list[list[object]] | None = None  # any JSON value; stored normalised (str | None)

    def __post_init__(self) -> None:
        # Copies, so a caller mutating its own lists cannot break the checked invariants.
        if isinstance(self.instructions, str) or not all(
            isinstance(s, str) for s in self.instructions
        ):
            raise ValueError("instructions must be a list of strings")
        n = len(self.instructions)
        set_ = object.__setattr__  # frozen: normalise fields once, here
        set_(self, "instructions", list(self.instructions))
        set_(self, "models", tuple(self.models))
        if len(set(self.models)) != len(self.models):
            dup = sorted({m for m in self.models if self.models.count(m) > 1})
            raise ValueError(f"models must be distinct; repeated: {dup}")
        m = len(self.models)
        if self.outputs is not None:
            if m < MIN_MODELS:
                raise ValueError(f"outputs has {m} models; Smoothie needs at least {MIN_MODELS}")
            outputs = [list(row) for row in self.outputs]
            if len(outputs) != n or any(len(row) != m for row in outputs):
                raise ValueError(
                    f"outputs must be {n} rows of {m} texts (one per instruction and model)"
                )
            if not all(o is None or isinstance(o, str) for row in outputs for o in row):
                raise ValueError("outputs must be texts, or None where a model did not answer")
            set_(self, "outputs", outputs)
        if self.scores is not None:
            scores = np.array(self.scores, dtype=np.float64)
            if scores.shape != (n, m):
                raise ValueError(f"scores must have shape (n, m) = {(n, m)}, got {scores.shape}")
            scores.flags.writeable = False
            set_(self, "scores", scores)
        if self.answers is not None:
            answers = [[normalise_answer(a, given=True) for a in row] for row in self.answers]
            if len(answers) != n or any(len(row) != m for row in answers):
                raise ValueError(f"answers must be {n} rows of {m} (one per input and model)")
            set_(self, "answers", answers)
        ids = list(range(1, n + 1)) if self.ids is None else list(self.ids)
        extra = [{} for _ in range(n)] if self.extra is None else [dict(e) for e in self.extra]
        if len(ids) != n or len(extra) != n:
            raise ValueError(f"ids and extra need one entry per instruction ({n})")
        for e in extra:
            clash = [k for k in RESERVED if k in e]
            if clash:
                raise ValueError(f"extra keys {clash} clash with the format's own keys")
        set_(self, "ids", ids)
        set_(self, "extra", extra)

    def __len__(self) -> int:
        return len(self.instructions)

    @property
    def observed(self) -> np.ndarray | None:
        """(n, m) bool, read-only: True where model j answered input i (its output is not
        None); None for a query file."""
        if self.outputs is None:
            return None
        shape = (len(self), len(self.models))
        mask = np.array([[o is not None for o in row] for row in self.outputs], bool)
        mask = mask.reshape(shape)
        mask.flags.writeable = False
        return mask

    def lengths(self) -> np.ndarray:
        """Character lengths of the outputs, (n, m) int64: a cheap baseline router's input.
        0 where a model did not answer.

        Raises:
            ValueError: for a query file, which has no outputs.
        """
        if self.outputs is None:
            raise ValueError("this data has no outputs (a query file)")
        shape = (len(self), len(self.models))
        rows = [[0 if o is None else len(o) for o in row] for row in self.outputs]
        return np.array(rows, np.int64).reshape(shape)

    def answer_codes(self) -> np.ndarray | None:
        """(n, m) int32 answer codes (`answer_codes`): equal in a row for the same final
        answer, -1 where none; None when the data has no answers."""
        return None if self.answers is None else answer_codes(self.answers)

    def with_answers(self, pattern: str) -> RoutingData:
        """The same data with each output's final answer extracted by `pattern` (its last
        match; its first group if it has one), e.g. "answer is (\\d+)"."""
        if self.outputs is None:
            raise ValueError("this data has no outputs (a query file) to extract answers from")
        regex = re.compile(pattern)
        answers = [[extract_answer(o, regex) for o in row] for row in self.outputs]
        return dataclasses.replace(self, answers=answers)

    def subset(self, models: Sequence[str]) -> RoutingData:
        """The same inputs restricted to `models`, in the order given.

        Raises:
            ValueError: a name is unknown or repeated, or fewer than 3 models remain.
        """
        unknown = [name for name in models if name not in self.models]
        if unknown:
            raise ValueError(f"unknown models {unknown}; available: {list(self.models)}")
        cols = [self.models.index(name) for name in models]
        return dataclasses.replace(
            self,
            models=tuple(models),
            outputs=None if self.outputs is None else [[r[c] for c in cols] for r in self.outputs],
            scores=None if self.scores is None else self.scores[:, cols],
            answers=None if self.answers is None else [[r[c] for c in cols] for r in self.answers],
        )
