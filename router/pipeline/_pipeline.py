"""End-to-end jobs behind the command line: build, evaluate and predict from images."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hierarchy import ClassTree, HierarchyError, atomic_write
from memory import (
    BackboneMismatchError,
    Embedder,
    ImageDataset,
    InputError,
    embed_dataset,
    get_backbone,
)

from .._stats import paired_difference
from ._outputs import EvaluationOutputs, evaluation_outputs
from ..twostage import FlatClassifier, TwoStageClassifier

__all__ = ["DEFAULT_EMBEDDING", "Queries", "QueryEncoder", "build_memory_model", "embedder_for", "evaluate", "memory_summary",
           "evaluate_with_flat", "flat_from", "match_classes", "typical_similarity", "write_evaluation",
           "write_predictions"]

log = logging.getLogger(__name__)


#: The recipe a memory model is built with unless another is given.
DEFAULT_EMBEDDING = {"backbone": "lite0", "size": 128, "crop_pct": 0.875}


def embedder_for(recipe: dict[str, Any] | None, *, progress: bool = True, expect: str | None = None) -> Embedder:
    """The embedder that a classifier's ``embedding`` recipe names; checks the fingerprint."""
    if not isinstance(recipe, dict) or "backbone" not in recipe:
        raise InputError(
            "the model does not record how its embeddings were made (its 'embedding' recipe is missing), so "
            "images cannot be embedded for it; build it with router.build_memory_model, or fit it with "
            "TwoStageClassifier(..., embedding={'backbone': 'lite0', 'size': 128, 'crop_pct': 0.875})"
        )
    backbone = get_backbone(recipe["backbone"], size=recipe.get("size"), crop_pct=recipe.get("crop_pct"))
    if expect is not None and backbone.fingerprint != expect:
        raise BackboneMismatchError(
            f"the model was built on {expect}, but its recipe now gives {backbone.fingerprint}; "
            "were the backbone weights changed? rebuild the model"
        )
    return Embedder(backbone, progress=progress)


class Queries:
    """Encoded queries of a dataset: what a classifier consumes, with labels and references."""

    def __init__(self, X: np.ndarray, labels: np.ndarray, refs: list[str], fingerprint: str, dataset: str,
                 split: str) -> None:
        self.X, self.labels, self.refs, self.fingerprint = X, labels, refs, fingerprint
        self.dataset, self.split = dataset, split

    def __len__(self) -> int:
        return len(self.X)


class QueryEncoder:
    """Images to what ``clf`` consumes: embeddings, or trunk activations for a network-level model.

    The backbone is rebuilt from the model's recipe and must give the
    fingerprint the model was built with.
    """

    def __init__(self, clf: Any, *, progress: bool = True) -> None:
        from ..network import NetworkTwoStage

        self.network = isinstance(clf, NetworkTwoStage)
        self.progress = progress
        if self.network:
            self.split = clf.split_
            self.trunk_path = {"runtime": clf.runtime, "precision": clf.precision}  # the model's own path
        else:
            self.embedder = embedder_for(clf.embedding, progress=progress, expect=clf.fingerprint)

    def images(self, images: Sequence[Any]) -> np.ndarray:
        """Image paths or PIL images -> (n, dim) embeddings or (n, C, H, W) trunk activations."""
        if self.network:
            from ..network import run_trunk_on_images

            return run_trunk_on_images(self.split, list(images), progress=self.progress, **self.trunk_path)
        return self.embedder.embed_images(images)

    def dataset(self, ds: ImageDataset) -> Queries:
        """A whole dataset, through the on-disk cache."""
        if self.network:
            from ..network import trunk_activations

            ta = trunk_activations(ds, self.split, progress=self.progress, **self.trunk_path)
            return Queries(ta.acts, np.asarray(ta.labels), ta.refs, ta.fingerprint, ds.name, ds.split)
        es = embed_dataset(ds, self.embedder)
        return Queries(es.X, es.labels, es.refs, es.fingerprint, es.dataset, es.split)


def match_classes(tree: ClassTree, dataset: ImageDataset) -> ImageDataset:
    """``dataset`` with its class names resolved to ``tree``'s classes, checked before any embedding.

    Folder names may be the tree's class ids (wnids, or the labels of a
    mapping-file tree) or WordNet synset names (``car.n.01``).

    Raises
    ------
    HierarchyError
        The tree has no superclass cut.
    UnknownClassError
        Some class of the data is not a class of the tree (all are listed).
    InputError
        Two folders name the same class.
    """
    cut = tree.superclasses
    if dataset.info.get("matched_tree") is tree:
        return dataset  # checked already (the command line checks before embedding, then builds)
    if cut is None:
        raise HierarchyError("the tree has no superclass cut, so nothing can be routed; rebuild it with a cut: "
                             "'supersub tree build ... --cut balanced:N' or tree.with_superclasses(cut_balanced(tree, N))")
    classes = tree.resolve_classes(dataset.classes)
    if len(set(classes)) != len(classes):
        raise InputError("two class folders name the same class of the tree; give each class one folder")
    supers = {cut.assignment[c] for c in classes}
    if len(supers) < 2:
        log.warning("every class of the data lies in one superclass (%s), so routing decides nothing; cut the "
                    "tree finer ('--cut balanced:N' with a larger N)", next(iter(supers)))
    return dataclasses.replace(dataset, classes=classes, info={**dataset.info, "matched_tree": tree})


