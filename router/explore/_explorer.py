"""The explorer's model side: queries, steering previews and persisted edits of one saved model.

Everything here is plain Python over the public API (``explain``,
``predict_proba(steer=...)``, ``edit_classifier``), so a page shows exactly
what the API gives, and an edit from the page is the command line's edit.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from memory import InputError, Steer, UnknownEntryError

from ..report import png_bytes, training_root
from ._images import decode_upload

__all__ = ["EditRecord", "Explorer", "parse_steer"]

#: Query embeddings kept for steering previews (least recently used are dropped).
QUERY_SLOTS = 256
#: What a steering request may name, and how many of each.
_STEER_LISTS = ("exclude_ids", "exclude_labels", "exclude_sources", "exclude_superclasses")
_STEER_MAPS = ("id_weights", "label_weights", "source_weights")
_STEER_MAX = 1000


def parse_steer(spec: Any) -> Steer | None:
    """A :class:`memory.Steer` from a JSON object; None when it steers nothing.

    Raises
    ------
    InputError
        Unknown keys, wrong types, or weights that are negative or not finite.
    """
    if spec in (None, {}):
        return None
    if not isinstance(spec, dict):
        raise InputError("steer must be a JSON object")
    unknown = set(spec) - set(_STEER_LISTS) - set(_STEER_MAPS)
    if unknown:
        raise InputError(f"unknown steering keys {sorted(unknown)}; known: {', '.join(_STEER_LISTS + _STEER_MAPS)}")
    kw: dict[str, Any] = {}
    for key in _STEER_LISTS:
        items = spec.get(key) or []
        if not isinstance(items, list) or len(items) > _STEER_MAX:
            raise InputError(f"steer.{key} must be a list of at most {_STEER_MAX} items")
        if key == "exclude_ids":
            if not all(type(i) is int and i >= 0 for i in items):
                raise InputError("steer.exclude_ids must hold non-negative integers")
            kw[key] = tuple(items)
        else:
            if not all(isinstance(i, str) for i in items):
                raise InputError(f"steer.{key} must hold strings")
            kw[key] = tuple(items)
    for key in _STEER_MAPS:
        items = spec.get(key) or {}
        if not isinstance(items, dict) or len(items) > _STEER_MAX:
            raise InputError(f"steer.{key} must be an object of at most {_STEER_MAX} entries")
        out: dict[Any, float] = {}
        for name, w in items.items():
            if type(w) not in (int, float) or not math.isfinite(w) or w < 0:
                raise InputError(f"steer.{key}[{name!r}] must be a finite weight >= 0, got {w!r}")
            if key == "id_weights":
                if not (name.isascii() and name.isdigit()):
                    raise InputError(f"steer.id_weights keys must be entry ids, got {name!r}")
                out[int(name)] = float(w)
            else:
                out[name] = float(w)
        kw[key] = out
    steer = Steer(**kw)
    return steer if steer.excludes or steer.reweights else None


@dataclass(frozen=True)
class EditRecord:
    """One persisted edit, as the page's edit log shows it."""

    when: float
    action: str
    target: str
    entries: int
    superclasses: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"when": time.strftime("%H:%M:%S", time.localtime(self.when)), "action": self.action,
                "target": self.target, "entries": self.entries, "superclasses": self.superclasses}


@dataclass
class _Query:
    X: np.ndarray  # (1, dim)
    png: bytes
    title: str


