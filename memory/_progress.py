"""Progress that works in a terminal and in a log: a bar on a terminal, lines otherwise.

A bar (tqdm) redraws itself, which a log file or a pipe cannot show, so when
stderr is not a terminal each stage prints one line when it starts and one
when it ends, with its count, time and rate, and long stages a line at each
quarter.  Training prints one line per epoch either way (:func:`progress_line`).
"""

from __future__ import annotations

import sys
import time
from typing import Any

__all__ = ["Progress", "progress_line"]


def progress_line(message: str) -> None:
    """One progress line on stderr, ``supersub: MESSAGE``."""
    print(f"supersub: {message}", file=sys.stderr, flush=True)


class Progress:
    """Progress of one stage over ``total`` units (images, batches, bytes).

    Parameters
    ----------
    total : int or None
        Units to go, if known.
    desc : str
        What the stage does ("embed tiny-imagenet-200/train").
    unit : str
        What one unit is.
    enabled : bool
        False shows nothing.
    """

    def __init__(self, total: int | None, desc: str, unit: str = "img", *, enabled: bool = True,
                 unit_scale: bool = False) -> None:
        self.total, self.desc, self.unit, self.done = total, desc, unit, 0
        self.start = time.perf_counter()
        self.bar: Any = None
        self.lines = enabled and not sys.stderr.isatty()
        self._next_quarter = 1
        if enabled and not self.lines:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=unit_scale, file=sys.stderr)
        elif self.lines:
            progress_line(f"{desc}: {'' if total is None else f'{total:,} '}{unit}s ...")

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.lines and self.total and self.done < self.total and self.done * 4 >= self._next_quarter * self.total:
            while self.done * 4 >= self._next_quarter * self.total:
                self._next_quarter += 1
            progress_line(f"{self.desc}: {self.done:,} of {self.total:,} {self.unit}s ({self._elapsed()})")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.lines:
            progress_line(f"{self.desc}: done, {self.done:,} {self.unit}s ({self._elapsed()})")
        self.lines, self.bar = False, None

    def _elapsed(self) -> str:
        seconds = time.perf_counter() - self.start
        rate = f", {self.done / seconds:,.0f} {self.unit}s/s" if seconds > 0 and self.done else ""
        return f"{seconds:.1f} s{rate}"

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
