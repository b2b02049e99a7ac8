"""Answers found without a pattern (`sj.data.detect_answers`) on the dev files.

On the ZeroEval files, whose lines carry the "answers" ZeroEval extracted, it measures how
often the detected answer equals the file's (both normalised; both None counts as equal),
and how often detection finds one where the file has one; the file-level decision must be
on. On the AlpacaEval chat files (no answers) and the shipped quiz it gives the share of
outputs where each form was found; the decision must be off on chat.

The ZeroEval outputs are JSON, so the other forms are also measured on GSM8K rewritten as
prose: each output's "reasoning" alone (a free-text chain of thought with no stated answer),
and the reasoning followed by its "answer" field in each explicit form.

    python benchmarks/answers_dev.py            # about 15 s on one core

Prints one markdown table ("agree": the mean share of an input's detected answers equal to
its most common one; per form: the share of outputs where it was found), then each file's
decision as the CLI reports it; exits 1 where a requirement (gsm8k >= 95% equal; on for
ZeroEval, off for chat) fails.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import smoothie_jax as sj
from smoothie_jax.data import AnswerForm, RoutingData, detect_answers, normalise_answer

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
FILES = {  # name -> (path, the decision required, or None for no requirement)
    "zeroeval_gsm8k": (SHARED / "zeroeval_gsm8k.jsonl.gz", True),
    "zeroeval_crux": (SHARED / "zeroeval_crux.jsonl.gz", True),
    "alpaca_eval_dev": (SHARED / "alpaca_eval_dev.jsonl.gz", False),
    "alpaca_eval_v1_dev": (SHARED / "alpaca_eval_v1_dev.jsonl.gz", False),
    "quiz (examples)": (ROOT / "examples" / "data" / "quiz.jsonl", None),
}
MIN_EQUAL = {"zeroeval_gsm8k": 0.95}  # the bar
PROSE: dict[str, Callable[[str, str], str]] = {  # GSM8K's (reasoning, answer) as prose
    "gsm8k prose: reasoning only": lambda r, a: r,
    "gsm8k prose: + 'The answer is X.'": lambda r, a: f"{r}\n\nThe answer is {a}.",
    "gsm8k prose: + 'Answer: X'": lambda r, a: f"{r}\n\nAnswer: {a}",
    "gsm8k prose: + '#### X'": lambda r, a: f"{r}\n#### {a}",
    "gsm8k prose: + '\\boxed{X}'": lambda r, a: f"{r}\nThe final answer is $\\boxed{{{a}}}$.",
}
_DECODER = json.JSONDecoder(strict=False)


def field(output: str | None, key: str) -> str | None:
    """A string field of the JSON object in a ZeroEval output, or None."""
    found = re.search(rf'"{key}"\s*:\s*', output or "")
    if found is None:
        return None
    try:
        value, _ = _DECODER.raw_decode(output, found.end())
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def as_prose(data: RoutingData, write: Callable[[str, str], str]) -> RoutingData:
    """The outputs rewritten from their JSON fields; None where one is missing."""
    outputs = []
    for row in data.outputs:
        pairs = [(field(o, "reasoning"), field(o, "answer")) for o in row]
        outputs.append([None if r is None or a is None else write(r, a) for r, a in pairs])
    return RoutingData(data.instructions, data.models, outputs, answers=data.answers)


def versus_file(data: RoutingData, found: list[list[str | None]]) -> tuple[float, float]:
    """(share equal to the file's answers, share found where the file has one), over the
    outputs given."""
    equal = given = has = has_found = 0
    for outputs, theirs, ours in zip(data.outputs, data.answers, found):
        for text, a, b in zip(outputs, theirs, ours):
            if text is not None:
                given += 1
                equal += normalise_answer(a) == b
                has += a is not None
                has_found += a is not None and b is not None
    return equal / given, has_found / max(has, 1)


def row(name: str, data: RoutingData) -> tuple[list[str], sj.data.AnswerDetection, float]:
    start = time.perf_counter()
    found = detect_answers(data.outputs)
    seconds = time.perf_counter() - start
    equal, recall = (None, None) if data.answers is None else versus_file(data, found.answers)
    cells = [name, f"{found.n_outputs:,}"]
    cells += ["-" if equal is None else f"{equal:.1%}", "-" if recall is None else f"{recall:.1%}"]
    cells += ["ON" if found.on else "off", f"{found.agreement:.0%}"]
    cells += [f"{found.shares.get(form, 0.0):.1%}" for form in AnswerForm]
    cells += [f"{1 - sum(found.shares.values()):.1%}", f"{seconds:.1f}"]
    return cells, found, -1.0 if equal is None else equal


def main() -> int:
    header = ["file", "outputs", "= file's", "found where file has", "decision", "agree"]
    header += [form.value for form in AnswerForm] + ["none", "s"]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    failures, notes = [], []
    gsm8k = None
    for name, (path, want_on) in FILES.items():
        data = sj.data.read_routing(path)
        gsm8k = data if name == "zeroeval_gsm8k" else gsm8k
        cells, found, equal = row(name, data)
        print("| " + " | ".join(cells) + " |")
        notes.append(f"{name}: {found.describe()}")
        if want_on is not None and found.on != want_on:
            failures.append(f"{name}: detection is {'on' if found.on else 'off'}")
        if name in MIN_EQUAL and equal < MIN_EQUAL[name]:
            failures.append(f"{name}: {equal:.1%} equal to the file's < {MIN_EQUAL[name]:.0%}")
    for name, write in PROSE.items():
        cells, found, _ = row(name, as_prose(gsm8k, write))
        print("| " + " | ".join(cells) + " |")
        notes.append(f"{name}: {found.describe()}")
    print("\n" + "\n".join(notes))
    for failure in failures:
        print(f"FAIL {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
