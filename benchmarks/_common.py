"""Helpers shared by the benchmark commands."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from hierarchy import atomic_write
from memory.store import SCORING_ENV

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import faiss

    from memory.store import cpu_flags

    model = ""
    try:
        model = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "")
    except OSError:
        pass
    return {
        "cpu": platform.processor() or platform.machine(),
        "cpu_model": model,
        "matrix_flags": sorted(f for f in cpu_flags() if f.startswith(("amx", "avx512_bf16", "avx512_vnni"))),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "faiss": faiss.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }


def cpu_kind(flags: frozenset[str] | None = None) -> str:
    """This CPU's kind for results that depend on it: ``"amx"``, ``"avx512_bf16"`` (no AMX) or ``"no_bf16"``."""
    from memory.store import cpu_flags

    flags = cpu_flags() if flags is None else flags
    if "amx_bf16" in flags:
        return "amx"
    return "avx512_bf16" if "avx512_bf16" in flags else "no_bf16"


def per_cpu_name(name: str, flags: frozenset[str] | None = None) -> str:
    """``name`` on a CPU with AMX (the reference machine), ``<name>_<kind>`` on any other kind of CPU.

    Results whose figures depend on the kind of CPU keep one file per kind, so
    a run on one kind never overwrites the other's.
    """
    kind = cpu_kind(flags)
    return name if kind == "amx" else f"{name}_{kind}"


def repo_path(path: str | os.PathLike[str]) -> str:
    """``path`` as results record it: relative to the repository when inside it, else its last two parts."""
    p = Path(path).resolve()
    root = RESULTS.parents[1]
    return p.relative_to(root).as_posix() if p.is_relative_to(root) else "/".join(p.parts[-2:])


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/<name>.json`` atomically."""
    path = RESULTS / f"{name}.json"
    atomic_write(path, json.dumps({"machine": machine(), **payload}, indent=1) + "\n")
    return path


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Best single-precision matrix-multiply rate of this machine, in GFLOP/s."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b  # warm up
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def bf16_peak_gflops(m: int = 2048, k: int = 1280, n: int = 16384, repeats: int = 5) -> float:
    """Best bf16 matrix-multiply rate of this machine through torch (AMX / AVX-512 BF16), in GFLOP/s.

    The shape is the scoring product's: queries by dimension by memory rows.
    """
    import torch

    a = torch.randn(m, k).to(torch.bfloat16)
    b = torch.randn(n, k).to(torch.bfloat16)
    with torch.no_grad():
        a @ b.T  # warm up
        best = np.inf
        for _ in range(repeats):
            t = time.perf_counter()
            a @ b.T
            best = min(best, time.perf_counter() - t)
    return 2 * m * k * n / best / 1e9


def clustered(n: int, dim: int, n_classes: int, seed: int, spread: float = 1.0,
              centres: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian clusters around unit centres; returns X (float32), y (str), centres."""
    rng = np.random.default_rng(seed)
    if centres is None:
        centres = rng.standard_normal((n_classes, dim)).astype(np.float32)
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    y = rng.integers(0, n_classes, size=n)
    X = centres[y] + spread / np.sqrt(dim) * rng.standard_normal((n, dim), dtype=np.float32)
    return X.astype(np.float32), np.array([f"c{c:04d}" for c in y]), centres


def best_of(fn, repeats: int = 3):
    """Run ``fn`` ``repeats`` times; return (its last result, the fastest time in s).

    The machine is shared and noisy, so both sides of every ratio are timed
    the same way, best of ``repeats``.
    """
    best, result = np.inf, None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return result, best


class Timer:
    """``with Timer() as t: ...; t.s``"""

    def __enter__(self) -> Timer:
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.s = time.perf_counter() - self.t0


@contextlib.contextmanager
def scoring(mode: str) -> Iterator[None]:
    """Run the block with ``SUPERSUB_SCORING=mode``."""
    saved = os.environ.get(SCORING_ENV)
    os.environ[SCORING_ENV] = mode
    try:
        yield
    finally:
        if saved is None:
            del os.environ[SCORING_ENV]
        else:
            os.environ[SCORING_ENV] = saved
