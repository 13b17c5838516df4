"""Stage 2 of the network-level classifier: each routed superclass's conditionals over its classes.

``P_s(c) = (1 - a - b) * P_spec(c) + a * P_gen(c | s) + b * P_knn(c | s)``:
the specialist's softmax, the generalist's probabilities renormalised over the
superclass's classes, and the kNN votes of the superclass's memory shard.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._memory import normalise
from ._routing import softmax

__all__ = ["Conditionals"]


class Conditionals:
    """Mixin of :class:`NetworkTwoStage`: the per-superclass conditionals ``P_s`` that stage 2 combines.

    The host class provides ``activations``, ``specialist_outputs`` and
    ``_knn`` and the attributes below.
    """

    groups_: list[np.ndarray]
    specialists_: Any
    memories_: Any

    def within_parts(self, s: int, acts: Any, p_gen: np.ndarray, steer: Any = None) -> dict[str, np.ndarray]:
        """The conditionals over specialist ``s``'s classes: ``generalist``, ``specialist``, ``memory``.

        Each has shape (n, len(groups_[s])); ``memory`` only with memories,
        its votes steered by ``steer`` (a :class:`memory.Steer`).
        """
        acts = acts if self.specialists_ is None else self.activations(acts)  # the generalist alone needs none
        return self._parts([(s, np.arange(len(p_gen)))], acts, p_gen, steer)[0]

    def _parts(self, pairs: Sequence[tuple[int, np.ndarray]], acts: Any, p_gen: np.ndarray,
               steer: Any = None) -> list[dict[str, np.ndarray]]:
        """:meth:`within_parts` of superclass ``s`` for the queries ``q``, for each ``(s, q)`` in ``pairs``.

        Every specialist runs first, then every memory search: alternating the
        network runtime's threads with the search's costs a wait for cores
        that the other's idle threads still spin on (settled predictions of
        1,024 Tiny-ImageNet images ran at about 2,000 images/s alternating,
        2,500 grouped, on 2 cores with AMX).
        """
        outs = []
        for s, q in pairs:
            g = p_gen[np.ix_(q, self.groups_[s])]
            outs.append({"generalist": g / np.maximum(g.sum(1, keepdims=True), 1e-300)})
        if self.specialists_ is None:
            for out in outs:
                out["specialist"] = out["generalist"]
            return outs
        feats = []
        for out, (s, q) in zip(outs, pairs):
            f, logits = self.specialist_outputs(s, acts[q])
            out["specialist"] = softmax(logits)
            feats.append(f)
        if self.memories_ is not None:
            for out, f, (s, _) in zip(outs, feats, pairs):
                out["memory"] = self._knn(s, normalise(f), steer)
        return outs

    def _within(self, pairs: Sequence[tuple[int, np.ndarray]], acts: np.ndarray, p_gen: np.ndarray,
                mix: tuple[float, float], steer: Any = None) -> list[np.ndarray]:
        """The mixed conditionals ``P_s`` of superclass ``s`` for queries ``q``, for each ``(s, q)`` in ``pairs``."""
        a, b = mix
        outs = []
        for parts in self._parts(pairs, acts, p_gen, steer):
            out = (1 - a - b) * parts["specialist"] + a * parts["generalist"]
            if b:
                out = out + b * parts.get("memory", parts["specialist"])
            outs.append(out)
        return outs
