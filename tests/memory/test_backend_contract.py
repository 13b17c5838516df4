"""The memory backend contract, run against every backend and compared with exact faiss search.

Backends: the embedded faiss memory, Milvus Lite on a local file, and a real
Milvus standalone server (started once per session on loopback).  Exact
indexes must return the same top-k ids as faiss ``IndexFlatIP`` (similarities
within 1e-5: Milvus sums the inner products in another order); an
approximate index (HNSW) must reach recall@10 >= 0.99 against it.
"""

import numpy as np
import pytest

from memory import InputError, MemoryBackend, Steer, UnknownEntryError, VisualMemory, load_memory

BACKENDS = ["faiss", "milvus-lite", "milvus-server"]
DIM = 24
SIM_TOL = 1e-5


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(6, DIM)) * 1.5
    y_idx = rng.integers(0, 6, size=400)
    X = (centres[y_idx] + rng.normal(size=(400, DIM))).astype(np.float32)
    labels = np.array([f"c{i}" for i in y_idx], dtype=object)
    supers = np.where(y_idx < 3, "animal", "artifact").astype(object)
    sources = np.where(np.arange(400) % 5 == 0, "upload", "train").astype(object)
    refs = [f"img/{i}.jpg" for i in range(400)]
    Q = (centres[rng.integers(0, 6, size=30)] + rng.normal(size=(30, DIM))).astype(np.float32)
    return {"X": X, "y": labels, "sup": supers, "src": sources, "refs": refs, "Q": Q,
            "ids": np.arange(1000, 1400, dtype=np.int64)}


def fill(mem, d, rows=slice(None)):
    return mem.add(d["X"][rows], d["y"][rows], ids=d["ids"][rows], superclass=d["sup"][rows],
                   source=d["src"][rows], refs=[d["refs"][i] for i in np.arange(400)[rows]])


@pytest.fixture(scope="module")
def exact(data):
    mem = VisualMemory(DIM, progress=False)
    fill(mem, data)
    return mem


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def filled(backend, memory_factory, data):
    mem = memory_factory(backend, DIM)
    fill(mem, data)
    return mem


def test_implements_the_interface(filled):
    assert isinstance(filled, MemoryBackend)
    assert len(filled) == 400 and filled.dim == DIM


def test_same_top_k_as_exact_faiss(filled, exact, data):
    sims, ids = filled.search(data["Q"], 10)
    ref_sims, ref_ids = exact.search(data["Q"], 10)
    assert np.array_equal(ids, ref_ids)
    assert np.allclose(sims, ref_sims, atol=SIM_TOL)


def test_votes_match_faiss(filled, exact, data):
    assert np.array_equal(filled.classes_, exact.classes_)
    assert np.allclose(filled.predict_proba(data["Q"]), exact.predict_proba(data["Q"]), atol=1e-4)
    assert np.array_equal(filled.predict(data["Q"]), exact.predict(data["Q"]))


@pytest.mark.parametrize("superclass", ["animal", "artifact"])
def test_filtered_search_returns_k_hits_when_k_exist(filled, exact, data, superclass):
    k = 25
    sims, ids = filled.search(data["Q"], k, superclass=superclass)
    assert (ids >= 0).all(), "a filtered search returned fewer than k hits"
    members = set(data["ids"][data["sup"] == superclass].tolist())
    assert set(ids.ravel().tolist()) <= members
    ref_sims, ref_ids = exact.search(data["Q"], k, superclass=superclass)
    assert np.array_equal(ids, ref_ids)
    # fewer than k exist: every member comes back, then padding
    small = int((data["sup"] == superclass).sum())
    _, all_ids = filled.search(data["Q"][:2], small + 5, superclass=superclass)
    assert ((all_ids >= 0).sum(axis=1) == small).all()


def test_metadata_and_counts(filled, exact, data):
    got = filled.get(data["ids"][[0, 5]])
    assert got == exact.get(data["ids"][[0, 5]])
    assert got[0]["ref"] == "img/0.jpg" and got[1]["source"] == "upload"
    for by in ("label", "source", "superclass"):
        assert filled.counts(by) == exact.counts(by)
    assert np.allclose(filled.vectors(data["ids"][:3]), exact.vectors(data["ids"][:3]), atol=1e-6)
    with pytest.raises(UnknownEntryError):
        filled.get([5])


