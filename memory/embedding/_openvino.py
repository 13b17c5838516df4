"""The OpenVINO runtime of the embedder: fp32, or bf16 on the matrix units behind an fp32 prefix.

The graph is the ONNX export the ``"onnx"`` runtime uses, read by OpenVINO's
runtime (no model conversion, no tracing).  Two numeric paths:

* ``"fp32"``: the whole graph in fp32;
* ``"bf16"``: the graph split at the backbone's ``bf16_from`` layer.  The
  prefix (for EfficientNet-Lite0 the stem and the first two blocks) runs in
  fp32, the rest with bf16 weights and activations and fp32 accumulation.
  Lite0's first block alone causes about half the bf16 error: its linear
  projection cancels large terms.  Measured on 1,024 val images at 128 px on a
  2-core AMX CPU (mean 1 - cosine to the fp32 features, images/s, OpenVINO
  fp32 787 img/s): all bf16 1.2e-3 at 1,914; fp32 through block 0 5.3e-4 at
  1,164; through block 1 3.6e-4 at 1,101.  Keeping the head convolution in
  fp32 as well changed nothing.  The plan takes the last: the lowest error at
  2.4x ONNX Runtime fp32.

bf16 is used only on CPUs whose OpenVINO plugin reports native ``BF16``
(AVX-512 BF16 or AMX); elsewhere OpenVINO would emulate it, slower than fp32.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import InputError

__all__ = ["OpenVinoFeatures", "openvino_available", "openvino_has_bf16"]

#: Batch sizes kept compiled (the batch size and a last, shorter batch are the usual two).
_SHAPES_KEPT = 4


def openvino_available() -> bool:
    """Whether the OpenVINO runtime imports."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


@lru_cache(maxsize=1)
def openvino_has_bf16() -> bool:
    """Whether OpenVINO's CPU plugin runs bf16 natively on this machine (asked once per process)."""
    if not openvino_available():
        return False
    import openvino as ov

    try:
        caps = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:  # no CPU plugin
        return False
    return "BF16" in caps


def _cut_tensor(model: Any, bf16_from: str) -> Any:
    """The output that feeds the first convolution named under ``bf16_from``."""
    for op in model.get_ordered_ops():
        if op.get_type_name() in ("Convolution", "GroupConvolution") and op.get_friendly_name().startswith(bf16_from):
            return op.input(0).get_source_output()
    raise InputError(f"the exported graph has no convolution named {bf16_from}*; "
                     "the backbone's bf16_from does not match its layers")


def _split(model: Any, bf16_from: str) -> tuple[Any, Any]:
    """(prefix, suffix) copies of ``model``: the prefix ends at the cut tensor, the suffix starts from it."""
    import openvino as ov

    head = model.clone()
    prefix = ov.Model([_cut_tensor(head, bf16_from)], head.get_parameters(), "prefix")

    tail = model.clone()
    cut = _cut_tensor(tail, bf16_from)
    inp = ov.opset13.parameter(cut.get_partial_shape(), cut.get_element_type(), name="cut")
    for target in list(cut.get_target_inputs()):
        target.replace_source_output(inp.output(0))
    try:
        suffix = ov.Model(tail.get_results(), [inp], "suffix")
    except RuntimeError as exc:  # a later layer still reads the input, not only the cut
        raise InputError(f"the graph does not split cleanly at {bf16_from}: {exc}") from None
    return prefix, suffix


def _take_pixels(model: Any, mean: Sequence[float], std: Sequence[float]) -> Any:
    """``model`` taking 8-bit NHWC images: converted, normalised and transposed to its NCHW input in the graph."""
    import openvino as ov
    from openvino.preprocess import PrePostProcessor

    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    ppp.input().preprocess().convert_element_type(ov.Type.f32).mean(
        [255.0 * m for m in mean]).scale([255.0 * s for s in std])
    return ppp.build()


class OpenVinoFeatures:
    """The first output of an exported graph (features of preprocessed images, say) through OpenVINO.

    Parameters
    ----------
    onnx_path : path
        An exported graph with one input, batch first.
    precision : {"fp32", "bf16"}
    bf16_from : str, optional
        Node-name prefix of the first layer run in bf16: the layers before it
        run in fp32.  ``None`` with ``"bf16"`` runs the whole graph in bf16.
    threads : int
    static_batch : bool, default True
        Compile a copy per batch size (about 20% faster, one compilation per
        new size); ``False`` compiles once for any batch size, for callers
        whose batches vary (the queries routed to one specialist, say).
    pixels : (mean, std), optional
        Take 8-bit images (n, height, width, 3), as :meth:`Preprocess.pixels`
        gives them, instead of the graph's float input (n, 3, height, width):
        OpenVINO scales them by ``1/255``, subtracts ``mean`` and divides by
        ``std`` (per channel) inside the graph, where its kernels do it in a
        fraction of the time numpy or torch take.  The input then differs from
        :meth:`Preprocess.batch`'s by at most a rounding of float32.
    """

    def __init__(self, onnx_path: str | Path, *, precision: str, bf16_from: str | None, threads: int,
                 static_batch: bool = True,
                 pixels: tuple[Sequence[float], Sequence[float]] | None = None) -> None:
        import openvino as ov

        if precision not in ("fp32", "bf16"):
            raise InputError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
        self.precision = precision
        self._core = ov.Core()
        self._model = self._core.read_model(str(onnx_path))  # read once; each batch size compiles a copy
        self._bf16_from, self._threads, self._static = bf16_from, int(threads), bool(static_batch)
        self.pixels = None if pixels is None else (tuple(map(float, pixels[0])), tuple(map(float, pixels[1])))
        self._requests: OrderedDict[int, list[Any]] = OrderedDict()  # batch size (0: any) -> one request per stage
        self._lock = threading.Lock()
        if precision == "bf16" and bf16_from:
            _split(self._model, bf16_from)  # a plan that does not fit the graph fails here

    def _for_batch(self, n: int) -> list[Any]:
        """Requests compiled for batches of exactly ``n`` (any size without static batches): static
        shapes let OpenVINO fold the padding arithmetic and pick its kernels once."""
        n = n if self._static else 0
        if n in self._requests:
            self._requests.move_to_end(n)
            return self._requests[n]
        if self.precision == "fp32":
            models = [(self._model.clone(), "f32")]
        elif not self._bf16_from:
            models = [(self._model.clone(), "bf16")]
        else:
            prefix, suffix = _split(self._model, self._bf16_from)
            models = [(prefix, "f32"), (suffix, "bf16")]
        if self.pixels is not None:
            models[0] = (_take_pixels(models[0][0], *self.pixels), models[0][1])
        requests = []
        for model, prec in models:
            if n:
                shape = model.input(0).get_partial_shape()
                shape[0] = n
                model.reshape({model.input(0): shape})
            compiled = self._core.compile_model(model, "CPU", {
                "INFERENCE_PRECISION_HINT": prec, "INFERENCE_NUM_THREADS": self._threads,
                "PERFORMANCE_HINT": "LATENCY",
            })
            requests.append(compiled.create_infer_request())
        self._requests[n] = requests
        while len(self._requests) > _SHAPES_KEPT:
            self._requests.popitem(last=False)
        return requests

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``x`` of shape (n, ...), float32 (uint8 (n, height, width, 3) with ``pixels``) -> the graph's first
        output for it, float32."""
        with self._lock:
            out: Any = x
            for req in self._for_batch(len(x)):
                out = req.infer({0: out})[0]
            return np.array(out, dtype=np.float32, copy=True)