def build_memory_model(tree: ClassTree, dataset: ImageDataset, embedding: dict[str, Any] | None = None, *,
                       progress: bool = True, **options: Any) -> TwoStageClassifier:
    """Check ``dataset`` against ``tree``, embed it (through the cache) and fit a memory-level classifier.

    Examples
    --------
    >>> from hierarchy import load_tree                          # doctest: +SKIP
    >>> from memory import image_folder
    >>> clf = build_memory_model(load_tree("tree.json"), image_folder("photos/train"))
    >>> clf.save("model")                                        # then: supersub predict --model model img.jpg

    Parameters
    ----------
    embedding : dict, optional
        The recipe saved with the model: ``{"backbone", "size", "crop_pct"}``;
        :data:`DEFAULT_EMBEDDING` by default.
    **options
        Passed to :class:`TwoStageClassifier` (``router``, ``specialist``,
        ``routing``, ``m``, ``k``, ``voting``, ``backend``...).

    Returns
    -------
    TwoStageClassifier
        Fitted, its entries sourced as :attr:`memory.ImageDataset.source`
        (``"<dataset>/<split>"``) with the image paths as references; not yet saved.
    """
    dataset = match_classes(tree, dataset)
    embedding = dict(DEFAULT_EMBEDDING if embedding is None else embedding)
    es = embed_dataset(dataset, embedder_for(embedding, progress=progress))
    data = {"root": str(Path(dataset.root).resolve()), "name": dataset.name, "split": dataset.split}
    clf = TwoStageClassifier(tree, fingerprint=es.fingerprint, embedding=embedding, data=data, **options)
    return clf.fit(es.X, es.labels, source=dataset.source, refs=es.refs)


def flat_from(clf: Any) -> Any:
    """The flat baseline of a routed classifier: kNN over exactly its shards' entries, or its generalist."""
    from ..network import NetworkTwoStage

    if isinstance(clf, NetworkTwoStage):
        return clf.flat()
    X = np.concatenate([sh.vectors(sh.ids_) for sh in clf.shards_ if len(sh)])
    y = [m["label"] for sh in clf.shards_ if len(sh) for m in sh.get(sh.ids_)]
    return FlatClassifier("knn", k=clf.k, voting=clf.voting, temperature=clf.temperature).fit(X, y)


def evaluate(clf: TwoStageClassifier, X: np.ndarray, y: Sequence[str], *, routing: str | None = None,
             m: int | None = None, decision: str = "argmax", outputs: EvaluationOutputs | None = None) -> dict[str, Any]:
    """Accuracy by level for a routed classifier.

    ``outputs`` (:func:`evaluation_outputs` of the same queries) saves running the model again.

    Returns
    -------
    dict
        ``top1``, ``superclass_accuracy`` (stage 1), ``specialist_accuracy``
        (top-1 given a correct route), ``oracle_top1``, the split of errors
        into routing errors and within-superclass errors, ``mistake_severity``
        (mean LCA height of the mistakes) and the ``decision`` used.  With
        a decision other than argmax, also ``argmax`` (its ``top1``,
        ``mistake_severity`` and ``errors``) and ``minus_argmax`` (the top-1
        difference with its paired 95% interval), from the same probabilities.
    """
    return _evaluate(clf, X, y, routing=routing, m=m, decision=decision, outputs=outputs)[0]


