"""Griffe extension: show the docstrings' `>>>` examples as highlighted code blocks.

The library's docstrings end with a bare doctest (no "Examples:" heading), which Markdown
would run together into one paragraph. Each run of lines from a `>>>` line to the next
blank line is wrapped in a ```` ```pycon ```` fence before the docstring is parsed; the
source files are left as they are, so `tests/test_doctests.py` still runs them.
"""

from __future__ import annotations

from typing import Any

import griffe


def fence_doctests(text: str) -> str:
    """Wraps each doctest block of `text` (a `>>>` line up to a blank line) in a fence.

    Tested in `tests/test_docs.py` (an example here would itself be a doctest).
    """
    out: list[str] = []
    indent: str | None = None  # the open block's indentation; None outside a block
    for line in text.splitlines():
        stripped = line.lstrip()
        if indent is None and stripped.startswith(">>>"):
            indent = line[: len(line) - len(stripped)]
            out.append(f"{indent}```pycon")
        elif indent is not None and not stripped:
            out.append(f"{indent}```")
            indent = None
        out.append(line)
    if indent is not None:
        out.append(f"{indent}```")
    return "\n".join(out)


class DoctestFences(griffe.Extension):
    """Fences the doctests of every object's docstring as it is loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
