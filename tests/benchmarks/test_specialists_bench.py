"""The network-level benchmark on a small real Tiny-ImageNet subset: every row, and its invariants."""

import math
import os

import numpy as np
import pytest

pytestmark = [
    pytest.mark.data,
    pytest.mark.skipif(not os.environ.get("SUPERSUB_DATA"), reason="set SUPERSUB_DATA to Tiny-ImageNet"),
]

CUTS = ("wordnet balanced:10", "induced:10", "confusion:10", "confusion:8", "confusion:8 overlap 0.1")
SIZES = {"wordnet balanced:10": 10, "induced:10": 10, "confusion:10": 10, "confusion:8": 8,
         "confusion:8 overlap 0.1": 8}


QUICK = dict(quick=True, per_class=4, val_per_class=2, n_timing=16, size=64)  # 64 px: the invariants, fast


@pytest.fixture(scope="module")
def result():
    from benchmarks.specialists_bench import run

    return run(seeds=2, **QUICK)


def test_every_row_is_there(result):
    systems = {(r["cut"], r["system"]) for r in result["rows"]}
    for name in ("frozen kNN (k=10, softmax)", "frozen linear probe", "flat fine-tuned tail (1 epochs)",
                 "flat fine-tuned tail, same budget (2 epochs)"):
        assert ("flat", name) in systems
    for cut in CUTS:
        for routing in ("hard", "soft m=2", "soft m=3", "oracle"):
            assert (cut, f"int8 delta specialists (rank 16), {routing}") in systems
        assert any(c == cut and "+ memory, dev-best mix" in s for c, s in systems)
    for cut in CUTS:  # full copies on the WordNet and induced cuts only
        assert ((cut, "full specialist copies, soft m=2") in systems) == (cut in CUTS[:2])
    assert set(result["cuts"]) == set(CUTS)


def test_routing_invariants(result):
    for cut in CUTS:
        rows = [r for r in result["rows"] if r["cut"] == cut]
        assert len({r["router_accuracy"] for r in rows}) == 1  # one router per cut
        hard = next(r for r in rows if r["system"] == "generalist restricted to route, hard")
        oracle = next(r for r in rows if r["system"] == "int8 delta specialists (rank 16), oracle")
        if "overlap" not in cut:
            # hard routing answers inside the routed superclass; oracle inside the true one
            assert hard["superclass_accuracy"] == hard["router_accuracy"]
            assert oracle["superclass_accuracy"] == 1.0
        assert oracle["dev_top1"] is None  # oracle rows are never chosen on dev
    best = result["summary"]["best_routed"]
    assert "oracle" not in best["system"] and best["cut"] in CUTS


def test_storage_and_sizes(result):
    for row in result["rows"]:
        st = row.get("storage")
        if st and st["kind"] == "delta":
            assert 1 < st["tails"] <= st["published_bound_tails"]
            assert st["published_bound_tails"] == pytest.approx(0.2 * st["n_specialists"] + 1)
            assert st["networks"] < st["tails"]
        elif st:
            assert st["tails"] == 1 + st["n_specialists"]  # full copies: one tail each
    for cut, info in result["cuts"].items():
        assert sum(info["sizes"]) == 200 and len(info["sizes"]) == SIZES[cut]
        if cut.startswith("confusion"):
            assert max(info["sizes"]) <= math.ceil(1.5 * 200 / SIZES[cut])  # capped at 1.5x the mean
    assert result["cuts"]["confusion:8 overlap 0.1"]["overlap_classes"] > 0
    assert result["summary"]["targets"]["delta storage <= 0.2N+1 tails"] is True


def test_no_choice_depends_on_the_val_labels(result):
    """Shuffled val labels change the scores, and no choice: cuts, epochs, mixes and winners come from dev."""
    from benchmarks.specialists_bench import run

    shuffled = run(permute_val=7, **QUICK)
    assert shuffled["summary"]["selected"] == result["summary"]["selected"]
    assert [r["top1"] for r in shuffled["rows"]] != [r["top1"] for r in result["rows"]]
    assert {c: i["sizes"] for c, i in shuffled["cuts"].items()} == {c: i["sizes"] for c, i in result["cuts"].items()}


def test_a_dev_tie_goes_to_the_cheaper_system_whatever_the_order():
    from benchmarks.specialists_bench import select

    def row(cut, system, dev, tails=None, m=None, mix=None, ips=None):
        return {"cut": cut, "system": system, "dev_top1": dev, "storage_tails": tails, "m": m, "mix": mix,
                "images_per_s": ips}

    rows = [row("induced:10", "deltas, soft m=3", 0.6923, 1.36, 3, [0, 0.5]),
            row("confusion:8 overlap 0.1", "deltas, soft m=2", 0.6923, 1.29, 2, [0, 0.5]),
            row("confusion:8", "deltas, soft m=2", 0.6900, 1.20, 2, [0, 0])]
    for order in (rows, rows[::-1], rows[1:] + rows[:1]):
        assert select(order)["cut"] == "confusion:8 overlap 0.1"  # fewer stored tails wins the tie
    same_tails = [row("a", "x, soft m=3", 0.7, 1.3, 3), row("a", "x, soft m=2", 0.7, 1.3, 2)]
    assert select(same_tails)["system"] == "x, soft m=2" == select(same_tails[::-1])["system"]
    mixes = [row("a", "gen+mem", 0.7, 1.3, 2, [0.25, 0.5]), row("a", "mem", 0.7, 1.3, 2, [0, 0.5]),
             row("a", "plain", 0.7, 1.3, 2, [0, 0])]
    assert select(mixes)["system"] == "plain" == select(mixes[::-1])["system"]
    assert select([row("a", "slow", 0.7, 1.3, 2, ips=10.0), row("a", "fast", 0.7, 1.3, 2, ips=20.0)])["system"] == "fast"
    assert select([row("b", "y", 0.7), row("a", "y", 0.7)])["cut"] == "a"  # a full tie: by name
    assert select(rows + [row("flat", "better", 0.70)])["system"] == "better"  # dev accuracy comes first


def test_intervals_cross_superclass_errors_and_seeds(result):
    su = result["summary"]
    gap = su["routed_minus_best_flat_paired"]
    assert gap["difference"] == pytest.approx(su["routed_minus_best_flat"], abs=1e-4)
    assert gap["interval_95"][0] <= gap["difference"] <= gap["interval_95"][1] and gap["verdict"] in (
        "tie", "A better", "B better")
    for r in result["rows"]:
        if r["cut"] != "flat" and r.get("routing") != "oracle" and not r.get("tuning") and "restricted" not in r["system"]:
            assert r["against_best_flat"]["n"] == result["setup"]["val"]
    for cut in CUTS:
        share = result["cuts"][cut]["errors_across_superclasses"]
        assert 0 <= share["best flat"] <= 1 and 0 <= share["routed (dev-best of this cut)"] <= 1
    seeds = su["seeds"]
    assert seeds["seeds"] == [0, 1] and len(seeds["flat_top1"]) == len(seeds["routed_top1"]) == 2
    assert seeds["routed_top1"][0] == su["best_routed"]["top1"] and seeds["flat_top1"][0] == su["best_flat"]["top1"]
    assert seeds["difference_mean_sd"][0] == pytest.approx(
        np.mean(np.array(seeds["routed_top1"]) - np.array(seeds["flat_top1"])), abs=1e-4)
    setup = result["setup"]
    assert setup["cut"] == 200 and setup["dev"] == 400  # one and two images per class held out, disjoint
