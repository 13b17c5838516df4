"""Reads of the Milvus memory: search with metadata, votes, predictions and explanations.

A mixin of :class:`memory.MilvusMemory`; votes are counted on the client by the
same rules as :class:`memory.VisualMemory`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._errors import InputError, UnknownEntryError
from .._validation import as_embeddings, as_id_set, check_k
from ..store import Explanation, Steer, build_explanations, class_scores, decisions, probabilities, vote_weights
from ._client import QUERY_BATCH, QUERY_WINDOW, all_of, as_values, in_clause
from ._state import MilvusState

__all__ = ["MilvusQueryMixin"]


class MilvusQueryMixin(MilvusState):
    """Search, vote, predict and explain (see :class:`memory.MilvusMemory`)."""

    def _filter(self, superclass: list[str] | None, steer: Steer | None) -> str:
        clauses = []
        if superclass is not None:
            clauses.append(in_clause("superclass", superclass))
        if steer is not None:
            if len(steer.exclude_ids):
                clauses.append(in_clause("id", as_id_set(steer.exclude_ids), negate=True))
            for field, values in (("label", steer.exclude_labels), ("source", steer.exclude_sources),
                                  ("superclass", steer.exclude_superclasses)):
                if values:
                    clauses.append(in_clause(field, values, negate=True))
        return all_of(*clauses)

    def _hits(self, X: Any, k: int | None, superclass: Any, steer: Steer | None,
              fields: tuple[str, ...] = ("label", "source", "weight")) -> tuple[np.ndarray, ...]:
        """Neighbours with metadata: sims (n, k), ids (n, k) and one (n, k) object array per field."""
        k = check_k(self.k if k is None else k)
        if k > QUERY_WINDOW:
            raise InputError(f"k = {k} is over Milvus's limit of {QUERY_WINDOW} neighbours per query; ask for fewer")
        Q = as_embeddings(X, self.dim, "X")
        norms = np.linalg.norm(Q, axis=1, keepdims=True)
        Q = Q / np.where(norms > 0, norms, 1.0)
        n = len(Q)
        sims = np.full((n, k), -np.inf, dtype=np.float32)
        ids = np.full((n, k), -1, dtype=np.int64)
        meta = {f: np.empty((n, k), dtype=object) for f in fields}
        if self.dim is None or len(self) == 0:
            raise InputError("the memory is empty; add entries before searching")
        if superclass is not None:
            wanted = {superclass} if isinstance(superclass, str) else {str(v) for v in superclass}
            unknown = sorted(wanted - set(self.superclasses_.tolist()))
            if unknown:
                raise UnknownEntryError(
                    f"unknown superclass {unknown[0]!r}; present: {', '.join(self.superclasses_)}"
                )
        if superclass is None or isinstance(superclass, (str, set, frozenset, tuple)):
            groups = [(np.arange(n), as_values(superclass) if not isinstance(superclass, (set, frozenset))
                       else sorted(superclass))]
        else:
            per_query = np.asarray([str(s) for s in superclass], dtype=object)
            if len(per_query) != n:
                raise InputError(f"got {len(per_query)} superclasses for {n} queries; give one per query")
            groups = [(np.flatnonzero(per_query == s), [s]) for s in dict.fromkeys(per_query.tolist())]
        for rows, sup in groups:
            expr = self._filter(sup, steer)
            for start in range(0, len(rows), QUERY_BATCH):
                chunk = rows[start:start + QUERY_BATCH]
                result = self._client.search(
                    self.collection, data=[q for q in Q[chunk]], limit=k, filter=expr,
                    output_fields=list(fields), search_params=self._search_params(),
                    consistency_level=self._read_level(),
                )
                for q, hits in zip(chunk, result):
                    for j, hit in enumerate(list(hits)[:k]):
                        ids[q, j] = int(hit["id"])
                        sims[q, j] = float(hit["distance"])
                        entity = hit["entity"]
                        for f in fields:
                            meta[f][q, j] = entity.get(f)
        return (sims, ids, *meta.values())

    def search(self, X: Any, k: int | None = None, *, superclass: Any = None,
               steer: Steer | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Nearest entries by cosine similarity; see :meth:`memory.VisualMemory.search`.

        Returns
        -------
        sims : ndarray of shape (n, k), float32 (``-inf`` past the last hit)
        ids : ndarray of shape (n, k), int64 (``-1`` past the last hit)
        """
        sims, ids = self._hits(X, k, superclass, steer, fields=())[:2]
        return sims, ids

    def neighbours(self, X: Any, k: int | None = None, *, superclass: Any = None,
                   steer: Steer | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Nearest entries with each one's vote multiplier; see :meth:`memory.VisualMemory.neighbours`."""
        sims, ids, labels, sources, weights = self._hits(X, k, superclass, steer)
        valid = ids >= 0
        cols = {"id": ids, "label": labels, "source": sources}
        mult = vote_weights(sims, valid, np.where(valid, weights, 0.0).astype(np.float32), "plurality",
                            self.temperature, steer, lambda key: (cols[key], None))
        return sims, ids, mult

    def _scores(self, X: Any, k: int | None, voting: str | None, temperature: float | None, superclass: Any,
                steer: Steer | None, fields: tuple[str, ...] = ("label", "source", "weight"),
                classes: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        sims, ids, *meta = self._hits(X, k, superclass, steer, fields)
        cols = dict(zip(fields, meta))
        valid = ids >= 0

        def column(key: str) -> tuple[np.ndarray, None]:
            return (ids if key == "id" else cols[key]), None

        w = vote_weights(sims, valid, np.where(valid, cols["weight"], 0.0).astype(np.float32),
                         voting or self.voting, temperature or self.temperature, steer, column)
        classes = self.classes_ if classes is None else classes
        index = {c: i for i, c in enumerate(classes)}
        labels, inverse = np.unique(np.where(valid, cols["label"], "").astype(str), return_inverse=True)
        codes = np.array([index.get(v, -1) for v in labels], dtype=np.int64)[inverse.reshape(ids.shape)]
        codes = np.where(valid, codes, -1)
        scores = class_scores(w, codes, len(classes))
        return scores, sims, ids, w, cols

    def predict_proba(self, X: Any, k: int | None = None, *, voting: str | None = None,
                      temperature: float | None = None, superclass: Any = None,
                      steer: Steer | None = None, classes: np.ndarray | None = None) -> np.ndarray:
        """Class probabilities, shape (n, n_classes); columns follow :attr:`classes_` (or ``classes``)."""
        return probabilities(self._scores(X, k, voting, temperature, superclass, steer, classes=classes)[0])

    def predict(self, X: Any, k: int | None = None, *, voting: str | None = None,
                temperature: float | None = None, superclass: Any = None, steer: Steer | None = None,
                classes: np.ndarray | None = None) -> np.ndarray:
        """Predicted labels, shape (n,), object (``None`` where no neighbour voted)."""
        classes = self.classes_ if classes is None else classes
        return decisions(self._scores(X, k, voting, temperature, superclass, steer, classes=classes)[0], classes)

    def score(self, X: Any, y: Any, k: int | None = None, **kwargs: Any) -> float:
        """Top-1 accuracy on ``(X, y)``."""
        pred = self.predict(X, k, **kwargs)
        return float(np.mean(pred == np.asarray(y, dtype=object)))

    def explain(self, X: Any, k: int | None = None, *, voting: str | None = None,
                temperature: float | None = None, superclass: Any = None,
                steer: Steer | None = None, classes: np.ndarray | None = None) -> list[Explanation]:
        """The neighbours behind each prediction, with their weights."""
        fields = ("label", "source", "weight", "superclass", "ref")
        classes = self.classes_ if classes is None else classes
        scores, sims, ids, w, cols = self._scores(X, k, voting, temperature, superclass, steer, fields, classes)
        meta = {int(ids[q, j]): {"label": cols["label"][q, j], "source": cols["source"][q, j],
                                 "superclass": cols["superclass"][q, j], "ref": cols["ref"][q, j] or None}
                for q, j in zip(*np.nonzero(ids >= 0))}
        return build_explanations(scores, sims, ids, w, classes, meta)
