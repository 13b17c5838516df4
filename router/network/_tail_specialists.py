"""Per-superclass specialists of a fine-tuned tail: int8 deltas, or full copies.

A **delta specialist** is the generalist plus small per-superclass deltas,
trained on that superclass's data only:

* low-rank deltas ``ΔW = A·B`` (rank ``r``) on every 1×1 convolution of the
  tail and on the classifier rows of the superclass's classes;
* deltas on every batch-norm scale and shift, and on those classifier biases.

Batch-norm statistics stay the generalist's.  After training the deltas are
quantised to int8 (one scale per row).  At inference only the deltas are
swapped: the specialist's weights are the generalist's plus the dequantised
deltas, made for one superclass at a time, so N copies of the tail are never
held in memory.

Why one module: the delta and full-copy specialists share their training loop,
their storage accounting and the swap-in at inference.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from memory import InputError, progress_line

from .._quantise import quantise_int8
from .._random import seeded
from ._rows import rows_forward
from ._tails import as_acts, check_precision, run_batches, train_epoch, warmup_cosine
from ._trunk import Tail

__all__ = ["DeltaParams", "TailDeltas", "TailSpecialists", "merged_params"]


def _delta_targets(tail: Tail) -> tuple[list[str], list[str]]:
    """Names of the tail's 1×1 convolution weights and of its batch-norm scales and shifts."""
    convs, norms = [], []
    for name, mod in tail.named_modules():
        if name.startswith("classifier"):
            continue
        if isinstance(mod, nn.Conv2d) and mod.kernel_size == (1, 1) and mod.groups == 1:
            convs.append(f"{name}.weight")
        elif isinstance(mod, nn.BatchNorm2d) and mod.affine:
            norms += [f"{name}.weight", f"{name}.bias"]
    return convs, norms


