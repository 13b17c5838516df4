"""Super-sub at the network level: a fine-tuned generalist routes, tail specialists decide.

A query runs the trunk once and the generalist tail once.  The generalist's
class probabilities, summed over each superclass's members, route it; the
chosen specialist (m of them for soft routing) then scores the classes it
covers.  A specialist's answer can be mixed with the generalist's own
conditional probabilities and with kNN votes of a memory shard embedded by
that specialist (the cache model, in the specialist's feature space):

``P(c) = sum over routed s of w_s * P_s(c)``, with ``w`` the route
probabilities renormalised over the m superclasses searched, and

``P_s(c) = (1 - a - b) * P_spec(c) + a * P_gen(c | s) + b * P_knn(c | s)``.

Edits of the specialist memories, and what they leave in the networks, are in
:mod:`router.network._memory`.

Why one module: it holds one class, :class:`NetworkTwoStage`, whose fitting
(generalist, specialists, memories) and prediction share the trunk split and the
superclass groups; saving is in :mod:`._persist`, training in :mod:`._tails`, the
conditionals of stage 2 in :mod:`._conditionals`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hierarchy import ClassTree, HierarchyError, SuperclassMap, UnknownClassError, soft_labels
from memory import ImageDataset, InputError, VisualMemory, get_backbone, progress_line
from memory import as_strings

from .._base import RoutedModel
from .._explanations import RoutedExplanation
from .._random import seeded
from ._explain import explain_network
from ._mix import choose_mix, held_out_rows
from ._conditionals import Conditionals
from ._memory import ShardMemories, restrict_cut
from ._routing import ROUTINGS, GeneralistFlat, combine, route_weights, routed_sum, softmax
from ._graphs import choose_path
from ._runtime import NetworkRuntime
from ._tail_specialists import TailSpecialists
from ._tails import train_tail
from ._trunk import BackboneSplit, Tail, TrunkActivations, split_backbone

__all__ = ["NetworkTwoStage"]

log = logging.getLogger(__name__)

SPECIALISTS = ("tail-delta", "tail-full")


class NetworkTwoStage(NetworkRuntime, ShardMemories, Conditionals, RoutedModel):
    """Images in, predictions out: a fine-tuned generalist tail routes, tail specialists decide.

    The memory-level model is :class:`TwoStageClassifier`; both save to a
    directory that :func:`router.load_model` reads, whichever kind it holds.

    Parameters
    ----------
    tree : ClassTree
        With a superclass cut; its ``overlap`` (see
        :func:`hierarchy.cut_confusion`) widens what each specialist covers.
    specialist : {"tail-delta", "tail-full"}, default "tail-delta"
        The generalist tail plus int8 low-rank, norm and bias deltas per
        superclass; or a full fine-tuned copy of the tail per superclass.
    routing : {"hard", "soft", "oracle"}, default "soft"
    m : int, default 2
        Superclasses searched by soft routing.
    backbone, size, crop_pct, split_at
        The backbone, its input size and crop, and where its tail starts
        (default: the last stage).  The default size, 160 px, scored 3.3
        points above 128 px for the fine-tuned flat tail on Tiny-ImageNet's
        64-px images, at about 1.6 times the compute.
    rank : int, default 16
        Rank of the low-rank deltas.
    epochs, specialist_epochs : int, default 4 and 2
        Fine-tuning of the generalist; of each specialist.
    memory : bool, default True
        Keep a memory shard per superclass in the specialist's feature space.
    k : int, default 10
        Neighbours of the memory vote.
    mix : (float, float), default (0.0, 0.5)
        Weights ``(a, b)`` of the generalist's and the memory's conditionals
        (see the module docstring).  The default is what dev chose on
        Tiny-ImageNet for the induced and confusion cuts.  With
        ``dev_per_class`` the fitted ``mix_`` is chosen on the held-out
        images instead; ``mix`` itself is never changed.
    dev_per_class : int, default 0
        Images per class held out of training to choose the specialists'
        epochs (early stopping) and ``mix``.
    precision : {"bf16", "fp32"}, default "bf16"
        Training runs in eager torch, with bf16 autocast for ``"bf16"``.
        Inference runs on ``runtime`` in this precision where the CPU runs it
        natively, else in fp32 (see :func:`router.network.choose_path`).
    runtime : {"auto", "torch", "onnx", "openvino"}, default "auto"
        Where the trunk and the tails run at inference (and the trunk for the
        training cache): OpenVINO where installed (bf16 on CPUs with AMX or
        AVX-512 BF16), else ONNX Runtime, else eager torch.  The numeric path
        is part of :attr:`fingerprint`.
    seed : int, default 0
    progress : bool, default True
    hierarchy_beta : float, default 0
        Train the generalist on hierarchy-aware soft labels
        (:func:`hierarchy.soft_labels`, β = this value; larger is closer to
        one-hot) instead of label smoothing, for less severe mistakes; 0 keeps
        plain labels.
    """

    router = "generalist"

    _fitted_attr = "generalist_"
    #: Inputs are images (or trunk activations), not feature vectors.
    takes_images = True
    _shape_params = ("router", "specialist", "routing")

    def __init__(
        self,
        tree: ClassTree,
        *,
        specialist: str = "tail-delta",
        routing: str = "soft",
        m: int = 2,
        backbone: str = "lite0",
        size: int | None = 160,
        crop_pct: float | None = None,
        split_at: str | None = None,
        rank: int = 16,
        epochs: int = 4,
        specialist_epochs: int = 2,
        memory: bool = True,
        k: int = 10,
        mix: tuple[float, float] = (0.0, 0.5),
        dev_per_class: int = 0,
        precision: str = "bf16",
        seed: int = 0,
        progress: bool = True,
        hierarchy_beta: float = 0.0,
        runtime: str = "auto",
    ) -> None:
        self.tree = tree
        self.specialist = specialist
        self.routing, self.m = routing, m
        self.backbone, self.size, self.crop_pct, self.split_at = backbone, size, crop_pct, split_at
        self.rank, self.epochs, self.specialist_epochs = rank, epochs, specialist_epochs
        self.memory, self.k, self.mix = memory, k, mix
        self.dev_per_class, self.precision, self.seed, self.progress = dev_per_class, precision, seed, progress
        self.hierarchy_beta, self.runtime = hierarchy_beta, runtime

    def check_params(self) -> None:
        """Refuse invalid constructor arguments (checked by ``fit`` and on load, as scikit-learn does)."""
        if self.tree.superclasses is None:
            raise HierarchyError("the tree has no superclass cut; build one with a --cut")
        if self.specialist not in SPECIALISTS:
            raise InputError(f"specialist must be one of {SPECIALISTS} for the network-level model "
                             f"(router='generalist'), got {self.specialist!r}")
        if self.routing not in ROUTINGS:
            raise InputError(f"routing must be one of {ROUTINGS}, got {self.routing!r}")
        for name in ("m", "k", "rank", "epochs"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise InputError(f"{name} must be an integer >= 1, got {v!r}")
        if not isinstance(self.specialist_epochs, (int, np.integer)) or self.specialist_epochs < 0:
            raise InputError(f"specialist_epochs must be an integer >= 0, got {self.specialist_epochs!r}")
        try:
            a, b = (float(v) for v in self.mix)
        except (TypeError, ValueError):
            raise InputError(f"mix must be two weights (generalist, memory), got {self.mix!r}") from None
        if not (0 <= a and 0 <= b and a + b <= 1):
            raise InputError(f"mix weights must be >= 0 with a sum <= 1, got {self.mix!r}")
        choose_path(self.runtime, self.precision)  # an unknown or unavailable runtime fails here
        beta = self.hierarchy_beta
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not (0 <= beta < float("inf")):
            raise InputError(f"hierarchy_beta must be a number >= 0 (0: plain labels), got {beta!r}")

    # ------------------------------------------------------------ assembly
    @classmethod
    def from_parts(cls, tree: ClassTree, split: BackboneSplit, generalist: Tail, classes: Sequence[str],
                   specialists: TailSpecialists | None = None, **options: Any) -> NetworkTwoStage:
        """Assemble a classifier from trained parts; ``tree``'s cut, limited to ``classes``, routes."""
        self = cls(tree, **{"backbone": split.backbone.name, **options})
        assert tree.superclasses is not None
        self.assemble(split, generalist, classes, restrict_cut(tree.superclasses, classes), specialists)
        return self

    @property
    def class_ids_(self) -> np.ndarray:
        """The classes as the tree's class ids: ``classes_`` (they are strings here)."""
        return self.classes_

    def assemble(self, split: BackboneSplit, generalist: Tail, classes: Sequence[str], cut: SuperclassMap,
                 specialists: TailSpecialists | None) -> None:
        """Install trained parts: what :meth:`fit` ends with and what a load rebuilds."""
        self.split_, self.generalist_ = split, generalist.eval()
        self.classes_ = np.asarray(list(classes), dtype=object)
        if generalist.classifier is None or generalist.classifier.out_features != len(self.classes_):
            raise InputError(f"the generalist must have a classifier with {len(self.classes_)} outputs")
        cut.validate(list(self.classes_))
        self.cut_ = cut
        self.superclasses_ = list(cut.superclasses)
        index = {c: i for i, c in enumerate(self.classes_)}
        self.primary_ = np.array(cut.index(list(self.classes_)), dtype=np.int64)
        self.groups_ = [np.array(sorted(index[c] for c in cut.extended(s)), dtype=np.int64)
                        for s in self.superclasses_]
        if specialists is not None and (len(specialists.groups) != len(self.groups_) or not all(
                np.array_equal(a, b) for a, b in zip(specialists.groups, self.groups_))):
            raise InputError("the specialists were trained on other groups than this cut's")
        self.specialists_ = specialists
        self.memories_: list[VisualMemory] | None = None
        self.mix_ = tuple(float(v) for v in self.mix)  # fit may choose another on held-out images
        self.reset_graphs()

    @property
    def n_superclasses(self) -> int:
        return len(self.superclasses_)

    # ---------------------------------------------------------------- input
    def activations(self, X: Any) -> np.ndarray:
        """Trunk activations of images, a dataset, or activations already computed.

        Returns
        -------
        ndarray of shape (n_queries, channels, height, width)
        """
        self.check_fitted()
        return self._acts_for(self.split_, X)

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any = None) -> NetworkTwoStage:
        """Fine-tune the generalist, train the specialists and fill the memories.

        Parameters
        ----------
        X : ImageDataset, sequence of image paths or PIL images, or TrunkActivations
        y : sequence of str, optional
            Class ids, required unless ``X`` carries labels.

        The same ``seed``, data, machine and thread count give a bit-identical
        model; torch's global generator is left as the caller had it.
        """
        with seeded(self.seed):
            return self._fit(X, y)

    def _fit(self, X: Any, y: Any) -> NetworkTwoStage:
        self.check_params()
        self.__dict__.pop("calibration_", None)  # a refit model is not the one calibrated
        split = split_backbone(get_backbone(self.backbone, size=self.size, crop_pct=self.crop_pct), self.split_at)
        acts = self._acts_for(split, X)
        if y is None:
            if not isinstance(X, (ImageDataset, TrunkActivations)):
                raise InputError("y is required unless X is a dataset with labels")
            y = X.labels
        labels = as_strings(y, len(acts), "y")
        cut = self.tree.superclasses
        assert cut is not None
        unknown = sorted({c for c in labels if c not in cut.assignment})
        if unknown:
            raise UnknownClassError(f"unknown label {unknown[0]!r}: it is not a class of the tree's cut; "
                                    "add it to the tree first (ClassTree.with_class)")
        present = set(labels)
        classes = [c for c in self.tree.classes if c in present]
        cut = restrict_cut(cut, classes)
        if len(cut) < 2:
            raise InputError("the data covers one superclass only; routing needs at least two")
        index = {c: i for i, c in enumerate(classes)}
        yi = np.array([index[c] for c in labels], dtype=np.int64)
        dv = held_out_rows(yi, self.dev_per_class, self.seed)
        tr = ~dv
        dev = (acts[dv], yi[dv]) if dv.any() else None
        generalist = split.tail(len(classes), seed=self.seed)
        soft = soft_labels(self.tree.lca_height_matrix([str(c) for c in classes]), self.hierarchy_beta) \
            if self.hierarchy_beta else None
        self.history_ = {"generalist": train_tail(generalist, acts[tr], yi[tr], epochs=self.epochs,
                                                  precision=self.precision, seed=self.seed, dev=dev,
                                                  progress=self.progress, soft_targets=soft)}
        self.assemble(split, generalist, classes, cut, None)
        kind = "delta" if self.specialist == "tail-delta" else "full"
        specs = TailSpecialists(generalist, kind=kind, rank=self.rank)
        specs.fit(acts[tr], yi[tr], self.groups_, epochs=self.specialist_epochs, precision=self.precision,
                  seed=self.seed, dev=dev, progress=self.progress)
        self.specialists_ = specs
        self.history_["specialists"] = {"seconds": specs.fitted.seconds, "dev_top1": specs.fitted.dev_top1,
                                        "best_epoch": specs.fitted.best_epoch}
        self.data_ = ({"root": str(Path(X.root).resolve()), "name": X.name, "split": X.split}
                      if isinstance(X, ImageDataset) else None)
        if self.memory:
            refs = list(X.refs) if isinstance(X, (ImageDataset, TrunkActivations)) else None
            source = X.source if isinstance(X, ImageDataset) else "train"
            self.fit_memories(acts[tr], yi[tr], refs=[refs[i] for i in np.flatnonzero(tr)] if refs else None,
                              source=source)
        if dev is not None:
            self.mix_ = choose_mix(self, *dev)
            if self.progress:
                progress_line(f"mix chosen on the held-out images: generalist {self.mix_[0]:g}, memory {self.mix_[1]:g}")
        return self

    # ------------------------------------------------------------ stage 1
    def generalist_proba(self, X: Any) -> np.ndarray:
        """The generalist's class probabilities, shape (n, n_classes), columns ``classes_``."""
        return softmax(self.generalist_logits(self.activations(X)))

    def route_from(self, p_gen: np.ndarray) -> np.ndarray:
        """Superclass probabilities from class probabilities, shape (n, n_superclasses)."""
        out = np.zeros((len(p_gen), self.n_superclasses))
        np.add.at(out.T, self.primary_, p_gen.T)
        return out

    def route_proba(self, X: Any) -> np.ndarray:
        """Stage-1 superclass probabilities, shape (n, n_superclasses), columns ``superclasses_``."""
        return self.route_from(self.generalist_proba(X))

    # ------------------------------------------------------------ stage 2
    def route_weights(self, route: np.ndarray, *, routing: str = "soft", m: int = 2,
                      superclass: np.ndarray | None = None) -> np.ndarray:
        """Weight of each superclass per query, shape (n, n_superclasses): top-m renormalised."""
        return route_weights(route, routing=routing, m=m, superclass=superclass)

    def combine(self, route: np.ndarray, within: Sequence[np.ndarray | None], *, routing: str = "soft", m: int = 2,
                superclass: np.ndarray | None = None) -> np.ndarray:
        """Class probabilities from route probabilities and per-superclass conditionals for all queries."""
        weights = self.route_weights(route, routing=routing, m=m, superclass=superclass)
        return combine(weights, within, self.groups_, len(self.classes_), self.superclasses_)

    def superclass_targets(self, y_true: Any, n: int) -> np.ndarray:
        """Index into ``superclasses_`` of each true class's superclass (for oracle routing), shape (n,)."""
        index = {c: i for i, c in enumerate(self.classes_)}
        labels = as_strings(y_true, n, "y_true")
        bad = [c for c in labels if c not in index]
        if bad:
            raise UnknownClassError(f"unknown class {bad[0]!r} in y_true")
        return self.primary_[[index[c] for c in labels]]

    def predict_proba(self, X: Any, *, routing: str | None = None, m: int | None = None,
                      y_true: Any = None, mix: tuple[float, float] | None = None, steer: Any = None) -> np.ndarray:
        """Class probabilities, shape (n, n_classes), columns ``classes_``.

        Specialists run only on the queries routed to them, one superclass at
        a time (only its deltas are applied to the shared tail).  ``steer``
        (a :class:`memory.Steer`) excludes or reweights memory entries: it
        changes the memory's votes (weight ``mix[1]``) and nothing the
        networks compute, so the route and the specialists' own answers stay.
        """
        return self._routed(X, routing=routing, m=m, y_true=y_true, mix=mix, steer=steer)[0]

    def predict(self, X: Any, *, decision: str = "argmax", **kwargs: Any) -> np.ndarray:
        """Predicted class ids, shape (n,), object array of str; ``decision="crm"``: see :meth:`decide`.

        With ``decision="argmax"`` (the default) each query's heaviest routed
        specialist runs first, and its other routed specialists only where the
        answer is not settled: where the leading class is not ahead of every
        other by more than the route weight not yet searched.  The answer is
        :meth:`predict_proba`'s argmax with fewer specialists run
        (:meth:`specialists_run` counts them).  ``kwargs`` are
        :meth:`predict_proba`'s.
        """
        settle = decision == "argmax"
        proba = self._routed(X, settle=settle, **kwargs)[0]  # first: an unfitted model raises NotFittedError here
        return self.predict_from_proba(proba, decision)

    def specialists_run(self, X: Any, *, settle: bool = True, **kwargs: Any) -> np.ndarray:
        """Specialists run per query by :meth:`predict` (``settle=False``: :meth:`predict_proba`), shape (n,), int."""
        return self._routed(X, settle=settle, **kwargs)[1].sum(1)

    def _routed(self, X: Any, *, routing: str | None = None, m: int | None = None, y_true: Any = None,
                mix: tuple[float, float] | None = None, steer: Any = None,
                settle: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """:func:`._routing.routed_sum` over the routed specialists: (probabilities, specialists computed)."""
        acts = self.activations(X)
        routing = routing or self.routing
        m = self.m if m is None else m
        p_gen = softmax(self.generalist_logits(acts))
        route = self.route_from(p_gen)
        sup = self.superclass_targets(y_true, len(acts)) if routing == "oracle" else None
        weights = self.route_weights(route, routing=routing, m=m, superclass=sup)
        a, b = mix = self.mix_ if mix is None else mix
        settle = settle and a >= 0 and b >= 0 and a + b <= 1  # each conditional is then in [0, 1]
        return routed_sum(weights, self.groups_, len(self.classes_),
                          lambda pairs: self._within(pairs, acts, p_gen, mix, steer), settle=settle)

    def predict_superclass(self, X: Any) -> np.ndarray:
        """Stage-1 top superclass per query, shape (n,), object array of str."""
        return np.asarray(self.superclasses_, dtype=object)[self.route_proba(X).argmax(1)]

    def score(self, X: Any, y: Any, **kwargs: Any) -> float:
        """Top-1 accuracy."""
        pred = self.predict(X, **kwargs)
        return float(np.mean(pred == as_strings(y, len(pred), "y")))

    def explain(self, X: Any, *, top: int = 5, **kwargs: Any) -> list[RoutedExplanation]:
        """The route, the specialists searched and the first one's memory neighbours, per query."""
        return explain_network(self, X, top=top, **kwargs)

    def storage(self) -> dict[str, Any]:
        """The generalist and the specialists in bytes, tails and whole networks; memory entries."""
        self.check_fitted()
        trunk = sum(p.numel() for p in self.split_.trunk.parameters())
        out = self.specialists_.storage(trunk) if self.specialists_ is not None else {"tails": 1.0}
        out["memory_entries"] = self.n_entries
        return out

    def flat(self) -> GeneralistFlat:
        """The generalist alone, as a flat classifier over the same trunk activations."""
        self.check_fitted()
        return GeneralistFlat(self)

    # ------------------------------------------------------------- saving
    def _save_to(self, path: Path, wait: float) -> Path:
        from ._persist import save_network

        return save_network(self, path, wait=wait)

    @classmethod
    def _load_from(cls, path: Path, fingerprint: str | None) -> NetworkTwoStage:
        from ._persist import load_network

        return load_network(path, fingerprint=fingerprint)
