"""The routed classifier on every memory backend: same decisions as on embedded faiss shards."""

import uuid

import numpy as np
import pytest

from memory import InputError, MilvusMemory, MilvusShard
from router import TwoStageClassifier


@pytest.fixture(params=["milvus-lite", "milvus-server"])
def uri(request, tmp_path):
    name = "r" + uuid.uuid4().hex[:10]
    if request.param == "milvus-lite":
        yield f"{tmp_path / 'router.db'}#{name}"
        return
    server = request.getfixturevalue("milvus_server")
    yield f"milvus://127.0.0.1:{server.port}/{name}"


@pytest.mark.parametrize("router", ["memory", "centroids"])
def test_routed_classifier_on_milvus_equals_faiss(synthetic, uri, router, tmp_path):
    s = synthetic
    faiss_clf = TwoStageClassifier(s["tree"], router=router, k=5).fit(s["X"], s["y"], source="base")
    milvus_clf = TwoStageClassifier(s["tree"], router=router, k=5, backend=uri).fit(s["X"], s["y"], source="base")
    assert all(isinstance(sh, MilvusShard) for sh in milvus_clf.shards_)
    assert milvus_clf.n_entries() == faiss_clf.n_entries()
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
    milvus_clf._store.drop()


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