def _evaluate(clf: Any, X: np.ndarray, y: Sequence[str], *, routing: str | None, m: int | None,
              decision: str, outputs: EvaluationOutputs | None = None) -> tuple[dict[str, Any], np.ndarray]:
    """:func:`evaluate`'s figures and the predictions, shape (n,)."""
    y = np.asarray(y, dtype=object)
    outs = outputs or evaluation_outputs(clf, X, y, routing=routing, m=m)  # one pass serves every decision
    outs.check(len(y))
    cut = clf.assignment_
    true_sup = np.array([cut[c] for c in y], dtype=object)
    pred = clf.predict_from_proba(outs.proba, decision)
    route = outs.route
    oracle = clf.predict_from_proba(outs.oracle, "argmax")
    wrong = pred != y
    pred_sup = np.array([cut[c] for c in pred], dtype=object)
    right_route = route == true_sup
    out = {
        "n": int(len(y)),
        "top1": float(np.mean(~wrong)),
        "superclass_accuracy": float(np.mean(right_route)),
        "predicted_superclass_accuracy": float(np.mean(pred_sup == true_sup)),
        "specialist_accuracy": float(np.mean(~wrong[right_route])) if right_route.any() else 0.0,
        "oracle_top1": float(np.mean(oracle == y)),
        "errors": int(wrong.sum()),
        "errors_across_superclasses": int((wrong & (pred_sup != true_sup)).sum()),
        "errors_within_superclass": int((wrong & (pred_sup == true_sup)).sum()),
        "mistake_severity": _severity(clf.tree, y[wrong], pred[wrong]),
        "decision": decision,
    }
    if decision != "argmax":  # the same probabilities' argmax, for the comparison
        plain = clf.predict_from_proba(outs.proba, "argmax")
        out["argmax"] = {"top1": float(np.mean(plain == y)), "errors": int((plain != y).sum()),
                         "mistake_severity": _severity(clf.tree, y[plain != y], plain[plain != y])}
        out["minus_argmax"] = paired_difference(plain == y, pred == y).to_dict()
    return out, pred


def _severity(tree: ClassTree, true: np.ndarray, pred: np.ndarray) -> float:
    """Mean LCA height of the mistakes that name a class (0 when there are none)."""
    heights = [tree.lca_height(str(t), str(p)) for t, p in zip(true, pred) if p is not None]
    return float(np.mean(heights)) if heights else 0.0


def evaluate_with_flat(clf: Any, X: np.ndarray, y: Sequence[str], flat: Any, *, routing: str | None = None,
                       m: int | None = None, fingerprint: str = "", decision: str = "argmax",
                       outputs: EvaluationOutputs | None = None) -> dict[str, Any]:
    """The routed classifier and its flat baseline (``flat``, from :func:`flat_from`) on the same queries.

    ``outputs`` (:func:`evaluation_outputs` of the same queries, with ``flat``) saves running
    the models again.

    Returns
    -------
    dict
        ``routed`` (:func:`evaluate`), ``flat_baseline`` (top-1, predicted
        superclass accuracy, errors across and within superclasses of the flat
        system), ``flat`` (which flat system that is: kNN over the same memory,
        or a network model's generalist), ``routed_minus_flat`` (the top-1
        difference with its paired 95% interval, McNemar's p and a verdict:
        a tie when the interval holds 0; :func:`router.paired_difference`), ``routing`` (the routing used, and
        ``m`` for soft routing), ``queries``, ``fingerprint`` and ``model``.
    """
    from ..network import NetworkTwoStage

    y = np.asarray(y, dtype=object)
    outs = _with_flat(outputs, clf, X, y, flat, routing=routing, m=m)
    routed, pred = _evaluate(clf, X, y, routing=routing, m=m, decision=decision, outputs=outs)
    flat_pred = np.asarray(flat.classes_)[outs.flat.argmax(1)]  # type: ignore[union-attr]  # flat.predict's
    cut = clf.assignment_
    true_sup = np.array([cut[c] for c in y], dtype=object)
    flat_sup = np.array([cut[c] for c in flat_pred], dtype=object)
    wrong = flat_pred != y
    return {
        "queries": int(len(y)), "fingerprint": fingerprint, "model": repr(clf),
        "flat": "fine-tuned flat tail (the generalist)" if isinstance(clf, NetworkTwoStage)
        else "flat kNN (same memory)",
        "routing": {"mode": routing or clf.routing,
                    "m": int(m or clf.m) if (routing or clf.routing) == "soft" else None},
        "flat_baseline": {"top1": float(np.mean(~wrong)),
                     "predicted_superclass_accuracy": float(np.mean(flat_sup == true_sup)),
                     "errors": int(wrong.sum()),
                     "errors_across_superclasses": int((wrong & (flat_sup != true_sup)).sum()),
                     "errors_within_superclass": int((wrong & (flat_sup == true_sup)).sum())},
        "routed": routed,
        "routed_minus_flat": paired_difference(~wrong, pred == y).to_dict(),
    }


