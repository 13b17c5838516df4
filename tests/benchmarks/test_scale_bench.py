from benchmarks.scale_bench import TARGET_RECALL, crossover, growth, ivf_lists, run
from benchmarks.tables import crossover_table, scale_table


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


def test_ivf_lists_follow_four_square_roots():
    assert [ivf_lists(n) for n in (100_000, 300_000, 1_000_000, 5_000_000)] == [1024, 2048, 4096, 8192]


def test_crossover_stops_each_sweep_at_the_first_setting_that_reaches_the_target():
    out = crossover((3000,), dim=32, queries=100, families=("IVF,Flat", "HNSW16"))
    row = out["rows"][0]
    assert set(row["approximate"]) == {"IVF256,Flat", "HNSW16"}
    for spec, a in row["approximate"].items():
        points = a["points"]
        # IVF probing all 256 lists is exhaustive, so the target is always reached
        assert a["at_target"] is points[-1] and points[-1]["recall_at_10"] >= TARGET_RECALL, spec
        assert all(p["recall_at_10"] < TARGET_RECALL for p in points[:-1]), spec
        assert a["speedup_at_target"] == round(points[-1]["queries_per_s"] / row["exact"]["queries_per_s"], 2)
    wins = any(a["speedup_at_target"] > 1 for a in row["approximate"].values())
    assert out["first_size_where_approximate_wins"] == (3000 if wins else None)
    table = crossover_table(out)
    assert f"| 3,000 | {row['exact']['queries_per_s']:,.0f} | `IVF256,Flat` | nprobe " in table
