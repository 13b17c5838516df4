"""One superclass of a Milvus memory, with the memory API: a routed classifier's shard."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import InputError, UnknownEntryError
from .._validation import as_ids
from ..store import Explanation, Steer

if TYPE_CHECKING:
    from ._memory import MilvusMemory

__all__ = ["MilvusShard"]


class MilvusShard:
    """One superclass of a :class:`MilvusMemory`: what a routed classifier's specialist reads.

    Every read and edit is limited to the superclass's partition; class
    probabilities have one column per class of the superclass.
    """

    def __init__(self, store: MilvusMemory, superclass: str) -> None:
        self.store, self.superclass = store, superclass

    @property
    def dim(self) -> int | None:
        return self.store.dim

    @property
    def k(self) -> int:
        return self.store.k

    @property
    def fingerprint(self) -> str | None:
        return self.store.fingerprint

    def _keys(self) -> list[tuple[str, str, str]]:
        return [key for key, c in self.store.tally().items() if c > 0 and key[1] == self.superclass]

    def __len__(self) -> int:
        return int(sum(c for key, c in self.store.tally().items() if key[1] == self.superclass))

    @property
    def classes_(self) -> np.ndarray:
        return np.array(sorted({key[0] for key in self._keys()}), dtype=str)

    @property
    def sources_(self) -> np.ndarray:
        return np.array(sorted({key[2] for key in self._keys()}), dtype=str)

    @property
    def ids_(self) -> np.ndarray:
        return self.select() if len(self) else np.empty(0, dtype=np.int64)

    def __repr__(self) -> str:
        return f"MilvusShard({self.superclass!r} of {self.store!r})"

    def _own(self, superclass: Any) -> str:
        """This shard's superclass; any other one is unknown here, as in an embedded shard."""
        if superclass is None or superclass == "":
            return self.superclass
        wanted = {superclass} if isinstance(superclass, str) else {str(v) for v in superclass}
        if wanted != {self.superclass}:
            raise UnknownEntryError(f"unknown superclass {superclass!r}; this shard holds {self.superclass!r}")
        return self.superclass

    def _check_ids(self, ids: Any) -> np.ndarray:
        """``ids`` as an array; raises for ids that are not in this shard."""
        wanted = as_ids(ids)
        if wanted.size:
            inside = set(self.store.select(np.unique(wanted), superclass=self.superclass).tolist()) \
                if len(self) else set()
            missing = [int(i) for i in wanted if int(i) not in inside]
            if missing:
                raise UnknownEntryError(
                    f"unknown id {missing[0]}; it is not (or no longer) in the shard of {self.superclass!r}"
                )
        return wanted

    def _scope(self, ids: Any, superclass: Any) -> str | None:
        """This shard's superclass after checking ``ids`` and ``superclass``; None when the shard is empty."""
        own = self._own(superclass)
        if ids is not None:
            self._check_ids(ids)
        return own if len(self) else None

    def _check_ready(self) -> None:
        if not len(self):
            raise InputError(f"the shard of {self.superclass!r} is empty; add entries before searching")

    def add(self, X: Any, labels: Any, *, ids: Any = None, superclass: Any = None, source: Any = "default",
            refs: Any = None, weight: float = 1.0, allow_zero: bool = False) -> np.ndarray:
        if superclass not in (None, "", self.superclass):
            raise InputError(f"this shard holds superclass {self.superclass!r}, not {superclass!r}")
        return self.store.add(X, labels, ids=ids, superclass=self.superclass, source=source, refs=refs,
                              weight=weight, allow_zero=allow_zero)

    def select(self, ids: Any = None, *, label: Any = None, source: Any = None,
               superclass: Any = None) -> np.ndarray:
        own = self._scope(ids, superclass)
        if own is None:
            return np.empty(0, dtype=np.int64)
        return self.store.select(ids, label=label, source=source, superclass=own)

    def get(self, ids: Any) -> list[dict[str, Any]]:
        return self.store.get(self._check_ids(ids))

    def vectors(self, ids: Any) -> np.ndarray:
        return self.store.vectors(self._check_ids(ids))

    def weights(self, ids: Any) -> np.ndarray:
        return self.store.weights(self._check_ids(ids))

    def remove(self, ids: Any = None, *, label: Any = None, source: Any = None,
               superclass: Any = None) -> np.ndarray:
        own = self._scope(ids, superclass)
        if own is None:
            return np.empty(0, dtype=np.int64)
        return self.store.remove(ids, label=label, source=source, superclass=own)

    def set_weight(self, weight: float, ids: Any = None, *, label: Any = None, source: Any = None,
                   superclass: Any = None) -> np.ndarray:
        own = self._own(superclass)
        if ids is not None:
            self._check_ids(ids)
        return self.store.set_weight(weight, ids, label=label, source=source, superclass=own)

    def search(self, X: Any, k: int | None = None, *, superclass: Any = None,
               steer: Steer | None = None) -> tuple[np.ndarray, np.ndarray]:
        own = self._own(superclass)
        self._check_ready()
        return self.store.search(X, k, superclass=own, steer=steer)

    def neighbours(self, X: Any, k: int | None = None, *, superclass: Any = None,
                   steer: Steer | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        own = self._own(superclass)
        self._check_ready()
        return self.store.neighbours(X, k, superclass=own, steer=steer)

    def predict_proba(self, X: Any, k: int | None = None, **kwargs: Any) -> np.ndarray:
        own = self._own(kwargs.pop("superclass", None))
        self._check_ready()
        return self.store.predict_proba(X, k, superclass=own, classes=self.classes_, **kwargs)

    def predict(self, X: Any, k: int | None = None, **kwargs: Any) -> np.ndarray:
        own = self._own(kwargs.pop("superclass", None))
        self._check_ready()
        return self.store.predict(X, k, superclass=own, classes=self.classes_, **kwargs)

    def explain(self, X: Any, k: int | None = None, **kwargs: Any) -> list[Explanation]:
        own = self._own(kwargs.pop("superclass", None))
        self._check_ready()
        return self.store.explain(X, k, superclass=own, classes=self.classes_, **kwargs)

    def save(self, path: Any) -> Path:
        return self.store.save(path)
