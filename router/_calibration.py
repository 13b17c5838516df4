"""Calibrated probabilities for answers with a promised accuracy, for any model kind.

:func:`calibrate` fits a temperature to the model's class probabilities on a
calibration split (a uniform floor ``q = (1 − ε) p + ε/K``, then ``q^(1/T)``, with
``T`` and ``ε`` of maximum likelihood) and records,
for a grid of each decision rule's parameter, how many calibration queries the
rule would answer wrongly.  :meth:`Calibration.parameter` then chooses the
parameter for a promised accuracy (see :mod:`router._hedging` for the guarantee).

Two rules share the procedure: ``"darts"``, the node maximising
``(gain + λ) · mass`` (Deng et al., CVPR 2012), and ``"threshold"``, the deepest
node whose mass is at least ``τ``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from hierarchy import ClassTree, TreeNodes
from memory import InputError

__all__ = ["RULES", "Calibration", "calibrate", "calibrate_proba", "calibration_from", "calibration_state", "ece",
           "needed", "rule_rows", "temperature_scale"]


#: The decision rules :func:`hedge` knows.
RULES = ("darts", "threshold")


#: The smoothing that keeps a zero probability finite under a temperature.
_EPS = 1e-6


#: DARTS's λ, safest first (a large λ answers near the root), ending at λ = 0.
_LAMBDAS = tuple(float(x) for x in [*np.geomspace(1e4, 1e-3, 141), 0.0])


#: The threshold rule's τ, safest first (τ = 1 answers the root).
_TAUS = tuple(float(x) for x in np.linspace(1.0, 0.0, 201))


def temperature_scale(proba: np.ndarray, temperature: float, floor: float = 0.0) -> np.ndarray:
    """``proba`` with a uniform floor mixed in, then sharpened (``T < 1``) or softened (``T > 1``).

    ``q = (1 − floor) · p + floor / K``, then ``q^(1/T)`` renormalised; shape kept.
    The floor lets a class that a memory's neighbours never voted for keep some
    probability, which a temperature alone cannot give it.
    """
    p = np.asarray(proba, dtype=np.float64)
    q = (1.0 - floor) * p + floor / p.shape[1]
    logp = np.log(q + _EPS) / float(temperature)
    logp -= logp.max(1, keepdims=True)
    out = np.exp(logp)
    return out / out.sum(1, keepdims=True)


#: The uniform floors tried with each temperature. A memory's probabilities need large
#: ones: a kNN gives 0 to every class none of its neighbours voted for, and a routed
#: memory model to every class of the superclasses it did not search, so the likelihood
#: of their probabilities is best with a large floor and a sharpening temperature.
_FLOORS = (0.0, 1e-4, 1e-3, 1e-2, 0.03, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9)


def _fit_temperature(proba: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The (temperature, floor) of least negative log-likelihood on ``y``."""
    best: tuple[float, float, float] | None = None
    p = np.asarray(proba, dtype=np.float64)
    rows = np.arange(len(y))
    for floor in _FLOORS:
        logq = np.log((1.0 - floor) * p + floor / p.shape[1] + _EPS)  # once per floor: each trial only rescales it

        def nll(t: float) -> float:
            """Mean negative log-likelihood of ``y`` under ``temperature_scale(proba, t, floor)``."""
            z = logq / t
            top = z.max(1)
            lse = top + np.log(np.exp(z - top[:, None]).sum(1))
            return float(np.mean(lse - z[rows, y]))

        grid = np.geomspace(0.05, 20.0, 41)
        losses = [nll(t) for t in grid]
        i = int(np.argmin(losses))
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
        for _ in range(25):  # golden-section refinement inside the bracketing grid cells
            a, b = hi - (hi - lo) / 1.618, lo + (hi - lo) / 1.618
            if nll(a) < nll(b):
                hi = b
            else:
                lo = a
        t = float((lo + hi) / 2)
        loss = nll(t)
        if best is None or loss < best[0]:
            best = (loss, t, floor)
    assert best is not None
    return best[1], best[2]


