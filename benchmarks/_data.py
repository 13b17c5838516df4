"""Data for the benchmarks: Tiny-ImageNet embeddings, or clustered data on a real tree.

Every benchmark takes a :class:`Split`, so its fast subset in the test
suite runs the same code as the full command.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hierarchy import ClassTree, shipped_tree


@dataclass
class Split:
    """Train (the memory), a held-out dev split (tuning) and val (scoring only).

    Attributes
    ----------
    X, y : ndarray of shape (n, dim) and (n,)
        Training embeddings and labels: what goes into the memory.
    dev_X, dev_y : ndarray of shape (n_dev, dim) and (n_dev,)
        Held out of train; picks hyper-parameters and what to prune.
    Q, qy : ndarray of shape (n_val, dim) and (n_val,)
        Queries, used for scoring only.
    tree : ClassTree
        The class tree with its superclass cut.
    description : str
    """

    X: np.ndarray
    y: np.ndarray
    dev_X: np.ndarray
    dev_y: np.ndarray
    Q: np.ndarray
    qy: np.ndarray
    tree: ClassTree
    description: str
    _lca: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.y.tolist()))

    def superclass(self, labels: Any) -> np.ndarray:
        cut = self.tree.superclasses
        assert cut is not None
        a = cut.assignment
        return np.array([a.get(c, "") if c is not None else "" for c in labels], dtype=object)

    def score(self, pred: Any, truth: Any | None = None) -> dict[str, float]:
        """Top-1, superclass accuracy and mean LCA height of the mistakes."""
        truth = self.qy if truth is None else np.asarray(truth, dtype=object)
        pred = np.asarray(pred, dtype=object)
        if "index" not in self._lca:
            classes = list(self.tree.classes)
            self._lca["index"] = {c: i for i, c in enumerate(classes)}
            self._lca["matrix"] = self.tree.lca_height_matrix(classes)
        index, matrix = self._lca["index"], self._lca["matrix"]
        wrong = pred != truth
        answered = np.array([p is not None for p in pred])
        mistakes = np.flatnonzero(wrong & answered)
        heights = [matrix[index[truth[i]], index[pred[i]]] for i in mistakes]
        return {
            "top1": round(float(np.mean(~wrong)), 4),
            "superclass_accuracy": round(float(np.mean(self.superclass(pred) == self.superclass(truth))), 4),
            "mean_lca_height": round(float(np.mean(heights)), 3) if heights else 0.0,
        }


def _hold_out(y: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """A boolean mask choosing ``per_class`` rows of each class (seeded)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        mask[rng.choice(rows, size=min(per_class, len(rows) // 2), replace=False)] = True
    return mask


def tiny(per_class: int | None = None, val_per_class: int | None = None, *, dev_per_class: int = 50,
         size: int = 128, seed: int = 0) -> Split:
    """Tiny-ImageNet through Lite0 at ``size`` px (cached embeddings; needs ``SUPERSUB_DATA``).

    ``dev_per_class`` training images of each class are held out of the
    memory as the dev split.  ``per_class`` / ``val_per_class`` take
    subsets (the first images of each class).
    """
    from memory import Embedder, embed_dataset, get_backbone, tiny_imagenet

    emb = Embedder(get_backbone("lite0", size=size), precision="fp32")  # the path the results were made with
    train_ds, val_ds = tiny_imagenet("train"), tiny_imagenet("val")
    if per_class:
        train_ds = train_ds.subset(per_class)
    if val_per_class:
        val_ds = val_ds.subset(val_per_class)
    tr, va = embed_dataset(train_ds, emb), embed_dataset(val_ds, emb)
    y = tr.labels.astype(object)
    dev = _hold_out(y, dev_per_class, seed)
    return Split(
        tr.X[~dev], y[~dev], tr.X[dev], y[dev], va.X, va.labels.astype(object),
        shipped_tree("tiny-imagenet-200"),
        f"Tiny-ImageNet, Lite0 @ {size} px ({tr.fingerprint}): memory {int((~dev).sum()):,} train "
        f"images, dev {int(dev.sum()):,} held out of train, scored on {len(va):,} val images",
    )


def synthetic(per_class: int = 20, val_per_class: int = 5, *, dev_per_class: int = 5, dim: int = 32,
              n_classes: int | None = None, noise: float = 1.5, seed: int = 0,
              tree: ClassTree | None = None) -> Split:
    """Clustered Gaussian embeddings on the shipped Tiny-ImageNet tree.

    Class centres lie near their superclass's centre, so the superclass
    structure is real; ``n_classes`` takes every n-th class.
    """
    tree = tree or shipped_tree("tiny-imagenet-200")
    classes = list(tree.classes)
    if n_classes:
        classes = classes[:: max(1, len(classes) // n_classes)][:n_classes]
    rng = np.random.default_rng(seed)
    supers = sorted({tree.superclass_of(c) for c in classes})
    sup_centre = {s: rng.normal(size=dim) for s in supers}
    centre = np.stack([sup_centre[tree.superclass_of(c)] + rng.normal(size=dim) for c in classes])

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        X = np.repeat(centre, n, axis=0) + noise * rng.normal(size=(len(classes) * n, dim))
        X /= np.linalg.norm(X, axis=1, keepdims=True)
        return X.astype(np.float32), np.repeat(np.array(classes, dtype=object), n)

    X, y = draw(per_class + dev_per_class)
    dev = _hold_out(y, dev_per_class, seed)
    Q, qy = draw(val_per_class)
    return Split(X[~dev], y[~dev], X[dev], y[dev], Q, qy, tree,
                 f"synthetic: {len(classes)} classes of the Tiny-ImageNet tree, {dim}-d, "
                 f"{int((~dev).sum())} train / {int(dev.sum())} dev / {len(Q)} val")


def add_split_args(ap: Any) -> None:
    """The data options every benchmark command shares."""
    ap.add_argument("--quick", action="store_true",
                    help="a Tiny-ImageNet subset (50 train / 10 val images per class); results are not written")
    ap.add_argument("--synthetic", action="store_true",
                    help="clustered data on the real tree instead of images (no dataset needed)")


def split_from_args(args: Any) -> Split:
    if args.synthetic:
        return synthetic(per_class=60, val_per_class=10, dev_per_class=10, dim=64)
    if args.quick:
        return tiny(per_class=60, val_per_class=10, dev_per_class=10)
    return tiny()


def command(name: str, doc: str | None, run: Any, argv: list[str] | None = None,
            options: Any = None) -> dict[str, Any]:
    """The shared command line: parse, pick the split, run, write ``results/<name>.json``.

    ``run(split, args)`` does the work; ``options(parser)`` adds its own flags.
    Results are written only for the full Tiny-ImageNet run.
    """
    import argparse

    from benchmarks._common import write_result

    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_split_args(ap)
    if options is not None:
        options(ap)
    args = ap.parse_args(argv)
    out: dict[str, Any] = run(split_from_args(args), args)
    if not (args.quick or args.synthetic):
        print("wrote", write_result(name, out))
    return out
