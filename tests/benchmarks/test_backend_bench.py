from benchmarks.backend_bench import run
from benchmarks.tables import backend_table


def test_backend_bench_fast_subset(milvus_server):
    out = run((3000,), dim=16, queries=60, singles=20, deletes=3, ef=128, lite=True, server=milvus_server)
    row = out["rows"][0]
    assert row["entries"] == 3000
    for name in ("faiss (exact shards)", "Milvus server, FLAT", "Milvus Lite, FLAT"):
        assert row[name]["recall_at_10"] == 1.0, name  # exact search on every backend
    for name, r in row.items():
        if isinstance(r, dict):
            assert r["deleted_id_returned"] is False, name
            assert r["routed_query"]["p99_ms"] >= r["routed_query"]["p50_ms"] > 0
    assert row["Milvus server, HNSW ef=128"]["recall_at_10"] >= 0.99  # the README's HNSW contract
    assert "| 3,000 | Milvus server, FLAT |" in backend_table(out)
