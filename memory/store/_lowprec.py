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


def _top(S: Any, m: int, group: int) -> tuple[Any, Any]:
    """The ``m`` largest scores of each row of ``S`` and their columns, descending.

    ``S`` : tensor of shape (q, n), bf16 or int32.

    With ``group`` > 0 and ``n >= 4 m group``, the columns are cut into groups
    of ``group`` (the last ``n mod group`` columns stay loose), the ``m``
    groups with the largest maxima are taken, and the top ``m`` is selected
    among their columns and the loose ones.  The values equal a full
    :func:`torch.topk`'s: the ``m`` chosen groups hold ``m`` distinct scores
    at least as large as the ``m``-th chosen maximum, which bounds every score
    left out.  Only which of several equal scores is returned may differ, and
    the certificate in :meth:`LowPrecisionVectors.search` reads only values.
    This reads ``S`` once for the maxima and ``m group`` scores per row after;
    a full :func:`torch.topk` over 100,000 columns took a third of the time of
    the bf16 product that made them.

    bf16 scores are compared through their bit patterns as int16, about twice
    as fast: for values of at least +0 the patterns order as the values do,
    and every negative value has a negative pattern.  So while each chosen
    group's maximum is at least +0 (checked; else the full :func:`torch.topk`
    runs), the chosen groups and their top ``m`` are the same under both
    orders.
    """
    import torch

    q, n = S.shape
    if group <= 0 or n < 4 * m * group:
        return torch.topk(S, m, dim=1, sorted=True)
    bits = S.dtype == torch.bfloat16
    K = S.view(torch.int16) if bits else S
    full = n - n % group
    groups = K[:, :full].unflatten(1, (full // group, group))  # a view: no copy
    maxima, chosen = torch.topk(groups.amax(dim=2), m, dim=1, sorted=False)
    if bits and bool((maxima < 0).any()):  # a chosen group below +0: the patterns do not order it
        return torch.topk(S, m, dim=1, sorted=True)
    vals, j = torch.topk(groups[torch.arange(q)[:, None], chosen].flatten(1), m, dim=1, sorted=True)
    cols = chosen.gather(1, j // group) * group + j % group
    if full < n:  # the loose columns compete with the chosen groups' top m
        vals, j = torch.topk(torch.cat([vals, K[:, full:]], dim=1), m, dim=1, sorted=True)
        cols = torch.where(j < m, cols.gather(1, j.clamp(max=m - 1)), full + j - m)
    return (vals.view(torch.bfloat16) if bits else vals), cols


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
    #: ``SCORE_BYTES`` bytes, and at least 16 and at most ``BLOCK`` queries.
    BLOCK = 1024
    SCORE_BYTES = 1 << 28
    #: First-round candidates per query (at least ``2k``).  With k = 10, 32 certified every
    #: query in the first round (2,000 Tiny-ImageNet val queries against the 100k train
    #: memory, 1,000 against an 11,040-row specialist shard; 24 certified 97.7% and 98.3%),
    #: and re-ranking 32 instead of 64 made a 70-query shard search 1.4x as fast.
    CANDIDATES = 32
    #: Rows converted at a time.
    CHUNK = 8192
    #: Candidates are selected through the maxima of groups of ``GROUP`` consecutive rows
    #: (see :func:`_top`) when the score matrix is at least 4 ``GROUP`` times wider than
    #: the candidates; 0 turns this off.
    GROUP = 128

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

    def _score(self, Q: np.ndarray, base: Any, out: Any = None) -> tuple[Any, np.ndarray, np.ndarray]:
        """Approximate scores of queries (q, dim) against stored rows.

        Returns the score tensor (q, n), written into ``out`` (a contiguous
        (q, n) tensor) if given, the factor that turns its values into
        similarities (q,), and each query's error bound ``eps`` (q,).
        """
        raise NotImplementedError

    @staticmethod
    def _score_dtype() -> Any:
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
        block = int(np.clip(self.SCORE_BYTES // max(len(base) * self._score_dtype().itemsize, 1), 16, self.BLOCK))
        # One score matrix for every block: a fresh one of hundreds of MB would be paged in anew each time.
        out = torch.empty((min(block, len(Q)), len(base)), dtype=self._score_dtype())
        with torch.no_grad():
            for start in range(0, len(Q), block):
                Qb = Q[start : start + block]
                S, factor, eps = self._score(Qb, base, out[: len(Qb)])
                if blocked is not None:
                    S[:, blocked] = torch.iinfo(S.dtype).min if not S.dtype.is_floating_point else -torch.inf
                todo = np.arange(len(Qb))
                c = first
                while todo.size:
                    St = S if len(todo) == len(Qb) else S[torch.from_numpy(todo)]
                    vals, idx = _top(St, min(n_allowed, c + 1), self.GROUP)
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
    #: Stored rows multiplied at a time: a (queries, COLUMNS) product written into the score
    #: matrix ran at about 1.6x the rate of one product over all rows (AMX, 1,024 queries).
    COLUMNS = 8192

    @staticmethod
    def _dtype() -> Any:
        import torch

        return torch.bfloat16

    def _encode(self, X: np.ndarray) -> Any:
        import torch

        return torch.from_numpy(X).to(torch.bfloat16)

    @staticmethod
    def _score_dtype() -> Any:
        import torch

        return torch.bfloat16

    def _score(self, Q: np.ndarray, base: Any, out: Any = None) -> tuple[Any, np.ndarray, np.ndarray]:
        import torch

        eps, _ = bf16_error_bound(self.dim)
        Qt = torch.from_numpy(Q).to(torch.bfloat16)
        S = torch.empty((len(Q), len(base)), dtype=torch.bfloat16) if out is None else out
        for start in range(0, len(base), self.COLUMNS):
            torch.mm(Qt, base[start : start + self.COLUMNS].T, out=S[:, start : start + self.COLUMNS])
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

    @staticmethod
    def _score_dtype() -> Any:
        import torch

        return torch.int32

    def _score(self, Q: np.ndarray, base: Any, out: Any = None) -> tuple[Any, np.ndarray, np.ndarray]:
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

        Qt = torch.from_numpy(Qi.astype(np.int8))
        S = _int_mm(Qt, base.T) if out is None else _int_mm(Qt, base.T, out=out)
        return S, sq * self.scale, eps
