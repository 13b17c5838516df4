"""Choosing where the network model runs, from the CPU's flags; exported graphs against eager torch."""

import numpy as np
import pytest
import torch

from memory import InputError, tiny_imagenet
from router import NetworkPath, choose_path, split_backbone
from router.network import graph_runner

#: /proc/cpuinfo flags of the two CPU kinds this library is measured on (matrix-unit flags only).
AMX = frozenset({"avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8", "amx_tile"})
EPYC = frozenset({"avx512f", "avx512_bf16", "avx512_vnni"})  # AVX-512 BF16 and VNNI, no AMX
OLD = frozenset({"avx2", "fma"})
BOTH = frozenset({"onnx", "openvino"})


@pytest.mark.parametrize("flags", [AMX, EPYC], ids=["amx", "avx512-bf16"])
def test_cpus_with_native_bf16_run_openvino_bf16(flags):
    assert choose_path("auto", "bf16", flags=flags, installed=BOTH, openvino_bf16=True) == NetworkPath("openvino", "bf16")
    assert choose_path("openvino", "bf16", flags=flags, installed=BOTH, openvino_bf16=True).name == "bf16-openvino"
    assert choose_path("auto", "fp32", flags=flags, installed=BOTH, openvino_bf16=True) == NetworkPath("openvino", "fp32")
    # the plugin must agree with the flags
    assert choose_path("auto", "bf16", flags=flags, installed=BOTH, openvino_bf16=False).precision == "fp32"


def test_other_cpus_and_installs_fall_back():
    assert choose_path("auto", "bf16", flags=OLD, installed=BOTH, openvino_bf16=True) == NetworkPath("openvino", "fp32")
    assert choose_path("auto", "bf16", flags=AMX, installed=frozenset({"onnx"})) == NetworkPath("onnx", "fp32")
    assert choose_path("auto", "bf16", flags=AMX, installed=frozenset()) == NetworkPath("torch", "bf16")
    assert choose_path("torch", "fp32", flags=AMX, installed=BOTH).name == "fp32"
    assert choose_path("torch", "bf16", flags=OLD, installed=BOTH).name == "bf16"  # asked for: eager autocast


@pytest.mark.parametrize("kwargs, message", [
    (dict(runtime="onnx", precision="bf16"), "fp32 only"),
    (dict(runtime="openvino", precision="bf16", flags=OLD), "no native bf16"),
    (dict(runtime="openvino", precision="fp32", installed=frozenset({"onnx"})), "needs OpenVINO"),
    (dict(runtime="onnx", precision="fp32", installed=frozenset()), "needs ONNX Runtime"),
    (dict(runtime="tensorrt", precision="fp32"), "runtime must be one of"),
    (dict(runtime="auto", precision="fp16"), "precision must be one of"),
])
def test_impossible_paths_are_refused(kwargs, message):
    kwargs = {"flags": AMX, "installed": BOTH, "openvino_bf16": True, **kwargs}
    with pytest.raises(InputError, match=message):
        choose_path(**kwargs)


def test_this_cpu_gets_the_path_its_flags_choose():
    from memory.embedding import openvino_has_bf16
    from memory.store import cpu_flags

    native = bool({"amx_bf16", "avx512_bf16"} & cpu_flags()) and openvino_has_bf16()
    assert choose_path("auto", "bf16") == NetworkPath("openvino", "bf16" if native else "fp32")  # OpenVINO is a test dependency


def _cosines(a, b):
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_trunk_on_every_runtime_matches_eager(lite0_64, tiny_layout):
    """fp32 runtimes agree with eager fp32 to 1e-5 of the largest activation; OpenVINO bf16, which keeps
    Lite0's stem and first two stages in fp32, is closer to it than eager bf16 autocast."""
    from memory import Embedder

    split = split_backbone(lite0_64)
    x = Embedder(lite0_64, runtime="torch", progress=False).preprocess(tiny_imagenet("val", tiny_layout["folder"]).paths)
    ref = split.trunk_fn(NetworkPath("torch", "fp32"))(x)
    for runtime in ("onnx", "openvino"):
        out = split.trunk_fn(NetworkPath(runtime, "fp32"))(x)
        assert out.shape == ref.shape and np.abs(out - ref).max() <= 1e-5 * np.abs(ref).max()
    if choose_path("auto", "bf16").precision == "bf16":
        ov = _cosines(ref, split.trunk_fn(NetworkPath("openvino", "bf16"))(x))
        eager = _cosines(ref, split.trunk_fn(NetworkPath("torch", "bf16"))(x))
        assert ov.min() >= 0.999 and ov.mean() >= eager.mean()


def test_the_trunk_takes_pixels_on_openvino_and_nowhere_else(lite0_64, tiny_layout):
    """8-bit pixels normalised in the OpenVINO graph give the trunk of the normalised images."""
    from memory import Embedder
    from router import run_trunk_on_images

    split = split_backbone(lite0_64)
    paths = tiny_imagenet("val", tiny_layout["folder"]).paths
    emb = Embedder(lite0_64, runtime="torch", progress=False)
    x, pixels = emb.preprocess(paths), emb.preprocess_pixels(paths)
    ref = split.trunk_fn(NetworkPath("openvino", "fp32"))(x)
    out = split.trunk_fn(NetworkPath("openvino", "fp32"), pixels=True)(pixels)
    assert np.abs(out - ref).max() <= 1e-5 * np.abs(ref).max()
    # the images' own path: pixels on OpenVINO, normalised input elsewhere
    for runtime in ("openvino", "onnx"):
        acts = run_trunk_on_images(split, paths, runtime=runtime, precision="fp32")
        assert np.abs(acts.astype(np.float32) - ref).max() <= 1e-2 * np.abs(ref).max()  # float16 storage
    with pytest.raises(InputError, match="takes 8-bit pixels"):  # normalised floats are not cast to garbage
        split.trunk_fn(NetworkPath("openvino", "fp32"), pixels=True)(x)
    with pytest.raises(InputError, match="eager torch takes normalised images"):
        split.trunk_fn(NetworkPath("torch", "fp32"), pixels=True)
    with pytest.raises(InputError, match="only OpenVINO takes 8-bit pixels"):
        split.trunk_fn(NetworkPath("onnx", "fp32"), pixels=True)


def test_graph_runner_batches_and_refuses_eager(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.Flatten())
    x = np.random.default_rng(0).normal(size=(70, 3, 2, 2)).astype(np.float32)
    with torch.inference_mode():
        ref = net(torch.from_numpy(x)).numpy()
    for runtime in ("onnx", "openvino"):
        run = graph_runner(net, torch.zeros(2, 3, 2, 2), NetworkPath(runtime, "fp32"), batch_size=32,
                           cache_dir=tmp_path)
        assert np.allclose(run(x), ref, atol=1e-5)
    assert len(list(tmp_path.glob("*.onnx"))) == 1  # exported once, named by its weights
    with pytest.raises(InputError, match="ONNX Runtime or OpenVINO"):
        graph_runner(net, torch.zeros(2, 3, 2, 2), NetworkPath("torch", "fp32"))