class DeltaParams(nn.Module):
    """Trainable deltas of one specialist (fp32, before quantisation)."""

    def __init__(self, tail: Tail, rows: np.ndarray, rank: int, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        params = dict(tail.named_parameters())
        self.convs, self.norms = _delta_targets(tail)
        self.a = nn.ParameterList()
        self.b = nn.ParameterList()
        for name in self.convs:
            out, inp = params[name].shape[:2]
            self.a.append(nn.Parameter(torch.zeros(out, rank)))
            self.b.append(nn.Parameter(torch.randn(rank, inp, generator=g) / math.sqrt(inp)))
        self.n = nn.ParameterList([nn.Parameter(torch.zeros_like(params[n])) for n in self.norms])
        assert tail.classifier is not None
        dim = tail.classifier.in_features
        self.rows = torch.as_tensor(rows, dtype=torch.long)
        self.ca = nn.Parameter(torch.zeros(len(rows), rank))
        self.cb = nn.Parameter(torch.randn(rank, dim, generator=g) / math.sqrt(dim))
        self.cbias = nn.Parameter(torch.zeros(len(rows)))


@dataclass
class TailDeltas:
    """One specialist's int8 deltas.

    Attributes
    ----------
    rows : ndarray of shape (m,), int
        The specialist's classes (indices into the generalist's classes).
    convs : dict of str to ((int8 A, scales), (int8 B, scales))
        Low-rank deltas of the 1×1 convolution weights, by parameter name.
    norms : dict of str to (int8 vector, scale)
        Deltas of batch-norm scales and shifts, by parameter name.
    head : ((int8 A, scales), (int8 B, scales), (int8 bias, scale))
        Low-rank delta of the classifier rows ``rows`` and of their biases.
    """

    rows: np.ndarray
    convs: dict[str, tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]]
    norms: dict[str, tuple[np.ndarray, np.ndarray]]
    head: tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

    @classmethod
    def zeros(cls, tail: Tail, rows: np.ndarray, rank: int) -> TailDeltas:
        """Deltas that leave the generalist unchanged."""
        return cls.quantise(DeltaParams(tail, rows, rank, 0))

    @classmethod
    def quantise(cls, d: DeltaParams) -> TailDeltas:
        q = lambda t: quantise_int8(t.detach().float().numpy().reshape(t.shape[0], -1))  # noqa: E731
        v = lambda t: quantise_int8(t.detach().float().numpy().reshape(1, -1))  # noqa: E731
        convs = {n: (q(a), q(b)) for n, a, b in zip(d.convs, d.a, d.b)}
        norms = {n: v(t) for n, t in zip(d.norms, d.n)}
        return cls(d.rows.numpy().copy(), convs, norms, (q(d.ca), q(d.cb), v(d.cbias)))

    def arrays(self) -> list[np.ndarray]:
        """Every stored array (for storage accounting and saving)."""
        out: list[np.ndarray] = []
        for pa, pb in self.convs.values():
            out += [*pa, *pb]
        for pair in self.norms.values():
            out += list(pair)
        for pair in self.head:
            out += list(pair)
        return out

    def nbytes(self) -> int:
        """Bytes of the stored deltas (int8 values and float32 scales; ``rows`` not counted)."""
        return int(sum(a.nbytes for a in self.arrays()))

    def state(self, prefix: str) -> dict[str, np.ndarray]:
        """Flat name -> array dict for an npz file."""
        out = {f"{prefix}rows": self.rows}
        for name, (pa, pb) in self.convs.items():
            out[f"{prefix}conv/{name}/a/q"], out[f"{prefix}conv/{name}/a/s"] = pa
            out[f"{prefix}conv/{name}/b/q"], out[f"{prefix}conv/{name}/b/s"] = pb
        for name, (q, s) in self.norms.items():
            out[f"{prefix}norm/{name}/q"], out[f"{prefix}norm/{name}/s"] = q, s
        for part, (q, s) in zip(("a", "b", "bias"), self.head):
            out[f"{prefix}head/{part}/q"], out[f"{prefix}head/{part}/s"] = q, s
        return out

    @classmethod
    def from_state(cls, state: Any, prefix: str, tail: Tail) -> TailDeltas:
        """Inverse of :meth:`state`, checked against ``tail``'s parameters."""
        convs_names, norm_names = _delta_targets(tail)
        try:
            convs = {n: ((state[f"{prefix}conv/{n}/a/q"], state[f"{prefix}conv/{n}/a/s"]),
                         (state[f"{prefix}conv/{n}/b/q"], state[f"{prefix}conv/{n}/b/s"])) for n in convs_names}
            norms = {n: (state[f"{prefix}norm/{n}/q"], state[f"{prefix}norm/{n}/s"]) for n in norm_names}
            head = tuple((state[f"{prefix}head/{p}/q"], state[f"{prefix}head/{p}/s"]) for p in ("a", "b", "bias"))
            rows = np.asarray(state[f"{prefix}rows"], dtype=np.int64)
        except KeyError as exc:
            raise InputError(f"specialist deltas lack {exc.args[0]!r}; the file does not fit this tail") from None
        d = cls(rows, convs, norms, head)  # type: ignore[arg-type]
        d._check(tail)
        return d

    def _check(self, tail: Tail) -> None:
        params = dict(tail.named_parameters())
        for name, ((aq, _), (bq, _)) in self.convs.items():
            shape = params[name].shape
            if aq.shape[0] != shape[0] or bq.shape[1] != shape[1] or aq.shape[1] != bq.shape[0]:
                raise InputError(f"delta of {name} has shapes {aq.shape}, {bq.shape}; the tail needs {tuple(shape)}")
        for name, (q, _) in self.norms.items():
            if q.size != params[name].numel():
                raise InputError(f"delta of {name} has {q.size} values; the tail needs {params[name].numel()}")
        assert tail.classifier is not None
        n_out = tail.classifier.out_features
        if len(self.rows) == 0 or self.rows.min() < 0 or self.rows.max() >= n_out:
            raise InputError(f"specialist rows must lie in [0, {n_out})")


def _deq(pair: tuple[np.ndarray, np.ndarray]) -> torch.Tensor:
    q, s = pair
    return torch.from_numpy(q.astype(np.float32) * s.reshape(-1, 1).astype(np.float32))


def merged_params(tail: Tail, d: DeltaParams | TailDeltas) -> dict[str, torch.Tensor]:
    """The generalist's parameters plus one specialist's deltas (differentiable for DeltaParams)."""
    with torch.autocast("cpu", enabled=False):
        return _merge(tail, d)


