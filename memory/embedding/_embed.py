"""Turning images into L2-normalised embeddings, with fast CPU paths.

Three runtimes:

* ``"torch"``: eager PyTorch, fp32;
* ``"onnx"``: the model exported once to ONNX (cached on disk) and run by
  ONNX Runtime in fp32, several times faster on a CPU;
* ``"openvino"``: the same graph run by OpenVINO, in fp32 or in bf16 on the
  matrix units behind an fp32 prefix (:mod:`memory.embedding._openvino`).

Two numeric paths, ``precision="fp32"`` and ``"bf16"``.  ``"auto"`` takes
``$SUPERSUB_EMBED_PRECISION`` when set, else bf16 where it is measured to keep
the features within cosine 0.999 of fp32 (the backbone has a ``bf16_from``
plan) and the CPU runs bf16 natively, else fp32.  ``runtime="auto"`` then
picks OpenVINO for bf16, ONNX Runtime for fp32, and eager torch when neither
is installed.

fp32 paths agree to about 1e-6 and share one cache; :attr:`Embedder.fingerprint`
adds the numeric path for the others, so embeddings of different paths are
never mixed in a cache.  :meth:`Embedder.check_fast_path` measures the
difference from eager torch on real input.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ._backbones import Backbone
from ._onnx import export_onnx, onnx_session, usable_cores
from .._progress import Progress
from .._errors import InputError
from .._validation import env_precision

__all__ = ["EMBED_PRECISION_ENV", "Embedder", "cache_root", "fill_batches"]

log = logging.getLogger(__name__)

#: Overrides ``precision="auto"``: ``fp32`` or ``bf16``.
EMBED_PRECISION_ENV = "SUPERSUB_EMBED_PRECISION"
_RUNTIMES = ("auto", "onnx", "openvino", "torch")
_PRECISIONS = ("auto", "fp32", "bf16")


def cache_root() -> Path:
    """``$SUPERSUB_CACHE``, else ``~/.cache/supersub``."""
    env = os.environ.get("SUPERSUB_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "supersub"


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def prefetched(batches: Iterable[Any], load: Callable[[Any], np.ndarray]) -> Iterator[np.ndarray]:
    """``load(batch)`` for each batch, decoding the next batch in a thread while the caller works."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        it = iter(batches)
        first = next(it, None)
        pending = pool.submit(load, first) if first is not None else None
        while pending is not None:
            x = pending.result()
            nxt = next(it, None)
            pending = pool.submit(load, nxt) if nxt is not None else None
            yield x


def fill_batches(out: np.ndarray, batches: Iterable[Any], load: Callable[[Any], np.ndarray],
                 compute: Callable[[np.ndarray], np.ndarray], *, desc: str, progress: bool) -> int:
    """Write ``compute(load(batch))`` for each batch into consecutive rows of ``out``; returns the rows written.

    Loading (decoding) the next batch overlaps ``compute`` on the current one;
    ``progress`` shows a bar over ``len(out)`` images on stderr (lines in a log: :class:`Progress`).
    """
    pos = 0
    with Progress(len(out), desc, "image", enabled=progress) as bar:
        for x in prefetched(batches, load):
            y = compute(x)
            out[pos:pos + len(y)] = y
            pos += len(y)
            bar.update(len(y))
    return pos