def ece(proba: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error of the top-1 confidence, in ``bins`` equal-width bins.

    Parameters
    ----------
    proba : ndarray of shape (n, n_classes)
    y : ndarray of shape (n,), int
        Column of each query's true class.
    """
    proba = np.asarray(proba, dtype=np.float64)
    conf, hit = proba.max(1), proba.argmax(1) == np.asarray(y)
    which = np.minimum((conf * bins).astype(int), bins - 1)
    return float(sum(abs(conf[which == b].mean() - hit[which == b].mean()) * np.mean(which == b)
                     for b in range(bins) if (which == b).any()))


def needed(accuracy: float, delta: float) -> int:
    """Calibration queries needed to promise ``accuracy`` with confidence ``1 − delta`` at all.

    Even with no error at all, ``n`` queries reject ``error > 1 − α`` only when
    ``α^n ≤ δ``.
    """
    return math.ceil(math.log(delta) / math.log(accuracy))


def _check_level(accuracy: float, delta: float) -> None:
    for name, value in (("accuracy", accuracy), ("delta", delta)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < 1:
            raise InputError(f"{name} must be a number strictly between 0 and 1, got {value!r}")


@dataclass
class Calibration:
    """A model's calibration: its temperature and each rule's errors on the calibration queries.

    Attributes
    ----------
    temperature : float
    floor : float
        The uniform floor mixed into the probabilities before the temperature.
    n : int
        Calibration queries.
    classes : tuple of str
        The model's classes when it was calibrated.
    entries : int or None
        The model's memory entries then (a different count marks it stale).
    errors : dict
        Rule name to the number of calibration queries answered wrongly at
        each parameter of ``grids[rule]``.
    grids : dict
        Rule name to its parameter grid, safest first.
    ece_before, ece_after : float
        Expected calibration error before and after the temperature.
    top1 : float
        Top-1 accuracy on the calibration queries.
    stale : bool
        Set by an edit of the model's memory: the guarantee no longer holds.
    """

    temperature: float
    n: int
    classes: tuple[str, ...]
    entries: int | None
    errors: dict[str, list[int]]
    grids: dict[str, list[float]] = field(default_factory=lambda: {"darts": list(_LAMBDAS),
                                                                  "threshold": list(_TAUS)})
    ece_before: float = float("nan")
    ece_after: float = float("nan")
    top1: float = float("nan")
    stale: bool = False
    floor: float = 0.0

    def scale(self, proba: np.ndarray) -> np.ndarray:
        """``proba`` (n, n_classes) calibrated: the floor, then the temperature."""
        return temperature_scale(proba, self.temperature, self.floor)

    def parameter(self, accuracy: float, *, rule: str = "darts", delta: float = 0.1) -> float:
        """The rule's most informative parameter that keeps the guarantee (see the module docstring).

        Raises
        ------
        InputError
            ``accuracy`` or ``delta`` outside (0, 1), an unknown rule, or too
            few calibration queries for them (the message says how many).
        """
        from scipy.stats import binom

        _check_level(accuracy, delta)
        if rule not in RULES:
            raise InputError(f"unknown rule {rule!r}; choose one of {', '.join(RULES)}")
        chosen = None
        for value, errors in zip(self.grids[rule], self.errors[rule]):
            if binom.cdf(errors, self.n, 1.0 - accuracy) > delta:
                break
            chosen = value
        if chosen is None:
            need = needed(accuracy, delta)
            raise InputError(
                f"{self.n} calibration images cannot promise {accuracy:.0%} accuracy with confidence "
                f"{1 - delta:.0%}: that needs at least {need} images (more where the model errs); "
                "recalibrate on more images, or ask for a lower accuracy")
        return chosen

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["classes"] = list(self.classes)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        """A calibration from :meth:`to_dict`'s form (as saved in a model's manifest), checked."""
        try:
            cal = cls(temperature=float(d["temperature"]), n=int(d["n"]), classes=tuple(map(str, d["classes"])),
                      entries=None if d.get("entries") is None else int(d["entries"]),
                      errors={r: [int(e) for e in d["errors"][r]] for r in RULES},
                      grids={r: [float(v) for v in d["grids"][r]] for r in RULES},
                      ece_before=float(d["ece_before"]), ece_after=float(d["ece_after"]), top1=float(d["top1"]),
                      stale=bool(d.get("stale", False)), floor=float(d.get("floor", 0.0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a valid calibration: {exc}") from None
        if not (cal.temperature > 0 and cal.n > 0 and 0 <= cal.floor < 1) or any(
                len(cal.errors[r]) != len(cal.grids[r]) for r in RULES):
            raise InputError("not a valid calibration: a non-positive temperature or size, or a grid and its "
                             "errors of different lengths")
        return cal


def rule_rows(nodes: TreeNodes, mass: np.ndarray, rule: str, value: float) -> np.ndarray:
    """Each query's answer (a row of ``nodes``) under ``rule`` with parameter ``value``."""
    return nodes.darts(mass, value) if rule == "darts" else nodes.deepest_above(mass, value)


