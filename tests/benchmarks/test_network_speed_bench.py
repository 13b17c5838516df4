"""The network speed benchmark's paths: eager first (the baseline), OpenVINO bf16 only where the CPU runs it."""

from benchmarks.network_speed_bench import PATHS, _paths
from router import choose_path


def test_eager_is_the_baseline_and_bf16_needs_a_native_cpu():
    paths = _paths()
    assert paths[0] == ("eager torch bf16", "torch", "bf16")
    native = choose_path("auto", "bf16").precision == "bf16"
    assert (("OpenVINO bf16", "openvino", "bf16") in paths) == native
    assert len(paths) == len(PATHS) - (0 if native else 1)


def test_each_kind_of_cpu_writes_its_own_results_file():
    from benchmarks._common import cpu_kind, per_cpu_name

    amx = frozenset({"amx_bf16", "amx_int8", "avx512_bf16", "avx512_vnni"})
    epyc = frozenset({"avx512_bf16", "avx512_vnni", "avx_vnni"})
    older = frozenset({"avx2", "avx512_vnni"})
    assert [cpu_kind(f) for f in (amx, epyc, older)] == ["amx", "avx512_bf16", "no_bf16"]
    assert per_cpu_name("network_speed", amx) == "network_speed"
    assert per_cpu_name("network_speed", epyc) == "network_speed_avx512_bf16"
    assert per_cpu_name("network_speed", older) == "network_speed_no_bf16"
