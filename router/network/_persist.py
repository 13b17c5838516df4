"""Saving and loading a :class:`NetworkTwoStage`: tree, generalist tail, specialist deltas, memories.

The layout is a snapshot directory like every saved model (see
:mod:`memory.store`): ``CURRENT`` names the live snapshot and the sha256
of its ``manifest.json``, which lists the sha256 of every other file.  The
manifest records the trunk's fingerprint (backbone, weights, preprocessing,
split point) and the sha256 of the tail and of the deltas, so a model is
never run on another trunk, and a changed weight file is caught at load.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hierarchy import HierarchyError, check_format, load_tree, parse_json, save_tree, sha256_file
from memory import BackboneMismatchError, InputError, MemoryFormatError, VisualMemory, get_backbone
from memory.store import open_snapshot, set_origin, snapshot_entries, snapshot_writer, verify_files, writer_lock

from .._calibration import calibration_from, calibration_state
from ._tail_specialists import TailSpecialists
from ._trunk import split_backbone

if TYPE_CHECKING:
    from ._classifier import NetworkTwoStage

__all__ = ["FORMAT", "is_network", "load_network", "save_network"]

FORMAT = "supersub-network"
FORMAT_VERSION = 1
_OPTIONS = ("specialist", "routing", "m", "backbone", "size", "crop_pct", "split_at", "rank", "epochs",
            "specialist_epochs", "memory", "k", "mix", "dev_per_class", "precision", "seed", "hierarchy_beta",
            "runtime")


def _state_arrays(module: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}


def save_network(clf: NetworkTwoStage, path: str | os.PathLike[str], *, wait: float = 0.0) -> Path:
    """Write ``clf`` to the directory ``path`` atomically (a crash leaves the previous save loadable)."""
    clf.check_fitted()
    if clf.specialists_ is None:
        raise InputError("only a fitted classifier with specialists can be saved")
    root = Path(path)
    manifest = {
        "format": FORMAT, "version": FORMAT_VERSION,
        "options": {k: getattr(clf, k) for k in _OPTIONS},
        "trunk_fingerprint": clf.split_.fingerprint, "classes": [str(c) for c in clf.classes_],
        "cut": clf.cut_.to_dict(), "memories": len(clf.memories_ or []),
        "entries": clf.n_entries, "history": getattr(clf, "history_", {}),
        "data": getattr(clf, "data_", None), "mix_": list(clf.mix_),
        "calibration": calibration_state(clf),
    }
    with writer_lock(root, wait=wait), snapshot_writer(clf, root, manifest) as tmp:
        save_tree(clf.tree, tmp / "tree.json")
        np.savez(tmp / "generalist.npz", **_state_arrays(clf.generalist_))
        np.savez(tmp / "specialists.npz", **clf.specialists_.state())
        for s, mem in enumerate(clf.memories_ or []):
            mem.save(tmp / "memories" / str(s))
        manifest["tail_sha256"] = sha256_file(tmp / "generalist.npz")
        manifest["specialists_sha256"] = sha256_file(tmp / "specialists.npz")
    return root


def is_network(raw_manifest: bytes) -> bool:
    """Whether a snapshot's manifest is a network-level classifier's."""
    try:
        return parse_json(raw_manifest, origin="manifest.json", error=MemoryFormatError).get(  # type: ignore[no-any-return]
            "format") == FORMAT
    except (ValueError, AttributeError):
        return False


def _bad(root: Path, what: str) -> MemoryFormatError:
    return MemoryFormatError(f"{root} is not a valid saved network classifier: {what}; rebuild it")


def load_network(path: str | os.PathLike[str], *, fingerprint: str | None = None) -> NetworkTwoStage:
    """Read a classifier written by :func:`save_network`, verifying every file.

    Raises
    ------
    MemoryFormatError
        Not a saved network classifier, a file missing, corrupt or unlisted.
    BackboneMismatchError
        The backbone installed here has other weights or preprocessing than
        the one the model was trained on, or ``fingerprint`` differs.
    """
    from ._classifier import NetworkTwoStage, restrict_cut

    root = Path(path)
    snap = open_snapshot(root, "classifier")
    try:
        manifest = parse_json(snap.manifest, origin="manifest.json", error=MemoryFormatError)
    except MemoryFormatError as exc:
        raise _bad(root, str(exc)) from None
    if isinstance(manifest, dict) and manifest.get("format") == "supersub-classifier":
        raise MemoryFormatError(f"{root} holds a memory-level model, not a network-level one; "
                                "load it with router.load_model(path) or TwoStageClassifier.load(path)")
    check_format(manifest, FORMAT, FORMAT_VERSION, what=str(root), noun="supersub network classifier",
                 error=MemoryFormatError)
    for key, kind in (("options", dict), ("files", dict), ("classes", list), ("cut", dict),
                      ("trunk_fingerprint", str), ("tail_sha256", str), ("specialists_sha256", str)):
        if not isinstance(manifest.get(key), kind):
            raise _bad(root, f"manifest field {key!r} is missing or not a {kind.__name__}")
    if set(manifest["options"]) - set(_OPTIONS):
        raise _bad(root, f"unknown options {sorted(set(manifest['options']) - set(_OPTIONS))}")
    files = manifest["files"]
    present = {rel for rel in snapshot_entries(snap.path) if Path(rel).name not in (".lock", "manifest.json")}
    extra = sorted(present - set(files))
    if extra:
        raise _bad(root, f"{extra[0]} is not listed in its manifest (a file added after the save)")
    verify_files(snap.path, files, what="classifier")
    if files.get("generalist.npz") != manifest["tail_sha256"] or \
            files.get("specialists.npz") != manifest["specialists_sha256"]:
        raise _bad(root, "the tail or specialist checksums contradict the file list")
    if fingerprint is not None and manifest["trunk_fingerprint"] != fingerprint:
        raise BackboneMismatchError(
            f"{root} was trained on the trunk {manifest['trunk_fingerprint']!r}, not {fingerprint!r}")
    opts = manifest["options"]
    try:
        tree = load_tree(snap.path / "tree.json")
        opts = {**opts, "mix": tuple(opts["mix"])}
        clf = NetworkTwoStage(tree, **opts, progress=False)
        clf.check_params()
        split = split_backbone(get_backbone(opts["backbone"], size=opts["size"], crop_pct=opts["crop_pct"]),
                               opts["split_at"])
    except (HierarchyError, InputError, TypeError, KeyError) as exc:
        raise _bad(root, str(exc)) from exc
    if split.fingerprint != manifest["trunk_fingerprint"]:
        raise BackboneMismatchError(
            f"{root} was trained on the trunk {manifest['trunk_fingerprint']!r}, but the backbone here gives "
            f"{split.fingerprint!r} (other weights or preprocessing); install the same weights or rebuild")
    classes = manifest["classes"]
    try:
        from hierarchy import SuperclassMap

        cut = SuperclassMap.from_dict(manifest["cut"])
        generalist = split.tail(len(classes))
        with np.load(snap.path / "generalist.npz", allow_pickle=False) as z:
            generalist.load_state_dict({k: torch.from_numpy(z[k]) for k in z.files})
        with np.load(snap.path / "specialists.npz", allow_pickle=False) as z:
            state = {k: z[k] for k in z.files}
        kind = "delta" if opts["specialist"] == "tail-delta" else "full"
        n = len(cut)
        specs = TailSpecialists.from_state(generalist, state, n, kind=kind, rank=opts["rank"])
        clf.assemble(split, generalist, classes, restrict_cut(cut, classes), specs)
        if manifest.get("memories"):
            clf.memories_ = [VisualMemory.load(snap.path / "memories" / str(s))
                             for s in range(int(manifest["memories"]))]
            if len(clf.memories_) != n:
                raise _bad(root, f"{len(clf.memories_)} memories for {n} superclasses")
    except (HierarchyError, InputError, KeyError, RuntimeError, ValueError) as exc:
        if isinstance(exc, MemoryFormatError):
            raise
        raise _bad(root, str(exc)) from exc
    mix = manifest.get("mix_", opts["mix"])  # models saved before mix_ kept the chosen mix in mix
    if not (isinstance(mix, (list, tuple)) and len(mix) == 2 and all(type(v) in (int, float) for v in mix)):
        raise _bad(root, f"manifest field 'mix_' is {mix!r}; it must be two weights")
    clf.mix_ = (float(mix[0]), float(mix[1]))
    clf.history_ = manifest.get("history", {})
    try:
        clf.calibration_ = calibration_from(manifest)
    except InputError as exc:
        raise _bad(root, str(exc)) from None
    data = manifest.get("data")
    clf.data_ = data if isinstance(data, dict) and isinstance(data.get("root"), str) else None
    set_origin(clf, root, snap.name)
    return clf
