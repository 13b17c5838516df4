"""Super-sub at the network level: a fine-tuned generalist routes, tail specialists decide.

A query runs the trunk once and the generalist tail once.  The generalist's
class probabilities, summed over each superclass's members, route it; the
chosen specialist (m of them for soft routing) then scores the classes it
covers.  A specialist's answer can be mixed with the generalist's own
conditional probabilities and with kNN votes of a memory shard embedded by
that specialist (the cache model, in the specialist's feature space).

``P(c) = sum over routed s of w_s * P_s(c)``, with ``w`` the route
probabilities renormalised over the m superclasses searched, and

``P_s(c) = (1 - a - b) * P_spec(c) + a * P_gen(c | s) + b * P_knn(c | s)``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from hierarchy import SuperclassMap
from memory import InputError, VisualMemory

from ._tails import TailSpecialists, tail_features, tail_logits
from ._trunk import BackboneSplit, Tail, run_trunk_on_images

__all__ = ["NetworkTwoStage"]

ROUTINGS = ("hard", "soft", "oracle")


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64)
    z -= z.max(1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(1, keepdims=True)


def _normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


class NetworkTwoStage:
    """Generalist-routed classification with per-superclass tail specialists.

    Parameters
    ----------
    split : BackboneSplit
        The frozen trunk (and the backbone it came from).
    generalist : Tail
        Fine-tuned on all classes; its classifier's outputs are ``classes``.
    classes : sequence of str
        Class ids in the generalist's output order.
    cut : SuperclassMap
        Superclasses of ``classes``; its ``overlap`` widens what each
        specialist covers, routing uses the partition.
    specialists : TailSpecialists, optional
        Trained on ``cut``'s extended groups in cut order.  Without it
        stage 2 is the generalist restricted to the routed superclasses.
    """

    def __init__(self, split: BackboneSplit, generalist: Tail, classes: Sequence[str], cut: SuperclassMap,
                 specialists: TailSpecialists | None = None) -> None:
        self.split, self.generalist = split, generalist.eval()
        self.classes_ = np.asarray(list(classes), dtype=object)
        if generalist.classifier is None or generalist.classifier.out_features != len(self.classes_):
            raise InputError(f"the generalist must have a classifier with {len(self.classes_)} outputs")
        cut.validate(list(self.classes_))
        self.cut = cut
        self.superclasses_ = tuple(cut.superclasses)
        index = {c: i for i, c in enumerate(self.classes_)}
        self.primary = np.array(cut.index(list(self.classes_)), dtype=np.int64)
        self.groups = [np.array(sorted(index[c] for c in cut.extended(s)), dtype=np.int64)
                       for s in self.superclasses_]
        if specialists is not None:
            if len(specialists.groups) != len(self.groups) or not all(
                    np.array_equal(a, b) for a, b in zip(specialists.groups, self.groups)):
                raise InputError("the specialists were trained on other groups than this cut's")
        self.specialists = specialists
        self.memories: list[VisualMemory] | None = None
        self.mix = (0.0, 0.0)
        self.k = 10

    @property
    def n_superclasses(self) -> int:
        return len(self.superclasses_)

    # ----------------------------------------------------------- memories
    def fit_memories(self, acts: Any, y: Any, *, k: int = 10, refs: Sequence[str] | None = None,
                     source: str = "train", progress: bool = False) -> NetworkTwoStage:
        """Build one memory shard per superclass in its specialist's feature space.

        Shard ``s`` holds the samples of the classes specialist ``s`` covers,
        embedded by that specialist's tail (L2-normalised).
        """
        if self.specialists is None:
            raise InputError("specialist memories need specialists; fit TailSpecialists first")
        y = np.asarray(y, dtype=np.int64)
        labels = self.classes_[y]
        self.memories = []
        for s, rows in enumerate(self.groups):
            mask = np.isin(y, rows)
            feats = _normalise(self.specialists.features(s, acts[mask]))
            mem = VisualMemory(feats.shape[1], k=k, progress=progress,
                               fingerprint=f"{self.split.fingerprint}|specialist:{self.superclasses_[s]}")
            mem.add(feats, list(labels[mask]), source=source,
                    refs=[refs[i] for i in np.flatnonzero(mask)] if refs is not None else None)
            self.memories.append(mem)
        self.k = k
        return self

    def add_to_shard(self, superclass: str, acts: Any, labels: Sequence[str], *, source: str = "added") -> np.ndarray:
        """Embed images' trunk activations with ``superclass``'s specialist and add them to its shard only."""
        if self.memories is None or self.specialists is None:
            raise InputError("this classifier has no specialist memories; call fit_memories first")
        if superclass not in self.superclasses_:
            raise InputError(f"unknown superclass {superclass!r}; known: {', '.join(self.superclasses_)}")
        s = self.superclasses_.index(superclass)
        covered = set(self.classes_[self.groups[s]])
        bad = [lab for lab in labels if lab not in covered]
        if bad:
            raise InputError(f"label {bad[0]!r} is not a class of superclass {superclass!r}")
        feats = _normalise(self.specialists.features(s, acts))
        return self.memories[s].add(feats, list(labels), source=source)

    # ------------------------------------------------------------ stage 1
    def generalist_proba(self, acts: Any) -> np.ndarray:
        """The generalist's class probabilities, shape (n, n_classes)."""
        return _softmax(tail_logits(self.generalist, acts))

    def route_from(self, p_gen: np.ndarray) -> np.ndarray:
        """Superclass probabilities from class probabilities, shape (n, n_superclasses)."""
        out = np.zeros((len(p_gen), self.n_superclasses))
        np.add.at(out.T, self.primary, p_gen.T)
        return out

    def route_proba(self, acts: Any) -> np.ndarray:
        """Stage-1 superclass probabilities, shape (n, n_superclasses), columns ``superclasses_``."""
        return self.route_from(self.generalist_proba(acts))

    # ------------------------------------------------------------ stage 2
    def within(self, s: int, acts: Any, p_gen: np.ndarray, *, mix: tuple[float, float] | None = None) -> np.ndarray:
        """P_s(class) over specialist ``s``'s classes, shape (n, len(groups[s])).

        ``p_gen`` is the generalist's probabilities for the same queries.
        """
        a, b = self.mix if mix is None else mix
        parts = self.within_parts(s, acts, p_gen)
        out = (1 - a - b) * parts["specialist"] + a * parts["generalist"]
        if b:
            out = out + b * parts["memory"]
        return out

    def within_parts(self, s: int, acts: Any, p_gen: np.ndarray, *, memory: bool = True) -> dict[str, np.ndarray]:
        """The three conditional distributions that :meth:`within` mixes."""
        rows = self.groups[s]
        g = p_gen[:, rows]
        g = g / np.maximum(g.sum(1, keepdims=True), 1e-300)
        out = {"generalist": g}
        if self.specialists is None:
            out["specialist"] = g
            return out
        feats, logits = self.specialists.features_and_logits(s, acts)
        out["specialist"] = _softmax(logits)
        if memory and self.memories is not None:
            out["memory"] = self._knn(s, _normalise(feats))
        return out

    def _knn(self, s: int, feats: np.ndarray) -> np.ndarray:
        assert self.memories is not None
        mem = self.memories[s]
        p = mem.predict_proba(feats, self.k)
        col = {c: i for i, c in enumerate(self.classes_[self.groups[s]])}
        out = np.zeros((len(feats), len(self.groups[s])))
        for j, c in enumerate(mem.classes_):
            out[:, col[c]] = p[:, j]
        return out

    def combine(self, route: np.ndarray, within: Sequence[np.ndarray | None], *, routing: str = "soft", m: int = 2,
                superclass: np.ndarray | None = None) -> np.ndarray:
        """Class probabilities from route probabilities and per-superclass conditionals.

        ``within[s]`` holds P_s for all queries (rows), or None where not computed.
        """
        n = len(route)
        weights = self.route_weights(route, routing=routing, m=m, superclass=superclass)
        out = np.zeros((n, len(self.classes_)))
        for s, rows in enumerate(self.groups):
            w = weights[:, s]
            if not w.any():
                continue
            ws = within[s]
            if ws is None:
                raise InputError(f"superclass {self.superclasses_[s]!r} is routed to but was not computed")
            out[:, rows] += w[:, None] * ws
        return out

    def route_weights(self, route: np.ndarray, *, routing: str = "soft", m: int = 2,
                      superclass: np.ndarray | None = None) -> np.ndarray:
        """Weight of each superclass per query, shape (n, n_superclasses): top-m renormalised."""
        if routing not in ROUTINGS:
            raise InputError(f"routing must be one of {ROUTINGS}, got {routing!r}")
        n = len(route)
        if routing == "oracle":
            if superclass is None:
                raise InputError("oracle routing needs the true superclass indices")
            w = np.zeros_like(route)
            w[np.arange(n), np.asarray(superclass)] = 1.0
            return w
        m = 1 if routing == "hard" else m
        if not 1 <= m <= self.n_superclasses:
            raise InputError(f"m must be between 1 and {self.n_superclasses}, got {m}")
        top = np.argsort(-route, axis=1, kind="stable")[:, :m]
        w = np.zeros_like(route)
        np.put_along_axis(w, top, np.take_along_axis(route, top, 1), 1)
        return w / np.maximum(w.sum(1, keepdims=True), 1e-300)

    def predict_proba(self, acts: Any, *, routing: str = "soft", m: int = 2,
                      superclass: np.ndarray | None = None) -> np.ndarray:
        """Class probabilities of trunk activations, shape (n, n_classes); specialists run only where routed."""
        p_gen = self.generalist_proba(acts)
        route = self.route_from(p_gen)
        weights = self.route_weights(route, routing=routing, m=m, superclass=superclass)
        out = np.zeros_like(p_gen)
        for s, rows in enumerate(self.groups):
            q = np.flatnonzero(weights[:, s])
            if len(q):
                out[np.ix_(q, rows)] += weights[q, s][:, None] * self.within(s, acts[q], p_gen[q])
        return out

    def predict(self, acts: Any, **kwargs: Any) -> np.ndarray:
        """Predicted class ids, shape (n,)."""
        return self.classes_[self.predict_proba(acts, **kwargs).argmax(1)]

    def predict_images(self, images: Sequence[Any], **kwargs: Any) -> np.ndarray:
        """Decode, run the trunk once, route and specialise: class ids, shape (n,)."""
        acts = run_trunk_on_images(self.split, images)
        return self.predict(acts, **kwargs)

    def throughput(self, images: Sequence[Any], **kwargs: Any) -> float:
        """Images per second end to end (decoding included) on ``images``."""
        t = time.perf_counter()
        self.predict_images(images, **kwargs)
        return len(images) / (time.perf_counter() - t)