def _merge(tail: Tail, d: DeltaParams | TailDeltas) -> dict[str, torch.Tensor]:
    params = {n: p.detach() for n, p in tail.named_parameters()}
    assert tail.classifier is not None
    if isinstance(d, DeltaParams):
        for name, a, b in zip(d.convs, d.a, d.b):
            params[name] = params[name] + (a @ b).view_as(params[name])
        for name, t in zip(d.norms, d.n):
            params[name] = params[name] + t
        rows, dw, db = d.rows, d.ca @ d.cb, d.cbias
    else:
        for name, (pa, pb) in d.convs.items():
            params[name] = params[name] + (_deq(pa) @ _deq(pb)).view_as(params[name])
        for name, pair in d.norms.items():
            params[name] = params[name] + _deq(pair).view_as(params[name])
        rows = torch.as_tensor(d.rows, dtype=torch.long)
        dw, db = _deq(d.head[0]) @ _deq(d.head[1]), _deq(d.head[2]).view(-1)
    params["classifier.weight"] = params["classifier.weight"].index_add(0, rows, dw)
    params["classifier.bias"] = params["classifier.bias"].index_add(0, rows, db)
    return params


@dataclass
class _Fitted:
    seconds: float = 0.0
    dev_top1: list[list[float]] = field(default_factory=list)
    best_epoch: list[int] = field(default_factory=list)


