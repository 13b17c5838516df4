"""The network-level model's tails on its runtime: eager torch, ONNX Runtime or OpenVINO.

Each specialist runs as its own exported graph: a delta specialist is the
generalist tail with its int8 deltas dequantised and merged, the same weights
eager torch swaps in, so the exported graph computes what eager torch does up
to the runtime's rounding.  Specialists still run only on the queries routed
to them, one superclass at a time.  Graphs are exported and compiled when
first used (:func:`router.network.graph_runner`).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from memory import ImageDataset, InputError

from ._graphs import NetworkPath, choose_path, graph_runner
from ._tails import as_acts, tail_logits
from ._trunk import BackboneSplit, Tail, TrunkActivations, run_trunk_on_images, trunk_activations

if TYPE_CHECKING:
    from ._tail_specialists import TailSpecialists

__all__ = ["NetworkRuntime"]


class _SpecialistGraph(torch.nn.Module):
    """One specialist as a graph: activations -> its pooled features and its logits, side by side."""

    def __init__(self, tail: Tail, state: dict[str, torch.Tensor], rows: np.ndarray) -> None:
        super().__init__()
        self.tail = copy.deepcopy(tail)
        self.tail.load_state_dict(state)
        idx = torch.as_tensor(rows, dtype=torch.long)
        self.register_buffer("weight", state["classifier.weight"][idx].clone())
        self.register_buffer("bias", state["classifier.bias"][idx].clone())

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        f = self.tail.features(a)
        return torch.cat([f, torch.nn.functional.linear(f, self.weight, self.bias)], 1)


class NetworkRuntime:
    """Where a :class:`NetworkTwoStage` runs its trunk and tails (mixed into it).

    ``runtime`` and ``precision`` (constructor parameters) choose the path
    through :func:`router.network.choose_path`; training always runs in eager
    torch with ``precision``.
    """

    runtime: str
    precision: str
    progress: bool
    split_: BackboneSplit
    generalist_: Tail
    specialists_: TailSpecialists | None
    groups_: list[np.ndarray]

    if TYPE_CHECKING:
        def check_fitted(self) -> None: ...

    @property
    def path_(self) -> NetworkPath:
        """The runtime and numeric path this model computes on (chosen at first use)."""
        path = self.__dict__.get("_path")
        if path is None or self.__dict__.get("_path_for") != (self.runtime, self.precision):
            path = choose_path(self.runtime, self.precision)
            self.__dict__.update(_path=path, _path_for=(self.runtime, self.precision), _graphs={})
        return path

    @property
    def numeric_path(self) -> str:
        """:attr:`NetworkPath.name` of :attr:`path_`: ``"fp32"``, ``"bf16"`` or ``"bf16-openvino"``."""
        return self.path_.name

    @property
    def fingerprint(self) -> str:
        """The trunk's fingerprint (backbone, weights, preprocessing, split point), plus ``+`` and the
        numeric path when it is not fp32."""
        self.check_fitted()
        fp = self.split_.fingerprint
        return fp if self.numeric_path == "fp32" else f"{fp}+{self.numeric_path}"

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without compiled graphs (they are compiled again when first used)."""
        state = dict(super().__getstate__())  # type: ignore[misc]
        for key in ("_graphs", "_path", "_path_for"):
            state.pop(key, None)
        return state

    def reset_graphs(self) -> None:
        """Forget compiled graphs (after the tails change)."""
        self.__dict__.pop("_path", None)
        self.__dict__["_graphs"] = {}

    def _graph(self, key: Any, make: Any, *, static_batch: bool) -> Any:
        path = self.path_
        graphs = self.__dict__.setdefault("_graphs", {})
        if key not in graphs:
            example = torch.zeros(2, *self.split_.trunk_shape)
            graphs[key] = graph_runner(make(), example, path, static_batch=static_batch)
        return graphs[key]

    # -------------------------------------------------------------- trunk
    def _acts_for(self, split: BackboneSplit, X: Any) -> np.ndarray:
        if isinstance(X, ImageDataset):
            return trunk_activations(X, split, precision=self.precision, runtime=self.runtime,
                                     progress=self.progress).acts
        if isinstance(X, TrunkActivations):
            if X.fingerprint.split("|")[:2] != split.fingerprint.split("|")[:2]:
                raise InputError(f"trunk activations of {X.fingerprint} do not fit this model's trunk "
                                 f"{split.fingerprint}; recompute them")
            return X.acts
        if isinstance(X, np.ndarray) and X.ndim == 4:
            if tuple(X.shape[1:]) != tuple(split.trunk_shape):
                raise InputError(f"trunk activations must have shape (n, {', '.join(map(str, split.trunk_shape))}),"
                                 f" got {X.shape}; pass images instead")
            if not np.all(np.isfinite(X)):
                raise InputError("trunk activations contain NaN or inf")
            return X
        if isinstance(X, (str, os.PathLike)):
            X = [X]
        if isinstance(X, np.ndarray) or not isinstance(X, Sequence) or not len(X):
            raise InputError("pass image paths, PIL images, an ImageDataset or trunk activations (n, C, H, W)")
        return run_trunk_on_images(split, list(X), precision=self.precision, runtime=self.runtime,
                                   progress=self.progress)

    # -------------------------------------------------------------- tails
    def generalist_logits(self, acts: Any) -> np.ndarray:
        """The generalist's class logits of trunk activations, shape (n, n_classes), float32."""
        path = self.path_
        if path.runtime == "torch":
            return tail_logits(self.generalist_, acts, precision=path.precision)
        return self._graph("generalist", lambda: self.generalist_, static_batch=True)(as_acts(acts))

    def specialist_outputs(self, s: int, acts: Any) -> tuple[np.ndarray, np.ndarray]:
        """Specialist ``s``'s pooled features (n, dim) and its logits over ``groups_[s]`` (n, m), float32."""
        specs = self.specialists_
        if specs is None:
            raise InputError("this model has no specialists")
        path = self.path_
        if path.runtime == "torch":
            return specs.features_and_logits(s, acts, precision=path.precision)
        acts = as_acts(acts)
        if not len(acts):
            dim = self.generalist_.dim
            return np.zeros((0, dim), np.float32), np.zeros((0, len(self.groups_[s])), np.float32)

        def make() -> _SpecialistGraph:
            state, _, _ = specs.weights(s)
            return _SpecialistGraph(self.generalist_, state, specs.groups[s])

        out = self._graph(("specialist", s), make, static_batch=False)(acts)
        dim = self.generalist_.dim
        return out[:, :dim], out[:, dim:]
