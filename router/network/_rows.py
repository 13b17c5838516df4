"""A tail's forward pass in row layout: its 1×1 convolutions as matrix products.

Trunk activations are small maps (5×5 for Lite0 at 160 px), where most of a
tail's work is 1×1 convolutions and batch norms.  Held as rows, one per
position and image (shape (n·h·w, c)), a 1×1 convolution is one matrix
product and a batch norm a per-column affine map; only the depthwise (or
strided) convolutions need the image layout, which they get as a view
(channels last) without a copy.  A training step (forward and backward, bf16
autocast) runs at 1.6 to 1.9x the rate of the same step through the modules
on the CPUs measured (``benchmarks/precision_bench.py --part epoch``).

:func:`rows_forward` reads a tail's modules into such a plan, using the
modules' own parameters and buffers (or any others given by name, as
:func:`torch.func.functional_call` takes them): batch norms train or not as
their modules do, and update the same running statistics.  A tail with a part
the plan does not know (squeeze-excitation, padding other than zeros, drop-path
while training, ...) has no plan; the modules then run as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from memory import InputError

from ._trunk import Tail

__all__ = ["RowsForward", "rows_forward"]

_ACTIVATIONS: dict[type, Callable[[torch.Tensor], torch.Tensor] | None] = {
    nn.Identity: None, nn.ReLU: F.relu, nn.ReLU6: F.relu6, nn.SiLU: F.silu, nn.Hardswish: F.hardswish,
}


class _Unsupported(Exception):
    pass


def _activation(m: nn.Module | None) -> Callable[[torch.Tensor], torch.Tensor] | None:
    if m is None:
        return None
    if type(m) not in _ACTIVATIONS:
        raise _Unsupported(type(m).__name__)
    return _ACTIVATIONS[type(m)]


def _identity(m: Any) -> None:
    if m is not None and type(m) is not nn.Identity:
        raise _Unsupported(type(m).__name__)


class RowsForward:
    """A :class:`Tail`'s forward pass in row layout (see the module notes).

    Build one with :func:`rows_forward`.  Calling it gives what the tail gives:
    ``forward(a)`` the logits (n, n_classes), :meth:`features` the pooled
    features (n, dim); ``params`` (names as in ``tail.state_dict()``)
    replaces the tail's own tensors, as :func:`torch.func.functional_call` does.
    """

    def __init__(self, tail: Tail) -> None:
        self.tail = tail
        self._ops: list[tuple[Any, ...]] = []
        self._read(tail.stages, "stages")
        self._read(tail.head, "head")

    # ------------------------------------------------------------ plan
    def _read(self, m: nn.Module, name: str) -> None:
        kind = type(m).__name__
        if isinstance(m, nn.Sequential):
            for child_name, child in m.named_children():
                self._read(child, f"{name}.{child_name}")
        elif isinstance(m, nn.Conv2d):
            self._conv(m, name)
        elif isinstance(m, nn.BatchNorm2d):
            self._bn(m, name)
        elif kind in ("InvertedResidual", "DepthwiseSeparableConv"):
            if getattr(m, "conv_s2d", None) is not None:
                raise _Unsupported("space-to-depth convolution")
            for part in ("aa", "se"):
                _identity(getattr(m, part, None))
            skip = bool(getattr(m, "has_skip", False))
            if skip:
                _identity(getattr(m, "drop_path", None))  # drop-path only at inference: not a plan
                self._ops.append(("save",))
            order = (("conv_pw", "bn1", "conv_dw", "bn2", "conv_pwl", "bn3") if kind == "InvertedResidual"
                     else ("conv_dw", "bn1", "conv_pw", "bn2"))
            for part in order:
                self._read(getattr(m, part), f"{name}.{part}")
            if skip:
                self._ops.append(("add",))
        elif type(m) is nn.Identity:
            pass
        else:
            raise _Unsupported(kind)

    def _conv(self, m: nn.Conv2d, name: str) -> None:
        same = type(m).__name__ == "Conv2dSame"  # timm's TensorFlow-style "same" padding, worked out per input
        if (type(m) is not nn.Conv2d and not same) or m.padding_mode != "zeros" or isinstance(m.padding, str):
            raise _Unsupported(f"{type(m).__name__} with padding {m.padding!r}")
        pointwise = (m.kernel_size == (1, 1) and m.stride == (1, 1) and m.groups == 1 and m.padding == (0, 0))
        bias = f"{name}.bias" if m.bias is not None else None
        if pointwise:
            self._ops.append(("linear", f"{name}.weight", bias))
        else:
            self._ops.append(("conv", f"{name}.weight", bias, m.stride, m.padding, m.dilation, m.groups,
                              m.kernel_size if same else None))

    def _bn(self, m: nn.BatchNorm2d, name: str) -> None:
        if not m.affine or not m.track_running_stats:
            raise _Unsupported("batch norm without affine parameters or running statistics")
        _identity(getattr(m, "drop", None))
        self._ops.append(("bn", name, m, _activation(getattr(m, "act", None))))

    # ------------------------------------------------------------- run
    def _tensors(self, params: Mapping[str, torch.Tensor] | None) -> Mapping[str, torch.Tensor]:
        """The tail's tensors by name, with ``params`` in place of those it names (as functional_call)."""
        own = {**dict(self.tail.named_parameters()), **dict(self.tail.named_buffers())}
        if params is None:
            return own
        unknown = set(params) - set(own)
        if unknown:
            raise InputError(f"params names tensors the tail does not have: {sorted(unknown)[:3]}")
        return {**own, **params}

    def features(self, a: torch.Tensor, params: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Pooled features of trunk activations: (n, C, H, W) -> (n, dim)."""
        return self._features(a, self._tensors(params))

    def _features(self, a: torch.Tensor, t: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if a.ndim != 4:
            raise InputError(f"expected trunk activations of shape (n, C, H, W), got {tuple(a.shape)}")
        n, c, h, w = a.shape
        r = a.permute(0, 2, 3, 1).reshape(n * h * w, c)
        saved: list[torch.Tensor] = []
        for op in self._ops:
            kind = op[0]
            if kind == "linear":
                r = F.linear(r, t[op[1]].flatten(1), t[op[2]] if op[2] else None)
            elif kind == "conv":
                x = r.view(n, h, w, -1).permute(0, 3, 1, 2)  # channels last: a view, no copy
                if op[7] is not None:
                    x = F.pad(x, _same_padding((h, w), op[7], op[3], op[5]))
                x = F.conv2d(x, t[op[1]], t[op[2]] if op[2] else None, *op[3:7])
                h, w = x.shape[2], x.shape[3]
                r = x.permute(0, 2, 3, 1).reshape(n * h * w, -1)
            elif kind == "bn":
                r = self._batch_norm(r, t, op[1], op[2], op[3])
            elif kind == "save":
                saved.append(r)
            else:  # "add"
                r = r + saved.pop()
        return r.view(n, h * w, -1).mean(1)

    @staticmethod
    def _batch_norm(r: torch.Tensor, t: Mapping[str, torch.Tensor], name: str, m: nn.BatchNorm2d,
                    act: Callable[[torch.Tensor], torch.Tensor] | None) -> torch.Tensor:
        """What ``m`` (a BatchNorm2d, or timm's BatchNormAct2d) computes, on rows, with ``t``'s tensors."""
        factor = 0.0 if m.momentum is None else m.momentum
        if m.training:
            tracked = t.get(f"{name}.num_batches_tracked")
            if tracked is not None:
                tracked.add_(1)
                if m.momentum is None:
                    factor = 1.0 / float(tracked)
        r = F.batch_norm(r, t[f"{name}.running_mean"], t[f"{name}.running_var"], t[f"{name}.weight"],
                         t[f"{name}.bias"], m.training, factor, m.eps)
        return act(r) if act is not None else r

    def __call__(self, a: torch.Tensor, params: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Class logits of trunk activations, shape (n, n_classes)."""
        if self.tail.classifier is None:
            raise InputError("this tail has no classifier; pass n_classes when making it, or call features")
        t = self._tensors(params)
        return F.linear(self._features(a, t), t["classifier.weight"], t["classifier.bias"])


def _same_padding(size: tuple[int, int], kernel: tuple[int, ...], stride: tuple[int, ...],
                  dilation: tuple[int, ...]) -> list[int]:
    """F.pad's (left, right, top, bottom) for TensorFlow's "same" padding of an input of ``size`` (h, w)."""
    pads = []
    for i, k, s, d in zip(size, kernel, stride, dilation):
        pads.append(max((-(-i // s) - 1) * s + (k - 1) * d + 1 - i, 0))
    (ph, pw) = pads
    return [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2]


def rows_forward(tail: Tail) -> RowsForward | None:
    """``tail``'s forward pass in row layout, or None where a part of it has no plan (the modules then run).

    Parameters
    ----------
    tail : Tail

    Returns
    -------
    RowsForward or None
        Called on activations (n, C, H, W) -> logits (n, n_classes), with the
        tail's tensors or ``params`` by name.
    """
    try:
        return RowsForward(tail)
    except _Unsupported:
        return None