class Embedder:
    """Batched, deterministic image embedding with a backbone.

    Parameters
    ----------
    backbone : Backbone
    runtime : {"auto", "onnx", "openvino", "torch"}, default "auto"
    precision : {"auto", "fp32", "bf16"}, default "auto"
        The numeric path (see the module notes); bf16 runs on OpenVINO.
    threads : int, optional
        CPU threads for inference; defaults to the number of usable cores.
    batch_size : int, default 64
    progress : bool, default True
        Show a progress bar on stderr.
    cache_dir : path, optional
        Where exported ONNX graphs are kept; defaults to ``cache_root()/onnx``.
    """

    def __init__(
        self,
        backbone: Backbone,
        *,
        runtime: str = "auto",
        precision: str = "auto",
        threads: int | None = None,
        batch_size: int = 64,
        progress: bool = True,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if runtime not in _RUNTIMES:
            raise InputError(f"runtime must be one of {', '.join(map(repr, _RUNTIMES))}, got {runtime!r}")
        if precision not in _PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(map(repr, _PRECISIONS))}, got {precision!r}")
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        self.backbone = backbone
        if threads is None:
            threads = usable_cores()
        if threads < 1:
            raise InputError(f"threads must be >= 1, got {threads}")
        self.threads = int(threads)
        self.batch_size = batch_size
        self.progress = progress
        self.cache_dir = Path(cache_dir) if cache_dir else cache_root() / "onnx"
        self._session: Any = None
        self._openvino: dict[tuple[str, bool], Any] = {}
        self.precision = self._pick_precision(precision, runtime)
        self.runtime = self._pick(runtime)
        self.transform = backbone.preprocess.transform()

    # ----------------------------------------------------------- runtimes
    def _pick_precision(self, precision: str, runtime: str) -> str:
        from ._openvino import openvino_available, openvino_has_bf16

        if precision == "auto":
            env = env_precision(EMBED_PRECISION_ENV)
            if env:
                precision = env
            elif (runtime in ("auto", "openvino") and self.backbone.spec.bf16_from
                  and openvino_has_bf16()):
                return "bf16"
            else:
                return "fp32"
        if precision == "fp32":
            return "fp32"
        if runtime not in ("auto", "openvino"):
            raise InputError(f"precision='bf16' runs on OpenVINO, not runtime={runtime!r}; "
                             "use runtime='openvino' or 'auto'")
        if not self.backbone.spec.bf16_from:
            raise InputError(f"backbone {self.backbone.name} has no measured bf16 plan (bf16_from); "
                             "use precision='fp32'")
        if not openvino_available():
            raise InputError("precision='bf16' needs OpenVINO: pip install 'supersub[fast]'")
        if not openvino_has_bf16():
            raise InputError("this CPU has no native bf16 (AVX-512 BF16 or AMX); use precision='fp32'")
        return "bf16"

    @property
    def numeric_path(self) -> str:
        """``"fp32"``, or ``"bf16>"`` and the first bf16 layer."""
        if self.precision == "fp32":
            return "fp32"
        return "bf16>" + str(self.backbone.spec.bf16_from).strip("/").split("/")[-1]

    @property
    def fingerprint(self) -> str:
        """The backbone fingerprint, plus ``+`` and the numeric path when it is not fp32.

        Caches key on it.  Memories compare the backbone fingerprint alone: a
        bf16 query searches an fp32 memory (and the reverse) as the same space.
        """
        fp = self.backbone.fingerprint
        return fp if self.precision == "fp32" else f"{fp}+{self.numeric_path}"

    def _pick(self, runtime: str) -> str:
        if runtime == "torch":
            return "torch"
        if runtime == "openvino" or self.precision == "bf16":
            from ._openvino import openvino_available

            if not openvino_available():
                raise InputError("runtime='openvino' needs OpenVINO: pip install 'supersub[fast]'")
            self._openvino_runner(self.precision)
            return "openvino"
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            if runtime == "onnx":
                raise InputError(
                    "runtime='onnx' needs ONNX Runtime: pip install 'supersub[fast]'"
                ) from None
            return "torch"
        try:
            self._session = self._onnx_session()
        except Exception as exc:  # an architecture the exporter cannot handle
            if runtime == "onnx":
                raise
            log.warning("ONNX export failed (%s); using eager torch", exc)
            return "torch"
        return "onnx"

    def onnx_path(self) -> Path:
        """Where this backbone's exported graph is cached."""
        safe = self.backbone.fingerprint.replace("/", "_").replace(":", "_").replace("@", "_")
        return self.cache_dir / f"{safe}.onnx"

    def _exported(self) -> Path:
        path = self.onnx_path()
        if not path.is_file():
            self._export(path)
        return path

    def _openvino_runner(self, precision: str, *, pixels: bool = False) -> Any:
        key = (precision, pixels)
        if key not in self._openvino:
            from ._openvino import OpenVinoFeatures

            pre = self.backbone.preprocess
            self._openvino[key] = OpenVinoFeatures(
                self._exported(), precision=precision, bf16_from=self.backbone.spec.bf16_from, threads=self.threads,
                pixels=(pre.mean, pre.std) if pixels else None)
        return self._openvino[key]

    def _onnx_session(self) -> Any:
        return onnx_session(self._exported(), self.threads)

    def _export(self, path: Path) -> None:
        import torch

        bb = self.backbone

        class Features(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = bb.model

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return bb.features(x)

        size = bb.preprocess.size
        export_onnx(Features(), torch.zeros(2, 3, size, size), path, input_name="images", output_name="features")
        log.info("exported %s to %s", bb.fingerprint, path)

    # ------------------------------------------------------------ compute
    def embed_tensors(self, x: np.ndarray, *, runtime: str | None = None,
                      precision: str | None = None) -> np.ndarray:
        """Embed preprocessed images.

        Parameters
        ----------
        x : ndarray of shape (n, 3, size, size), float32
        runtime : {"onnx", "openvino", "torch"}, optional
            Override the chosen runtime (for comparisons).
        precision : {"fp32", "bf16"}, optional
            Override the numeric path of the OpenVINO runtime (for comparisons).

        Returns
        -------
        ndarray of shape (n, dim), float32, rows L2-normalised
        """
        x = np.ascontiguousarray(x, dtype=np.float32)
        size = self.backbone.preprocess.size
        if x.ndim != 4 or x.shape[1:] != (3, size, size):
            raise InputError(f"expected preprocessed images of shape (n, 3, {size}, {size}), got {x.shape}")
        if precision not in (None, "fp32", "bf16"):
            raise InputError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
        if precision == "bf16" and runtime not in (None, "openvino"):
            raise InputError(f"precision='bf16' runs on OpenVINO, not runtime={runtime!r}")
        runtime = runtime or self.runtime
        if runtime == "openvino" or precision == "bf16":
            out = self._openvino_runner(precision or self.precision)(x)
        elif runtime == "onnx":
            if self._session is None:
                self._session = self._onnx_session()
            out = self._session.run(["features"], {"images": x})[0]
        else:
            import torch

            prev = torch.get_num_threads()
            torch.set_num_threads(self.threads)
            try:
                with torch.inference_mode():
                    out = self.backbone.features(torch.from_numpy(x)).numpy()
            finally:
                torch.set_num_threads(prev)
        return _normalise(out)

    def preprocess(self, images: Iterable[Any]) -> np.ndarray:
        """PIL images or paths -> array of shape (n, 3, size, size), float32."""
        return self.backbone.preprocess.batch(self._decoded(images))

    def preprocess_pixels(self, images: Iterable[Any]) -> np.ndarray:
        """PIL images or paths -> resized, cropped 8-bit RGB (n, size, size, 3), uint8 (:meth:`Preprocess.pixels`)."""
        return self.backbone.preprocess.pixels(self._decoded(images))

    @staticmethod
    def _decoded(images: Iterable[Any]) -> list[Any]:
        from ._images import open_image

        pils = []
        for im in images:
            if isinstance(im, (str, os.PathLike)):
                try:
                    im = open_image(im)
                except FileNotFoundError:
                    raise InputError(f"image {im} does not exist") from None
            pils.append(im)
        if not pils:
            raise InputError("no images given")
        return pils

    def embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Embed :meth:`preprocess_pixels`' output (n, size, size, 3), uint8; rows L2-normalised.

        On OpenVINO the normalisation runs inside the graph (see
        :class:`memory.embedding.OpenVinoFeatures`); elsewhere as :meth:`preprocess` does it.
        """
        size = self.backbone.preprocess.size
        pixels = np.asarray(pixels)
        if pixels.dtype != np.uint8 or pixels.ndim != 4 or pixels.shape[1:] != (size, size, 3):
            raise InputError(f"expected 8-bit images of shape (n, {size}, {size}, 3), got {pixels.dtype} "
                             f"{pixels.shape}")
        if self.runtime != "openvino":
            return self.embed_tensors(self.backbone.preprocess.normalise(pixels))
        return _normalise(self._openvino_runner(self.precision, pixels=True)(np.ascontiguousarray(pixels)))

    def embed_images(self, images: Sequence[Any], *, desc: str = "embed") -> np.ndarray:
        """Embed PIL images or image paths, batched, with a progress bar.

        Returns
        -------
        ndarray of shape (n, dim), float32, rows L2-normalised
        """
        return self.embed_batches(
            (images[i : i + self.batch_size] for i in range(0, len(images), self.batch_size)),
            total=len(images), desc=desc,
        )

    def embed_batches(
        self, batches: Iterator[Sequence[Any]] | Iterable[Sequence[Any]], *, total: int, desc: str = "embed",
        load: Callable[[Sequence[Any]], np.ndarray] | None = None,
    ) -> np.ndarray:
        """Embed batches of images; decoding of the next batch overlaps inference.

        ``load`` turns a batch into model input (n, 3, size, size), float32;
        by default the images are decoded to 8-bit pixels and normalised where
        the runtime does it fastest (:meth:`embed_pixels`).
        """
        compute = self.embed_tensors if load is not None else self.embed_pixels
        load = load or self.preprocess_pixels
        out = np.empty((total, self.backbone.dim), dtype=np.float32)
        pos = fill_batches(out, batches, load, compute, desc=desc, progress=self.progress)
        if pos != total:
            raise InputError(f"expected {total} images, got {pos}")
        return out

    def check_fast_path(self, x: np.ndarray) -> float:
        """Max abs difference between ONNX Runtime and eager torch on ``x`` (normalised features)."""
        return float(np.abs(self.embed_tensors(x, runtime="onnx") - self.embed_tensors(x, runtime="torch")).max())
