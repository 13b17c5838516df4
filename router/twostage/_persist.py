"""Saving and loading a routed classifier: one directory, swapped in atomically.

Layout::

    DIR/CURRENT                      the live snapshot's name and its manifest's sha256
    DIR/snapshots/<name>/
        manifest.json                format, version, options, classes, superclasses, and the
                                     sha256 of every file below
        tree.json                    the class tree and its superclass cut
        shards/<i>/                  one saved VisualMemory per superclass (embedded backend);
                                     its CURRENT and manifest are listed above, its data files in
                                     its own manifest
        store/milvus.json            or: how to reconnect to the Milvus collection holding the shards
        router.pt, base.pt, specialists.pt or deltas.npz   network parts, as the options require

Checksums chain from ``CURRENT`` to every byte a load reads, so an edited
manifest, a replaced tree, or a shard copied from another model is refused.
The manifest's values are checked as well (options, classes against the tree,
entry counts against the shards), so a consistent but invalid edit is refused
too.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hierarchy import HierarchyError, check_format, load_tree, parse_json, save_tree, sha256_file
from memory import BackboneMismatchError, MemoryFormatError
from memory.store import (
    open_snapshot,
    set_origin,
    snapshot_entries,
    snapshot_writer,
    verify_files,
    writer_lock,
)

from .._calibration import calibration_from, calibration_state

if TYPE_CHECKING:
    from ._classifier import TwoStageClassifier

__all__ = ["FORMAT", "load_twostage", "save_twostage"]

FORMAT = "supersub-classifier"
FORMAT_VERSION = 2
_OPTIONS = ("router", "specialist", "routing", "m", "k", "voting", "temperature", "router_k",
            "head_hidden", "head_epochs", "router_hidden", "router_epochs", "delta_rank",
            "fingerprint", "embedding", "cache_lambda", "seed", "backend", "data")


def _head_state(head: Any) -> dict[str, Any]:
    return {"dim": head.dim, "n_out": head.n_out, "hidden": head.hidden, "state": head.state_dict()}


def _head_from(state: dict[str, Any]) -> Any:
    from ._heads import Head

    head = Head(state["dim"], state["n_out"], state["hidden"])
    head.load_state_dict(state["state"])
    return head.eval()


def _covered_by_shard(rel: Path) -> bool:
    """Shard data files: covered by the shard's own manifest, which is listed itself."""
    parts = rel.parts
    return len(parts) >= 5 and parts[0] == "shards" and parts[2] == "snapshots" and parts[-1] != "manifest.json"


def _listed_files(snap: Path) -> list[str]:
    """Every file of a snapshot that its manifest must list (all but locks and shard data).

    Links and other non-regular entries are refused (:func:`memory.store.snapshot_entries`).
    """
    return [rel for rel in snapshot_entries(snap)
            if rel != "manifest.json" and Path(rel).name != ".lock" and not _covered_by_shard(Path(rel))]


def save_twostage(clf: TwoStageClassifier, path: str | os.PathLike[str], *, wait: float = 0.0) -> Path:
    """Write a memory-level ``clf`` to the directory ``path`` (see :meth:`TwoStageClassifier.save`)."""
    clf.check_fitted()
    root = Path(path)
    with writer_lock(root, wait=wait):
        _save_locked(clf, root)
    return root


def _save_locked(clf: TwoStageClassifier, root: Path) -> None:
    from ._routers import HeadRouter
    from ._specialists import DeltaSpecialists

    manifest = {
        "format": FORMAT, "version": FORMAT_VERSION,
        "options": {k: getattr(clf, k) for k in _OPTIONS},
        "router_state": clf.router_.state(),
        "classes": [str(c) for c in clf.class_ids_], "label_kind": clf.label_kind,
        "superclasses": list(clf.superclasses_),
        "assignment": clf.assignment_, "dim": clf.dim_, "entries": clf.n_entries,
        "calibration": calibration_state(clf),
    }
    with snapshot_writer(clf, root, manifest, listed=lambda rel: not _covered_by_shard(Path(rel))) as tmp:
        save_tree(clf.tree, tmp / "tree.json")
        clf.shard_set_.save(tmp)
        if isinstance(clf.router_, HeadRouter):
            torch.save(_head_state(clf.router_.head), tmp / "router.pt")
        if clf.base_ is not None:
            torch.save(_head_state(clf.base_), tmp / "base.pt")
        if isinstance(clf.specialists_, DeltaSpecialists):
            np.savez(tmp / "deltas.npz", **clf.specialists_.state())
        elif clf.specialists_ is not None:
            torch.save(clf.specialists_.state(), tmp / "specialists.pt")