def calibrate_proba(proba: np.ndarray, y: Any, tree: ClassTree, classes: Any, *,
                    entries: int | None = None) -> Calibration:
    """A :class:`Calibration` from class probabilities on calibration queries.

    Parameters
    ----------
    proba : ndarray of shape (n, n_classes)
        The model's probabilities, columns in ``classes``' order.
    y : sequence of str, shape (n,)
        True classes; each must be one of ``classes``.
    tree : ClassTree
    classes : sequence of str
    entries : int, optional
        The model's memory entries, recorded to detect a later edit.
    """
    classes = [str(c) for c in classes]
    col = {c: i for i, c in enumerate(classes)}
    y = [str(v) for v in np.asarray(y, dtype=object)]
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape != (len(y), len(classes)):
        raise InputError(f"probabilities of shape {proba.shape} do not match {len(y)} labels and "
                         f"{len(classes)} classes")
    lacking = sorted({v for v in y if v not in col})
    if lacking:
        raise InputError(f"the calibration set has {len(lacking)} classes the model lacks, e.g. {lacking[0]!r}; "
                         "calibrate on images of the model's own classes")
    if len(y) < 2:
        raise InputError("calibration needs at least 2 labelled images")
    yi = np.array([col[v] for v in y])
    temperature, floor = _fit_temperature(proba, yi)
    scaled = temperature_scale(proba, temperature, floor)
    nodes = TreeNodes(tree, classes)
    mass = nodes.masses(scaled)
    hold = nodes.members[:, yi].T  # (n, n_nodes): which answers are right for each query
    errors = {rule: [int((~hold[np.arange(len(yi)), rule_rows(nodes, mass, rule, v)]).sum()) for v in grid]
              for rule, grid in (("darts", _LAMBDAS), ("threshold", _TAUS))}
    return Calibration(temperature=temperature, floor=floor, n=len(yi), classes=tuple(classes), entries=entries, errors=errors,
                       ece_before=ece(proba, yi), ece_after=ece(scaled, yi),
                       top1=float(np.mean(proba.argmax(1) == yi)))


def calibrate(model: Any, X: Any, y: Any, *, tree: ClassTree | None = None, **kwargs: Any) -> Calibration:
    """Calibrate ``model`` on labelled queries and store the result as ``model.calibration_``.

    Parameters
    ----------
    model : TwoStageClassifier, NetworkTwoStage or FlatClassifier
        Fitted.  A flat model needs ``tree``; the routed ones use their own.
    X
        Queries of the kind the model takes (embeddings, or images).
    y : sequence, shape (n,)
        Their true classes, all among the model's classes.
    tree : ClassTree, optional
    **kwargs
        Passed to ``model.predict_proba`` (routing, m, ...).

    Returns
    -------
    Calibration
        Also set as ``model.calibration_``; saving the model saves it.
    """
    tree = tree if tree is not None else getattr(model, "tree", None)
    if tree is None:
        raise InputError("a flat model has no class tree: pass tree=...")
    classes = [str(c) for c in getattr(model, "class_ids_", model.classes_)]
    proba = model.predict_proba(X, **kwargs)
    y = np.asarray([str(v) for v in np.asarray(y, dtype=object)], dtype=object)
    cal = calibrate_proba(proba, y, tree, classes, entries=getattr(model, "n_entries", None))
    model.calibration_ = cal
    return cal


def calibration_state(model: Any) -> dict[str, Any] | None:
    """A model's calibration as saved in its manifest (None when it has none)."""
    cal = getattr(model, "calibration_", None)
    return None if cal is None else cal.to_dict()


def calibration_from(manifest: dict[str, Any]) -> Calibration | None:
    """The calibration a saved model's manifest holds, checked (None when it has none).

    Raises
    ------
    InputError
        The stored calibration is malformed.
    """
    state = manifest.get("calibration")
    if state is None:
        return None
    if not isinstance(state, dict):
        raise InputError("the manifest's calibration is not an object")
    return Calibration.from_dict(state)
