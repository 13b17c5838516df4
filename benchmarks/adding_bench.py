"""Adding knowledge late: whole superclasses after the build, and one-at-a-time against batched adds.

    python benchmarks/adding_bench.py              # writes results/adding.json
    python benchmarks/adding_bench.py --quick      # a subset; nothing written
    python benchmarks/adding_bench.py --synthetic  # no dataset needed; nothing written

1. Two superclasses of the WordNet balanced:10 cut (seeded choice) are
   left out of the build; their classes are then added with ``add_class``
   (the routed classifier opens their shards).  Old-class accuracy on val
   is measured before and after, for the routed classifier (centroid
   router) and a flat memory, and the result is compared with a build that
   had every class from the start.
2. Throughput of adding n samples one call at a time against one batched
   call, for the flat memory and the routed classifier.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._data import Split, command  # noqa: E402
from memory import VisualMemory  # noqa: E402
from router import TwoStageClassifier, paired_difference  # noqa: E402


def _acc(pred: np.ndarray, truth: np.ndarray) -> float:
    return round(float(np.mean(pred == truth)), 4) if len(truth) else float("nan")


def late_superclasses(s: Split, n_late: int = 2, seed: int = 0, k: int = 10) -> dict[str, Any]:
    cut = s.tree.superclasses
    assert cut is not None
    present = sorted(set(s.superclass(s.y).tolist()))
    late = sorted(np.random.default_rng(seed).choice(present, size=n_late, replace=False).tolist())
    sup_y, sup_q = s.superclass(s.y), s.superclass(s.qy)
    old, old_q, new_q = ~np.isin(sup_y, late), ~np.isin(sup_q, late), np.isin(sup_q, late)
    late_classes = [c for c in s.classes if cut.assignment[c] in late]

    clf = TwoStageClassifier(s.tree, k=k).fit(s.X[old], s.y[old])
    flat = VisualMemory(s.X.shape[1], k=k, progress=False)
    flat.add(s.X[old], s.y[old])
    right_before = {"routed": clf.predict(s.Q[old_q]) == s.qy[old_q], "flat": flat.predict(s.Q[old_q]) == s.qy[old_q]}
    before = {n: round(float(np.mean(r)), 4) for n, r in right_before.items()}
    t = time.perf_counter()
    placed = {}
    for c in late_classes:
        rows = s.y == c
        placed[c] = clf.add_class(c, s.X[rows])
        flat.add(s.X[rows], s.y[rows])
    add_s = time.perf_counter() - t
    right_after = {"routed": clf.predict(s.Q[old_q]) == s.qy[old_q], "flat": flat.predict(s.Q[old_q]) == s.qy[old_q]}
    after = {n: round(float(np.mean(r)), 4) for n, r in right_after.items()}
    new = {"routed": _acc(clf.predict(s.Q[new_q]), s.qy[new_q]),
           "flat": _acc(flat.predict(s.Q[new_q]), s.qy[new_q])}
    from_start = TwoStageClassifier(s.tree, k=k).fit(s.X, s.y)
    column = [list(clf.classes_).index(c) for c in from_start.classes_]  # added classes were appended
    p_late, p_start = clf.predict_proba(s.Q)[:, column], from_start.predict_proba(s.Q)
    row = {
        "late_superclasses": [cut.names.get(x, x) for x in late],
        "late_classes": len(late_classes), "placed_correctly": all(placed[c] in late for c in late_classes),
        "old_class_accuracy_before": before, "old_class_accuracy_after": after,
        "old_class_change_points": {n: round(100 * (after[n] - before[n]), 2) for n in before},
        "old_class_change_paired": {n: paired_difference(right_before[n], right_after[n]).to_dict() for n in before},
        "new_class_accuracy": new, "add_s": round(add_s, 2),
        "routed_equals_build_from_start": bool(
            np.array_equal(p_late.argmax(1), p_start.argmax(1)) and np.allclose(p_late, p_start, atol=1e-6)),
        "routed_full_accuracy": {"added_late": _acc(clf.predict(s.Q), s.qy),
                                 "built_from_start": _acc(from_start.predict(s.Q), s.qy)},
        "added_late_against_from_start": paired_difference(from_start.predict(s.Q) == s.qy,
                                                           clf.predict(s.Q) == s.qy).to_dict(),
    }
    print("late superclasses", row, flush=True)
    return row


def add_throughput(s: Split, n: int = 2000, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(s.X), size=min(n, len(s.X)), replace=False)
    X, y = s.X[rows], s.y[rows]
    out: dict[str, Any] = {"samples": len(rows)}
    base_rows = np.setdiff1d(np.arange(len(s.X)), rows)
    for name in ("flat memory", "routed classifier"):
        times = {}
        for mode in ("one at a time", "batched"):
            if name == "flat memory":
                target: Any = VisualMemory(s.X.shape[1], progress=False)
                target.add(s.X[base_rows], s.y[base_rows])

                def add(a: np.ndarray, b: np.ndarray, target: Any = target) -> Any:
                    return target.add(a, b)
            else:
                target = TwoStageClassifier(s.tree).fit(s.X[base_rows], s.y[base_rows])

                def add(a: np.ndarray, b: np.ndarray, target: Any = target) -> Any:
                    return target.add(a, b)
            t = time.perf_counter()
            if mode == "batched":
                add(X, y)
            else:
                for i in range(len(X)):
                    add(X[i : i + 1], y[i : i + 1])
            times[mode] = time.perf_counter() - t
        out[name] = {"one_at_a_time_per_s": round(len(X) / times["one at a time"], 1),
                     "batched_per_s": round(len(X) / times["batched"], 1),
                     "batched_vs_single": round(times["one at a time"] / times["batched"], 1)}
        print(name, out[name], flush=True)
    return out


def run(s: Split, *, n_single: int = 2000, seed: int = 0) -> dict[str, Any]:
    return {"data": s.description, "late": late_superclasses(s, seed=seed),
            "throughput": add_throughput(s, n_single, seed)}


def main(argv: list[str] | None = None) -> dict:
    return command("adding", __doc__, lambda s, a: run(s, n_single=a.single), argv,
                   lambda ap: ap.add_argument("--single", type=int, default=2000, help="samples added one at a time"))


if __name__ == "__main__":
    main()
