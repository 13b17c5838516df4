"""IVF lists searched in bf16 and re-ranked in fp32: the same answers as faiss's own scan, on both CPU kinds."""

import faiss
import numpy as np
import pytest

from memory import Steer, VisualMemory
from memory.store import SCORING_ENV, Bf16Lists, ivf_bf16_pays, ivf_in_bf16

from ..conftest import clustered

AMX = frozenset({"avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8", "amx_tile"})
EPYC = frozenset({"avx512f", "avx512_bf16", "avx512_vnni", "avx2"})  # AVX-512 BF16 and VNNI, no AMX
OLD = frozenset({"avx2", "fma"})


@pytest.fixture(scope="module")
def vectors():
    X, y = clustered(20_000, 256, 40, seed=0, spread=1.5)
    Q, _ = clustered(400, 256, 40, seed=0, spread=1.5, sample_seed=1)
    return X, y, Q


def ivf_memory(X, y, nprobe=4):
    """16 lists of about 1,250 vectors: a batch of 400 queries gives each list ample work."""
    mem = VisualMemory(k=10, index="IVF16,Flat", nprobe=nprobe, progress=False)
    mem.add(X, y)
    mem.build_index()
    return mem


def faiss_answers(mem, Q, k, monkeypatch):
    """The same memory searched by faiss's own fp32 scan of the same lists."""
    monkeypatch.setenv(SCORING_ENV, "fp32")
    sims, ids = mem.search(Q, k)
    monkeypatch.delenv(SCORING_ENV)
    return sims, ids


def test_the_choice_of_path_comes_from_the_cpu_flags():
    assert ivf_in_bf16("bf16", AMX)
    assert ivf_in_bf16("int8", EPYC)  # exact searches score in int8 there; the lists still in bf16
    assert not ivf_in_bf16("int8", OLD)  # no bf16 products in hardware: faiss's scan
    assert not ivf_in_bf16("fp32", AMX) and not ivf_in_bf16("fp32", EPYC)  # SUPERSUB_SCORING=fp32


def test_the_bf16_lists_are_searched_where_they_measured_faster():
    """The measured points in IVF_BF16_MIN_WORK's notes: gains above the line, losses below it."""
    assert ivf_bf16_pays(2000, 32, 1024, 100_000, 1280) and ivf_bf16_pays(512, 32, 1024, 100_000, 1280)
    assert not ivf_bf16_pays(128, 32, 1024, 100_000, 1280)  # 0.84x
    assert ivf_bf16_pays(1000, 24, 1024, 1_000_000, 256) and ivf_bf16_pays(256, 24, 1024, 1_000_000, 256)
    assert not ivf_bf16_pays(64, 24, 1024, 1_000_000, 256)  # 0.73x
    assert not ivf_bf16_pays(1000, 8, 512, 30_000, 256)  # 0.29x
    assert not ivf_bf16_pays(1, 1, 1, 1, 256) and not ivf_bf16_pays(0, 8, 16, 20_000, 256)


def test_padded_sizes_are_few_and_waste_less_than_half():
    padded = Bf16Lists.padded
    sizes = [padded(n) for n in range(1, 5000)]
    assert all(s >= n and s < 1.5 * n + 16 for n, s in zip(range(1, 5000), sizes))
    assert len(set(sizes)) == 18 and padded(16) == 16 and padded(17) == 24 and padded(25) == 32


def test_a_batch_gets_faiss_answers_through_the_bf16_lists(vectors, monkeypatch):
    X, y, Q = vectors
    mem = ivf_memory(X, y)
    sims, ids = mem.search(Q, 10)
    assert (mem.index_.lists is not None) == ivf_in_bf16()
    ref_sims, ref_ids = faiss_answers(mem, Q, 10, monkeypatch)
    assert np.array_equal(ids, ref_ids)  # every query's top 10, in order
    np.testing.assert_allclose(sims, ref_sims, rtol=0, atol=1e-5)  # fp32 similarities either way
    # Every answer is the exact fp32 similarity of the entry returned.
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    np.testing.assert_allclose(sims, np.einsum("qkd,qd->qk", Xn[ids], Qn), atol=1e-5)
    assert len(np.unique(ids[:, 0])) > 100  # the queries are spread over the memory


