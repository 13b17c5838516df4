"""An IVF index's lists searched in bf16 on the matrix units, then re-ranked in fp32.

faiss scans an ``IndexIVFFlat`` in fp32, one query at a time, so on a CPU
with bf16 matrix units it gains little over the memory's exact search,
which multiplies whole batches in bf16 (``benchmarks/scale_bench.py
--crossover`` times both).  :class:`Bf16Lists` keeps the IVF index's lists
as one bf16 copy of the vectors, list after list, and searches them the
other way round: the queries of a batch that probe a list are gathered and
multiplied with that list's rows in one product.

The index is the faiss index it was built from: the same centroids, the
same lists, the same ``nprobe``.  Each query's probed lists are the
``nprobe`` centroids with the largest fp32 inner products.  Inside a list,
bf16 scores pick ``2 k`` candidates (at least ``k + 8``) per query, and the
best of those across the probed lists are scored again in fp32 against the
stored vectors, so every returned similarity is an fp32 inner product.  A
true neighbour in a probed list is missed only if bf16 rounding pushes it
below that margin; the tests compare the results with faiss's own search.

Products are padded to a few shapes (:meth:`Bf16Lists.padded`): oneDNN compiles a
bf16 kernel for each new shape, which costs far more than the product.
"""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np

from ._scoring import bf16_accumulates_in_fp32, cpu_flags, scoring_mode

__all__ = ["IVF_BF16_MIN_WORK", "Bf16Lists", "ivf_bf16_pays", "ivf_in_bf16"]

#: An inner-product ``IVF...,Flat`` index is searched through its lists in bf16 (here)
#: when bf16 products run in hardware and a search gives each probed list at least
#: ``IVF_BF16_MIN_WORK`` multiply-adds on average (:func:`ivf_bf16_pays`): below that the
#: fixed cost of a product and a selection per list exceeds faiss's scan.  Measured, bf16
#: lists against faiss's scan (work per list; ratio of q/s), on clustered vectors:
#: 100k x 1280-d, IVF1024 nprobe 32: 2,000 queries (7.8M) 3.49x, 512 (2.0M) 2.25x, 128 (0.5M)
#: 0.84x; 100k x 256-d, IVF256 nprobe 16: 2,000 (12.5M) 2.76x, 512 (3.2M) 1.48x, 128 (0.8M)
#: 0.68x; 1M x 256-d, IVF1024 nprobe 24: 1,000 (5.8M) 4.4x, 256 (1.5M) 1.9x, 128 (0.8M) 1.15x,
#: 64 (0.4M) 0.73x; 30k x 256-d, 1,000 queries: IVF512 nprobe 8 (0.24M) 0.29x, IVF128 nprobe 8
#: (3.7M) 0.99x, where the whole memory sits in cache and faiss's scan is at its fastest;
#: 100k x 256-d, 1,000 queries, IVF1024 nprobe 48 (1.2M) 0.94x, IVF256 nprobe 12 (4.7M) 1.83x;
#: 300k x 256-d, IVF512 nprobe 16 (4.7M) 3.0x (the last three from ``scale_bench.py --crossover``).
IVF_BF16_MIN_WORK = 1 << 20


def ivf_bf16_pays(queries: int, nprobe: int, nlist: int, entries: int, dim: int) -> bool:
    """Whether ``queries`` searched in a ``nlist``-list IVF index of ``entries`` ``dim``-d vectors,
    ``nprobe`` lists each, give the probed lists at least :data:`IVF_BF16_MIN_WORK` multiply-adds
    on average (lists probed by the batch estimated as if queries chose them at random)."""
    if queries <= 0 or nlist <= 0 or entries <= 0:
        return False
    pairs = queries * min(nprobe, nlist)
    touched = nlist * -np.expm1(-pairs / nlist)
    return bool(pairs / touched * (entries / nlist) * dim >= IVF_BF16_MIN_WORK)


