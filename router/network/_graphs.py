"""Where the network-level model's graphs run: eager torch, ONNX Runtime or OpenVINO, and in which precision.

The network-level model runs three kinds of graph: the trunk (images to
activations), the generalist tail (activations to class logits) and each
specialist tail (activations to pooled features and logits over its
classes).  A :class:`NetworkPath` names where they run:

* ``torch``: eager torch, fp32, or bf16 autocast in channels-last layout (the
  path the networks are trained on);
* ``onnx``: the graph exported to ONNX once and run by ONNX Runtime, fp32;
* ``openvino``: the same graph run by OpenVINO, fp32, or bf16.  In bf16 the
  trunk keeps the backbone's measured fp32 prefix (for Lite0 the stem and the
  first two stages, as the embedder does: :mod:`memory.embedding`) and the
  tails run in bf16 throughout, as eager bf16 autocast runs them.

:func:`choose_path` turns the model's ``runtime`` and ``precision`` into a
path, from the CPU's flags.  Exported graphs are cached on disk under a hash
of their weights (``cache_root()/onnx/network``), so a model exports once per
machine.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from memory import InputError, cache_root
from memory.embedding import (OpenVinoFeatures, export_onnx, onnx_session, openvino_available, openvino_has_bf16,
                              usable_cores)
from memory.store import cpu_flags

__all__ = ["RUNTIMES", "NetworkPath", "choose_path", "graph_runner", "installed_runtimes", "module_digest"]

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "torch", "onnx", "openvino")
PRECISIONS = ("bf16", "fp32")
#: CPU flags of the matrix units that multiply bf16 in hardware.
BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@dataclass(frozen=True)
class NetworkPath:
    """A runtime and a numeric path.

    Attributes
    ----------
    runtime : {"torch", "onnx", "openvino"}
    precision : {"fp32", "bf16"}
    """

    runtime: str
    precision: str

    @property
    def name(self) -> str:
        """What the numbers depend on: ``"fp32"`` (every fp32 runtime agrees to about 1e-6), ``"bf16"``
        (eager autocast) or ``"bf16-openvino"``."""
        if self.precision == "fp32":
            return "fp32"
        return "bf16" if self.runtime == "torch" else "bf16-openvino"

    def __str__(self) -> str:
        return f"{self.runtime} {self.precision}"


def installed_runtimes() -> frozenset[str]:
    """The fast runtimes that import here: a subset of ``{"onnx", "openvino"}``."""
    out = {"openvino"} if openvino_available() else set()
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        pass
    else:
        out.add("onnx")
    return frozenset(out)


def choose_path(runtime: str, precision: str, *, flags: frozenset[str] | None = None,
                installed: frozenset[str] | None = None, openvino_bf16: bool | None = None) -> NetworkPath:
    """The path a model with this ``runtime`` and ``precision`` runs on, on a CPU with these flags.

    ``"auto"`` takes OpenVINO where it is installed: in bf16 when the model's
    precision is bf16 and the CPU multiplies bf16 in hardware (``amx_bf16``
    or ``avx512_bf16`` in its flags, and OpenVINO's plugin reports ``BF16``),
    else in fp32.  Without OpenVINO it takes ONNX Runtime in fp32 where that
    is installed, else eager torch in the model's precision.

    Parameters
    ----------
    runtime : {"auto", "torch", "onnx", "openvino"}
    precision : {"bf16", "fp32"}
    flags : frozenset of str, optional
        The CPU's flags (default: this CPU's, from ``/proc/cpuinfo``).
    installed : frozenset of str, optional
        The fast runtimes available (default: :func:`installed_runtimes`).
    openvino_bf16 : bool, optional
        Whether OpenVINO's CPU plugin runs bf16 natively (default: ask it).

    Raises
    ------
    InputError
        An unknown runtime or precision, a runtime that is not installed, or
        bf16 asked of a runtime or CPU that cannot run it.
    """
    if runtime not in RUNTIMES:
        raise InputError(f"runtime must be one of {', '.join(map(repr, RUNTIMES))}, got {runtime!r}")
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    flags = cpu_flags() if flags is None else flags
    installed = installed_runtimes() if installed is None else installed
    native = any(f in flags for f in BF16_FLAGS)
    if native and "openvino" in installed and openvino_bf16 is None:
        openvino_bf16 = openvino_has_bf16()
    ov_bf16 = native and bool(openvino_bf16)
    if runtime == "torch":
        return NetworkPath("torch", precision)
    if runtime in ("onnx", "openvino") and runtime not in installed:
        package = "ONNX Runtime" if runtime == "onnx" else "OpenVINO"
        raise InputError(f"runtime={runtime!r} needs {package}: pip install 'supersub[fast]', or use runtime='auto'")
    if runtime == "onnx":
        if precision == "bf16":
            raise InputError("ONNX Runtime runs the network in fp32 only; use precision='fp32', "
                             "or runtime='openvino' or 'torch' for bf16")
        return NetworkPath("onnx", "fp32")
    if runtime == "openvino":
        if precision == "bf16" and not ov_bf16:
            raise InputError("this CPU has no native bf16 (AMX or AVX-512 BF16) for OpenVINO; "
                             "use precision='fp32', or runtime='auto'")
        return NetworkPath("openvino", precision)
    if "openvino" in installed:
        return NetworkPath("openvino", "bf16" if precision == "bf16" and ov_bf16 else "fp32")
    if "onnx" in installed:
        return NetworkPath("onnx", "fp32")
    return NetworkPath("torch", precision)


def module_digest(module: torch.nn.Module, *extra: Any) -> str:
    """A sha256 of a module's class, state (names, shapes, bytes) and ``extra``: names an exported graph."""
    h = hashlib.sha256(type(module).__qualname__.encode())
    for name, t in module.state_dict().items():
        t = t.detach().contiguous().cpu()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.numpy().tobytes())
    for e in extra:
        h.update(repr(e).encode())
    return h.hexdigest()