def test_the_kernel_matches_faiss_on_its_own(vectors):
    """Bf16Lists straight from a faiss index, whichever path this CPU takes."""
    X, _, Q = vectors
    Xn = np.ascontiguousarray(X / np.linalg.norm(X, axis=1, keepdims=True), dtype=np.float32)
    Qn = np.ascontiguousarray(Q / np.linalg.norm(Q, axis=1, keepdims=True), dtype=np.float32)
    ann = faiss.IndexIDMap2(faiss.index_factory(256, "IVF32,Flat", faiss.METRIC_INNER_PRODUCT))
    ann.train(Xn)
    ids = np.arange(len(Xn), dtype=np.int64) * 7 + 3  # entry ids are not row positions
    ann.add_with_ids(Xn, ids)
    faiss.downcast_index(ann.index).nprobe = 4
    lists = Bf16Lists.from_faiss(ann, Xn, lambda i: (i - 3) // 7, np.empty(0, dtype=np.int64))
    assert lists.offsets[-1] == len(Xn) and np.array_equal(np.sort(lists.rows), np.arange(len(Xn)))
    sims, rows = lists.search(Qn, Xn, 5, nprobe=4)
    ref_sims, ref_ids = ann.search(Qn, 5)
    assert np.array_equal(rows * 7 + 3, ref_ids)
    np.testing.assert_allclose(sims, ref_sims, atol=1e-5)
    # nprobe = every list: exact search
    sims, rows = lists.search(Qn, Xn, 5, nprobe=32)
    exact = np.argsort(-(Qn @ Xn.T), axis=1, kind="stable")[:, :5]
    assert np.array_equal(rows, exact)


def test_removed_entries_never_come_back_and_added_ones_are_found(vectors, monkeypatch):
    X, y, Q = vectors
    mem = ivf_memory(X, y)
    _, before = mem.search(Q, 10)
    doomed = np.unique(before[:, 0])[:50]
    mem.remove(doomed)  # tombstones in the faiss index; the bf16 lists are rebuilt without them
    sims, ids = mem.search(Q, 10)
    assert not np.isin(ids, doomed).any() and (ids >= 0).all()
    _, ref_ids = faiss_answers(mem, Q, 10, monkeypatch)
    assert np.array_equal(ids, ref_ids)
    new = mem.add(Q[:200] * 3.0, "added")  # the queries themselves, scaled
    sims, ids = mem.search(Q[:200], 1)
    assert (mem.index_.lists is not None) == ivf_in_bf16()
    assert np.array_equal(ids[:, 0], new)
    np.testing.assert_allclose(sims[:, 0], 1.0, atol=1e-5)


def test_small_batches_keep_faiss_scan_and_steered_searches_the_exact_one(vectors, monkeypatch):
    X, y, Q = vectors
    mem = ivf_memory(X, y)
    few = Q[:2]
    sims, ids = mem.search(few, 10)
    assert mem.index_.lists is None  # too little work per list: faiss's scan, nothing built
    assert np.array_equal(ids, faiss_answers(mem, few, 10, monkeypatch)[1])
    gone = str(y[0])
    _, ids = mem.search(Q, 10, steer=Steer(exclude_labels=(gone,)))
    exact = VisualMemory(k=10, progress=False)
    exact.add(X[y != gone], y[y != gone], ids=mem.ids_[y != gone])
    assert np.array_equal(ids, exact.search(Q, 10)[1])  # exclusions search the allowed rows exactly


def test_a_saved_ivf_memory_searches_the_same_after_loading(vectors, tmp_path):
    X, y, Q = vectors
    mem = ivf_memory(X, y)
    sims, ids = mem.search(Q, 10)
    mem.save(tmp_path / "m")
    back = VisualMemory.load(tmp_path / "m")
    back_sims, back_ids = back.search(Q, 10)
    assert np.array_equal(back_ids, ids)
    np.testing.assert_array_equal(back_sims, sims)
