"""Exact unlearning: forget a class, then a source, and compare with a rebuilt memory.

    python benchmarks/unlearning_bench.py              # writes results/unlearning.json
    python benchmarks/unlearning_bench.py --quick      # a subset; nothing written
    python benchmarks/unlearning_bench.py --synthetic  # no dataset needed; nothing written

Two requests on a memory of the training embeddings (k = 10, softmax):

* forget one class (seeded choice): its training images are the forget
  set; afterwards they score like a class never seen (0%: the label is gone);
* forget one source: a seeded 10% of the training images is tagged
  ``source="batch-17"``; afterwards the forget set scores like images the
  memory never saw (the dev split held out of train, and val).

Reported before and after: accuracy on the forget set, on the retained
training images, and on val; whether any forgotten id still comes back as
a neighbour; and whether the edited memory equals, bit for bit, one rebuilt
from the remaining data (neighbour ids, similarities and probabilities on
val and on the forget set).  The routed classifier (centroid router) is
checked the same way.  Removal time is compared with the rebuild's.
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
from router import TwoStageClassifier  # noqa: E402


def _acc(mem: VisualMemory, X: np.ndarray, y: np.ndarray) -> float:
    return round(float(np.mean(mem.predict(X) == y)), 4) if len(X) else float("nan")


def _build(s: Split, rows: np.ndarray, sources: np.ndarray, k: int) -> VisualMemory:
    mem = VisualMemory(s.X.shape[1], k=k, progress=False)
    mem.add(s.X[rows], s.y[rows], ids=rows, source=sources[rows], superclass=s.superclass(s.y[rows]))
    return mem


def _identical(a: VisualMemory, b: VisualMemory, Q: np.ndarray, k: int) -> bool:
    sa, ia = a.search(Q, k)
    sb, ib = b.search(Q, k)
    return bool(np.array_equal(ia, ib) and np.array_equal(sa, sb)
                and np.array_equal(a.classes_, b.classes_)
                and np.array_equal(a.predict_proba(Q), b.predict_proba(Q)))


def request(s: Split, name: str, forget: np.ndarray, sources: np.ndarray, k: int,
            unseen: dict[str, float] | None = None) -> dict[str, Any]:
    """Run one unlearning request (``forget`` is a row mask of the training data).

    ``unseen`` is the accuracy to expect of the forget set afterwards; by default that of
    images the memory never saw (the dev split and val, scored before the removal).
    """
    everything = np.arange(len(s.X))
    mem = _build(s, everything, sources, k)
    fX, fy = s.X[forget], s.y[forget]
    keep = ~forget
    retain = np.flatnonzero(keep)[:: max(1, keep.sum() // 5000)]  # a fixed sample of retained rows
    before = {"forget_set": _acc(mem, fX, fy), "retain": _acc(mem, s.X[retain], s.y[retain]),
              "val": _acc(mem, s.Q, s.qy)}
    if unseen is None:
        unseen = {"dev": _acc(mem, s.dev_X, s.dev_y), "val": before["val"]}
    t = time.perf_counter()
    removed = mem.remove(np.flatnonzero(forget))
    remove_s = time.perf_counter() - t
    after = {"forget_set": _acc(mem, fX, fy), "retain": _acc(mem, s.X[retain], s.y[retain]),
             "val": _acc(mem, s.Q, s.qy)}
    probe = np.concatenate([fX, s.Q])
    _, ids = mem.search(probe, 50)
    comes_back = int(np.isin(ids, np.flatnonzero(forget)).sum())
    t = time.perf_counter()
    rebuilt = _build(s, np.flatnonzero(keep), sources, k)
    rebuild_s = time.perf_counter() - t
    row = {
        "forgotten": int(removed.size), "before": before, "after": after, "unseen": unseen,
        "forgotten_ids_returned_in_top50": comes_back,
        "identical_to_rebuild": _identical(mem, rebuilt, probe, k),
        "remove_s": round(remove_s, 4), "rebuild_s": round(rebuild_s, 3),
        "speedup_vs_rebuild": round(rebuild_s / max(remove_s, 1e-9), 1),
    }
    print(f"{name:<22} {row}", flush=True)
    return row


def routed_request(s: Split, sources: np.ndarray, source: str) -> dict[str, Any]:
    """The same source request on the routed classifier, against a routed rebuild."""
    clf = TwoStageClassifier(s.tree).fit(s.X, s.y, source=sources)
    t = time.perf_counter()
    removed = clf.remove(source=source)
    remove_s = time.perf_counter() - t
    keep = sources != source
    rebuilt = TwoStageClassifier(s.tree).fit(s.X[keep], s.y[keep], source=sources[keep])
    forget = np.flatnonzero(~keep)
    probe = np.concatenate([s.X[forget], s.Q])
    same = bool(np.array_equal(clf.predict_proba(probe), rebuilt.predict_proba(probe)))
    row = {"forgotten": int(sum(len(v) for v in removed.values())), "identical_to_rebuild": same,
           "remove_s": round(remove_s, 4), "val_after": round(float(np.mean(clf.predict(s.Q) == s.qy)), 4)}
    print(f"{'routed, source':<22} {row}", flush=True)
    return row


def run(s: Split, *, k: int = 10, fraction: float = 0.1, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    n = len(s.X)
    sources = np.full(n, "train", dtype=object)
    tagged = rng.choice(n, size=int(round(fraction * n)), replace=False)
    sources[tagged] = "batch-17"
    cls = str(rng.choice(s.classes))
    out = {"data": s.description, "k": k, "voting": "softmax",
           "class": {"forgotten_class": cls,
                     **request(s, f"class {cls}", s.y == cls, sources, k, {"never_seen_class": 0.0})},
           "source": {"source": "batch-17", "fraction": fraction,
                      **request(s, "source batch-17", sources == "batch-17", sources, k)}}
    out["routed_source"] = routed_request(s, sources, "batch-17")
    return out


def main(argv: list[str] | None = None) -> dict:
    return command("unlearning", __doc__, lambda s, a: run(s, fraction=a.fraction), argv,
                   lambda ap: ap.add_argument("--fraction", type=float, default=0.1,
                                              help="share of train tagged as the forgotten source"))


if __name__ == "__main__":
    main()