class Explorer:
    """One saved model, its queries, and the edits made to it.

    Parameters
    ----------
    model : path-like
        A directory written by ``supersub build``: a memory-level model with
        memory specialists, or a network-level model with specialist memories
        (its neighbours are found in each specialist's own feature space, and
        steering changes the memories' votes, not what the networks compute).
    neighbours : int, default 10
        Neighbours shown per query (at most the model's k are found).
    top : int, default 5
        Classes listed with their probabilities.

    Notes
    -----
    All methods are safe to call from several threads: reads share the
    loaded model, and an edit holds the model's writer lock (the same one
    ``supersub memory add/remove`` takes) from load to atomic save, then
    swaps the edited model in.  A save by another process is noticed and
    reloaded before the next query.
    """

    def __init__(self, model: str | os.PathLike[str], *, neighbours: int = 10, top: int = 5,
                 accuracy: float = 0.9) -> None:
        from ..pipeline import QueryEncoder, load_model, typical_similarity

        if not isinstance(accuracy, float) or not 0 < accuracy < 1:
            raise InputError(f"accuracy must be a number strictly between 0 and 1, got {accuracy!r}")
        self.accuracy = accuracy
        self.path = Path(model)
        self.neighbours = int(neighbours)
        self.top = int(top)
        self._lock = threading.RLock()
        self._queries: OrderedDict[str, _Query] = OrderedDict()
        self.edits: list[EditRecord] = []
        self._load_classifier = load_model
        self._typical_similarity = typical_similarity
        self._load()
        self.network = self.clf.router == "generalist"
        if self.network and not self.clf.shards_:
            raise InputError(f"{self.path} is a network-level model built without memories; the explorer shows the "
                             "neighbours that vote, so rebuild it with its specialist memories (the default)")
        if not self.network and self.clf.specialist != "memory":
            raise InputError(f"{self.path} holds a model with {self.clf.specialist!r} specialists; the explorer needs "
                             "memory specialists (supersub build --specialist memory), whose neighbours it shows")
        self.encoder = QueryEncoder(self.clf, progress=False)

    # ------------------------------------------------------------ the model
    def _current(self) -> bytes:
        try:
            return (self.path / "CURRENT").read_bytes()
        except OSError:
            return b""

    def _load(self) -> None:
        self._stamp = self._current()
        self.clf = self._load_classifier(self.path)
        self.typical = self._typical_similarity(self.clf)
        root = training_root(self.clf)
        self.memory_root = Path(root) if root else None

    def refresh(self) -> None:
        """Reload the model if another writer saved it since it was loaded."""
        with self._lock:
            if self._current() != self._stamp:
                self._load()

    def label(self, cls: str) -> str:
        """A class's display name (its WordNet label, or the class itself)."""
        try:
            return str(self.clf.tree.label(cls))
        except Exception:  # a class the tree does not know (never fatal for display)
            return cls

    def summary(self) -> dict[str, Any]:
        clf = self.clf
        names = clf.tree.superclasses.names
        return {
            "model": str(self.path), "entries": int(clf.n_entries), "classes": len(clf.class_ids_),
            "superclasses": [{"id": s, "name": names[s], "entries": len(sh)}
                             for s, sh in zip(clf.superclasses_, clf.shards_)],
            "k": int(clf.k), "router": clf.router, "routing": clf.routing,
            "sources": sorted({src for sh in clf.shards_ if len(sh) for src in sh.sources_}),
        }

    # -------------------------------------------------------------- queries
    def add_query(self, image: Any, title: str) -> str:
        """Embed a decoded image once and keep it for steering; returns its query id."""
        png = png_bytes(image)
        qid = hashlib.sha256(png).hexdigest()[:16]
        with self._lock:
            if qid in self._queries:
                self._queries.move_to_end(qid)
                return qid
            X = self.encoder.images([image])
            self._queries[qid] = _Query(X, png, title)
            while len(self._queries) > QUERY_SLOTS:
                self._queries.popitem(last=False)
        return qid

    def query_image(self, qid: str) -> bytes | None:
        q = self._queries.get(qid)
        return q.png if q is not None else None

    def _query(self, qid: str) -> _Query:
        q = self._queries.get(qid)
        if q is None:
            raise UnknownEntryError(f"unknown query {qid!r}; it has expired or was never made: query the image again")
        return q

    def predict(self, qid: str, steer: Steer | None = None) -> dict[str, Any]:
        """The explained prediction of a query, steered, with the difference from the unsteered one."""
        self.refresh()
        with self._lock:
            q = self._query(qid)
            out, after = self._explained(q.X, steer)
            out.update(query=qid, title=q.title, steered=steer is not None)
            if steer is not None:
                base, before = self._explained(q.X, None)
                out["baseline"] = {key: base[key] for key in ("prediction", "top")}
                out["changed"] = base["prediction"]["class"] != out["prediction"]["class"]
                out["delta"] = [{"class": c, "label": self.label(c), "before": before.get(c, 0.0), "after": p}
                                for c, p in after.items() if abs(p - before.get(c, 0.0)) > 1e-9][:10]
        return out

    def _explained(self, X: np.ndarray, steer: Steer | None) -> tuple[dict[str, Any], dict[str, float]]:
        """The page's view of one query, and every class's probability (those above 0, best first)."""
        clf = self.clf
        names = clf.tree.superclasses.names
        # One explanation carries the neighbours and every class's probability (top = all classes).
        e = clf.explain(X, top=len(clf.class_ids_), steer=steer)[0]
        # by superclass id (the explanation keys it by name); a network routes with its generalist, never steered
        route = (clf.route_proba(X) if self.network else clf.route_proba(X, steer=steer))[0]
        ranked = e.probabilities
        pred = next(iter(ranked), None)  # None: nothing voted
        total = sum(nb.weight for nb in e.neighbours) or 1.0
        nbs = [{
            "id": int(nb.id), "class": nb.label, "label": self.label(nb.label), "source": nb.source,
            "superclass": nb.superclass, "similarity": float(nb.similarity), "weight": float(nb.weight),
            "share": float(nb.weight / total), "contribution": float(nb.contribution),
            "image": nb.ref if nb.ref and self.memory_root is not None else None,
        } for nb in e.neighbours[: self.neighbours]]
        nearest = float(e.neighbours[0].similarity) if e.neighbours else None
        unlike = self.typical is not None and nearest is not None and nearest < self.typical
        return {
            "prediction": {"class": pred, "label": self.label(pred) if pred is not None else None},
            "route": [{"superclass": s, "name": names[s], "p": float(p)}
                      for s, p in sorted(zip(clf.superclasses_, route), key=lambda t: -t[1])],
            "searched": list(e.searched),
            "top": [{"class": c, "label": self.label(c), "p": p} for c, p in list(ranked.items())[: self.top]],
            "neighbours": nbs,
            "unlike": {"nearest": nearest, "typical": self.typical} if unlike else None,
            "hedged": self._hedged(ranked),
        }, ranked

    def _hedged(self, ranked: dict[str, float]) -> dict[str, Any] | None:
        """The answer along the tree at the explorer's accuracy, if the model is calibrated (else None)."""
        from .._hedging import hedge

        cal = getattr(self.clf, "calibration_", None)
        if cal is None or not ranked:
            return None
        proba = np.array([[ranked.get(c, 0.0) for c in cal.classes]])
        try:
            ans = hedge(proba, self.clf.tree, cal, self.accuracy)
        except InputError as exc:  # too few calibration images for this accuracy
            return {"error": str(exc)}
        node = str(ans.nodes[0])
        return {"accuracy": self.accuracy, "node": node, "label": self.label(node), "mass": float(ans.mass[0]),
                "is_class": bool(ans.is_class[0]), "root": node == self.clf.tree.root, "stale": cal.stale,
                "path": [{"node": n, "label": self.label(n), "mass": m} for n, m in ans.paths[0]]}

    # ---------------------------------------------------------------- edits
    def _edit(self, action: str, target: str, change: Any) -> EditRecord:
        from ..pipeline import edit_classifier

        with self._lock:
            with edit_classifier(self.path, wait=60.0) as clf:
                removed = change(clf)
            # The edited object is the saved snapshot: keep it rather than read the model again.
            self.clf, self._stamp = clf, self._current()
            self.typical = self._typical_similarity(clf)
            counts = {s: int(len(v)) for s, v in removed.items()}
            rec = EditRecord(time.time(), action, target, sum(counts.values()), sorted(counts))
            self.edits.append(rec)
        return rec

    def unlearn_class(self, cls: str) -> EditRecord:
        """Remove every entry of a class, in every shard, and save."""
        if not isinstance(cls, str) or not cls:
            raise InputError("name the class to unlearn")
        return self._edit("unlearn class", cls, lambda clf: {clf.assignment_.get(cls, ""): clf.remove_class(cls)})

    def unlearn_source(self, source: str) -> EditRecord:
        """Remove every entry of a source, in every shard, and save."""
        if not isinstance(source, str) or not source:
            raise InputError("name the source to unlearn")
        return self._edit("unlearn source", source, lambda clf: clf.remove(source=source))

    def set_weight(self, weight: float, *, label: str | None = None, source: str | None = None) -> EditRecord:
        """Persistently set the vote weight of a class's and/or a source's entries, and save."""
        if label is None and source is None:
            raise InputError("give a class and/or a source to re-weight")
        target = " & ".join(x for x in (label and f"class {label}", source and f"source {source}") if x)
        return self._edit(f"weight {weight:g}", target, lambda clf: clf.set_weight(weight, label=label, source=source))

    def add_images(self, files: list[tuple[str, bytes]], cls: str, *, superclass: str | None = None,
                   source: str = "explore") -> EditRecord:
        """Add decoded uploads to a class (new classes are placed in the tree, or in ``superclass``), and save."""
        if not isinstance(cls, str) or not cls.strip():
            raise InputError("name the class the images belong to")
        if not files:
            raise InputError("choose at least one image to add")
        from ..pipeline import class_of

        images = [decode_upload(data, name) for name, data in files]  # all decoded before anything is written
        cls = class_of(self.clf.tree, cls.strip())  # a label of the tree names its class

        def change(clf: Any) -> dict[str, Any]:
            X = self.encoder.images(images)
            refs = [f"upload:{name}" for name, _ in files]
            if cls in set(clf.class_ids_):
                ids = clf.add(X, [cls] * len(X), source=source, refs=refs)
                return ids if isinstance(ids, dict) else {clf.assignment_[cls]: ids}  # a network: by superclass
            where = clf.add_class(cls, X, superclass=superclass or None, source=source, refs=refs)
            return {where: np.arange(len(X))}

        return self._edit("add images", cls, change)
