"""The routed classifier on every memory backend: same decisions as on embedded faiss shards."""

import uuid

import numpy as np
import pytest

from memory import InputError, MilvusMemory, MilvusShard, Steer, UnknownEntryError
from router import TwoStageClassifier


@pytest.fixture(params=["milvus-lite", "milvus-server"])
def uri(request, tmp_path):
    name = "r" + uuid.uuid4().hex[:10]
    if request.param == "milvus-lite":
        yield f"{tmp_path / 'router.db'}#{name}"
        return
    server = request.getfixturevalue("milvus_server")
    yield f"milvus://127.0.0.1:{server.port}/{name}"


@pytest.mark.slow  # a whole routed model on each Milvus backend, twice: seconds each
@pytest.mark.parametrize("router", ["memory", "centroids"])
def test_routed_classifier_on_milvus_equals_faiss(synthetic, uri, router, tmp_path):
    s = synthetic
    faiss_clf = TwoStageClassifier(s["tree"], router=router, k=5).fit(s["X"], s["y"], source="base")
    milvus_clf = TwoStageClassifier(s["tree"], router=router, k=5, backend=uri).fit(s["X"], s["y"], source="base")
    assert all(isinstance(sh, MilvusShard) for sh in milvus_clf.shards_)
    assert milvus_clf.n_entries == faiss_clf.n_entries
    for routing in ("hard", "soft"):
        assert np.array_equal(milvus_clf.predict(s["Q"], routing=routing), faiss_clf.predict(s["Q"], routing=routing))
        assert np.allclose(milvus_clf.predict_proba(s["Q"], routing=routing),
                           faiss_clf.predict_proba(s["Q"], routing=routing), atol=1e-4)
    a, b = milvus_clf.explain(s["Q"][:3]), faiss_clf.explain(s["Q"][:3])
    assert [e.prediction for e in a] == [e.prediction for e in b]
    assert [e.searched for e in a] == [e.searched for e in b]

    # unlearning and late classes behave the same on both backends
    for clf in (faiss_clf, milvus_clf):
        clf.add(s["Q"][:6], s["qy"][:6], source="upload")
        clf.remove(source="upload")
        clf.remove_class(s["classes"][3])
    assert np.array_equal(milvus_clf.predict(s["Q"]), faiss_clf.predict(s["Q"]))

    milvus_clf.save(tmp_path / "model")
    again = TwoStageClassifier.load(tmp_path / "model")
    assert isinstance(again.shards_[0], MilvusShard)
    assert np.array_equal(again.predict(s["Q"]), milvus_clf.predict(s["Q"]))
    milvus_clf.shard_set_.drop()


def test_fit_refuses_a_collection_that_holds_data(synthetic, uri):
    s = synthetic
    TwoStageClassifier(s["tree"], k=5, backend=uri).fit(s["X"][:50], s["y"][:50])
    with pytest.raises(InputError, match="already holds 50 entries"):
        TwoStageClassifier(s["tree"], k=5, backend=uri).fit(s["X"], s["y"])


def test_network_parts_need_the_embedded_backend(synthetic, tmp_path):
    s = synthetic
    with pytest.raises(InputError, match="Milvus backend holds memory shards"):
        TwoStageClassifier(s["tree"], specialist="delta", backend=str(tmp_path / "x.db")).fit(s["X"], s["y"])


def test_shard_is_limited_to_its_superclass(synthetic, tmp_path):
    s = synthetic
    store = MilvusMemory(str(tmp_path / "s.db"), "s", dim=32)
    sup = np.array([s["tree"].superclass_of(c) for c in s["y"]], dtype=object)
    store.add(s["X"], s["y"], superclass=sup)
    first = sup[0]
    shard = store.shard(first)
    assert len(shard) == int((sup == first).sum())
    assert set(shard.classes_) == set(s["y"][sup == first])
    _, ids = shard.search(s["Q"], 10)
    assert set(m["superclass"] for m in store.get(np.unique(ids[ids >= 0]))) == {first}
    assert shard.predict_proba(s["Q"][:4]).shape == (4, len(shard.classes_))
    with pytest.raises(InputError, match="holds superclass"):
        shard.add(s["X"][:1], s["y"][:1], superclass="other")


