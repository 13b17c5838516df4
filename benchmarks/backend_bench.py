"""Memory backends compared in one run: embedded faiss against Milvus (a real standalone server).

    python benchmarks/backend_bench.py                       # 100k and 1M entries; writes results/backend.json
    python benchmarks/backend_bench.py --sizes 20000 --lite  # smaller, adds Milvus Lite; nothing written

The memory is clustered 128-d data on the real Tiny-ImageNet tree (200
classes under the WordNet balanced:10 cut), as in ``scale_bench.py``.  For
each size and backend:

* insert rate (entries/s: ids, metadata and vectors, until the backend
  acknowledges them; they are searchable from then on), and, timed
  separately, Milvus's flush and index build until every row is indexed;
* routed query latency: one query searched inside its superclass (faiss: the
  superclass's own shard; Milvus: the superclass partition key), p50 / p99
  over single queries, and batched throughput;
* delete latency: removing 100 ids per call, p50 / p99;
* recall@10 of the routed search against exact faiss search of the shard.

The server is started from the PyPI ``milvus`` wheel on loopback only
(:class:`memory.LocalMilvusServer`) and reached through its relay, as a
client on this machine would.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import write_result  # noqa: E402
from benchmarks.scale_bench import Clustered  # noqa: E402
from hierarchy import shipped_tree  # noqa: E402
from memory import LocalMilvusServer, MilvusMemory, VisualMemory  # noqa: E402

SIZES = (100_000, 1_000_000)


def percentiles(times: list[float]) -> dict[str, float]:
    return {"p50_ms": round(1000 * float(np.percentile(times, 50)), 3),
            "p99_ms": round(1000 * float(np.percentile(times, 99)), 3)}


class FaissShards:
    """The embedded backend as the router uses it: one exact memory per superclass."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.shards: dict[str, VisualMemory] = {}

    def add(self, X: np.ndarray, y: np.ndarray, ids: np.ndarray, sup: np.ndarray) -> None:
        for s in np.unique(sup):
            rows = sup == s
            shard = self.shards.setdefault(s, VisualMemory(self.dim, progress=False))
            shard.add(X[rows], y[rows], ids=ids[rows], superclass=s)

    def search(self, q: np.ndarray, k: int, s: str) -> np.ndarray:
        return self.shards[s].search(q, k)[1]

    def remove(self, ids: np.ndarray, s: str) -> None:
        self.shards[s].remove(ids)


class MilvusBackend:
    def __init__(self, memory: MilvusMemory) -> None:
        self.memory = memory

    def add(self, X: np.ndarray, y: np.ndarray, ids: np.ndarray, sup: np.ndarray) -> None:
        self.memory.add(X, y, ids=ids, superclass=sup)

    def flush(self) -> None:
        self.memory.wait_indexed()

    def search(self, q: np.ndarray, k: int, s: str) -> np.ndarray:
        return self.memory.search(q, k, superclass=s)[1]

    def remove(self, ids: np.ndarray, s: str) -> None:
        self.memory.remove(ids)


def measure(name: str, backend: Any, X: np.ndarray, y: np.ndarray, sup: np.ndarray, Q: np.ndarray,
            q_sup: np.ndarray, exact: FaissShards, k: int, singles: int, deletes: int) -> dict[str, Any]:
    ids = np.arange(len(X), dtype=np.int64)
    t = time.perf_counter()
    backend.add(X, y, ids, sup)
    insert_s = time.perf_counter() - t
    t = time.perf_counter()
    if hasattr(backend, "flush"):
        backend.flush()
    flush_s = time.perf_counter() - t
    backend.search(Q[:1], k, q_sup[0])  # warm up (loads the collection)
    times, found = [], []
    for i in range(singles):
        t = time.perf_counter()
        found.append(backend.search(Q[i:i + 1], k, q_sup[i])[0])
        times.append(time.perf_counter() - t)
    recall = float(np.mean([len(np.intersect1d(f, exact.search(Q[i:i + 1], k, q_sup[i])[0])) / k
                            for i, f in enumerate(found)]))
    t = time.perf_counter()
    for s in np.unique(q_sup):
        rows = q_sup == s
        backend.search(Q[rows], k, s)
    batched = len(Q) / (time.perf_counter() - t)
    rng = np.random.default_rng(1)
    del_times = []
    doomed_all = rng.choice(len(X), size=deletes * 100, replace=False)
    for j in range(deletes):
        doomed = ids[doomed_all[j * 100:(j + 1) * 100]]
        s = sup[doomed[0]]
        doomed = doomed[sup[doomed] == s]
        t = time.perf_counter()
        backend.remove(doomed, s)
        del_times.append(time.perf_counter() - t)
    after = backend.search(X[doomed[:1]], k, s)[0]
    row = {"insert_per_s": round(len(X) / insert_s, 1), "insert_s": round(insert_s, 2), "flush_and_index_s": round(flush_s, 2),
           "routed_query": {**percentiles(times), "single_queries": singles},
           "routed_queries_per_s_batched": round(batched, 1), "recall_at_10": round(recall, 4),
           "delete_100_ids": {**percentiles(del_times), "calls": deletes},
           "deleted_id_returned": bool(np.isin(after, doomed).any())}
    print(f"{len(X):>9,} {name:<24} {row}", flush=True)
    return row


