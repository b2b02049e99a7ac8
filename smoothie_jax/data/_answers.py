"""Final answers: extracted from outputs, normalised, and coded as integers per input.

Exact-answer tasks (maths, trivia, multiple choice) can be routed on agreement of final
answers instead of (or beside) the embeddings of whole outputs. A routing file gives them
in an `"answers"` field (`{model: answer or null}`), they are extracted from the outputs
with a regular expression (the last match), or `detect_answers` finds the usual forms in
which models state them (`AnswerForm`) and says whether a file has answers at all. Two
answers are the same answer when their normalised texts are equal: case, surrounding space
and punctuation, thousands separators, the spelling of numbers (`18`, `18.0`, `$18`) and
the quotes and spacing of Python literals (`['a', "b"]`, `["a","b"]`) do not matter.

`answer_codes` turns them into the integer array the router reads: (n_samples,
n_models), equal codes in a row for the same answer, -1 where none was extracted.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

NO_ANSWER = -1
_EDGE = re.compile(r"^[\s\"'`*_.,:;!?()\[\]{}$]+|[\s\"'`*_.,:;!?()\[\]{}]+$")
_NUMBER = re.compile(r"^[-+]?(\d{1,3}(,\d{3})+|\d+)?(\.\d+)?%?$")
_SIGNED_DOLLARS = re.compile(r"^([-+])\$")
_MAX_LITERAL = 2_000  # longer texts are not parsed as Python literals (ast's cost grows)

# The file-level decision (`detect_answers`): detected answers are used only where the
# data show that the outputs state answers. Set on the dev files (benchmarks/answers_dev.py):
# explicit forms are on 98-100% of ZeroEval outputs, 0.1-1.6% of AlpacaEval chat outputs and
# 19% of examples/data/quiz.jsonl; any form, the final number included, on 3.5-5% of chat,
# 41% of the quiz and 71% of GSM8K chains of thought with their stated answer cut off (a
# third of those numbers are not the answer: left off). Models' answers agree on 68-89% of
# ZeroEval; numbers that never repeat across models (generated test files) give 1/m.
MIN_EXPLICIT_SHARE = 0.6  # explicit forms (all but NUMBER) on a clear majority of outputs,
MIN_FOUND_SHARE = 0.9  # or any form, the bare final number included, on nearly all,
MIN_AGREEMENT = 0.5  # and models agree: mean share of a row's answers that are its modal one

# What one output's answer may look like (`extract_answers`).
TAIL_CHARS = 80  # text allowed after an "answer is" / option sentence ("I hope it helps!")
MAX_ANSWER_WORDS = 8  # longer "answers" are prose ("the answer is that it depends on ...")
FINAL_SENTENCE_CHARS = 100  # a bare final number is read from a final sentence this short


def _literal(text: str) -> object:
    """The value of a quoted string or bracketed Python/JSON literal; `text` otherwise."""
    if not text or text[0] not in "[({'\"" or len(text) > _MAX_LITERAL:
        return text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def normalise_answer(answer: object, *, given: bool = False) -> str | None:
    """The comparable form of one answer; None for a missing one.

    An empty or punctuation-only text is None too unless `given`, then it is an answer
    like any other (the empty one written `''`). Why both: an answer field a file gives
    is what the model answered, however short (a CRUXEval function may return '' or '.':
    173 of CRUXEval's 246 blank answers and 50 of its 81 punctuation-only ones are right),
    null is none; an extraction from free text that matched only punctuation found nothing.

    >>> normalise_answer(" $1,800.00. "), normalise_answer("Paris"), normalise_answer("")
    ('1800', 'paris', None)
    >>> normalise_answer("", given=True), normalise_answer(" ! ? ", given=True)
    ("''", '! ?')
    """
    if answer is None or isinstance(answer, bool):
        return None if answer is None else str(answer).lower()
    if isinstance(answer, (int, float)):
        answer = repr(answer)
    raw = str(answer).strip()
    if not raw:
        return "''" if given else None
    value = _literal(raw)
    canonical = value if isinstance(value, str) else repr(value)
    text = _EDGE.sub("", " ".join(canonical.split())).lower()
    if not text:  # '' or [] or '.' written as a literal is an answer (CRUXEval's)
        if value is raw:
            return " ".join(raw.split()).lower() if given else None
        return " ".join(repr(value).split()).lower()
    text = _SIGNED_DOLLARS.sub(r"\1", text.replace("\u2212", "-"))  # "-$21" is -21
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


class AnswerForm(str, enum.Enum):
    """How an output states its final answer, in `extract_answers`' order of precedence:
    the explicit forms first, the bare final number last.

    >>> AnswerForm("####") is AnswerForm.HASHES, AnswerForm.NUMBER in EXPLICIT
    (True, False)
    """

    JSON = "json"  # a JSON object's "answer" field (ZeroEval: {"reasoning", "answer"})
    BOXED = "boxed"  # the last \boxed{...}
    HASHES = "####"  # GSM8K's "#### 18"
    STATEMENT = "answer is"  # "The (final) answer is X", "Answer: X", near the end
    OPTION = "option"  # a final choice: "(B)", "Answer: C", "the correct option is D"
    NUMBER = "final number"  # the last number of a short final sentence


EXPLICIT = frozenset(AnswerForm) - {AnswerForm.NUMBER}

_JSON_KEY = re.compile(r"""["']answer["']\s*:\s*""", re.I)
_JSON = json.JSONDecoder(strict=False)  # models write raw newlines inside strings
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_HASHES = re.compile(r"^[ \t]*####[ \t]*(\S[^\n]*?)[ \t]*$", re.M)
_STATEMENT = re.compile(
    r"(?<![\"'`])\b(?:final\s+|correct\s+)?answer[*_]*\s*"
    r"(?:is|would\s+be|will\s+be|should\s+be|=|:)[*_]*[ \t]*:?[ \t]*(\S[^\n]*)",
    re.I,
)
_CHOICE = re.compile(  # "the correct option is D", "I would choose (B)": then the letter
    r"\b(?:(?:correct|right|best|final)\s+(?:option|choice)\s+(?:is|would\s+be)"
    r"|I\s+(?:would\s+|will\s+)?(?:choose|pick|select|go\s+with)"
    r"(?:\s+(?:option|choice|answer))?)[*_]*[ \t]*:?[ \t]*(\S[^\n]*)",
    re.I,
)
_LETTER = re.compile(  # "(B)", "[B]", "B", "B.", "B)", then optionally the option's text
    r"^(?:[(\[]([A-J])[)\]]|([A-J])[).:]?(?=\s*$)|([A-J])[).:](?=\s))"
)
_FINAL_CHOICE = re.compile(r"^(?:[(\[]?[A-J][)\].:]?|\([A-J]\)\s.{0,40})$")
_SENTENCE_END = re.compile(r"(?<=\S)\.(?=\s|$)|[!?;](?=\s|$)")
_NUM = r"[-\u2212]?\$?[-\u2212]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?%?"
_NUM_IN_TEXT = re.compile(rf"(?<![\w.,/:$\u2212-]){_NUM}(?![\w/]|[.,:]\d)")
_UNITS = re.compile(rf"^({_NUM})\s+[a-z][A-Za-z/ -]*$")  # "55 meters per second", not a title
_MARKUP = re.compile(r"\\(?:text|mathrm|textbf)\{([^{}]*)\}|(\*\*|__)(.+?)\2|\\[,!; ]")
_LIST_MARK = re.compile(r"^(?:\d+[.)]|[-+•])\s+")
_MATH = re.compile(r"^\$+(.*?)\$+$|^\\\((.*)\\\)$|^\\\[(.*)\\\]$", re.S)


def _braced(text: str, start: int) -> str | None:
    """What lies between the brace at text[start - 1] and its match (nested braces)."""
    depth = 1
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start:i]
    return None


def _tidy(answer: str) -> str:
    """An extracted span without markup; of an equation, its last side; a number with only
    unit words after it, the number ("55 meters per second" -> "55")."""
    answer = answer.strip()
    boxed = list(_BOXED.finditer(answer))
    if boxed:
        answer = _braced(answer, boxed[-1].end()) or answer
    math_ = _MATH.match(answer.strip())
    if math_:
        answer = next(g for g in math_.groups() if g is not None)
    answer = _MARKUP.sub(lambda m: m.group(1) or m.group(3) or "", answer).strip()
    if "=" in answer and answer[:1] not in "[({'\"":  # "x = 5", "120 + 30 = 150"
        answer = answer.rsplit("=", 1)[1].strip() or answer
    units = _UNITS.match(answer)
    return units.group(1) if units and len(answer.split()) <= 5 else answer


def _short(answer: str) -> str | None:
    """The answer if it reads as one (a few words), else None."""
    return answer if answer and len(answer.split()) <= MAX_ANSWER_WORDS else None


def _sentence(text: str, start: int) -> tuple[str, int]:
    """From `start` to the end of its sentence (or line): the span and where it ends."""
    line_end = text.find("\n", start)
    line_end = len(text) if line_end < 0 else line_end
    end = _SENTENCE_END.search(text, start, line_end)
    stop = end.start() if end else line_end
    return text[start:stop], stop


def _near_end(text: str, stop: int) -> bool:
    return len(text[stop:].strip(" \t\n.*_`)")) <= TAIL_CHARS


def _json_answer(text: str) -> tuple[str, AnswerForm] | None:
    """The "answer" field of the last JSON object that has one (fenced, embedded or whole)."""
    for key in reversed(list(_JSON_KEY.finditer(text))):
        if "{" not in text[: key.start()]:
            continue
        try:
            value, _ = _JSON.raw_decode(text, key.end())
        except ValueError:  # an unescaped quote inside: up to the line's closing quote
            rest = text[key.end() :].split("\n", 1)[0].replace('\\"', '"')
            loose = re.match(r"""^(["'])(.*)\1\s*,?\s*}?\s*$""", rest)
            value = loose.group(2) if loose else None
        if isinstance(value, (list, dict)):
            value = repr(value)  # as Python writes it, like the answers given as text
        elif value is not None and not isinstance(value, str):
            value = json.dumps(value)
        if isinstance(value, str) and not value.strip():  # "answer": "" is the empty answer
            return "''", AnswerForm.JSON
        if value:
            return _tidy(value), AnswerForm.JSON
    return None


def _boxed(text: str) -> tuple[str, AnswerForm] | None:
    boxes = list(_BOXED.finditer(text))
    inside = _braced(text, boxes[-1].end()) if boxes else None
    return None if inside is None else (_tidy(inside), AnswerForm.BOXED)


def _hashes(text: str) -> tuple[str, AnswerForm] | None:
    """GSM8K's "#### X": on the last line, or a number anywhere (a heading is not one)."""
    found = list(_HASHES.finditer(text))
    if not found:
        return None
    value = _short(_tidy(found[-1].group(1)))
    on_last_line = not text[found[-1].end() :].strip()
    if value is None or not (on_last_line or re.fullmatch(_NUM, value)):
        return None
    return value, AnswerForm.HASHES


def _letter(answer: str) -> str | None:
    match = _LETTER.match(answer)
    return next(g for g in match.groups() if g) if match else None


def _statement(text: str) -> tuple[str, AnswerForm] | None:
    """'The answer is X' / 'Answer: X' in a sentence that ends the output; OPTION where X
    is an option letter."""
    found = list(_STATEMENT.finditer(text))
    if not found:
        return None
    last = found[-1]  # "Final Answer: The final answer is $18$." holds a second one
    while (inner := _STATEMENT.search(text, last.start(1), last.end(1))) is not None:
        last = inner
    start = last.start(1)
    span, stop = _sentence(text, start)
    if not _near_end(text, stop):
        return None
    letter = _letter(_tidy(text[start : start + 60].split("\n")[0]))
    if letter is not None:
        return letter, AnswerForm.OPTION
    answer = _short(_tidy(span))
    return None if answer is None else (answer, AnswerForm.STATEMENT)


def _last_line(text: str) -> str:
    """The last non-empty line without markdown marks ("" where it holds nothing else)."""
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip(" \t*_#>`") if lines else ""


def _option(text: str) -> tuple[str, AnswerForm] | None:
    """A final choice: the last line is only an option, or the output ends on "the
    correct option is D" / "I choose (B)"."""
    last = _last_line(text)
    letter = _letter(last) if _FINAL_CHOICE.match(last) else None
    found = list(_CHOICE.finditer(text)) if letter is None else []
    if found:
        start = found[-1].start(1)
        if _near_end(text, _sentence(text, start)[1]):
            letter = _letter(_tidy(text[start : start + 60].split("\n")[0]))
    return None if letter is None else (letter, AnswerForm.OPTION)


def _number(text: str) -> tuple[str, AnswerForm] | None:
    """The last number of the final sentence of the last line, if that sentence is short."""
    line = _LIST_MARK.sub("", _last_line(text))  # "3. Walk daily." ends a list, not a sum
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", line) if s.strip()]
    if not sentences or len(sentences[-1]) > FINAL_SENTENCE_CHARS:
        return None
    numbers = _NUM_IN_TEXT.findall(sentences[-1])
    return (numbers[-1], AnswerForm.NUMBER) if numbers else None


# Each finder: the span of its form (tidied) and the form, or None. In precedence order.
_FINDERS: tuple[Callable[[str], tuple[str, AnswerForm] | None], ...] = (
    _json_answer,
    _boxed,
    _hashes,
    _statement,  # STATEMENT, or OPTION for "the answer is (B)"
    _option,
    _number,
)


def _extract(text: str | None) -> tuple[str | None, AnswerForm | None]:
    if not text or not text.strip():
        return None, None
    for find in _FINDERS:
        found = find(text)
        # A JSON answer field is given, not found in prose: '.' there is an answer.
        given = found is not None and found[1] is AnswerForm.JSON
        answer = None if found is None else normalise_answer(found[0], given=given)
        if answer is not None:
            return answer, found[1]
    return None, None


def extract_answers(
    texts: Sequence[str | None],
) -> tuple[list[str | None], list[AnswerForm | None]]:
    """Each output's final answer, found without a pattern, and the form it was stated in.

    Forms, in order of precedence (the first found wins; see `AnswerForm`): a JSON
    object's "answer" field, the last `\\boxed{...}`, "#### X", "the (final) answer is X"
    or "Answer: X" in the output's closing sentences (an option letter there is OPTION),
    a final choice ("(B)" alone on the last line, "the correct option is D"), and the last
    number of a short final sentence. Answers are normalised (`normalise_answer`); a number
    followed only by unit words is the number.

    Args:
        texts: outputs; None (a model that did not answer) finds nothing.

    Returns:
        Per text, the normalised answer or None, and its `AnswerForm` or None.

    >>> extract_answers(['{"answer": "$18"}', "So 3 + 4 = 7.", "Plain prose here."])
    (['18', '7', None], [<AnswerForm.JSON: 'json'>, <AnswerForm.NUMBER: 'final number'>, None])
    """
    found = [_extract(text) for text in texts]
    return [answer for answer, _ in found], [form for _, form in found]


@dataclasses.dataclass(frozen=True)
class AnswerDetection:
    """Answers found in a file's outputs, and whether they are to be used.

    Attributes:
        answers: n rows of m normalised answers (None where none was found).
        forms: n rows of m `AnswerForm`s (None where none was found).
        on: whether the data show that the outputs state answers (see `detect_answers`).
        shares: the share of the outputs given (not None) in each form found.
        agreement: the mean share of a row's answers that equal its most common one (rows
            with two answers or more), 0.0 where no row has two.
        n_outputs: the outputs given.
    """

    answers: list[list[str | None]]
    forms: list[list[AnswerForm | None]]
    on: bool
    shares: dict[AnswerForm, float]
    agreement: float
    n_outputs: int

    @property
    def explicit_share(self) -> float:
        """The share of outputs with an explicit form (all but the bare final number)."""
        return sum(share for form, share in self.shares.items() if form in EXPLICIT)

    def describe(self) -> str:
        """One line: the forms found and on what share of outputs, and the decision.

        >>> detect_answers([["Answer: 4", "Answer: 4", "Answer: 5"]]).describe()
        'answer forms found: answer is 100% of 3 outputs; models agree on 67%; used'
        """
        found = ", ".join(f"{f.value} {_percent(s)}" for f, s in self.shares.items())
        text = f"answer forms found: {found or 'none'} of {self.n_outputs:,} outputs"
        if self.shares:
            text += f"; models agree on {_percent(self.agreement)}"
        if self.on:
            return text + "; used"
        if self.explicit_share < MIN_EXPLICIT_SHARE and sum(self.shares.values()) < (
            MIN_FOUND_SHARE
        ):
            why = (
                f"explicit forms on fewer than {MIN_EXPLICIT_SHARE:.0%} of outputs and any "
                f"form on fewer than {MIN_FOUND_SHARE:.0%}"
            )
        else:
            why = f"models agree on less than {MIN_AGREEMENT:.0%}"
        return f"{text}; not used: {why}"


def _percent(share: float) -> str:
    return "<1%" if 0 < share < 0.005 else f"{share:.0%}"


def _agreement(answers: list[list[str | None]]) -> float:
    shares = []
    for row in answers:
        given = [a for a in row if a is not None]
        if len(given) >= 2:
            shares.append(Counter(given).most_common(1)[0][1] / len(given))
    return float(np.mean(shares)) if shares else 0.0


def detect_answers(outputs: Sequence[Sequence[str | None]]) -> AnswerDetection:
    """Finds each output's final answer (`extract_answers`) and decides, for the whole
    file, whether its outputs state answers at all.

    On where the models agree (`MIN_AGREEMENT`: a vote on answers needs answers that
    repeat) and either explicit forms are found on a clear majority of the outputs
    (`MIN_EXPLICIT_SHARE`) or some form, the bare final number included, on nearly all of
    them (`MIN_FOUND_SHARE`: short replies to sums). Off on free prose (chat), where an
    "answer is" or a closing number is incidental.

    Args:
        outputs: n rows of m outputs, None where a model did not answer.

    Returns:
        The answers, their forms and the decision (`AnswerDetection.on`).

    >>> detect_answers([["#### 12", "#### 12", "so 13"], ["#### 3", "#### 3", "#### 3"]]).on
    True
    """
    rows = [list(row) for row in outputs]
    flat = [text for row in rows for text in row]
    answers, forms = extract_answers(flat)
    n_outputs = sum(text is not None for text in flat)
    counts = Counter(form for form in forms if form is not None)
    shares = {form: counts[form] / n_outputs for form in AnswerForm if counts[form]}
    widths = np.cumsum([0, *map(len, rows)])
    answer_rows = [answers[a:b] for a, b in zip(widths[:-1], widths[1:])]
    form_rows = [forms[a:b] for a, b in zip(widths[:-1], widths[1:])]
    agreement = _agreement(answer_rows)
    explicit = sum(share for form, share in shares.items() if form in EXPLICIT)
    on = agreement >= MIN_AGREEMENT and (
        explicit >= MIN_EXPLICIT_SHARE or sum(shares.values()) >= MIN_FOUND_SHARE
    )
    return AnswerDetection(answer_rows, form_rows, on, shares, agreement, n_outputs)


def answer_codes(answers: Sequence[Sequence[object]]) -> np.ndarray:
    """Integer codes of each input's answers: equal normalised answers share a code.

    Args:
        answers: n rows of m answers (texts, numbers or None).

    Returns:
        (n, m) int32: codes 0, 1, ... in order of first appearance in each row, and
        `NO_ANSWER` (-1) where an answer is missing (None). Every text is an answer, the
        empty one too (`normalise_answer(..., given=True)`).

    >>> answer_codes([["18", "18.0", None, "17", ""]]).tolist()
    [[0, 0, -1, 1, 2]]
    """
    rows = [list(row) for row in answers]
    m = len(rows[0]) if rows else 0
    if any(len(row) != m for row in rows):
        raise ValueError("answers must have the same number of models in every row")
    codes = np.full((len(rows), m), NO_ANSWER, np.int32)
    for i, row in enumerate(rows):
        seen: dict[str, int] = {}
        for j, answer in enumerate(row):
            text = normalise_answer(answer, given=True)
            if text is not None:
                codes[i, j] = seen.setdefault(text, len(seen))
    return codes