@pytest.mark.parametrize("backend", ["faiss", "milvus-lite"])
def test_shard_views_refuse_other_superclasses(synthetic, tmp_path, backend):
    """Every read and edit of a shard stays inside its superclass, on either backend."""
    s = synthetic
    uri = None if backend == "faiss" else f"{tmp_path / 'v.db'}#v"
    clf = TwoStageClassifier(s["tree"], k=5, backend=uri).fit(s["X"], s["y"])
    mine, other = clf.shards_[0], clf.superclasses_[1]
    for call in (lambda: mine.search(s["Q"], 3, superclass=other),
                 lambda: mine.neighbours(s["Q"], 3, superclass=other),
                 lambda: mine.predict_proba(s["Q"], superclass=other),
                 lambda: mine.select(label=mine.classes_[0], superclass=other),
                 lambda: mine.remove(superclass=other),
                 lambda: mine.set_weight(0.0, superclass=other)):
        with pytest.raises(UnknownEntryError, match=f"unknown superclass '{other}'"):
            call()
    if backend != "faiss":  # Milvus ids are unique across shards: another shard's id is unknown here
        foreign = clf.shards_[1].ids_[:2]
        for call in (lambda: mine.get(foreign), lambda: mine.vectors(foreign), lambda: mine.select(foreign),
                     lambda: mine.remove(foreign), lambda: mine.set_weight(0.0, foreign)):
            with pytest.raises(UnknownEntryError, match=f"unknown id {foreign[0]}"):
                call()
        assert set(m["superclass"] for m in mine.get(mine.ids_)) == {clf.superclasses_[0]}
    assert clf.n_entries == len(s["X"])  # nothing was removed or changed
    if backend != "faiss":
        clf.shard_set_.drop()


@pytest.mark.parametrize("router", ["memory", "centroids"])
def test_weights_and_steering_count_in_both_stages_on_every_backend(synthetic, uri, router):
    s = synthetic
    faiss_clf = TwoStageClassifier(s["tree"], router=router, k=5).fit(s["X"], s["y"], source="base")
    milvus_clf = TwoStageClassifier(s["tree"], router=router, k=5, backend=uri).fit(s["X"], s["y"], source="base")
    silenced, steered = s["classes"][0], s["classes"][1]
    steer = Steer(exclude_labels=(steered,))
    for clf in (faiss_clf, milvus_clf):
        clf.set_weight(0.0, label=silenced)
    # Stage 1 sees the silenced class exactly as stage 2 does: as a reweighting of the same entries.
    unweighted = TwoStageClassifier(s["tree"], router=router, k=5).fit(s["X"], s["y"], source="base")
    by_steer = Steer(exclude_labels=(steered,), label_weights={silenced: 0.0})
    np.testing.assert_allclose(faiss_clf.route_proba(s["Q"], steer=steer),
                               unweighted.route_proba(s["Q"], steer=by_steer), atol=1e-9)
    np.testing.assert_allclose(faiss_clf.predict_proba(s["Q"], steer=steer),
                               unweighted.predict_proba(s["Q"], steer=by_steer), atol=1e-9)
    # Excluding a class in stage 1 equals a memory that never held it.
    without = TwoStageClassifier(s["tree"], router=router, k=5).fit(
        s["X"][s["y"] != steered], s["y"][s["y"] != steered], source="base")
    without.set_weight(0.0, label=silenced)
    np.testing.assert_allclose(faiss_clf.route_proba(s["Q"], steer=steer), without.route_proba(s["Q"]), atol=1e-6)
    # And Milvus gives the same, stage by stage.
    np.testing.assert_allclose(milvus_clf.route_proba(s["Q"], steer=steer), faiss_clf.route_proba(s["Q"], steer=steer),
                               atol=1e-4)
    np.testing.assert_allclose(milvus_clf.predict_proba(s["Q"], steer=steer),
                               faiss_clf.predict_proba(s["Q"], steer=steer), atol=1e-4)
    assert not np.any(faiss_clf.predict(s["Q"], steer=steer) == silenced)
    milvus_clf.shard_set_.drop()


@pytest.mark.slow  # a Milvus-backed model edited in two locked blocks: seconds
def test_edits_of_a_milvus_backed_model_are_serialised(synthetic, tmp_path):
    """Two edit blocks on one Milvus-backed model: the second waits; both edits are kept."""
    import threading
    import time

    from router import edit_classifier

    s = synthetic
    uri = f"{tmp_path / 'e.db'}#e"
    TwoStageClassifier(s["tree"], k=5, backend=uri).fit(s["X"], s["y"], source="base").save(tmp_path / "m")
    order: list[str] = []

    def edit(name: str, rows: slice) -> None:
        with edit_classifier(tmp_path / "m", wait=60) as clf:
            order.append(f"{name} loaded with {clf.n_entries}")
            time.sleep(0.5)
            clf.add(s["Q"][rows], s["qy"][rows], source=name)

    first = threading.Thread(target=edit, args=("a", slice(0, 5)))
    first.start()
    time.sleep(0.1)
    edit("b", slice(5, 9))
    first.join()
    assert order == [f"a loaded with {len(s['X'])}", f"b loaded with {len(s['X']) + 5}"]  # b saw a's edit
    clf = TwoStageClassifier.load(tmp_path / "m")
    assert clf.n_entries == len(s["X"]) + 9
    clf.shard_set_.drop()
