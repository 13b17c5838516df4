"""The network-level benchmark on a small real Tiny-ImageNet subset: every row, and its invariants."""

import math
import os

import pytest

pytestmark = [
    pytest.mark.data,
    pytest.mark.skipif(not os.environ.get("SUPERSUB_DATA"), reason="set SUPERSUB_DATA to Tiny-ImageNet"),
]

CUTS = ("wordnet balanced:10", "induced:10", "confusion:10", "confusion:8", "confusion:8 overlap 0.1")
SIZES = {"wordnet balanced:10": 10, "induced:10": 10, "confusion:10": 10, "confusion:8": 8,
         "confusion:8 overlap 0.1": 8}


@pytest.fixture(scope="module")
def result():
    from benchmarks.specialists_bench import run

    return run(quick=True, per_class=4, val_per_class=2, n_timing=16, size=64)  # 64 px: the invariants, fast


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