class TailSpecialists:
    """Per-superclass specialists of a generalist tail: int8 deltas, or full fine-tuned copies.

    Parameters
    ----------
    generalist : Tail
        Fine-tuned on all classes; never modified.
    kind : {"delta", "full"}, default "delta"
        ``"full"`` keeps a whole fine-tuned copy of the tail per superclass
        (the storage and accuracy comparison for the deltas).
    rank : int, default 16
        Rank of the low-rank deltas.
    """

    def __init__(self, generalist: Tail, *, kind: str = "delta", rank: int = 16) -> None:
        if kind not in ("delta", "full"):
            raise InputError(f"kind must be 'delta' or 'full', got {kind!r}")
        if generalist.classifier is None:
            raise InputError("the generalist tail needs a classifier")
        if not isinstance(rank, (int, np.integer)) or rank < 1:
            raise InputError(f"rank must be an integer >= 1, got {rank!r}")
        self.generalist = generalist.eval()
        self.kind, self.rank = kind, int(rank)
        self.groups: list[np.ndarray] = []
        self.deltas: list[TailDeltas] = []
        self.copies: list[dict[str, torch.Tensor]] = []
        self.fitted = _Fitted()

    # ---------------------------------------------------------------- state
    def state(self) -> dict[str, np.ndarray]:
        """Every specialist as named arrays (``"<s>/<name>"``), for ``np.savez``."""
        arrays: dict[str, np.ndarray] = {}
        if self.kind == "delta":
            for s, d in enumerate(self.deltas):
                arrays.update(d.state(f"{s}/"))
        else:
            arrays = {f"{s}/{k}": v.numpy() for s, c in enumerate(self.copies) for k, v in c.items()}
            arrays.update({f"{s}/rows": g for s, g in enumerate(self.groups)})
        return arrays

    @classmethod
    def from_state(cls, generalist: Tail, state: Any, n: int, *, kind: str = "delta",
                   rank: int = 16) -> TailSpecialists:
        """The ``n`` specialists :meth:`state` wrote, over ``generalist``."""
        specs = cls(generalist, kind=kind, rank=rank)
        if kind == "delta":
            specs.deltas = [TailDeltas.from_state(state, f"{s}/", generalist) for s in range(n)]
            specs.groups = [d.rows for d in specs.deltas]
        else:
            specs.groups = [np.asarray(state[f"{s}/rows"], dtype=np.int64) for s in range(n)]
            specs.copies = [{k[len(f"{s}/"):]: torch.from_numpy(v) for k, v in state.items()
                             if k.startswith(f"{s}/") and k != f"{s}/rows"} for s in range(n)]
        return specs

    # ------------------------------------------------------------ training
    def fit(self, acts: Any, y: Any, groups: Sequence[Any], *, epochs: int = 2, lr: float | None = None,
            batch_size: int = 128, flip: bool = True, precision: str = "bf16", seed: int = 0,
            dev: tuple[Any, Any] | None = None, progress: bool = False) -> TailSpecialists:
        """Train one specialist per group on the samples of that group's classes.

        Parameters
        ----------
        acts : ndarray of shape (n, C, H, W)
        y : ndarray of shape (n,), int
            Global class indices.
        groups : sequence of int arrays
            Class indices of each superclass (they may overlap).
        epochs : int, default 2
            Upper bound; with ``dev`` the epoch (0 = the generalist itself)
            with the best dev accuracy within the group is kept.
        lr : float, optional
            Defaults to 2e-3 for deltas, 1e-4 for full copies.
        progress : bool, default False
            Print one line per specialist on stderr (images, dev top-1, time).
        """
        check_precision(precision)
        acts = as_acts(acts)
        y = np.asarray(y, dtype=np.int64)
        assert self.generalist.classifier is not None
        n_out = self.generalist.classifier.out_features
        self.groups = []
        for g in groups:
            g = np.unique(np.asarray(g, dtype=np.int64))
            if len(g) == 0 or g.min() < 0 or g.max() >= n_out:
                raise InputError(f"every group needs class indices in [0, {n_out})")
            self.groups.append(g)
        lr = lr if lr is not None else (2e-3 if self.kind == "delta" else 1e-4)
        t0 = time.perf_counter()
        self.deltas, self.copies, self.fitted = [], [], _Fitted()
        for s, rows in enumerate(self.groups):
            mask = np.isin(y, rows)
            local = np.searchsorted(rows, y[mask])
            dmask = None
            if dev is not None:
                dy = np.asarray(dev[1], dtype=np.int64)
                dmask = np.isin(dy, rows)
                dset = (as_acts(dev[0])[dmask], np.searchsorted(rows, dy[dmask]))
            self._fit_one(s, rows, acts[mask], local, epochs, lr, batch_size, flip, precision, seed + s,
                          dset if dmask is not None and dmask.any() else None)
            if progress:
                scores = self.fitted.dev_top1[-1]
                dev_text = (f", dev top-1 {scores[0]:.3f} -> {max(scores):.3f} (epoch {self.fitted.best_epoch[-1]})"
                            if scores else "")
                progress_line(f"specialist {s + 1}/{len(self.groups)}: {len(local):,} images{dev_text} "
                              f"({time.perf_counter() - t0:.0f} s)")
        self.fitted.seconds = round(time.perf_counter() - t0, 1)
        return self

    def _fit_one(self, s: int, rows: np.ndarray, acts: np.ndarray, local: np.ndarray, epochs: int, lr: float,
                 batch_size: int, flip: bool, precision: str, seed: int,
                 dev: tuple[np.ndarray, np.ndarray] | None) -> None:
        with seeded(seed):
            self._fit_seeded(s, rows, acts, local, epochs, lr, batch_size, flip, precision, seed, dev)

    def _fit_seeded(self, s: int, rows: np.ndarray, acts: np.ndarray, local: np.ndarray, epochs: int, lr: float,
                    batch_size: int, flip: bool, precision: str, seed: int,
                    dev: tuple[np.ndarray, np.ndarray] | None) -> None:
        g = torch.Generator().manual_seed(seed)
        base = self.generalist
        rows_t = torch.as_tensor(rows, dtype=torch.long)
        if self.kind == "delta":
            module: nn.Module = DeltaParams(base, rows, self.rank, seed)
            buffers = {n: b for n, b in base.named_buffers()}
            plan = rows_forward(base)

            def forward(x: torch.Tensor) -> torch.Tensor:
                params = {**merged_params(base, module), **buffers}  # type: ignore[arg-type]
                out = plan(x, params) if plan is not None else functional_call(base, params, (x,))
                return out[:, rows_t]
        else:
            module = copy.deepcopy(base)
            run = rows_forward(module) or module  # type: ignore[arg-type]

            def forward(x: torch.Tensor) -> torch.Tensor:
                return run(x)[:, rows_t]
        module.eval()  # batch-norm statistics stay the generalist's

        def score() -> float:
            assert dev is not None
            with torch.no_grad():
                out = run_batches(forward, dev[0], 512, precision)
            return float(np.mean(out.argmax(1).numpy() == dev[1]))

        params = [p for p in module.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0 if self.kind == "delta" else 0.05)
        steps = max(1, epochs * math.ceil(len(local) / batch_size))
        sched = warmup_cosine(opt, steps, 0.1)
        yt = torch.from_numpy(local)
        history = [score()] if dev is not None else []
        best = (history[0], 0, self._snapshot(module)) if dev is not None else None
        for epoch in range(1, epochs + 1):
            train_epoch(forward, acts, yt, batch_size, opt, sched, g, flip=flip, precision=precision)
            if dev is not None:
                history.append(score())
                if best is None or history[-1] > best[0]:
                    best = (history[-1], epoch, self._snapshot(module))
        if best is not None:
            module.load_state_dict(best[2])
        self.fitted.dev_top1.append([round(v, 4) for v in history])
        self.fitted.best_epoch.append(best[1] if best is not None else epochs)
        if self.kind == "delta":
            self.deltas.append(TailDeltas.quantise(module))  # type: ignore[arg-type]
        else:
            self.copies.append({n: t.detach().clone() for n, t in module.state_dict().items()})

    @staticmethod
    def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
        return {n: t.detach().clone() for n, t in module.state_dict().items()}

    # ----------------------------------------------------------- inference
    def weights(self, s: int) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """Specialist ``s``'s parameters (by name), classifier weight and bias."""
        if not 0 <= s < len(self.groups):
            raise InputError(f"specialist index must be in [0, {len(self.groups)}), got {s}")
        base = self.generalist
        if self.kind == "delta":
            params = {**merged_params(base, self.deltas[s]), **dict(base.named_buffers())}
        else:
            params = self.copies[s]
        return params, params["classifier.weight"], params["classifier.bias"]

    def features_and_logits(self, s: int, acts: Any, *, precision: str = "bf16") -> tuple[np.ndarray, np.ndarray]:
        """Specialist ``s``'s pooled features (n, dim) and logits over its classes (n, len(groups[s]))."""
        check_precision(precision)
        params, w, b = self.weights(s)
        feats = run_batches(lambda x: _features_with(self.generalist, params, x), as_acts(acts), 512, precision)
        rows = torch.as_tensor(self.groups[s], dtype=torch.long)
        with torch.inference_mode():
            logits = feats @ w[rows].T + b[rows]
        return feats.numpy(), logits.numpy()

    def logits(self, s: int, acts: Any, *, precision: str = "bf16") -> np.ndarray:
        """Specialist ``s``'s logits over its classes, shape (n, len(groups[s]))."""
        return self.features_and_logits(s, acts, precision=precision)[1]

    def proba_in(self, s: int, acts: Any, *, precision: str = "bf16") -> np.ndarray:
        """P(class | superclass s), shape (n, len(groups[s])), float64."""
        z = self.logits(s, acts, precision=precision).astype(np.float64)
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(1, keepdims=True)

    def features(self, s: int, acts: Any, *, precision: str = "bf16") -> np.ndarray:
        """Specialist ``s``'s pooled features, shape (n, dim), float32, not normalised."""
        return self.features_and_logits(s, acts, precision=precision)[0]

    # ------------------------------------------------------------- storage
    def storage(self, trunk_params: int = 0) -> dict[str, Any]:
        """Stored bytes of the generalist plus all specialists, in tails and in whole networks.

        One tail is the generalist tail's float32 parameters (classifier
        included); a whole network adds the trunk's ``trunk_params``.
        Compare ``tails`` with the published ``0.2·N + 1``.
        """
        tail_bytes = 4 * self.generalist.n_params()
        if self.kind == "delta":
            extra = sum(d.nbytes() for d in self.deltas)
        else:
            extra = sum(4 * sum(t.numel() for n, t in c.items() if t.is_floating_point()
                                and not n.endswith(("running_mean", "running_var"))) for c in self.copies)
        n = len(self.groups)
        total = tail_bytes + extra
        out = {"n_specialists": n, "kind": self.kind, "tail_bytes": tail_bytes, "specialist_bytes": int(extra),
               "tails": round(total / tail_bytes, 4), "published_bound_tails": round(0.2 * n + 1, 2)}
        if self.kind == "delta":
            out["rank"] = self.rank
        if trunk_params:
            net = tail_bytes + 4 * trunk_params
            out["networks"] = round((net + extra) / net, 4)
        return out


def _features_with(base: Tail, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``base.features`` with other parameters."""
    sub = {k[len("stages."):]: v for k, v in params.items() if k.startswith("stages.")}
    h = functional_call(base.stages, sub, (x,))
    sub = {k[len("head."):]: v for k, v in params.items() if k.startswith("head.")}
    return functional_call(base.head, sub, (h,)).mean((2, 3))
