"""Low-precision copies of a memory's vectors, and the certified exact search over them.

:mod:`._scoring` states the guarantee and the error bounds; this module holds
the bf16 and int8 copies and the search that turns their approximate scores
into faiss's exact answer.
"""

from __future__ import annotations

import heapq
from typing import Any

import numpy as np

from ._scoring import bf16_error_bound, exact_scores, fp32_error_bound

__all__ = ["Bf16Vectors", "Int8Vectors", "LowPrecisionVectors"]


def _faiss_ties(scores: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The top ``k`` of one query's candidates as faiss's heap keeps and lists them (see :mod:`._scoring`).

    ``scores``, ``rows`` : ndarray of shape (c,), holding every row that scores at least the k-th best.
    """
    heap: list[tuple[float, int]] = [(-np.inf, -1)] * k  # the worst kept at heap[0]
    for j in np.argsort(rows, kind="stable"):
        if scores[j] > heap[0][0]:
            heapq.heapreplace(heap, (float(scores[j]), int(rows[j])))
    kept = sorted(heap, key=lambda t: (-t[0], -t[1]))
    return np.array([t[0] for t in kept], dtype=np.float32), np.array([t[1] for t in kept], dtype=np.int64)


class LowPrecisionVectors:
    """A low-precision copy of an index's vectors (rows in index order), grown as rows are added.

    Subclasses say how rows are stored (:meth:`_encode`) and how a block of
    queries is scored with its error bound (:meth:`_score`); the certified
    search is shared.

    Parameters
    ----------
    dim : int
    """

    mode = ""
    #: Queries scored per block: a (block, n) score matrix is held at a time, of at most
    #: ``SCORES`` elements, and at least 16 and at most ``BLOCK`` queries.
    BLOCK = 512
    SCORES = 1 << 26
    #: First-round candidates per query (at least ``2k``).
    CANDIDATES = 64
    #: Rows converted at a time.
    CHUNK = 8192

    def __init__(self, dim: int) -> None:
        import torch

        self.dim = int(dim)
        self.buf = torch.empty((0, self.dim), dtype=self._dtype())
        self.n = 0

    @staticmethod
    def _dtype() -> Any:
        raise NotImplementedError

    def _encode(self, X: np.ndarray) -> Any:
        """fp32 rows (m, dim) as a stored tensor."""
        raise NotImplementedError

    def _score(self, Q: np.ndarray, base: Any) -> tuple[Any, np.ndarray, np.ndarray]:
        """Approximate scores of queries (q, dim) against stored rows.

        Returns the score tensor (q, n), the factor that turns its values
        into similarities (q,), and each query's error bound ``eps`` (q,).
        """
        raise NotImplementedError

    def accepts(self, X: np.ndarray) -> bool:
        """Whether rows can be appended without re-encoding the copy."""
        return True

    @property
    def nbytes(self) -> int:
        """Bytes held by the copy (its capacity)."""
        return int(self.buf.numel()) * int(self.buf.element_size())

    def append(self, X: np.ndarray) -> None:
        """Append normalised fp32 rows (m, dim); capacity grows by half, so appends cost O(m) amortised."""
        import torch

        m = len(X)
        if self.n + m > len(self.buf):
            grown = torch.empty((max(self.n + m, len(self.buf) + len(self.buf) // 2, 1024), self.dim),
                                dtype=self.buf.dtype)
            grown[: self.n] = self.buf[: self.n]
            self.buf = grown
        for start in range(0, m, self.CHUNK):  # converted through a small writable copy
            part = np.array(X[start : start + self.CHUNK], dtype=np.float32)
            self.buf[self.n + start : self.n + start + len(part)] = self._encode(part)
        self.n += m

    def search(self, Q: np.ndarray, X: np.ndarray, k: int,
               mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Certified exact top-``k`` of ``Q @ X.T`` among the rows ``mask`` allows.

        Parameters
        ----------
        Q : ndarray of shape (q, dim), float32
            Normalised queries.
        X : ndarray of shape (n, dim), float32, C-contiguous
            The fp32 vectors this copy was made from (row ``i`` is row ``i``).
        k : int
            At least 1 and at most the number of allowed rows.
        mask : ndarray of bool, shape (n,), optional

        Returns
        -------
        sims : ndarray of shape (q, k), float32
            fp32 scores, descending; equal scores as faiss settles them.
        rows : ndarray of shape (q, k), int64
        """
        import torch

        if self.n != len(X):
            raise RuntimeError(f"the {self.mode} copy holds {self.n} rows, the index {len(X)}")
        Q = np.ascontiguousarray(Q, dtype=np.float32)
        g = fp32_error_bound(self.dim)
        base, allowed, blocked = self.buf[: self.n], None, None
        if mask is not None:
            if int(mask.sum()) < len(mask) // 2:  # a shard: score only its rows
                allowed = np.flatnonzero(mask)
                base = base.index_select(0, torch.from_numpy(allowed))
            else:
                blocked = torch.from_numpy(~mask)
        n_allowed = len(base) if blocked is None else int(mask.sum())  # type: ignore[union-attr]
        if not 1 <= k <= n_allowed:
            raise ValueError(f"k={k} must lie in 1..{n_allowed}")
        first = min(n_allowed, max(self.CANDIDATES, 2 * k))
        sims = np.empty((len(Q), k), dtype=np.float32)
        rows = np.empty((len(Q), k), dtype=np.int64)
        block = int(np.clip(self.SCORES // max(len(base), 1), 16, self.BLOCK))
        with torch.no_grad():
            for start in range(0, len(Q), block):
                Qb = Q[start : start + block]
                S, factor, eps = self._score(Qb, base)
                if blocked is not None:
                    S[:, blocked] = torch.iinfo(S.dtype).min if not S.dtype.is_floating_point else -torch.inf
                todo = np.arange(len(Qb))
                c = first
                while todo.size:
                    St = S if len(todo) == len(Qb) else S[torch.from_numpy(todo)]
                    vals, idx = torch.topk(St, min(n_allowed, c + 1), dim=1, sorted=True)
                    cand = idx[:, :c].numpy()
                    if allowed is not None:
                        cand = allowed[cand]
                    excluded = (vals[:, c].double().numpy() * factor[todo] if c < n_allowed
                                else np.full(len(todo), -np.inf))
                    exact = exact_scores(Qb[todo], X, cand)
                    order = np.lexsort((cand, -exact), axis=1)[:, : k + 1]
                    top = np.take_along_axis(exact, order, 1)
                    ok = top[:, k - 1] > excluded + eps[todo] + g
                    done = todo[ok]
                    sims[start + done] = top[ok, :k]
                    rows[start + done] = np.take_along_axis(cand, order[:, :k], 1)[ok]
                    for i in np.flatnonzero(ok & (top[:, 1:] == top[:, :-1]).any(axis=1)):
                        sims[start + todo[i]], rows[start + todo[i]] = _faiss_ties(exact[i], cand[i], k)
                    todo = todo[~ok]
                    c = min(n_allowed, 4 * c)
        return sims, rows

    def __reduce__(self) -> Any:  # the copy is rebuilt from the fp32 vectors, never pickled
        raise TypeError(f"a {self.mode} copy is not pickled; rebuild it from the fp32 vectors")


class Bf16Vectors(LowPrecisionVectors):
    """Vectors in bf16, scored by a bf16 matrix product (AMX or AVX-512 BF16 through oneDNN)."""

    mode = "bf16"

    @staticmethod
    def _dtype() -> Any:
        import torch

        return torch.bfloat16

    def _encode(self, X: np.ndarray) -> Any:
        import torch

        return torch.from_numpy(X).to(torch.bfloat16)

    def _score(self, Q: np.ndarray, base: Any) -> tuple[Any, np.ndarray, np.ndarray]:
        import torch

        eps, _ = bf16_error_bound(self.dim)
        S = torch.from_numpy(Q).to(torch.bfloat16) @ base.T
        return S, np.ones(len(Q)), np.full(len(Q), eps)


class Int8Vectors(LowPrecisionVectors):
    """Vectors in int8 with one scale, scored by an exact int8 x int8 -> int32 product (VNNI or AMX).

    The scale is the largest component seen when the copy is made; a row
    that exceeds it is refused by :meth:`accepts`, and the owner rebuilds
    the copy.
    """

    mode = "int8"

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self.scale = 0.0  # s: a component's quantisation step
        self.l1 = 0.0  # L: the largest L1 norm of a stored row

    @staticmethod
    def _dtype() -> Any:
        import torch

        return torch.int8

    def accepts(self, X: np.ndarray) -> bool:
        return self.n == 0 or len(X) == 0 or float(np.abs(X).max()) <= 127 * self.scale

    def append(self, X: np.ndarray) -> None:
        if len(X) == 0:
            return
        A = np.abs(X)
        top = float(A.max())
        if self.n == 0:
            self.scale = max(top, 1e-30) / 127
        elif top > 127 * self.scale:
            raise ValueError("a row exceeds the int8 scale; rebuild the copy")
        self.l1 = max(self.l1, float(A.sum(axis=1).max()))
        super().append(X)

    def _encode(self, X: np.ndarray) -> Any:
        import torch

        return torch.from_numpy(np.clip(np.rint(X / self.scale), -127, 127).astype(np.int8))

    def _score(self, Q: np.ndarray, base: Any) -> tuple[Any, np.ndarray, np.ndarray]:
        import torch

        top = np.abs(Q).max(axis=1).astype(np.float64)
        sq = np.where(top > 0, top / 127, 1.0)
        Qi = np.clip(np.rint(Q / sq[:, None]), -127, 127)
        l1 = np.abs(Qi).sum(axis=1) * sq  # |q^|_1
        # Half a step each, widened for the fp32 division that quantised the vectors (x / s is
        # rounded before rint) and for the fp32 sum that measured L; then for this float64 arithmetic.
        eps = self.scale / 2 * (1 + 2.0**-14) * l1 + sq / 2 * self.l1 * (1 + self.dim * 2.0**-23)
        eps = eps * (1 + 2.0**-40) + 2.0**-40
        from torch import _int_mm  # torch's int8 GEMM (oneDNN; the one torchao builds on); int32 out

        S = _int_mm(torch.from_numpy(Qi.astype(np.int8)), base.T)
        return S, sq * self.scale, eps