def ivf_in_bf16(mode: str | None = None, flags: frozenset[str] | None = None) -> bool:
    """Whether ``IVF...,Flat`` indexes search their lists in bf16 (:mod:`._ivf`).

    They do where the CPU multiplies bf16 in hardware (AMX or AVX-512 BF16, from
    ``flags``, default this CPU's) and the scoring mode (default
    :func:`scoring_mode`) is not ``"fp32"``, so ``SUPERSUB_SCORING=fp32`` gives
    faiss's own fp32 scan.  A CPU whose exact searches score in int8 (VNNI
    without AMX) still has bf16 products, and its lists are searched in bf16.
    """
    flags = cpu_flags() if flags is None else flags
    if (scoring_mode() if mode is None else mode) == "fp32":
        return False
    return ("amx_bf16" in flags or "avx512_bf16" in flags) and bf16_accumulates_in_fp32()


#: Padded sizes: 16 x 2^i and 24 x 2^i, so no product is padded by half or more.
_SIZES = np.array(sorted({b << i for b in (16, 24) for i in range(24)}), dtype=np.int64)


def padded(n: int) -> int:
    """The smallest padded size at least ``n`` (16, 24, 32, 48, 64, 96, ...)."""
    return int(_SIZES[np.searchsorted(_SIZES, n)])


def ivf_flat(ann: Any) -> Any:
    """The ``IndexIVFFlat`` inside an ``IndexIDMap2`` (inner product, no transform), or None."""
    base = faiss.downcast_index(ann.index)
    if isinstance(base, faiss.IndexIVFFlat) and base.metric_type == faiss.METRIC_INNER_PRODUCT:
        return base
    return None


