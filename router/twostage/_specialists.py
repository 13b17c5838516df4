"""Stage-2 specialists built from network heads: full copies, or a base plus small deltas.

A *base* head (an MLP over the embeddings) is trained once on all classes.
For each superclass ``s`` with classes ``S``:

* a **full specialist** is a copy of the base, fine-tuned on the superclass's
  data, whose output is restricted to ``S``;
* a **delta specialist** keeps the base frozen and learns low-rank deltas
  ``ΔW = A·B`` (rank ``r``) on the hidden layer and on the output rows ``S``,
  plus a bias delta.  After training, ``A`` and ``B`` are quantised to int8
  with one scale per row.

Storage is reported in units of one base head, as in "Superclassing
ImageNet" (whose specialists cost about ``0.2·N + 1`` heads).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from memory import InputError

from .._quantise import dequantise_int8, quantise_int8
from ._heads import Head, train_module

__all__ = ["DeltaSpecialists", "FullSpecialists"]


class _DeltaModule(nn.Module):
    """Training-time module: frozen base plus trainable low-rank deltas."""

    def __init__(self, base: Head, rows: torch.Tensor, rank: int, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.rows = rows
        h_in = base.hidden or base.dim
        if base.hidden:
            self.a1 = nn.Parameter(torch.zeros(base.hidden, rank))
            self.b1 = nn.Parameter(torch.randn(rank, base.dim, generator=g) / np.sqrt(base.dim))
        self.a2 = nn.Parameter(torch.zeros(len(rows), rank))
        self.b2 = nn.Parameter(torch.randn(rank, h_in, generator=g) / np.sqrt(h_in))
        self.db = nn.Parameter(torch.zeros(len(rows)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = self.base
        z = (x - base.mu) / base.sigma
        if base.fc1 is not None:
            z = torch.relu(base.fc1(z) + z @ (self.a1 @ self.b1).T)
        w = base.out.weight[self.rows] + self.a2 @ self.b2
        return z @ w.T + base.out.bias[self.rows] + self.db


class _Restricted(nn.Module):
    """A full copy of the base whose output is restricted to some rows."""

    def __init__(self, base: Head, rows: torch.Tensor) -> None:
        super().__init__()
        self.head = Head(base.dim, base.n_out, base.hidden)
        self.head.load_state_dict(base.state_dict())
        self.rows = rows

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head.hidden_features(x)
        return h @ self.head.out.weight[self.rows].T + self.head.out.bias[self.rows]


@dataclass
class _Delta:
    rows: np.ndarray
    a1: tuple[np.ndarray, np.ndarray] | None
    b1: tuple[np.ndarray, np.ndarray] | None
    a2: tuple[np.ndarray, np.ndarray]
    b2: tuple[np.ndarray, np.ndarray]
    db: np.ndarray

    def nbytes(self) -> int:
        parts = [self.a2, self.b2] + ([self.a1, self.b1] if self.a1 is not None else [])
        return int(sum(q.nbytes + s.nbytes for q, s in parts) + self.db.nbytes)  # type: ignore[union-attr]


class _Specialists:
    """Shared logic: one specialist per superclass over a frozen base head."""

    base: Head
    groups: list[np.ndarray]

    def _fit_each(self, X: np.ndarray, y: np.ndarray, groups: Sequence[np.ndarray],
                  make: Any, epochs: int, lr: float, seed: int, precision: str = "auto") -> list[Any]:
        out = []
        for s, rows in enumerate(groups):
            mask = np.isin(y, rows)
            local = np.searchsorted(rows, y[mask])
            module = make(torch.as_tensor(rows, dtype=torch.long), seed + s)
            out.append(train_module(module, X[mask], local, epochs=epochs, lr=lr, seed=seed + s,
                                    min_steps=200, precision=precision))
        return out

    def proba_in(self, s: int, X: np.ndarray) -> np.ndarray:
        """P(class | superclass s) for the classes of ``s``, shape (n, |S|)."""
        with torch.inference_mode():
            logits = self._logits(s, torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)))
            return torch.softmax(logits.double(), dim=1).numpy()

    def _logits(self, s: int, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def base_bytes(self) -> int:
        return 4 * self.base.n_params()


class FullSpecialists(_Specialists):
    """One fine-tuned full copy of the base head per superclass."""

    def fit(self, base: Head, X: np.ndarray, y: np.ndarray, groups: Sequence[np.ndarray], *,
            epochs: int = 8, lr: float = 5e-4, seed: int = 0, precision: str = "auto") -> FullSpecialists:
        """Fine-tune a copy of ``base`` on each superclass's data.

        Parameters
        ----------
        base : Head
            Trained on all classes; left unchanged.
        X : ndarray of shape (n, dim)
        y : ndarray of shape (n,), int
            Global class indices.
        groups : sequence of int arrays
            Sorted class indices of each superclass.
        precision : {"auto", "fp32", "bf16"}
            Training arithmetic (:func:`router.training_precision`); the
            specialists are stored in fp32 (then int8 for deltas) either way.
        """
        self.base, self.groups = base, [np.asarray(g) for g in groups]
        self.modules = self._fit_each(X, y, self.groups, lambda rows, _: _Restricted(base, rows),
                                      epochs, lr, seed, precision)
        return self

    def _logits(self, s: int, x: torch.Tensor) -> torch.Tensor:
        return self.modules[s](x)

    def state(self) -> list[dict[str, torch.Tensor]]:
        """Each specialist's weights, in superclass order (for saving)."""
        return [m.state_dict() for m in self.modules]

    @classmethod
    def from_state(cls, base: Head, groups: Sequence[np.ndarray],
                   states: Sequence[dict[str, torch.Tensor]]) -> FullSpecialists:
        """Inverse of :meth:`state`, given the base head and each superclass's class indices."""
        if len(states) != len(groups):
            raise InputError(f"got {len(states)} specialist states for {len(groups)} superclasses")
        self = cls()
        self.base, self.groups, self.modules = base, [np.asarray(g) for g in groups], []
        for rows, st in zip(self.groups, states):
            mod = _Restricted(base, torch.as_tensor(rows, dtype=torch.long))
            mod.load_state_dict(st)
            self.modules.append(mod.eval())
        return self

    def storage(self) -> dict[str, float]:
        """Bytes, and heads (units of one base head), of all specialists."""
        b = self.base
        per = [4 * ((b.fc1.weight.numel() + b.fc1.bias.numel()) if b.fc1 is not None else 0)
               + 4 * len(g) * (b.out.in_features + 1) for g in self.groups]
        return {"bytes": float(sum(per)), "heads": sum(per) / self.base_bytes,
                "n_specialists": len(self.groups)}


