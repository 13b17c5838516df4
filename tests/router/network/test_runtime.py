"""The network model on ONNX Runtime and OpenVINO against eager torch, on real images."""

from contextlib import contextmanager

import numpy as np
import pytest

from hierarchy import shipped_tree
from memory import InputError, tiny_imagenet
from router import NetworkTwoStage, choose_path

OPTS = dict(size=64, crop_pct=1.0, epochs=2, specialist_epochs=1, rank=4, k=3, progress=False)


@pytest.fixture(scope="module")
def model_and_val(tiny_layout):
    train = tiny_imagenet("train", tiny_layout["folder"])
    val = tiny_imagenet("val", tiny_layout["folder"])
    return NetworkTwoStage(shipped_tree("tiny-imagenet-200"), runtime="torch", precision="fp32", **OPTS).fit(train), val


@contextmanager
def _on(model, runtime, precision):
    before = model.get_params()
    model.set_params(runtime=runtime, precision=precision)
    try:
        yield model
    finally:
        model.set_params(runtime=before["runtime"], precision=before["precision"])


def test_fp32_runtimes_compute_what_eager_torch_computes(model_and_val):
    """Bound: probabilities within 1e-4 and specialist features within 1e-4 of their largest value."""
    model, val = model_and_val
    acts = model.activations(val)
    eager, pred, fp = model.predict_proba(val), list(model.predict(val)), model.fingerprint
    outputs = [model.specialist_outputs(s, acts) for s in range(len(model.groups_))]
    for runtime in ("onnx", "openvino"):
        with _on(model, runtime, "fp32") as fast:
            assert np.abs(fast.activations(val) - acts).max() <= 1e-5 * np.abs(acts).max()
            assert np.abs(fast.predict_proba(val) - eager).max() <= 1e-4
            assert list(fast.predict(val)) == pred
            for s, (f0, z0) in enumerate(outputs):
                f1, z1 = fast.specialist_outputs(s, acts)
                assert np.abs(f1 - f0).max() <= 1e-4 * np.abs(f0).max() and np.abs(z1 - z0).max() <= 1e-3
            assert fast.fingerprint == fp  # every fp32 path is one numeric path


def test_bf16_path_is_named_in_the_fingerprint(model_and_val):
    model, val = model_and_val
    fp, eager = model.fingerprint, model.predict_proba(val)
    assert fp.endswith("trunk<blocks.6") and model.numeric_path == "fp32"
    with _on(model, "torch", "bf16") as m:
        assert m.fingerprint == fp + "+bf16"
    if choose_path("auto", "bf16").precision != "bf16":
        pytest.skip("this CPU has no native bf16")
    with _on(model, "openvino", "bf16") as fast:
        assert fast.fingerprint == fp + "+bf16-openvino"
        p = fast.predict_proba(val)
    assert np.allclose(p.sum(1), 1) and np.abs(p - eager).max() <= 0.05


def test_saved_runtime_round_trips_and_bad_runtime_is_refused(model_and_val, tmp_path):
    from router import load_classifier

    model, val = model_and_val
    with _on(model, "onnx", "fp32") as fast:
        fast.save(tmp_path / "m")
        p = fast.predict_proba(val)
    back = load_classifier(tmp_path / "m")
    assert back.runtime == "onnx" and back.numeric_path == "fp32"
    assert np.array_equal(back.predict_proba(val), p)
    with pytest.raises(InputError, match="runtime must be one of"):
        NetworkTwoStage(shipped_tree("tiny-imagenet-200"), runtime="tensorrt").check_params()
