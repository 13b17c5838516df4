"""Exact top-k inner-product search scored in low precision on the matrix units, re-ranked in fp32.

Why: faiss's exact search is bound by the fp32 matrix product.  CPUs with
AMX, AVX-512 BF16 or VNNI multiply bf16 or int8 matrices 2-5x faster.  Their
scores are approximate; this module makes the answer exact again.

The guarantee
-------------
Each scorer has a worst-case bound ``eps`` on ``|approximate - exact|`` for
every (query, vector) pair.  Each query takes its ``c`` best approximate
candidates and scores them in fp32 with faiss's own inner-product kernel
(:func:`faiss.fvec_inner_products_by_idx`, the arithmetic of
``IndexFlatIP.search`` on 2 to 64 queries), so every returned similarity is
bit-identical to what faiss returns for such a batch.
The answer is certified when the k-th fp32 score exceeds the best excluded
approximate score by more than ``eps + g`` (``g`` bounds the fp32 score's own
error): no excluded vector can then reach the top ``k``.  Uncertified
queries are searched again with 4x the candidates, up to all allowed
vectors, so every answer is certified.  The bounds are worst cases, not
probabilities.

* **bf16** (:class:`Bf16Vectors`): queries and vectors rounded to bf16 (unit
  roundoff ``u = 2**-8``), multiplied with fp32 accumulation, the product
  rounded to bf16.  For unit vectors of dimension ``d``,
  ``eps = (2u + u^2 + g)(1 + u) + u`` with ``g = d 2^-24 / (1 - d 2^-24)``,
  because ``sum |q_i x_i| <= |q| |x| = 1``.  This rests on one assumption
  about the library, fp32 accumulation, which :func:`scoring_mode` checks
  once per process on adversarial data before the path is used.
* **int8** (:class:`Int8Vectors`): vectors quantised with one scale ``s``
  (the largest component / 127), each query with its own ``s_q``; the integer
  product is exact in int32.  With ``q^`` the dequantised query and ``L`` the
  largest L1 norm of a stored vector, ``eps = (s/2)|q^|_1 + (s_q/2) L``:
  each rounding error is at most half a step, and Hoelder's inequality does
  the rest.  No assumption about the library is needed.

Exactly equal fp32 scores (duplicate vectors, in practice) are ordered by
row, and the lowest rows make the top ``k``.  faiss has no such rule: which
of several equal scores it keeps follows from its heap's history over the
scan, and its fp32 kernels (one query, small batches, large batches, BLAS;
each also varying with the dimension) sum in different orders, so it can
order two entries whose scores differ by an ulp, or even two copies of one
vector, differently from one batch size to the next.  On 10,000
Tiny-ImageNet queries its large-batch and small-batch answers differ in 3
top-10 lists.  This path's answer does not depend on the batch.

``SUPERSUB_SCORING`` chooses: ``fp32`` (off), ``bf16`` or ``int8``.  Unset,
the CPU decides: bf16 with AMX (whose bf16 tiles outrun its int8 ones, and
bf16's bound is about 3.5x tighter: 0.012 against about 0.04 for 1280-d image
embeddings), else int8 with AVX-512 VNNI or AVX-VNNI (without AMX, VNNI
multiplies int8 at twice the bf16 rate; on such a CPU int8 searched 1.96x
and bf16 1.73x as fast as faiss, ``benchmarks/memory_bench.py``), else bf16
with AVX-512 BF16, else fp32.
"""

from __future__ import annotations

import os
import warnings
from functools import lru_cache
from typing import Any

import faiss
import numpy as np

__all__ = ["SCORING_ENV", "SCORING_MODES", "Bf16Vectors", "Int8Vectors", "LowPrecisionVectors",
           "bf16_error_bound", "exact_scores", "scoring_mode"]

SCORING_ENV = "SUPERSUB_SCORING"
SCORING_MODES = ("fp32", "bf16", "int8")
_U = 2.0**-8


def _fp32_error(dim: int) -> float:
    """Bound on ``|fp32 score - exact score|`` for unit vectors of dimension ``dim``."""
    return dim * 2.0**-24 / (1 - dim * 2.0**-24)


def bf16_error_bound(dim: int) -> tuple[float, float]:
    """The worst-case score errors for unit vectors of dimension ``dim``.

    Returns
    -------
    eps : float
        Bound on ``|bf16 score - exact score|``.
    g : float
        Bound on ``|fp32 score - exact score|``.
    """
    g = _fp32_error(dim)
    return (2 * _U + _U**2 + g) * (1 + _U) + _U, g


@lru_cache(maxsize=1)
def _cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            return frozenset(next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), []))
    except OSError:
        return frozenset()


def _mode_for_cpu(flags: frozenset[str]) -> str:
    if "amx_bf16" in flags:
        return "bf16"
    if "avx512_vnni" in flags or "avx_vnni" in flags:
        return "int8"
    if "avx512_bf16" in flags:
        return "bf16"
    return "fp32"


