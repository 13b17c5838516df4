"""How exact searches score: the low-precision mode, its error bounds, and the fp32 re-rank kernel.

The scorers themselves live in :mod:`._lowprec`.

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

Exactly equal fp32 scores (duplicate vectors, in practice) are settled by
faiss's own rule for ``k < 100``, replayed on the candidates: scanning rows
in order, a row enters the top ``k`` only if it beats the worst kept one
strictly, the worst being the lowest score and, among equal scores, the
lowest row; the result lists equal scores in descending row order.  (faiss
selects differently for ``k >= 100`` and for a single query; there the rule
above still holds, so equal scores may be listed otherwise than faiss lists
them.)  faiss's fp32 kernels (one query, small batches, large batches, BLAS;
each also varying with the dimension) sum in different orders, so faiss
itself can order two entries whose scores differ by an ulp differently from
one batch size to the next: on 10,000 Tiny-ImageNet queries its large-batch
and small-batch answers differ in 3 top-10 lists.  This path's answer does
not depend on the batch.

``SUPERSUB_SCORING`` chooses: ``fp32`` (off), ``bf16`` or ``int8``.  Unset,
the CPU decides: bf16 where it multiplies bf16 in hardware, with AMX or
AVX-512 BF16, else int8 with AVX-512 VNNI or AVX-VNNI, else fp32.  bf16's
bound is about 3.5x tighter (0.012 against about 0.04 for 1280-d image
embeddings), so fewer candidates are re-ranked, and its scores are 2 bytes
against int8's 4-byte int32, so selecting candidates reads half as much.
Measured on 100k Tiny-ImageNet embeddings (1280-d, 10,000 queries,
``benchmarks/results/memory*.json``): with AMX, bf16 searched 3.8x and int8
2.3x as fast as faiss; on an AMD EPYC with AVX-512 BF16 and VNNI but no AMX,
bf16 3.2x and int8 2.4x.  On that CPU int8 was faster only for 1 to 4
queries at a time (see :data:`memory.store.LOWP_BF16_MIN_ROWS`).
"""

from __future__ import annotations

import os
import warnings
from functools import lru_cache

import faiss
import numpy as np

from ._faiss import faiss_threads

__all__ = ["SCORING_ENV", "SCORING_MODES", "bf16_accumulates_in_fp32", "bf16_error_bound", "cpu_flags", "exact_scores",
           "fp32_error_bound", "has_amx", "native_bf16", "scoring_mode", "scoring_mode_for"]

SCORING_ENV = "SUPERSUB_SCORING"
SCORING_MODES = ("fp32", "bf16", "int8")
_U = 2.0**-8


def fp32_error_bound(dim: int) -> float:
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
    g = fp32_error_bound(dim)
    return (2 * _U + _U**2 + g) * (1 + _U) + _U, g


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The flags this CPU reports in ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            return frozenset(next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), []))
    except OSError:
        return frozenset()


def native_bf16() -> bool:
    """Whether this CPU computes bf16 products in hardware (AMX or AVX-512 BF16).

    Without them torch emulates bf16, slower than fp32, so callers choosing
    a precision by default take fp32 there.
    """
    flags = cpu_flags()
    return "amx_bf16" in flags or "avx512_bf16" in flags


def has_amx() -> bool:
    """Whether this CPU has AMX bf16 tiles."""
    return "amx_bf16" in cpu_flags()


def scoring_mode_for(flags: frozenset[str]) -> str:
    """The scoring mode a CPU with these ``/proc/cpuinfo`` flags gets by default.

    bf16 where the CPU multiplies it in hardware (AMX tiles or AVX-512 BF16),
    else int8 where VNNI's dot products run it, else fp32 (see the module notes).
    """
    if "amx_bf16" in flags or "avx512_bf16" in flags:
        return "bf16"
    if "avx512_vnni" in flags or "avx_vnni" in flags:
        return "int8"
    return "fp32"


@lru_cache(maxsize=1)
def bf16_accumulates_in_fp32() -> bool:
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
    mode = mode or scoring_mode_for(cpu_flags())
    if mode == "int8" and not _has_int8_gemm():
        mode = "bf16" if "avx512_bf16" in cpu_flags() or "amx_bf16" in cpu_flags() else "fp32"
    if mode == "bf16" and not bf16_accumulates_in_fp32():
        warnings.warn("torch's bf16 matmul exceeded the fp32-accumulation error bound on this machine; "
                      "searches use fp32 only", RuntimeWarning, stacklevel=2)
        return "fp32"
    return mode


#: :func:`exact_scores` runs on the calling thread alone up to this many (query, row) pairs
#: (see :func:`memory.store._faiss.faiss_threads`).
EXACT_ONE_THREAD = 1 << 14


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
        with faiss_threads(1 if rows.size <= EXACT_ONE_THREAD else faiss.omp_get_max_threads()):
            faiss.fvec_inner_products_by_idx(faiss.swig_ptr(out), faiss.swig_ptr(Q), faiss.swig_ptr(X),
                                             faiss.swig_ptr(rows), X.shape[1], rows.shape[0], rows.shape[1])
    return out
