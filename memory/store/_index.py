"""The memory's vectors: an exact faiss index, and optionally an approximate one beside it.

The exact ``IndexFlatIP`` holds every vector in row order (row ``i`` is the
entry table's row ``i``).  An approximate index (IVF, HNSW, PQ...) is built
from it on the first search after a change and keyed by entry id; because
HNSW cannot delete, removed ids become tombstones that every search filters
out, and the approximate index is rebuilt once they exceed
``rebuild_fraction`` of the entries.  Searches run with faiss's BLAS
threshold lowered inside a scoped block (:func:`blas_for_small_batches`),
never as a process-wide setting.

Large exact searches of the ``"Flat"`` index score in bf16 or int8 on the
matrix units and re-rank in fp32 where the CPU has them (:mod:`._scoring`),
with faiss's results; the low-precision copy of the vectors is built on the
first such search and kept in step with additions.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np

from .._errors import InputError
from .._parallel import in_parts
from .._progress import Progress
from .._validation import Rows
from ._faiss import blas_for_small_batches
from ._ivf import Bf16Lists, ivf_bf16_pays, ivf_flat, ivf_in_bf16
from ._lowprec import Bf16Vectors, Int8Vectors, LowPrecisionVectors
from ._scoring import scoring_mode
from ._streamed import CHUNK, write_streamed
from ._when_lowp import use_low_precision

if TYPE_CHECKING:
    from ._table import EntryTable

__all__ = ["VectorIndex"]

#: Vectors an approximate index is trained on: a sample of ``TRAIN_SAMPLE``, or of
#: ``TRAIN_PER_LIST`` per inverted list where that is more (faiss asks for 39 per centroid).
TRAIN_SAMPLE = 100_000
TRAIN_PER_LIST = 40

_SCORERS: dict[str, type[LowPrecisionVectors]] = {"bf16": Bf16Vectors, "int8": Int8Vectors}


def _inverted_lists(index: Any) -> int:
    """The number of inverted lists of an IVF index (after any transform); 0 for other indexes."""
    try:
        return int(faiss.extract_index_ivf(index).nlist)
    except RuntimeError:
        return 0


def _write_index(index: Any, path: Path) -> None:
    """Write a faiss index to ``path`` in faiss's format, hashed and synced as it goes.

    faiss hands its bytes over 1 MiB at a time (``PyCallbackIOWriter``), so
    nothing the size of the index is copied on the way, and
    :func:`write_streamed` hashes and flushes each piece while the next is
    written, instead of reading the whole file back to hash it after the
    write (``benchmarks/memory_bench.py`` times a save).
    """
    write_streamed(path, lambda sink: faiss.write_index(index, faiss.PyCallbackIOWriter(sink, CHUNK)))


class VectorIndex:
    """Exact and approximate inner-product search over L2-normalised vectors.

    Parameters
    ----------
    dim : int
    spec : str, default "Flat"
        ``"Flat"`` or a faiss index-factory string.
    nprobe, ef_search : int, optional
        Search-time parameters of IVF and HNSW indexes.
    rebuild_fraction : float, default 0.1
    """

    def __init__(self, dim: int, spec: str = "Flat", *, nprobe: int | None = None,
                 ef_search: int | None = None, rebuild_fraction: float = 0.1) -> None:
        self.dim, self.spec = int(dim), spec
        self.nprobe, self.ef_search, self.rebuild_fraction = nprobe, ef_search, float(rebuild_fraction)
        self.flat = faiss.IndexFlatIP(self.dim)
        self.ann: Any = None
        self.ann_ids = np.empty(0, dtype=np.int64)
        self.tomb = np.empty(0, dtype=np.int64)
        self.synced = False  # the approximate index holds every current id
        self.lowp: LowPrecisionVectors | None = None  # built on the first low-precision search
        self.lists: Bf16Lists | None = None  # an IVF index's lists in bf16, built on the first search
        if spec != "Flat":
            try:
                faiss.index_factory(self.dim, spec, faiss.METRIC_INNER_PRODUCT)
            except RuntimeError as exc:
                raise InputError(
                    f"faiss cannot build index {spec!r}: {str(exc).splitlines()[0]}; "
                    "use 'Flat', 'IVF<n>,Flat', 'HNSW<m>' or another index-factory string"
                ) from exc

    @property
    def ntotal(self) -> int:
        return int(self.flat.ntotal)

    def vectors(self) -> np.ndarray:
        """The stored vectors, shape (n, dim); a read-only view into faiss."""
        n = self.flat.ntotal
        if n == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        view = faiss.rev_swig_ptr(self.flat.get_xb(), n * self.dim).reshape(n, self.dim)
        view.flags.writeable = False
        return view  # type: ignore[no-any-return]

    # --------------------------------------------------------------- edits
    def add(self, X: np.ndarray | Rows, batch_size: int = 65536, *, progress: bool = False) -> None:
        """Append vectors in batches; on any failure none of them stays.

        ``X`` is an array of normalised vectors (n, dim), or validated
        ``Rows`` (``prepare_rows(..., normalize=False)``) whose rows are
        divided by their norms straight into the index's storage.  Either
        way the storage grows once, to its final size, and no intermediate
        copy is made.  ``progress`` shows a bar on stderr when there are
        several batches.
        """
        rows = X if isinstance(X, Rows) else Rows(X, [], [], [], [], 1.0, None)
        n, before = len(rows), self.flat.ntotal
        steps = range(0, n, batch_size)
        width = self.dim * 4  # bytes per vector in the exact index
        try:
            self.flat.codes.resize((before + n) * width)
            store = faiss.rev_swig_ptr(self.flat.get_xb(), (before + n) * self.dim).reshape(-1, self.dim)
            with Progress(len(steps), "add to the index", "batch", enabled=progress and len(steps) > 1) as bar:
                for start in steps:
                    stop = min(n, start + batch_size)
                    in_parts(lambda a, b: rows.normalized(a, b, out=store[before + a : before + b]), start, stop)
                    self._append_lowp(store[before + start : before + stop])
                    bar.update(1)
        except BaseException:
            self.flat.codes.resize(before * width)
            self.flat.ntotal = before
            self.lowp = None
            raise
        self.flat.ntotal = before + n
        self.synced = False
        self.lists = None

    def _append_lowp(self, X: np.ndarray) -> None:
        """Keep the low-precision copy, if built, in step with the normalised vectors ``X`` just stored."""
        if self.lowp is not None:
            if not self.lowp.accepts(X):
                self.lowp = None  # rebuilt on the next search
                return
            try:
                self.lowp.append(X)
            except BaseException:
                self.lowp = None
                raise

    def remove(self, rows: np.ndarray, ids: np.ndarray) -> None:
        """Remove ``rows`` (sorted positions) whose entry ids are ``ids``.

        The vectors go last, after which nothing can fail; the approximate
        index keeps the ids as tombstones until it is rebuilt.
        """
        tomb = np.union1d(self.tomb, ids) if self.ann is not None else self.tomb
        removed = self.flat.remove_ids(faiss.IDSelectorBatch(rows.astype(np.int64)))
        if removed != len(rows):  # pragma: no cover - faiss removes every listed row
            raise RuntimeError(f"faiss removed {removed} of {len(rows)} rows")
        self.tomb = tomb
        self.lowp = self.lists = None  # rebuilt on the next search

    def copy(self) -> VectorIndex:
        """An independent copy of the exact vectors (the approximate index is rebuilt on demand)."""
        new = VectorIndex(self.dim, self.spec, nprobe=self.nprobe, ef_search=self.ef_search,
                          rebuild_fraction=self.rebuild_fraction)
        new.flat = faiss.clone_index(self.flat)
        return new

    # ---------------------------------------------------- approximate index
    def ensure_ann(self, ids: np.ndarray) -> None:
        """Build the approximate index, or bring it up to date with the entries ``ids`` (row order)."""
        stale = self.ann is None or self.tomb.size > self.rebuild_fraction * max(len(ids), 1)
        if not stale:
            if self.synced:
                return
            new = ~np.isin(ids, self.ann_ids)
            if new.any():  # entries added since the build
                self.ann.add_with_ids(self.vectors()[new], ids[new])
                self.ann_ids = np.concatenate([self.ann_ids, ids[new]])
                self.lists = None
            self.synced = True
            return
        base = faiss.index_factory(self.dim, self.spec, faiss.METRIC_INNER_PRODUCT)
        ann = faiss.IndexIDMap2(base)
        vecs = self.vectors()
        if not base.is_trained:
            train = vecs
            cap = max(TRAIN_SAMPLE, TRAIN_PER_LIST * _inverted_lists(base))
            if len(vecs) > cap:
                pick = np.random.default_rng(0).choice(len(vecs), cap, replace=False)
                train = vecs[np.sort(pick)]
            base.train(np.ascontiguousarray(train))
        ann.add_with_ids(vecs, ids)
        self.ann, self.ann_ids, self.tomb = ann, ids.copy(), np.empty(0, dtype=np.int64)
        self.synced, self.lists = True, None
        self.set_search_params()

    def set_search_params(self) -> None:
        """Apply ``nprobe`` / ``ef_search`` to the approximate index, if there is one."""
        if self.ann is None:
            return
        base = faiss.downcast_index(self.ann.index)
        if self.nprobe is not None and hasattr(base, "nprobe"):
            faiss.ParameterSpace().set_index_parameter(base, "nprobe", int(self.nprobe))
        if self.ef_search is not None and hasattr(base, "hnsw"):
            base.hnsw.efSearch = int(self.ef_search)

    # --------------------------------------------------------------- search
    def _lowp_copy(self, queries: int, rows: int) -> LowPrecisionVectors | None:
        """The low-precision copy, built now if needed, when a search should use one."""
        if self.spec != "Flat":
            return None
        mode = scoring_mode()
        if mode == "fp32" or not use_low_precision(queries, rows, self.dim, mode):
            return None
        if self.lowp is None or self.lowp.mode != mode or self.lowp.n != self.flat.ntotal:
            copy = _SCORERS[mode](self.dim)
            copy.append(self.vectors())
            self.lowp = copy
        return self.lowp

    def _bf16_lists(self, queries: int, table: EntryTable) -> Bf16Lists | None:
        """The IVF index's lists in bf16, built now if needed, when a search should use them:
        an inner-product ``IVF...,Flat`` index, bf16 products in hardware
        (:func:`ivf_in_bf16`), and enough work per probed list (:func:`ivf_bf16_pays`)."""
        if self.spec == "Flat" or not ivf_in_bf16():
            return None
        self.ensure_ann(table.ids)
        base = ivf_flat(self.ann)
        if base is None or not ivf_bf16_pays(queries, int(base.nprobe), int(base.nlist), self.ntotal, self.dim):
            return None
        if self.lists is None:
            self.lists = Bf16Lists.from_faiss(self.ann, self.vectors(), table.rows_of, self.tomb)
        return self.lists

    def search(self, Q: np.ndarray, k: int, mask: np.ndarray | None,
               table: EntryTable) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (sims, rows) of normalised queries (q, dim) among the rows ``mask`` allows.

        Returns arrays of shape (q, k): similarities (``-inf`` past the last
        hit) and row positions (``-1`` past the last hit).
        """
        with blas_for_small_batches():
            return self._search(Q, k, mask, table)

    def _search(self, Q: np.ndarray, k: int, mask: np.ndarray | None,
                table: EntryTable) -> tuple[np.ndarray, np.ndarray]:
        n = self.flat.ntotal
        sims = np.full((Q.shape[0], k), -np.inf, dtype=np.float32)
        rows = np.full((Q.shape[0], k), -1, dtype=np.int64)
        if mask is not None and not mask.any():
            return sims, rows
        n_allowed = n if mask is None else int(mask.sum())
        kk = min(k, n_allowed)
        lists = self._bf16_lists(Q.shape[0], table) if mask is None else None
        if lists is not None:
            nprobe = int(faiss.downcast_index(self.ann.index).nprobe)
            sims[:, :kk], rows[:, :kk] = lists.search(Q, self.vectors(), kk, nprobe)
            return sims, rows
        lowp = self._lowp_copy(Q.shape[0], n_allowed)
        if lowp is None:
            return self._search_fp32(Q, kk, mask, table, sims, rows)
        sims[:, :kk], rows[:, :kk] = lowp.search(Q, self.vectors(), kk, mask)
        return sims, rows

    def _search_fp32(self, Q: np.ndarray, kk: int, mask: np.ndarray | None, table: EntryTable,
                     sims: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = self.flat.ntotal
        if mask is not None:
            n_out = n - int(mask.sum())
            if n_out <= 256 and self.ann is None and self.spec == "Flat":
                # Few exclusions: over-fetch from the whole index and filter.
                s, r = self.flat.search(Q, min(n, kk + n_out))
                keep = np.where(r >= 0, mask[np.maximum(r, 0)], False)
                order = np.argsort(~keep, axis=1, kind="stable")[:, :kk]
                s, r = np.take_along_axis(s, order, 1), np.take_along_axis(r, order, 1)
            else:
                # Exact search over the allowed rows only.
                allowed = np.flatnonzero(mask)
                sub = np.ascontiguousarray(self.vectors()[allowed])
                s, r = faiss.knn(Q, sub, kk, metric=faiss.METRIC_INNER_PRODUCT)
                r = np.where(r >= 0, allowed[np.maximum(r, 0)], -1)
        elif self.spec == "Flat":
            s, r = self.flat.search(Q, kk)
        else:
            self.ensure_ann(table.ids)
            extra = int(self.tomb.size)
            s, found = self.ann.search(Q, min(kk + extra, self.ann.ntotal))
            if extra:
                dead = np.isin(found, self.tomb) | (found < 0)
                order = np.argsort(dead, axis=1, kind="stable")[:, :kk]
                s, found = np.take_along_axis(s, order, 1), np.take_along_axis(found, order, 1)
                found = np.where(np.take_along_axis(dead, order, 1), -1, found)
            else:
                s, found = s[:, :kk], found[:, :kk]
            valid = found >= 0
            r = np.full(found.shape, -1, dtype=np.int64)
            if valid.any():
                r[valid] = table.rows_of(found[valid])
        sims[:, : r.shape[1]] = np.where(r >= 0, s, -np.inf)
        rows[:, : r.shape[1]] = r
        return sims, rows

    # ------------------------------------------------------------- pickling
    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in ("flat", "ann", "lowp", "lists")}
        flat, ann, ann_ids = self.to_bytes()
        state["_bytes"] = (flat, ann, ann_ids)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        flat, ann, ann_ids = state.pop("_bytes")
        self.__dict__.update(state)
        self.ann, self.lowp, self.lists = None, None, None
        self.restore(faiss.deserialize_index(np.frombuffer(flat, dtype=np.uint8)),
                     None if ann is None else faiss.deserialize_index(np.frombuffer(ann, dtype=np.uint8)),
                     ann_ids)

    # --------------------------------------------------------------- files
    def to_bytes(self) -> tuple[bytes, bytes | None, np.ndarray | None]:
        """The exact index, the approximate one (or None) and its ids with tombstones as ``-1 - id``."""
        flat = faiss.serialize_index(self.flat).tobytes()
        if self.ann is None:
            return flat, None, None
        return flat, faiss.serialize_index(self.ann).tobytes(), self._ann_ids_and_tombstones()

    def _ann_ids_and_tombstones(self) -> np.ndarray:
        """The approximate index's ids, then its tombstones as ``-1 - id`` (how both are stored)."""
        return np.concatenate([self.ann_ids, -1 - self.tomb])

    def write_files(self, flat: Path, ann: Path, ann_ids: Path) -> None:
        """Write the exact index to ``flat`` and, if built, the approximate one and its ids
        (tombstones as ``-1 - id``, as :meth:`to_bytes`) to ``ann`` and ``ann_ids``."""
        _write_index(self.flat, flat)
        if self.ann is not None:
            _write_index(self.ann, ann)
            np.save(ann_ids, self._ann_ids_and_tombstones(), allow_pickle=False)

    def restore(self, flat: Any, ann: Any = None, ann_ids: np.ndarray | None = None) -> None:
        """Install loaded faiss indexes (see :meth:`to_bytes` for ``ann_ids``)."""
        self.flat, self.lowp, self.lists = flat, None, None
        if ann is not None and ann_ids is not None:
            self.ann, self.ann_ids, self.tomb = ann, ann_ids[ann_ids >= 0], -1 - ann_ids[ann_ids < 0]
            self.set_search_params()