class DeltaSpecialists(_Specialists):
    """A frozen base head plus an int8 low-rank delta per superclass."""

    def __init__(self, rank: int = 16) -> None:
        self.rank = rank

    def fit(self, base: Head, X: np.ndarray, y: np.ndarray, groups: Sequence[np.ndarray], *,
            epochs: int = 8, lr: float = 2e-3, seed: int = 0, precision: str = "auto") -> DeltaSpecialists:
        """Learn each superclass's delta on its data; parameters as in :meth:`FullSpecialists.fit`."""
        self.base, self.groups = base, [np.asarray(g) for g in groups]
        trained = self._fit_each(
            X, y, self.groups, lambda rows, sd: _DeltaModule(base, rows, self.rank, sd), epochs, lr, seed, precision
        )
        for p in base.parameters():
            p.requires_grad_(True)
        self.deltas = []
        for module, rows in zip(trained, self.groups):
            q = {n: quantise_int8(getattr(module, n).detach().numpy())
                 for n in ("a1", "b1", "a2", "b2") if hasattr(module, n)}
            self.deltas.append(_Delta(rows, q.get("a1"), q.get("b1"), q["a2"], q["b2"],
                                      module.db.detach().numpy().astype(np.float32)))
        return self

    def _dense(self, s: int) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """Base plus dequantised delta weights of specialist ``s`` (built once, kept in RAM)."""
        cache = self.__dict__.setdefault("_dense_cache", {})
        if s not in cache:
            d, base = self.deltas[s], self.base
            w1 = None
            if base.fc1 is not None and d.a1 is not None and d.b1 is not None:
                w1 = base.fc1.weight.detach() + torch.from_numpy(dequantise_int8(*d.a1) @ dequantise_int8(*d.b1))
            rows = torch.as_tensor(d.rows, dtype=torch.long)
            w2 = base.out.weight.detach()[rows] + torch.from_numpy(dequantise_int8(*d.a2) @ dequantise_int8(*d.b2))
            b2 = base.out.bias.detach()[rows] + torch.from_numpy(d.db)
            cache[s] = (w1, w2, b2)
        return cache[s]  # type: ignore[no-any-return]

    def _logits(self, s: int, x: torch.Tensor) -> torch.Tensor:
        base = self.base
        w1, w2, b2 = self._dense(s)
        z = (x - base.mu) / base.sigma
        if w1 is not None:
            z = torch.relu(z @ w1.T + base.fc1.bias)  # type: ignore[union-attr]
        return z @ w2.T + b2

    def storage(self) -> dict[str, float]:
        """Bytes, and heads (units of one base head), of the base plus all deltas."""
        deltas = sum(d.nbytes() for d in self.deltas)
        return {"bytes": float(self.base_bytes + deltas),
                "heads": (self.base_bytes + deltas) / self.base_bytes,
                "delta_bytes": float(deltas), "rank": self.rank, "n_specialists": len(self.deltas)}

    def state(self) -> dict[str, np.ndarray]:
        """Arrays for saving (npz-friendly)."""
        out: dict[str, np.ndarray] = {"rank": np.array(self.rank)}
        for s, d in enumerate(self.deltas):
            out[f"{s}/rows"] = d.rows
            out[f"{s}/db"] = d.db
            for n in ("a1", "b1", "a2", "b2"):
                pair = getattr(d, n)
                if pair is not None:
                    out[f"{s}/{n}/q"], out[f"{s}/{n}/scale"] = pair
        return out

    @classmethod
    def from_state(cls, base: Head, state: Any) -> DeltaSpecialists:
        """Inverse of :meth:`state`."""
        self = cls(int(state["rank"]))
        self.base = base
        n = len({k.split("/")[0] for k in state.keys() if "/" in k})
        self.deltas, self.groups = [], []
        for s in range(n):
            pair = {x: (state[f"{s}/{x}/q"], state[f"{s}/{x}/scale"]) if f"{s}/{x}/q" in state else None
                    for x in ("a1", "b1", "a2", "b2")}
            d = _Delta(np.asarray(state[f"{s}/rows"]), pair["a1"], pair["b1"], pair["a2"], pair["b2"],  # type: ignore[arg-type]
                       np.asarray(state[f"{s}/db"]))
            self.deltas.append(d)
            self.groups.append(d.rows)
        return self
