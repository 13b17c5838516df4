"""Is system B better than system A on the same queries? Paired intervals and McNemar's test.

Two systems scored on the same queries are compared query by query: the
difference of their mean scores gets a paired bootstrap 95% interval (the
queries are resampled together, so what both get right or wrong cancels), and
when the scores are right/wrong, McNemar's exact test gives the p-value of the
discordant pairs. A difference whose interval contains 0 is a tie.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from memory import InputError

#: Resamples of the paired bootstrap.
BOOTSTRAP_REPS = 10_000


@dataclass(frozen=True)
class PairedDifference:
    """``mean(b) − mean(a)`` over the same queries, with its uncertainty.

    Attributes
    ----------
    difference : float
        ``mean(b) − mean(a)``; for right/wrong scores, B's accuracy minus A's.
    low, high : float
        The paired bootstrap interval of ``difference`` at ``level``.
    p_value : float or None
        McNemar's exact two-sided p-value when the scores are right/wrong
        (0/1), else ``None``.
    n : int
        Queries.
    a_only, b_only : int or None
        For right/wrong scores: queries only A gets right, and only B.
    level : float
        The interval's coverage, 0.95 unless asked otherwise.
    """

    difference: float
    low: float
    high: float
    p_value: float | None
    n: int
    a_only: int | None = None
    b_only: int | None = None
    level: float = 0.95

    @property
    def tie(self) -> bool:
        """The interval contains 0: neither system is shown better."""
        return self.low <= 0.0 <= self.high

    @property
    def verdict(self) -> str:
        """``"tie"``, ``"B better"`` or ``"A better"``, from the interval."""
        return "tie" if self.tie else ("B better" if self.difference > 0 else "A better")

    def to_dict(self, digits: int = 4) -> dict[str, Any]:
        """A JSON-ready dict (rounded to ``digits``)."""
        out: dict[str, Any] = {"difference": round(self.difference, digits),
                               f"interval_{round(100 * self.level)}": [round(self.low, digits),
                                                                       round(self.high, digits)],
                               "p_value": None if self.p_value is None else float(f"{self.p_value:.4g}"),
                               "n": self.n, "verdict": self.verdict}
        if self.a_only is not None:
            out.update(a_only=self.a_only, b_only=self.b_only)
        return out

    def __str__(self) -> str:
        p = "" if self.p_value is None else f", McNemar p = {self.p_value:.3g}"
        return (f"{self.difference:+.4f} [{self.low:+.4f}, {self.high:+.4f}] "
                f"({round(100 * self.level)}% paired bootstrap{p}; {self.verdict})")


def _scores(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype == bool:
        return a.astype(np.float64)
    if a.ndim != 1 or not np.issubdtype(a.dtype, np.number):
        raise InputError(f"{name} must be a 1-D array of per-query scores (bool or numbers), got "
                         f"{a.dtype} of shape {a.shape}")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise InputError(f"{name} contains NaN or inf; score every query")
    return a


def mcnemar_p(a_only: int, b_only: int) -> float:
    """McNemar's exact two-sided p-value from the discordant pairs.

    ``2 · P(Binomial(a_only + b_only, ½) ≤ min(a_only, b_only))``, capped at 1.
    """
    from scipy.stats import binom  # the binomial tail the calibration's guarantee uses too

    n = int(a_only) + int(b_only)
    if n == 0:
        return 1.0
    return float(min(1.0, 2.0 * binom.cdf(min(a_only, b_only), n, 0.5)))


def paired_difference(a: Any, b: Any, *, level: float = 0.95, reps: int = BOOTSTRAP_REPS,
                      seed: int = 0) -> PairedDifference:
    """The paired bootstrap interval of ``mean(b) − mean(a)``, and McNemar's p for right/wrong scores.

    Parameters
    ----------
    a, b : array-like of shape (n,)
        Per-query scores of the two systems on the same queries, in the same
        order: booleans (right/wrong) or numbers (a mistake's severity, say).
    level : float, default 0.95
    reps : int, default 10,000
        Bootstrap resamples.
    seed : int, default 0
        The resampling is seeded, so the interval is reproducible.

    Returns
    -------
    PairedDifference

    Raises
    ------
    InputError
        The two do not have the same length, are empty, or hold NaN.
    """
    sa, sb = _scores(a, "a"), _scores(b, "b")
    if sa.shape != sb.shape:
        raise InputError(f"the two systems must be scored on the same queries: got {len(sa)} and {len(sb)} scores")
    if not len(sa):
        raise InputError("no queries to compare")
    if not 0 < level < 1:
        raise InputError(f"level must be strictly between 0 and 1, got {level!r}")
    d = sb - sa
    rng = np.random.default_rng(seed)
    values, counts = np.unique(d, return_counts=True)
    n = len(d)
    if len(values) <= 256:  # resample the counts of each distinct difference: exact and cheap
        means = rng.multinomial(n, counts / n, size=reps) @ values / n
    else:
        means = np.concatenate([d[rng.integers(0, n, (min(256, reps - i), n))].mean(1)
                                for i in range(0, reps, 256)])
    tail = 100 * (1 - level) / 2
    low, high = (float(v) for v in np.percentile(means, [tail, 100 - tail]))
    binary = bool(np.all(np.isin(sa, (0.0, 1.0))) and np.all(np.isin(sb, (0.0, 1.0))))
    a_only = int(np.sum((sa == 1) & (sb == 0))) if binary else None
    b_only = int(np.sum((sa == 0) & (sb == 1))) if binary else None
    p = mcnemar_p(a_only, b_only) if binary else None  # type: ignore[arg-type]
    return PairedDifference(float(d.mean()), low, high, p, n, a_only, b_only, level)