def _bad(snap: Path, what: str) -> MemoryFormatError:
    return MemoryFormatError(f"{snap.parent.parent} is not a valid saved classifier: {what}; rebuild it")


def _parse(raw: bytes, snap: Path) -> dict[str, Any]:
    manifest = parse_json(raw, origin=str(snap / "manifest.json"), error=MemoryFormatError)
    other = manifest.get("format") if isinstance(manifest, dict) else None
    if other == "supersub-network":
        raise MemoryFormatError(f"{snap.parent.parent} holds a network-level model, not a memory-level one; "
                                "load it with router.load_model(path) or NetworkTwoStage.load(path)")
    check_format(manifest, FORMAT, FORMAT_VERSION, what=str(snap.parent.parent), noun="supersub classifier",
                 error=MemoryFormatError)
    shapes = {"options": dict, "router_state": dict, "classes": list, "superclasses": list,
              "assignment": dict, "files": dict}
    for key, kind in shapes.items():
        if not isinstance(manifest.get(key), kind):
            raise _bad(snap, f"manifest field {key!r} is missing or not a {kind.__name__}")
    if set(manifest["options"]) - set(_OPTIONS):
        raise _bad(snap, f"unknown options {sorted(set(manifest['options']) - set(_OPTIONS))}")
    for key in ("dim", "entries"):
        if type(manifest.get(key)) is not int or manifest[key] < 0:
            raise _bad(snap, f"manifest field {key!r} must be a non-negative integer")
    if not all(isinstance(c, str) for c in [*manifest["classes"], *manifest["superclasses"],
                                              *manifest["assignment"], *manifest["assignment"].values()]):
        raise _bad(snap, "classes, superclasses and the assignment must be strings")
    kind = manifest.setdefault("label_kind", "str")  # models saved before integer labels were kept
    if kind not in ("str", "int") or (kind == "int" and not all(re.fullmatch(r"-?[0-9]+", c) for c in manifest["classes"])):
        raise _bad(snap, f"manifest field 'label_kind' is {kind!r}; it must be 'str', or 'int' with integer classes")
    return manifest  # type: ignore[no-any-return]


def _verify(snap: Path, manifest: dict[str, Any]) -> None:
    files: dict[str, str] = manifest["files"]
    present = set(_listed_files(snap))

    def foreign_shard(rel: str) -> MemoryFormatError:
        return MemoryFormatError(
            f"{snap / Path(rel).parts[0] / Path(rel).parts[1]} is not the shard saved with this model "
            "(missing, replaced, or copied from another model); restore the model from a backup or rebuild it"
        )

    for rel in sorted(present - set(files)):
        raise foreign_shard(rel) if rel.startswith("shards/") else _bad(
            snap, f"{rel} is not listed in its manifest (a file added after the save)")
    shard_files = {k: v for k, v in files.items() if k.startswith("shards/")}
    for rel, digest in shard_files.items():
        if rel not in present or sha256_file(snap / rel) != digest:
            raise foreign_shard(rel)
    verify_files(snap, {k: v for k, v in files.items() if k not in shard_files}, what="classifier",
                 nested=lambda rel: rel.startswith("shards/"))


def load_twostage(path: str | os.PathLike[str], *, fingerprint: str | None = None) -> TwoStageClassifier:
    """Read a memory-level classifier written by :func:`save_twostage`.

    Raises
    ------
    MemoryFormatError
        Not a saved classifier, another format version, a file that is
        missing, corrupt, unlisted or from another model, or manifest values
        that contradict the stored parts.
    BackboneMismatchError
        ``fingerprint`` differs from the one the classifier was built with.
    """
    root = Path(path)
    snap = open_snapshot(root, "classifier")
    manifest = _parse(snap.manifest, snap.path)
    opts = manifest["options"]
    if fingerprint is not None and opts.get("fingerprint") != fingerprint:
        raise BackboneMismatchError(
            f"{path} was built on embeddings from {opts.get('fingerprint')!r}, not {fingerprint!r}; "
            "embed queries with the same backbone, size and crop"
        )
    _verify(snap.path, manifest)
    try:
        clf = _build(snap.path, manifest)
        clf.calibration_ = calibration_from(manifest)
    except (HierarchyError, TypeError, KeyError, RuntimeError) as exc:
        raise _bad(snap.path, str(exc)) from exc
    except ValueError as exc:
        if isinstance(exc, MemoryFormatError):
            raise
        raise _bad(snap.path, str(exc)) from exc
    set_origin(clf, root, snap.name)
    return clf


