from benchmarks.scale_bench import growth, run
from benchmarks.tables import scale_table


def test_scale_fast_subset():
    out = run((3000, 6000), dim=32, queries=100, singles=20, indexes=("IVF16,Flat", "IVF16,SQ8"), nprobe=16)
    assert [r["entries"] for r in out["rows"]] == [3000, 6000]
    for row in out["rows"]:
        # probing all 16 lists is exhaustive: the IVF index must equal exact search
        assert row["indexes"]["IVF16,Flat"]["recall_at_10"] == 1.0
        # with every list probed, SQ8 loses only what its 8-bit codes lose: 0.017-0.023 measured here
        assert row["indexes"]["IVF16,SQ8"]["recall_at_10"] >= 0.97
        for system in ("flat", "routed"):
            assert row[system]["p99_ms"] >= row[system]["p50_ms"] > 0
            assert row[system]["fp32_scoring"]["p99_ms"] >= row[system]["fp32_scoring"]["p50_ms"] > 0
            assert row[system]["identical_predictions"] is True
        assert 0 < row["routed"]["router_accuracy"] <= 1
    assert set(out["growth_exponents"]) >= {"flat_p50", "routed_p50", "flat_rss"}
    table = scale_table(out)
    assert "| 6,000 | `IVF16,SQ8` nprobe 16 |" in table
    assert f"Exact scoring with the `{out['scoring']}` pass against fp32 only" in table


def test_growth_exponent_recovers_a_power_law():
    rows = [{"entries": n, "v": 3.0 * n**1.5} for n in (1e3, 1e4, 1e5)]
    assert growth(rows, lambda r: r["v"]) == 1.5
    assert growth(rows[:1], lambda r: r["v"]) is None
