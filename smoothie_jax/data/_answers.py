"""Final answers: extracted from outputs, normalised, and coded as integers per input.

Exact-answer tasks (maths, trivia, multiple choice) can be routed on agreement of final
answers instead of (or beside) the embeddings of whole outputs. A routing file gives them
in an `"answers"` field (`{model: answer or null}`), or they are extracted from the
outputs with a regular expression (the last match). Two answers are the same answer when
their normalised texts are equal: case, surrounding space and punctuation, thousands
separators and the spelling of numbers (`18`, `18.0`, `$18`) do not matter.

`answer_codes` turns them into the integer array the router reads: (n_samples,
n_models), equal codes in a row for the same answer, -1 where none was extracted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

NO_ANSWER = -1
_EDGE = re.compile(r"^[\s\"'`*_.,:;!?()\[\]{}$]+|[\s\"'`*_.,:;!?()\[\]{}]+$")
_NUMBER = re.compile(r"^[-+]?(\d{1,3}(,\d{3})+|\d+)?(\.\d+)?%?$")


def normalise_answer(answer: object) -> str | None:
    """The comparable form of one answer; None for a missing or empty one.

    >>> normalise_answer(" $1,800.00. "), normalise_answer("Paris"), normalise_answer("")
    ('1800', 'paris', None)
    """
    if answer is None or isinstance(answer, bool):
        return None if answer is None else str(answer).lower()
    if isinstance(answer, (int, float)):
        answer = repr(answer)
    text = _EDGE.sub("", " ".join(str(answer).split())).lower()
    if not text:
        return None
    if _NUMBER.match(text) and any(c.isdigit() for c in text):
        percent = text.endswith("%")
        value = float(text.rstrip("%").replace(",", ""))
        if math.isfinite(value):
            text = str(int(value)) if value == int(value) else repr(value)
            return text + "%" if percent else text
    return text


def extract_answer(output: str | None, pattern: str | re.Pattern[str]) -> str | None:
    """The last match of `pattern` in `output` (its first group, if it has one),
    normalised; None where nothing matches.

    >>> extract_answer("3 + 4 = 7, so 16 - 7 = 9. The answer is 9.", r"answer is (\\S+)")
    '9'
    """
    if output is None:
        return None
    regex = re.compile(pattern) if isinstance(pattern, str) else pattern
    matches = list(regex.finditer(output))
    if not matches:
        return None
    last = matches[-1]
    return normalise_answer(last.group(1) if regex.groups else last.group(0))


def answer_codes(answers: Sequence[Sequence[object]]) -> np.ndarray:
    """Integer codes of each input's answers: equal normalised answers share a code.

    Args:
        answers: n rows of m answers (texts, numbers or None).

    Returns:
        (n, m) int32: codes 0, 1, ... in order of first appearance in each row, and
        `NO_ANSWER` (-1) where an answer is missing or empty.

    >>> answer_codes([["18", "18.0", None, "17"]]).tolist()
    [[0, 0, -1, 1]]
    """
    rows = [list(row) for row in answers]
    m = len(rows[0]) if rows else 0
    if any(len(row) != m for row in rows):
        raise ValueError("answers must have the same number of models in every row")
    codes = np.full((len(rows), m), NO_ANSWER, np.int32)
    for i, row in enumerate(rows):
        seen: dict[str, int] = {}
        for j, answer in enumerate(row):
            text = normalise_answer(answer)
            if text is not None:
                codes[i, j] = seen.setdefault(text, len(seen))
    return codes