def run(sizes: tuple[int, ...] = SIZES, *, dim: int = 128, k: int = 10, queries: int = 1000, singles: int = 200,
        deletes: int = 30, hnsw: bool = True, ef: int = 256, lite: bool = False,
        data_dir: str | None = None, server: LocalMilvusServer | None = None) -> dict[str, Any]:
    tree = shipped_tree("tiny-imagenet-200")
    gen = Clustered(tree, dim, seed=0)
    cut = tree.superclasses
    assert cut is not None
    out: dict[str, Any] = {"data": f"clustered {dim}-d data on the Tiny-ImageNet tree (200 classes, WordNet "
                                   "balanced:10)", "k": k, "queries": queries, "rows": []}
    with contextlib.ExitStack() as stack:
        if server is None:
            server = stack.enter_context(LocalMilvusServer(data_dir))
        out["milvus"] = {"server": "milvus 2.3.5 standalone (PyPI wheel), loopback relay", "uri": server.uri}
        for n in sizes:
            X, y = gen.draw(n, seed=n)
            sup = np.array([cut.assignment[c] for c in y], dtype=object)
            Q, qy = gen.draw(queries, seed=1)
            q_sup = np.array([cut.assignment[c] for c in qy], dtype=object)
            reference = _exact(X, y, sup, dim)
            row: dict[str, Any] = {"entries": n}
            row["faiss (exact shards)"] = measure("faiss (exact shards)", FaissShards(dim), X, y, sup, Q, q_sup,
                                                  reference, k, singles, deletes)
            variants = [("Milvus server, FLAT", dict(index="FLAT"))]
            if hnsw:
                variants.append((f"Milvus server, HNSW ef={ef}", dict(index="HNSW", ef_search=ef)))
            for name, kw in variants:
                mem = MilvusMemory(server.uri, "bench" + uuid.uuid4().hex[:8], dim=dim, **kw)
                try:
                    row[name] = measure(name, MilvusBackend(mem), X, y, sup, Q, q_sup, reference, k, singles,
                                        deletes)
                finally:
                    mem.drop()
            if lite:
                with tempfile.TemporaryDirectory() as tmp:
                    mem = MilvusMemory(str(Path(tmp) / "bench.db"), "bench", dim=dim)
                    row["Milvus Lite, FLAT"] = measure("Milvus Lite, FLAT", MilvusBackend(mem), X, y, sup, Q,
                                                       q_sup, reference, k, singles, deletes)
                    mem.close()
            faiss_row = row["faiss (exact shards)"]
            for name, r in row.items():
                if isinstance(r, dict) and name != "faiss (exact shards)":
                    r["p50_vs_faiss"] = round(r["routed_query"]["p50_ms"] / faiss_row["routed_query"]["p50_ms"], 1)
                    r["insert_vs_faiss"] = round(r["insert_per_s"] / faiss_row["insert_per_s"], 3)
            out["rows"].append(row)
    return out


def _exact(X: np.ndarray, y: np.ndarray, sup: np.ndarray, dim: int) -> FaissShards:
    shards = FaissShards(dim)
    shards.add(X, y, np.arange(len(X), dtype=np.int64), sup)
    return shards


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    ap.add_argument("--singles", type=int, default=200, help="single queries timed per backend")
    ap.add_argument("--no-hnsw", action="store_true", help="skip the Milvus HNSW variant")
    ap.add_argument("--ef", type=int, default=256, help="HNSW search breadth")
    ap.add_argument("--lite", action="store_true", help="also time Milvus Lite (slow)")
    ap.add_argument("--data-dir", help="Milvus server directory (default: a temporary one)")
    ap.add_argument("--write", action="store_true", help="write results/backend.json for custom sizes too")
    args = ap.parse_args(argv)
    out = run(tuple(args.sizes), singles=args.singles, hnsw=not args.no_hnsw, ef=args.ef, lite=args.lite,
              data_dir=args.data_dir)
    if args.write or tuple(args.sizes) == SIZES:
        print("wrote", write_result("backend", out))
    return out


if __name__ == "__main__":
    main()