def _build(snap: Path, manifest: dict[str, Any]) -> TwoStageClassifier:
    from ._classifier import TwoStageClassifier
    from ._routers import CentroidRouter, HeadRouter, MemoryRouter
    from ._shards import ShardSet
    from ._specialists import DeltaSpecialists, FullSpecialists

    opts = manifest["options"]
    files = manifest["files"]
    clf = TwoStageClassifier(load_tree(snap / "tree.json"), **opts)
    clf.check_params()
    cut = clf.tree.superclasses
    assert cut is not None  # check_params refuses a tree without a cut
    classes, supers, assignment = manifest["classes"], manifest["superclasses"], manifest["assignment"]
    unknown = [c for c in classes if c not in clf.tree.classes]
    if unknown:
        raise _bad(snap, f"class {unknown[0]!r} is not in its tree")
    wrong = [c for c in classes if assignment.get(c) != cut.assignment.get(c)]
    if wrong:
        raise _bad(snap, f"class {wrong[0]!r} is assigned to another superclass than in its tree")
    if [s for s in supers if s not in cut.superclasses] or len(set(supers)) != len(supers):
        raise _bad(snap, "its superclasses are not those of its tree's cut")
    clf.class_ids_ = np.array(classes, dtype=object)
    clf.label_kind_ = manifest["label_kind"]
    clf.assignment_ = dict(assignment)
    clf.dim_ = clf.n_features_in_ = int(manifest["dim"])
    settings = {"k": clf.k, "voting": clf.voting, "temperature": clf.temperature}
    clf.shard_set_ = ShardSet.load(snap, supers, clf.dim_, {**settings, "fingerprint": opts.get("fingerprint")},
                                   milvus="store/milvus.json" in files)
    for s, shard in zip(clf.superclasses_, clf.shards_):
        other = set(getattr(shard, "superclasses_", [s])) - {s}
        if other:
            raise _bad(snap, f"the shard of {s!r} holds entries of superclass {sorted(other)[0]!r}")
    if not clf.shard_set_.live:  # a Milvus collection is live: other clients may have changed it since
        held = set().union(*(set(shard.classes_.tolist()) for shard in clf.shards_)) if clf.shards_ else set()
        if held != set(classes):
            diff = sorted(held ^ set(classes))
            raise _bad(snap, f"its classes and its shards disagree (first: {diff[0]!r})")
        if clf.n_entries != manifest["entries"]:
            raise _bad(snap, f"the manifest counts {manifest['entries']} entries, the shards hold {clf.n_entries}")
    rs = manifest["router_state"]
    if clf.router == "memory":
        clf.router_ = MemoryRouter(**rs).fit(clf.shards_)
    elif clf.router == "centroids":
        clf.router_ = CentroidRouter(**rs).fit(clf.shards_, clf.superclasses_)
    else:
        router = HeadRouter(**rs)
        router.head = _head_from(_torch_load(snap, "router.pt", files))
        if router.head.n_out != len(clf.superclasses_) or router.head.dim != clf.dim_:
            raise _bad(snap, "router.pt does not match the superclasses or the dimension")
        clf.router_ = router
    clf.base_, clf.specialists_ = None, None
    if clf.specialist != "memory":
        clf.base_ = _head_from(_torch_load(snap, "base.pt", files))
        if clf.base_.n_out != len(clf.class_ids_) or clf.base_.dim != clf.dim_:
            raise _bad(snap, "base.pt does not match the classes or the dimension")
        if clf.specialist == "delta":
            if "deltas.npz" not in files:
                raise _bad(snap, "deltas.npz is missing")
            with np.load(snap / "deltas.npz", allow_pickle=False) as z:
                clf.specialists_ = DeltaSpecialists.from_state(clf.base_, {k: z[k] for k in z.files})
        else:
            groups = clf.class_groups()
            states = _torch_load(snap, "specialists.pt", files)
            if not isinstance(states, list) or len(states) != len(groups):
                raise _bad(snap, "specialists.pt does not hold one specialist per superclass")
            clf.specialists_ = FullSpecialists.from_state(clf.base_, groups, states)
    return clf


def _torch_load(snap: Path, name: str, files: dict[str, str]) -> Any:
    from memory.embedding import load_tensors

    if name not in files:
        raise _bad(snap, f"{name} is missing")
    try:
        return load_tensors(snap / name, what=name, error=MemoryFormatError)
    except MemoryFormatError as exc:
        raise _bad(snap, str(exc).replace(f"{name} {snap / name}", name)) from None
