"""Small torch heads on frozen embeddings: linear probes and MLPs."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch import nn

from memory import InputError, env_precision

from .._random import seeded

__all__ = ["TRAIN_PRECISION_ENV", "Head", "fit_head", "head_proba", "train_module", "training_precision"]

log = logging.getLogger(__name__)

#: Overrides ``precision="auto"`` for heads and delta specialists: ``fp32`` or ``bf16``.
TRAIN_PRECISION_ENV = "SUPERSUB_TRAIN_PRECISION"


def training_precision(precision: str = "auto") -> str:
    """Resolve a training precision: ``"fp32"`` or ``"bf16"`` as given; ``"auto"`` takes
    ``$SUPERSUB_TRAIN_PRECISION`` when set, else bf16 where the CPU runs bf16 natively
    (AMX or AVX-512 BF16; elsewhere torch emulates it, slower than fp32), else fp32.

    bf16 autocast kept the val accuracy of the linear probe, the MLP base head
    and the delta specialists within 0.1 points of fp32 on Tiny-ImageNet while
    training faster (``python benchmarks/precision_bench.py --part heads``).
    """
    if precision == "auto":
        from memory.store import native_bf16

        return env_precision(TRAIN_PRECISION_ENV) or ("bf16" if native_bf16() else "fp32")
    if precision not in ("bf16", "fp32"):
        raise InputError(f"precision must be 'auto', 'bf16' or 'fp32', got {precision!r}")
    return precision


class Head(nn.Module):
    """Standardise, then a linear layer or a one-hidden-layer MLP.

    Parameters
    ----------
    dim : int
        Input dimension.
    n_out : int
        Number of outputs (classes or superclasses).
    hidden : int, default 0
        Hidden width; 0 for a linear head.
    """

    def __init__(self, dim: int, n_out: int, hidden: int = 0) -> None:
        super().__init__()
        self.dim, self.n_out, self.hidden = dim, n_out, hidden
        self.register_buffer("mu", torch.zeros(dim))
        self.register_buffer("sigma", torch.ones(dim))
        if hidden:
            self.fc1: nn.Linear | None = nn.Linear(dim, hidden)
            self.out = nn.Linear(hidden, n_out)
        else:
            self.fc1 = None
            self.out = nn.Linear(dim, n_out)

    def hidden_features(self, x: torch.Tensor) -> torch.Tensor:
        """Input to the output layer, shape (n, hidden or dim)."""
        x = (x - self.mu) / self.sigma
        return torch.relu(self.fc1(x)) if self.fc1 is not None else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.hidden_features(x))

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def train_module(
    module: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int = 20,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    batch_size: int = 512,
    seed: int = 0,
    min_steps: int = 400,
    precision: str = "auto",
) -> nn.Module:
    """Train ``module`` (its parameters with ``requires_grad``) with AdamW and cross-entropy.

    Runs at least ``min_steps`` optimiser steps (more epochs on small data),
    with a one-cycle learning-rate schedule.  Deterministic for a given seed
    and thread count.  Returns the module in eval mode.

    ``precision="bf16"`` runs the forward pass and its gradients under bf16
    autocast (weights, optimiser state and the loss stay fp32); ``"auto"`` is
    resolved by :func:`training_precision`.
    """
    precision = training_precision(precision)
    X = np.ascontiguousarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    if X.ndim != 2 or len(X) != len(y) or len(X) == 0:
        raise InputError(f"training needs X (n, dim) and y (n,), got {X.shape} and {y.shape}")
    with seeded(seed):
        return _train(module, X, y, epochs=epochs, lr=lr, weight_decay=weight_decay, batch_size=batch_size,
                      seed=seed, min_steps=min_steps, precision=precision)


def _train(module: nn.Module, X: np.ndarray, y: np.ndarray, *, epochs: int, lr: float, weight_decay: float,
           batch_size: int, seed: int, min_steps: int, precision: str) -> nn.Module:
    rng = np.random.default_rng(seed)
    params = [p for p in module.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    per_epoch = int(np.ceil(len(X) / batch_size))
    epochs = max(epochs, int(np.ceil(min_steps / per_epoch)))
    steps = epochs * per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1))
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    module.train()
    for epoch in range(epochs):
        order = torch.from_numpy(rng.permutation(len(X)))
        total = 0.0
        for start in range(0, len(X), batch_size):
            idx = order[start : start + batch_size]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                logits = module(Xt[idx])
            loss = nn.functional.cross_entropy(logits.float(), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        log.debug("epoch %d loss %.4f", epoch, total / len(X))
    return module.eval()


def fit_head(
    X: np.ndarray,
    y: np.ndarray,
    n_out: int,
    *,
    hidden: int = 0,
    seed: int = 0,
    **train: Any,
) -> Head:
    """Train a new :class:`Head` on ``(X, y)``; ``train`` goes to :func:`train_module`.

    Parameters
    ----------
    X : ndarray of shape (n, dim), float32
    y : ndarray of shape (n,), int
        Targets in ``[0, n_out)``.
    """
    y = np.asarray(y, dtype=np.int64)
    if len(y) and (y.min() < 0 or y.max() >= n_out):
        raise InputError(f"targets must lie in [0, {n_out}), got [{y.min()}, {y.max()}]")
    X = np.ascontiguousarray(X, dtype=np.float32)
    with seeded(seed):
        head = Head(X.shape[1], n_out, hidden)
    head.mu.copy_(torch.from_numpy(X.mean(0)))
    head.sigma.copy_(torch.from_numpy(X.std(0) + 1e-6))
    return train_module(head, X, y, seed=seed, **train)  # type: ignore[return-value]


def head_proba(head: nn.Module, X: np.ndarray, batch_size: int = 8192, **kwargs: Any) -> np.ndarray:
    """Softmax outputs of ``head`` on ``X``, shape (n, n_out), float64."""
    out = []
    with torch.inference_mode():
        for start in range(0, len(X), batch_size):
            logits = head(torch.from_numpy(np.ascontiguousarray(X[start : start + batch_size])), **kwargs)
            out.append(torch.softmax(logits.double(), dim=1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 0))