@lru_cache(maxsize=1)
def _bf16_accumulates_in_fp32() -> bool:
    """Whether this torch's bf16 matmul stays within :func:`bf16_error_bound` (checked on a sample)."""
    import torch

    rng = np.random.default_rng(0)
    dim = 1024
    A = rng.standard_normal((64, dim)).astype(np.float32)
    # Adversarial rows: all mass in equal positive terms, where bf16 accumulation would drift most.
    A[:8] = np.abs(A[:8]) + 1.0
    B = np.concatenate([A[:8], rng.standard_normal((504, dim)).astype(np.float32)])
    A /= np.linalg.norm(A, axis=1, keepdims=True)
    B /= np.linalg.norm(B, axis=1, keepdims=True)
    with torch.no_grad():
        approx = (torch.from_numpy(A).to(torch.bfloat16) @ torch.from_numpy(B).to(torch.bfloat16).T).float().numpy()
    exact = A.astype(np.float64) @ B.astype(np.float64).T
    eps, _ = bf16_error_bound(dim)
    return bool(np.abs(approx - exact).max() <= eps)


@lru_cache(maxsize=1)
def _has_int8_gemm() -> bool:
    import torch

    return hasattr(torch, "_int_mm")


def scoring_mode() -> str:
    """How exact searches score first: ``"bf16"``, ``"int8"`` or ``"fp32"`` (no low-precision pass).

    ``SUPERSUB_SCORING`` decides if set; otherwise the CPU's flags do (see the
    module notes).  bf16 is used only if torch's bf16 product accumulates in
    fp32 here; otherwise the search falls back to fp32 with a warning.
    """
    mode = os.environ.get(SCORING_ENV, "").strip().lower()
    if mode and mode not in SCORING_MODES:
        raise ValueError(f"{SCORING_ENV}={mode!r}: use 'fp32', 'bf16' or 'int8', or leave it unset "
                         "to choose by the CPU")
    mode = mode or _mode_for_cpu(_cpu_flags())
    if mode == "int8" and not _has_int8_gemm():
        mode = "bf16" if "avx512_bf16" in _cpu_flags() or "amx_bf16" in _cpu_flags() else "fp32"
    if mode == "bf16" and not _bf16_accumulates_in_fp32():
        warnings.warn("torch's bf16 matmul exceeded the fp32-accumulation error bound on this machine; "
                      "searches use fp32 only", RuntimeWarning, stacklevel=2)
        return "fp32"
    return mode


def exact_scores(Q: np.ndarray, X: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """fp32 inner products ``Q[i] . X[rows[i, j]]`` with faiss's own kernel.

    Parameters
    ----------
    Q : ndarray of shape (q, dim), float32, C-contiguous
    X : ndarray of shape (n, dim), float32, C-contiguous
    rows : ndarray of shape (q, c), int64; ``-1`` gives ``-inf``

    Returns
    -------
    ndarray of shape (q, c), float32
    """
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    out = np.empty(rows.shape, dtype=np.float32)
    if rows.size:
        faiss.fvec_inner_products_by_idx(faiss.swig_ptr(out), faiss.swig_ptr(Q), faiss.swig_ptr(X),
                                         faiss.swig_ptr(rows), X.shape[1], rows.shape[0], rows.shape[1])
    return out


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
            fp32 scores, descending; equal scores in row order.
        rows : ndarray of shape (q, k), int64
        """
        import torch

        if self.n != len(X):
            raise RuntimeError(f"the {self.mode} copy holds {self.n} rows, the index {len(X)}")
        Q = np.ascontiguousarray(Q, dtype=np.float32)
        g = _fp32_error(self.dim)
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
                    order = np.lexsort((cand, -exact), axis=1)[:, :k]
                    top = np.take_along_axis(exact, order, 1)
                    ok = top[:, k - 1] > excluded + eps[todo] + g
                    done = todo[ok]
                    sims[start + done] = top[ok]
                    rows[start + done] = np.take_along_axis(cand, order, 1)[ok]
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
        if not self.accepts(X):
            raise ValueError("a row exceeds the int8 scale; rebuild the copy")
        if self.n == 0 and len(X):
            self.scale = max(float(np.abs(X).max()), 1e-30) / 127
        if len(X):
            self.l1 = max(self.l1, float(np.abs(X).sum(axis=1).max()))
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
        eps = self.scale / 2 * l1 + sq / 2 * self.l1
        eps = eps * (1 + 2.0**-40) + 2.0**-40  # the float64 arithmetic of the bound itself
        from torch import _int_mm  # torch's int8 GEMM (oneDNN; the one torchao builds on); int32 out

        S = _int_mm(torch.from_numpy(Qi.astype(np.int8)), base.T)
        return S, sq * self.scale, eps