def write_evaluation(out: str | os.PathLike[str], clf: Any, X: np.ndarray, y: Sequence[str], refs: Sequence[str],
                     result: dict[str, Any], flat: Any, *, routing: str | None = None,
                     m: int | None = None, data_root: str | os.PathLike[str] | None = None,
                     outputs: EvaluationOutputs | None = None) -> list[Path]:
    """``out/metrics.json`` (``result``) and ``out/predictions.csv`` (flat, routed and oracle-routed rows).

    ``data_root``, the folder ``refs`` are relative to, is recorded in
    ``metrics.json`` (as ``"data_root"``) so a report finds the query images.
    ``outputs`` (:func:`evaluation_outputs` of the same queries, with ``flat``) saves running
    the models again.
    """
    out = Path(out)
    if data_root is not None:
        result = {**result, "data_root": str(Path(data_root).resolve())}
    atomic_write(out / "metrics.json", json.dumps(result, indent=1))
    y = np.asarray(y, dtype=object)
    true_sup = np.array([clf.assignment_[c] for c in y], dtype=object)
    outs = _with_flat(outputs, clf, X, y, flat, routing=routing, m=m)
    rp, fp, op = outs.proba, outs.flat, outs.oracle
    assert fp is not None
    flat_pred = np.asarray(flat.classes_)[fp.argmax(1)]  # what flat.predict gives, without a second search
    col = {c: i for i, c in enumerate(flat.classes_)}
    fp = fp[:, [col[c] for c in clf.class_ids_]]  # the routed column order
    write_predictions(out / "predictions.csv", refs, list(y), {
        "flat": (flat_pred, None, fp),
        "routed": (clf.class_ids_[rp.argmax(1)], outs.route, rp),
        "oracle": (clf.class_ids_[op.argmax(1)], true_sup, op),
    }, clf.tree, classes=clf.class_ids_)
    return [out / "metrics.json", out / "predictions.csv"]


def _with_flat(outputs: EvaluationOutputs | None, clf: Any, X: Any, y: np.ndarray, flat: Any, *,
               routing: str | None, m: int | None) -> EvaluationOutputs:
    """``outputs`` checked against the queries, or computed (with the flat baseline's) when not given."""
    if outputs is None:
        return evaluation_outputs(clf, X, y, flat, routing=routing, m=m)
    outputs.check(len(y))
    if outputs.flat is None:
        raise InputError("these evaluation outputs have no flat baseline: pass flat to evaluation_outputs")
    return outputs


def write_predictions(path: str | os.PathLike[str], refs: Sequence[str], y: Sequence[str],
                      systems: dict[str, tuple[np.ndarray, np.ndarray | None, np.ndarray]],
                      tree: ClassTree, *, classes: np.ndarray | None = None, top: int = 5) -> Path:
    """CSV with one row per query and system: ``system,ref,true,pred,route,score,pred2..``.

    ``systems`` maps a name to ``(pred, route or None, proba)``, where ``proba``
    has shape (n, len(classes)); its ranking gives ``pred2``..``pred{top}``.
    """
    path = Path(path)
    if classes is not None:
        top = min(top, len(classes))  # no more ranked guesses than classes
    ranked_cols = [f"pred{k}" for k in range(2, top + 1)] if classes is not None else []
    fh = io.StringIO(newline="")
    w = csv.writer(fh)
    w.writerow(["system", "ref", "true", "pred", "route", "score", *ranked_cols])
    for name, (pred, route, proba) in systems.items():
        order = np.argsort(-proba, axis=1, kind="stable")[:, 1:top] if ranked_cols else None
        for i in range(len(y)):
            extra = [classes[j] for j in order[i]] if order is not None else []  # type: ignore[index]
            w.writerow([name, refs[i], y[i], pred[i], "" if route is None else route[i],
                        f"{proba[i].max():.6f}", *extra])
    atomic_write(path, fh.getvalue())
    return path


def typical_similarity(clf: Any, *, sample: int = 2000, percentile: float = 5.0, seed: int = 0) -> float | None:
    """How close a memory's entries are to their nearest other entry: the ``percentile`` of that similarity.

    A query whose nearest entry is less similar than this is unlike the
    memory (out of distribution).  Entries are sampled (``sample`` at most,
    spread over the shards by size); None for a model without memory shards
    or with fewer than two entries per shard.
    """
    shards = [sh for sh in getattr(clf, "shards_", []) if len(sh) > 1]
    total = sum(len(sh) for sh in shards)
    if not total:
        return None
    rng = np.random.default_rng(seed)
    nearest = []
    for sh in shards:
        ids = sh.ids_
        take = rng.choice(ids, min(len(ids), max(1, round(sample * len(ids) / total))), replace=False)
        sims, found = sh.search(sh.vectors(take), 2)
        other = np.where(found[:, 0] == take, sims[:, 1], sims[:, 0])  # skip the entry itself
        nearest.append(other[np.isfinite(other)])
    values = np.concatenate(nearest)
    return float(np.percentile(values, percentile)) if values.size else None


def memory_summary(clf: TwoStageClassifier) -> list[tuple[str, str, int, int, str]]:
    """(superclass id, name, entries, classes, sources) per shard."""
    names = clf.tree.superclasses.names  # type: ignore[union-attr]
    rows = []
    for s, sh in zip(clf.superclasses_, clf.shards_):
        rows.append((s, names[s], len(sh), len(sh.classes_) if len(sh) else 0,
                     ", ".join(sh.sources_) if len(sh) else ""))
    return rows

