"""faiss's global BLAS threshold is changed only inside supersub's own searches."""

import subprocess
import sys
import threading
from pathlib import Path

import faiss
import numpy as np
import pytest

from memory import VisualMemory
from memory.store import BLAS_THRESHOLD, blas_for_small_batches

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.subprocess
def test_importing_the_packages_leaves_faiss_settings_alone():
    code = ("import faiss; before = faiss.cvar.distance_compute_blas_threshold; "
            "import hierarchy, memory, router; "
            "print(before, faiss.cvar.distance_compute_blas_threshold)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    before, after = out.stdout.split()
    assert before == after == "128000"


def test_the_threshold_is_lowered_inside_the_block_and_restored_after():
    outer = faiss.cvar.distance_compute_blas_threshold
    with blas_for_small_batches():
        assert faiss.cvar.distance_compute_blas_threshold == min(outer, BLAS_THRESHOLD)
        with blas_for_small_batches():  # re-entrant
            assert faiss.cvar.distance_compute_blas_threshold == min(outer, BLAS_THRESHOLD)
        assert faiss.cvar.distance_compute_blas_threshold == min(outer, BLAS_THRESHOLD)
    assert faiss.cvar.distance_compute_blas_threshold == outer


def test_a_search_restores_the_callers_setting_even_from_threads():
    rng = np.random.default_rng(0)
    mem = VisualMemory(16, k=3, progress=False)
    mem.add(rng.standard_normal((200, 16)).astype(np.float32), [f"c{i % 4}" for i in range(200)])
    outer = faiss.cvar.distance_compute_blas_threshold
    faiss.cvar.distance_compute_blas_threshold = 777
    try:
        threads = [threading.Thread(target=mem.predict, args=(rng.standard_normal((50, 16)).astype(np.float32),))
                   for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert faiss.cvar.distance_compute_blas_threshold == 777
    finally:
        faiss.cvar.distance_compute_blas_threshold = outer
