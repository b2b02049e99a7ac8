"""Progress on stderr: one small bar for every long loop of the library.

A `Progress` draws a tqdm bar on stderr when asked for and tqdm is installed; asked for
without tqdm, it prints one line saying how much work there is; not asked for, it does
nothing. Plain `tqdm`, not `tqdm.auto`: the notebook bar warns where ipywidgets is missing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

Item = TypeVar("Item")


class Progress:
    """A progress bar over `total` units of work; a context manager, closed on exit.

    Args:
        total: the units of work (rows, texts, ensembles).
        desc: the bar's label, e.g. "routing".
        enabled: draw the bar (False: do nothing at all).
        unit: what one unit is called, e.g. "row".

    >>> with Progress(3, "routing", enabled=False) as bar:
    ...     [x for x in bar.track("abc")]
    ['a', 'b', 'c']
    """

    def __init__(self, total: int, desc: str, *, enabled: bool, unit: str = "row") -> None:
        self.bar: Any = None
        if not enabled:
            return
        try:
            from tqdm import tqdm
        except ImportError:
            print(f"{desc}: {total} {unit}s (install tqdm for a progress bar)", file=sys.stderr)
        else:
            self.bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr)

    def update(self, n: int = 1) -> None:
        """Marks `n` more units done."""
        if self.bar is not None:
            self.bar.update(n)

    def track(self, items: Iterable[Item]) -> Iterator[Item]:
        """Yields `items`, marking one unit done after each."""
        for item in items:
            yield item
            self.update()

    def close(self) -> None:
        """Closes the bar (idempotent)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