@pytest.mark.parametrize("how", ["ids", "label", "source"])
def test_deleted_ids_never_come_back(filled, data, how):
    if how == "ids":
        gone = filled.remove(data["ids"][::7])
    elif how == "label":
        gone = filled.remove(label="c2")
    else:
        gone = filled.remove(source="upload")
    assert gone.size > 0
    _, ids = filled.search(data["Q"], 120)
    assert not np.isin(ids, gone).any()
    _, ids = filled.search(data["Q"], 60, superclass="animal")
    assert not np.isin(ids, gone).any()
    assert len(filled) == 400 - gone.size
    with pytest.raises(UnknownEntryError):
        filled.get(gone[:1])


def test_unlearning_equals_a_rebuild(backend, memory_factory, filled, data):
    gone = filled.remove(source="upload")
    keep = ~np.isin(data["ids"], gone)
    rebuilt = memory_factory(backend, DIM)
    fill(rebuilt, data, np.flatnonzero(keep))
    for kw in ({}, {"superclass": "artifact"}):
        a_sims, a_ids = filled.search(data["Q"], 15, **kw)
        b_sims, b_ids = rebuilt.search(data["Q"], 15, **kw)
        assert np.array_equal(a_ids, b_ids)
        assert np.allclose(a_sims, b_sims, atol=SIM_TOL)
    assert np.allclose(filled.predict_proba(data["Q"]), rebuilt.predict_proba(data["Q"]), atol=1e-6)
    assert filled.counts("source") == rebuilt.counts("source") == {"train": int(keep.sum())}


def test_steering_excludes_and_reweights(filled, exact, data):
    steer = Steer(exclude_labels=("c0",), exclude_ids=tuple(data["ids"][:50].tolist()),
                  source_weights={"upload": 0.0})
    _, ids = filled.search(data["Q"], 10, steer=steer)
    _, ref = exact.search(data["Q"], 10, steer=steer)
    assert np.array_equal(ids, ref)
    assert np.allclose(filled.predict_proba(data["Q"], steer=steer), exact.predict_proba(data["Q"], steer=steer),
                       atol=1e-4)
    expl = filled.explain(data["Q"][:2], steer=steer)
    assert all(n.label != "c0" for e in expl for n in e.neighbours)
    assert all(n.weight == 0 for e in expl for n in e.neighbours if n.source == "upload")


def test_explanations_name_the_neighbours(filled, exact, data):
    a, b = filled.explain(data["Q"][:3]), exact.explain(data["Q"][:3])
    for ea, eb in zip(a, b):
        assert ea.prediction == eb.prediction
        assert [n.id for n in ea.neighbours] == [n.id for n in eb.neighbours]
        assert [n.ref for n in ea.neighbours] == [n.ref for n in eb.neighbours]
        assert sum(n.contribution for n in ea.neighbours) == pytest.approx(1.0)