def graph_runner(module: torch.nn.Module, example: torch.Tensor, path: NetworkPath, *,
                 bf16_from: str | None = None, static_batch: bool = True, batch_size: int = 256,
                 cache_dir: str | os.PathLike[str] | None = None,
                 pixels: tuple[Sequence[float], Sequence[float]] | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """A function from float inputs (n, ...) to the module's single output, float32, on a fast runtime.

    The module is exported to ONNX (once: the file is named by
    :func:`module_digest`) and run by ONNX Runtime or OpenVINO; the eager path
    runs the modules themselves.

    Parameters
    ----------
    module : torch.nn.Module
        One input, one output; used in eval mode, never modified.
    example : torch.Tensor
        An input of the right shape (for the export).
    path : NetworkPath
        On ``"onnx"`` or ``"openvino"``.
    bf16_from : str, optional
        OpenVINO bf16: node-name prefix of the first layer run in bf16 (the
        layers before it run in fp32); ``None`` runs the whole graph in bf16.
    static_batch : bool, default True
        OpenVINO: compile per batch size (for batches of one size).
    batch_size : int, default 256
        Rows per call of the runtime.
    cache_dir : path, optional
        Where exported graphs are kept (default ``cache_root()/onnx/network``).
    pixels : (mean, std), optional
        OpenVINO: take 8-bit images (n, height, width, 3) and normalise them in
        the graph (:class:`memory.embedding.OpenVinoFeatures`); the module
        takes the normalised images (n, 3, height, width).
    """
    if path.runtime not in ("onnx", "openvino"):
        raise InputError(f"graph_runner runs exported graphs on ONNX Runtime or OpenVINO, not {path.runtime!r}")
    if pixels is not None and path.runtime != "openvino":
        raise InputError("only OpenVINO takes 8-bit pixels; normalise them first on ONNX Runtime")
    module = module.eval()
    where = Path(cache_dir) if cache_dir else cache_root() / "onnx" / "network"
    onnx = where / f"{module_digest(module, tuple(example.shape[1:]))[:32]}.onnx"
    if not onnx.is_file():
        export_onnx(module, example, onnx, input_name="x", output_name="y")
        log.info("exported %s to %s", type(module).__name__, onnx)
    run: Callable[[np.ndarray], Any]
    if path.runtime == "onnx":
        session = onnx_session(onnx, usable_cores())
        run = lambda x: session.run(None, {"x": x})[0]  # noqa: E731
    else:
        run = OpenVinoFeatures(onnx, precision=path.precision, bf16_from=bf16_from, threads=usable_cores(),
                               static_batch=static_batch, pixels=pixels)

    def batched(x: np.ndarray) -> np.ndarray:
        if pixels is not None and np.asarray(x).dtype != np.uint8:  # a float cast to 8 bits would be garbage
            raise InputError(f"this graph takes 8-bit pixels (n, height, width, 3), got {np.asarray(x).dtype}")
        x = np.ascontiguousarray(x, dtype=np.uint8 if pixels is not None else np.float32)
        if len(x) <= batch_size:
            return np.asarray(run(x), dtype=np.float32)
        return np.concatenate([np.asarray(run(x[i:i + batch_size]), dtype=np.float32)
                               for i in range(0, len(x), batch_size)])

    return batched
