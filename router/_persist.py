"""Saving and loading a routed classifier: one directory, swapped in atomically.

Layout::

    DIR/CURRENT                      name of the live snapshot
    DIR/snapshots/<name>/
        manifest.json                format, version, options, classes, superclasses, fingerprint
        tree.json                    the class tree and its superclass cut
        shards/<i>/                  one saved VisualMemory per superclass (embedded backend)
        store/milvus.json            or: how to reconnect to the Milvus collection holding the shards
        router.pt, base.pt, specialists.pt or deltas.npz   network parts, as present
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hierarchy import load_tree, save_tree
from memory import BackboneMismatchError, MemoryFormatError, VisualMemory, load_any
from memory._persist import begin_snapshot, commit_snapshot, current_snapshot, writer_lock

if TYPE_CHECKING:
    from ._classifier import TwoStageClassifier

__all__ = ["load_classifier", "save_classifier"]

FORMAT = "supersub-classifier"
FORMAT_VERSION = 1
_OPTIONS = ("router", "specialist", "routing", "m", "k", "voting", "temperature", "router_k",
            "head_hidden", "head_epochs", "router_hidden", "router_epochs", "delta_rank",
            "fingerprint", "embedding", "cache_lambda", "seed", "backend")


def _head_state(head: Any) -> dict[str, Any]:
    return {"dim": head.dim, "n_out": head.n_out, "hidden": head.hidden, "state": head.state_dict()}


def _head_from(state: dict[str, Any]) -> Any:
    from ._heads import Head

    head = Head(state["dim"], state["n_out"], state["hidden"])
    head.load_state_dict(state["state"])
    return head.eval()


def save_classifier(clf: TwoStageClassifier, path: str | os.PathLike[str]) -> Path:
    """Write ``clf`` to the directory ``path``; a crash leaves the previous save loadable.

    Raises
    ------
    ConcurrentWriteError
        If another writer is saving to ``path``.
    """
    clf._check_fitted()
    root = Path(path)
    with writer_lock(root):
        _save_locked(clf, root)
    return root


def _save_locked(clf: TwoStageClassifier, root: Path) -> None:
    from ._routers import CentroidRouter, HeadRouter
    from ._specialists import DeltaSpecialists

    tmp, name = begin_snapshot(root)
    try:
        save_tree(clf.tree, tmp / "tree.json")
        if clf._store is not None:
            clf._store.save(tmp / "store")
        else:
            for i, shard in enumerate(clf.shards_):
                shard.save(tmp / "shards" / str(i))
        if isinstance(clf.router_, HeadRouter):
            torch.save(_head_state(clf.router_.head), tmp / "router.pt")
        if clf.base_ is not None:
            torch.save(_head_state(clf.base_), tmp / "base.pt")
        if isinstance(clf.specialists_, DeltaSpecialists):
            np.savez(tmp / "deltas.npz", **clf.specialists_.state())
        elif clf.specialists_ is not None:
            torch.save([m.state_dict() for m in clf.specialists_.modules], tmp / "specialists.pt")
        manifest = {
            "format": FORMAT, "version": FORMAT_VERSION,
            "options": {k: getattr(clf, k) for k in _OPTIONS},
            "router_state": clf.router_.state(),
            "classes": [str(c) for c in clf.classes_], "superclasses": list(clf.superclasses_),
            "assignment": clf._cut, "dim": clf.dim_, "entries": clf.n_entries(),
            "centroid_router": isinstance(clf.router_, CentroidRouter),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        commit_snapshot(root, tmp, name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_classifier(path: str | os.PathLike[str], *, fingerprint: str | None = None) -> TwoStageClassifier:
    """Read a classifier written by :func:`save_classifier`.

    Raises
    ------
    MemoryFormatError
        Not a saved classifier, another format version, or corrupt parts.
    BackboneMismatchError
        ``fingerprint`` differs from the one the classifier was built with.
    """
    from ._classifier import TwoStageClassifier
    from ._routers import CentroidRouter, HeadRouter, MemoryRouter
    from ._specialists import DeltaSpecialists, FullSpecialists, _Restricted

    snap = current_snapshot(Path(path), "classifier")
    try:
        manifest = json.loads((snap / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise MemoryFormatError(f"{snap / 'manifest.json'} is missing or corrupt: {exc}") from exc
    if manifest.get("format") != FORMAT or manifest.get("version") != FORMAT_VERSION:
        raise MemoryFormatError(
            f"{path} is not a supersub classifier of format version {FORMAT_VERSION}; rebuild it"
        )
    opts = manifest["options"]
    if fingerprint is not None and opts.get("fingerprint") != fingerprint:
        raise BackboneMismatchError(
            f"{path} was built on embeddings from {opts.get('fingerprint')!r}, not {fingerprint!r}; "
            "embed queries with the same backbone, size and crop"
        )
    clf = TwoStageClassifier(load_tree(snap / "tree.json"), **opts)
    clf.classes_ = np.array(manifest["classes"], dtype=object)
    clf.superclasses_ = list(manifest["superclasses"])
    clf._cut = dict(manifest["assignment"])
    clf.dim_ = int(manifest["dim"])
    if (snap / "store").is_dir():
        clf._store = load_any(snap / "store", fingerprint=opts.get("fingerprint"))
        clf.shards_ = [clf._store.shard(s) for s in clf.superclasses_]
    else:
        clf.shards_ = [VisualMemory.load(snap / "shards" / str(i), dim=clf.dim_)
                       for i in range(len(clf.superclasses_))]
    rs = manifest["router_state"]
    if clf.router == "memory":
        clf.router_ = MemoryRouter(**rs).fit(clf.shards_)
    elif clf.router == "centroids":
        clf.router_ = CentroidRouter(**rs).fit(clf.shards_, clf.superclasses_)
    else:
        router = HeadRouter(**rs)
        router.head = _head_from(torch.load(snap / "router.pt", weights_only=True))
        clf.router_ = router
    clf.base_, clf.specialists_ = None, None
    if (snap / "base.pt").is_file():
        clf.base_ = _head_from(torch.load(snap / "base.pt", weights_only=True))
        if clf.specialist == "delta":
            with np.load(snap / "deltas.npz", allow_pickle=False) as z:
                clf.specialists_ = DeltaSpecialists.from_state(clf.base_, {k: z[k] for k in z.files})
        else:
            full = FullSpecialists()
            full.base, full.groups = clf.base_, clf._groups()
            states = torch.load(snap / "specialists.pt", weights_only=True)
            full.modules = []
            for rows, st in zip(full.groups, states):
                mod = _Restricted(clf.base_, torch.as_tensor(rows, dtype=torch.long))
                mod.load_state_dict(st)
                full.modules.append(mod.eval())
            clf.specialists_ = full
    return clf