def test_bad_input_changes_nothing(filled, data):
    before = len(filled)
    with pytest.raises(InputError, match="expected 24-d"):
        filled.add(np.ones((2, DIM + 1), np.float32), ["c0", "c0"])
    bad = np.ones((2, DIM), np.float32)
    bad[1, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        filled.add(bad, ["c0", "c0"])
    with pytest.raises(InputError, match="duplicate id"):
        filled.add(np.ones((1, DIM), np.float32), ["c0"], ids=[int(data["ids"][0])])
    with pytest.raises(UnknownEntryError):
        filled.remove(label="no-such-class")
    with pytest.raises(InputError, match="k must be"):
        filled.search(data["Q"], 0)
    assert len(filled) == before


def test_reopens_from_what_save_wrote(filled, data, tmp_path):
    filled.save(tmp_path / "saved")
    again = load_memory(tmp_path / "saved")
    assert len(again) == len(filled)
    assert np.array_equal(again.search(data["Q"], 5)[1], filled.search(data["Q"], 5)[1])


@pytest.mark.parametrize("backend", [
    "milvus-lite",
    pytest.param("milvus-server", marks=pytest.mark.xfail(strict=True, reason=(
        "Milvus 2.3.5 answers freshly inserted rows from its interim index of growing segments, "
        "not from HNSW: recall@10 is 0.7725 here whatever ef_search (10 to 2048) or M (16, 48)"))),
])
def test_approximate_index_recall(backend, memory_factory):
    """HNSW is approximate: the contract is recall@10 >= 0.99 against exact search.

    On 20,000 points ef=64 is far from exhaustive (faiss's HNSW compares a query
    with about 10% of them there; on the 400 points above it would compare all).
    """
    rng = np.random.default_rng(3)
    X = rng.standard_normal((20_000, DIM)).astype(np.float32)
    Q = rng.standard_normal((200, DIM)).astype(np.float32)
    labels = np.array([f"c{i % 50}" for i in range(len(X))], dtype=object)
    ids = np.arange(len(X), dtype=np.int64)
    ref_mem = VisualMemory(DIM, progress=False)
    ref_mem.add(X, labels, ids=ids)
    mem = memory_factory(backend, DIM, index="HNSW", ef_search=64)
    mem.add(X, labels, ids=ids)
    _, ids = mem.search(Q, 10)
    _, ref = ref_mem.search(Q, 10)
    recall = np.mean([len(np.intersect1d(a, b)) / 10 for a, b in zip(ids, ref)])
    assert recall >= 0.99


@pytest.mark.parametrize("backend", ["milvus-lite", "milvus-server"])
def test_another_client_never_sees_unlearned_entries_with_strong_reads(backend, memory_factory, data):
    from memory import MilvusMemory

    writer = memory_factory(backend, DIM)
    fill(writer, data)
    reader = MilvusMemory(writer.uri, writer.collection, consistency="Strong")
    assert len(reader) == 400
    gone = writer.remove(source="upload")
    _, ids = reader.search(data["Q"], 50)
    assert not np.isin(ids, gone).any()
    reader.close()


# ----------------------------------------------------------------- one contract
def test_set_weight_has_one_signature_and_meaning(filled, exact, data):
    ref = exact.copy()
    for mem in (filled, ref):
        chosen = mem.set_weight(0.0, data["ids"][:60])  # weight first, then ids, on every backend
        np.testing.assert_array_equal(chosen, data["ids"][:60])
        mem.set_weight(2.5, source="upload", superclass="animal")
        assert [m["weight"] for m in mem.get(data["ids"][:3])] == [0.0, 0.0, 0.0]
    np.testing.assert_allclose(filled.predict_proba(data["Q"]), ref.predict_proba(data["Q"]), atol=1e-5)
    _, ids_a, mult_a = filled.neighbours(data["Q"], 10)
    _, ids_b, mult_b = ref.neighbours(data["Q"], 10)
    np.testing.assert_array_equal(ids_a, ids_b)
    np.testing.assert_array_equal(mult_a, mult_b)
    assert set(np.unique(mult_a)) <= {0.0, 1.0, 2.5} and (mult_a == 0).any() and (mult_a == 2.5).any()
    for bad in (-1.0, float("nan"), "heavy", True):
        with pytest.raises(InputError, match="weight must be a finite number >= 0"):
            filled.set_weight(bad, data["ids"][:1])


def test_neighbour_multipliers_include_steering(filled, exact, data):
    steer = Steer(label_weights={"c1": 0.5}, source_weights={"upload": 0.0}, exclude_labels=("c2",))
    _, ids_a, mult_a = filled.neighbours(data["Q"], 8, steer=steer)
    _, ids_b, mult_b = exact.neighbours(data["Q"], 8, steer=steer)
    np.testing.assert_array_equal(ids_a, ids_b)
    np.testing.assert_array_equal(mult_a, mult_b)
    assert set(np.unique(mult_a)) == {0.0, 0.5, 1.0}


def test_an_empty_memory_behaves_the_same(backend, memory_factory, data):
    mem = memory_factory(backend, DIM)
    assert len(mem) == 0
    for call in (lambda: mem.search(data["Q"], 5), lambda: mem.predict_proba(data["Q"]),
                 lambda: mem.predict(data["Q"]), lambda: mem.explain(data["Q"][:1]),
                 lambda: mem.neighbours(data["Q"], 5)):
        with pytest.raises(InputError, match="the memory is empty; add entries before searching"):
            call()
    with pytest.raises(UnknownEntryError, match="unknown label 'c0'"):
        mem.select(label="c0")
    with pytest.raises(UnknownEntryError, match="unknown id 5"):
        mem.remove([5])
    with pytest.raises(UnknownEntryError, match="unknown id 5"):
        mem.get([5])


def test_an_unknown_superclass_is_refused(filled, data):
    with pytest.raises(UnknownEntryError, match="unknown superclass 'plant'"):
        filled.search(data["Q"], 5, superclass="plant")
    with pytest.raises(UnknownEntryError, match="unknown superclass 'plant'"):
        filled.predict(data["Q"], superclass="plant")


def test_weights_read_back_what_set_weight_stored(filled, data):
    filled.set_weight(0.25, data["ids"][5:9])
    np.testing.assert_array_equal(filled.weights(data["ids"][3:10]), [1, 1, 0.25, 0.25, 0.25, 0.25, 1])
    assert filled.weights(data["ids"][:1]).dtype == np.float32
    with pytest.raises(UnknownEntryError, match="unknown id 5"):
        filled.weights([5])
