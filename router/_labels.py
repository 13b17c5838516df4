"""Checking the class labels users pass: one string per row, and known to the tree."""

from __future__ import annotations

from typing import Any

import numpy as np

from hierarchy import UnknownClassError
from memory import as_strings

__all__ = ["check_labels"]


def check_labels(y: Any, n: int, known: set[str] | None, what: str = "label") -> np.ndarray:
    """``y`` as an object array of ``n`` strings; with ``known``, every value must be in it.

    Raises
    ------
    UnknownClassError
        A label outside ``known``; the message names the first one and the fix.
    """
    out = np.asarray(as_strings(y, n, "y"), dtype=object)
    if known is not None:
        bad = [v for v in dict.fromkeys(out.tolist()) if v not in known]
        if bad:
            raise UnknownClassError(
                f"unknown {what} {bad[0]!r}: it is not a class of the tree; "
                "add it as a new class ('supersub memory add --label', or add_class in Python) or rebuild the tree"
            )
    return out