class Bf16Lists:
    """The lists of an ``IndexIVFFlat``, as one bf16 copy of the vectors in list order.

    Parameters
    ----------
    centroids : ndarray of shape (nlist, dim), float32
    rows : ndarray of shape (n,), int64
        Row positions (in the memory's exact index) of the vectors, list after list.
    offsets : ndarray of shape (nlist + 1,), int64
        List ``l`` holds ``rows[offsets[l]:offsets[l + 1]]``.
    X : ndarray of shape (n_rows, dim), float32
        The memory's normalised vectors; ``X[rows]`` is copied in bf16.
    """

    CHUNK = 65536  # rows converted to bf16 at a time
    padded = staticmethod(padded)

    def __init__(self, centroids: np.ndarray, rows: np.ndarray, offsets: np.ndarray, X: np.ndarray) -> None:
        import torch

        self.dim = int(centroids.shape[1])
        self.centroids = torch.from_numpy(np.ascontiguousarray(centroids, dtype=np.float32))
        self.rows = np.ascontiguousarray(rows, dtype=np.int64)
        self.offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        # Rows past the last list let a padded product read beyond it; its scores there are cut off.
        tail = padded(int(np.diff(self.offsets).max(initial=1)))
        self.vectors = torch.zeros((len(self.rows) + tail, self.dim), dtype=torch.bfloat16)
        for a in range(0, len(self.rows), self.CHUNK):
            part = X[self.rows[a : a + self.CHUNK]]
            self.vectors[a : a + len(part)] = torch.from_numpy(part)

    @classmethod
    def from_faiss(cls, ann: Any, X: np.ndarray, rows_of: Any, dead: np.ndarray) -> Bf16Lists:
        """The lists of ``ann`` (an ``IndexIDMap2`` around an ``IndexIVFFlat``).

        ``rows_of(ids)`` gives the row positions of live entry ids; ids in
        ``dead`` (tombstones) are left out.
        """
        base = ivf_flat(ann)
        if base is None:
            raise ValueError("not an inner-product IndexIVFFlat")
        invlists = base.invlists
        id_map = faiss.vector_to_array(ann.id_map)
        sizes = np.array([invlists.list_size(l) for l in range(base.nlist)], dtype=np.int64)
        positions = np.concatenate(
            [faiss.rev_swig_ptr(invlists.get_ids(l), int(s)).copy() for l, s in enumerate(sizes) if s]
            or [np.empty(0, dtype=np.int64)]
        )
        ids = id_map[positions]
        live = ~np.isin(ids, dead) if dead.size else np.ones(len(ids), dtype=bool)
        lists = np.repeat(np.arange(base.nlist), sizes)[live]
        offsets = np.concatenate([[0], np.cumsum(np.bincount(lists, minlength=base.nlist))])
        centroids = base.quantizer.reconstruct_n(0, base.nlist)
        return cls(centroids, rows_of(ids[live]), offsets, X)

    @property
    def nbytes(self) -> int:
        """Bytes held by the bf16 copy."""
        return int(self.vectors.numel()) * 2

    def search(self, Q: np.ndarray, X: np.ndarray, k: int, nprobe: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` rows of each query among its ``nprobe`` nearest lists.

        Parameters
        ----------
        Q : ndarray of shape (q, dim), float32
            Normalised queries.
        X : ndarray of shape (n_rows, dim), float32
            The memory's vectors, for the fp32 re-rank.
        k, nprobe : int

        Returns
        -------
        sims : ndarray of shape (q, k), float32
            fp32 inner products, descending; ``-inf`` past the last hit.
        rows : ndarray of shape (q, k), int64
            Row positions; ``-1`` past the last hit.
        """
        import torch

        q, nlist = len(Q), len(self.offsets) - 1
        nprobe = max(1, min(int(nprobe), nlist))
        kk = max(2 * k, k + 8)
        Qt = torch.from_numpy(np.ascontiguousarray(Q, dtype=np.float32))
        with torch.no_grad():
            probes = torch.topk(Qt @ self.centroids.T, nprobe, dim=1).indices  # (q, nprobe)
            lists = probes.flatten()
            pairs = torch.argsort(lists, stable=True)  # (query, list) pairs, list by list
            queries = (pairs // nprobe).numpy()
            bounds = np.searchsorted(lists[pairs].numpy(), np.arange(nlist + 1))
            Qb = torch.zeros((q + 1, self.dim), dtype=torch.bfloat16)  # row q, zero, pads the products
            Qb[:q] = Qt
            best = torch.full((q * nprobe, kk), -torch.inf, dtype=torch.bfloat16)
            where = torch.full((q * nprobe, kk), -1, dtype=torch.int64)
            off = self.offsets
            for lst in np.flatnonzero((bounds[1:] > bounds[:-1]) & (off[1:] > off[:-1])).tolist():
                a, b, lo, hi = int(bounds[lst]), int(bounds[lst + 1]), int(off[lst]), int(off[lst + 1])
                m, n = b - a, hi - lo
                pick = np.full(padded(m), q, dtype=np.int64)  # padding queries are zero rows
                pick[:m] = queries[a:b]
                S = (Qb[torch.from_numpy(pick)] @ self.vectors[lo : lo + padded(n)].T)[:m, :n]
                t = min(kk, n)
                v, j = torch.topk(S, t, dim=1)
                slot = pairs[a:b]
                best[slot, :t], where[slot, :t] = v, j + lo
            v, j = torch.topk(best.view(q, nprobe * kk), min(kk, nprobe * kk), dim=1)
            cand = where.view(q, nprobe * kk).gather(1, j).numpy()  # positions in list order
        found = cand >= 0
        rows = np.where(found, self.rows[np.maximum(cand, 0)], -1)
        sims = np.einsum("qcd,qd->qc", X[np.maximum(rows, 0)], np.asarray(Q, dtype=np.float32))
        sims = np.where(found, sims, -np.inf).astype(np.float32)
        order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        sims, rows = np.take_along_axis(sims, order, 1), np.take_along_axis(rows, order, 1)
        return sims, np.where(np.isfinite(sims), rows, -1)
