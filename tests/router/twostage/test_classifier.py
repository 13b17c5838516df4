import numpy as np
import pytest

from hierarchy import UnknownClassError
from memory import InputError, UnknownEntryError
from router import FlatClassifier, TwoStageClassifier


@pytest.fixture(scope="module")
def fitted(synthetic):
    s = synthetic
    return TwoStageClassifier(s["tree"], router="centroids", k=5).fit(s["X"], s["y"], source="synthetic")


def test_shards_hold_only_their_superclass(fitted, synthetic):
    tree = synthetic["tree"]
    assert sum(len(sh) for sh in fitted.shards_) == len(synthetic["X"])
    for s, shard in zip(fitted.superclasses_, fitted.shards_):
        assert {tree.superclass_of(c) for c in shard.classes_} == {s}
        assert list(shard.superclasses_) == [s]


def test_queries_go_to_the_right_shard(fitted, synthetic):
    tree, Q, qy = synthetic["tree"], synthetic["Q"], synthetic["qy"]
    truth = np.array([tree.superclass_of(c) for c in qy], dtype=object)
    routed = fitted.predict_superclass(Q)
    assert np.mean(routed == truth) > 0.95
    for e, s in zip(fitted.explain(Q[:20]), routed[:20]):
        assert e.searched == [s]
        assert {n.superclass for n in e.neighbours} == {s}  # stage-2 neighbours come from that shard
        assert sum(e.route.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("router", ["memory", "centroids", "head"])
def test_oracle_is_at_least_hard(synthetic, router):
    s = synthetic
    rng = np.random.default_rng(5)
    Q = s["Q"] + 6.0 * rng.normal(size=s["Q"].shape).astype(np.float32)  # make routing err
    clf = TwoStageClassifier(s["tree"], router=router, k=5, router_epochs=30).fit(s["X"], s["y"])
    hard = clf.score(Q, s["qy"])
    oracle = clf.score(Q, s["qy"], routing="oracle")
    assert oracle >= hard
    truth = np.array([s["tree"].superclass_of(c) for c in s["qy"]], dtype=object)
    assert np.mean(clf.predict_superclass(Q) == truth) < 1.0  # the route does err here


def test_memory_router_equals_flat_knn_votes(synthetic):
    s = synthetic
    routed = TwoStageClassifier(s["tree"], router="memory", k=7).fit(s["X"], s["y"])
    flat = FlatClassifier("knn", k=7).fit(s["X"], s["y"])
    silenced = s["y"][0]  # a persistent weight must count in stage 1 as it does in stage 2
    routed.set_weight(0.0, label=silenced)
    flat.memory_.set_weight(0.0, label=silenced)
    # The memory router's merged neighbour list is the flat kNN list: the same neighbours
    # (each in the shard of its class's superclass), similarities and multipliers.
    sims_r, owner_r, mult_r = routed.router_.neighbours(s["Q"])
    sims_f, ids_f, mult_f = flat.memory_.neighbours(s["Q"], 7)
    column = {sup: j for j, sup in enumerate(routed.superclasses_)}
    label_of = {e["id"]: e["label"] for e in flat.memory_.get(flat.memory_.ids_)}
    expected_owner = np.vectorize(lambda i: column[s["tree"].superclass_of(label_of[i])])(ids_f)
    np.testing.assert_array_equal(owner_r, expected_owner)
    np.testing.assert_allclose(sims_r, sims_f, atol=1e-6)
    np.testing.assert_array_equal(mult_r, mult_f)
    assert (mult_f == 0).any()
    # P(superclass) is the flat kNN's class probabilities summed per superclass.
    p_flat = flat.memory_.predict_proba(s["Q"])
    expected = np.zeros((len(s["Q"]), len(column)))
    for j, c in enumerate(flat.memory_.classes_):
        expected[:, column[s["tree"].superclass_of(c)]] += p_flat[:, j]
    np.testing.assert_allclose(routed.route_proba(s["Q"]), expected, rtol=1e-6, atol=1e-9)


def test_soft_routing_mixes_superclasses(fitted, synthetic):
    p_hard = fitted.predict_proba(synthetic["Q"])
    p_soft = fitted.predict_proba(synthetic["Q"], routing="soft", m=3)
    np.testing.assert_allclose(p_soft.sum(1), 1.0)
    supports = lambda p: {fitted.assignment_[c] for c in fitted.classes_[p > 1e-9]}  # noqa: E731
    assert all(len(supports(row)) == 1 for row in p_hard)
    assert any(len(supports(row)) > 1 for row in p_soft)


def test_updates_touch_only_their_shard(synthetic, fitted):
    s = synthetic
    clf = TwoStageClassifier(s["tree"], router="centroids", k=5).fit(s["X"], s["y"])
    snapshot = [(sh.ids_, sh.vectors(sh.ids_)) for sh in clf.shards_]
    target = s["classes"][0]
    home = clf.superclasses_.index(s["tree"].superclass_of(target))
    clf.add(s["Q"][:3], [target] * 3, source="late")
    removed = clf.remove_class(s["classes"][-1])
    assert removed.size == 30
    touched = {home, clf.superclasses_.index(s["tree"].superclass_of(s["classes"][-1]))}
    for i, (ids, vecs) in enumerate(snapshot):
        if i in touched:
            continue
        np.testing.assert_array_equal(clf.shards_[i].ids_, ids)
        np.testing.assert_array_equal(clf.shards_[i].vectors(ids), vecs)
    assert s["classes"][-1] not in clf.classes_
    assert len(clf.shards_[home]) == len(snapshot[home][0]) + 3


def test_add_new_class_by_wnid_is_placed_through_wordnet(synthetic, wordnet):
    s = synthetic
    clf = TwoStageClassifier(s["tree"], router="centroids", k=5).fit(s["X"], s["y"])
    tench = "n01440764"  # not a Tiny-ImageNet class
    vec = np.random.default_rng(3).normal(size=(5, 32)).astype(np.float32) * 5
    placed = clf.add_class(tench, vec, wordnet=wordnet)
    assert clf.tree.superclasses.names[placed] == "vertebrate (other)"
    assert tench in clf.classes_ and tench in clf.tree.classes
    assert clf.predict(vec[:2]).tolist() == [tench, tench]
    with pytest.raises(InputError, match="already present"):
        clf.add_class(tench, vec)


@pytest.mark.parametrize("router", ["memory", "centroids"])
def test_a_superclass_without_data_gets_its_shard_when_its_classes_arrive(synthetic, router, tmp_path):
    s = synthetic
    tree = s["tree"]
    late = tree.superclass_of(s["classes"][0])
    old = np.array([tree.superclass_of(c) != late for c in s["y"]])
    clf = TwoStageClassifier(tree, router=router, k=5).fit(s["X"][old], s["y"][old])
    assert late not in clf.superclasses_
    for c in [c for c in s["classes"] if tree.superclass_of(c) == late]:
        assert clf.add_class(c, s["X"][s["y"] == c]) == late
    whole = TwoStageClassifier(tree, router=router, k=5).fit(s["X"], s["y"])
    assert clf.superclasses_ == whole.superclasses_  # the new shard sits in the cut's order
    column = [list(clf.classes_).index(c) for c in whole.classes_]  # added classes were appended
    assert np.allclose(clf.predict_proba(s["Q"])[:, column], whole.predict_proba(s["Q"]), atol=1e-6)
    assert np.allclose(clf.route_proba(s["Q"]), whole.route_proba(s["Q"]), atol=1e-6)
    clf.save(tmp_path / "m")
    assert np.array_equal(TwoStageClassifier.load(tmp_path / "m").predict(s["Q"]), clf.predict(s["Q"]))


def test_remove_by_source(synthetic):
    s = synthetic
    clf = TwoStageClassifier(s["tree"], router="memory", k=5).fit(s["X"], s["y"], source="base")
    clf.add(s["Q"][:4], s["qy"][:4], source="user-upload")
    out = clf.remove(source="user-upload")
    assert sum(v.size for v in out.values()) == 4
    assert clf.n_entries == len(s["X"])
    with pytest.raises(UnknownEntryError, match="no entry has source 'user-upload'"):
        clf.remove(source="user-upload")  # nothing left to unlearn: say so, change nothing
    assert clf.n_entries == len(s["X"])


@pytest.mark.parametrize("spec", ["delta", "full"])
def test_network_specialists_and_storage(synthetic, spec):
    s = synthetic
    clf = TwoStageClassifier(s["tree"], router="head", specialist=spec, head_hidden=64,
                             head_epochs=20, delta_rank=4).fit(s["X"], s["y"])
    assert clf.score(s["Q"], s["qy"]) > 0.8
    st = clf.storage()
    base = clf.base_
    base_bytes = 4 * sum(p.numel() for p in base.parameters())
    groups = clf.class_groups()
    if spec == "delta":
        # Measured from the stored int8 arrays: A, B per layer, row scales and the bias delta.
        expect = sum(
            (64 * 4 + 4 * 32) + 4 * (64 + 4)          # hidden layer: A1 (64x4) B1 (4x32) + scales
            + (len(g) * 4 + 4 * 64) + 4 * (len(g) + 4)  # output rows: A2, B2 + scales
            + 4 * len(g)                                # bias delta, float32
            for g in groups
        )
        assert st["delta_bytes"] == expect
        assert st["heads"] == pytest.approx((base_bytes + expect) / base_bytes)
        assert st["heads"] < 0.2 * len(groups) + 1
    else:
        assert st["heads"] > 0.9 * len(groups) * (64 * 33) / (base_bytes / 4)


def test_bad_input(synthetic, fitted):
    s = synthetic
    with pytest.raises(UnknownClassError, match="unknown label 'n99999999'"):
        TwoStageClassifier(s["tree"]).fit(s["X"][:2], ["n99999999", s["y"][0]])
    with pytest.raises(InputError, match="oracle routing needs y_true"):
        fitted.predict(s["Q"], routing="oracle")
    with pytest.raises(InputError, match="m = 99 exceeds"):
        fitted.predict(s["Q"], routing="soft", m=99)
    with pytest.raises(InputError, match="expected 32-d"):
        fitted.predict(np.ones((2, 8), dtype=np.float32))
    with pytest.raises(InputError, match="not fitted"):
        TwoStageClassifier(s["tree"]).predict(s["Q"])
    with pytest.raises(InputError, match="router must be"):
        TwoStageClassifier(s["tree"], router="magic").fit(s["X"], s["y"])
    with pytest.raises(InputError, match="m must be a positive integer"):
        fitted.predict(s["Q"], routing="soft", m=0)


@pytest.mark.parametrize("router, spec", [("centroids", "memory"), ("memory", "memory"), ("head", "delta"),
                                          ("head", "full")])
def test_save_load_round_trip(synthetic, tmp_path, router, spec):
    s = synthetic
    clf = TwoStageClassifier(s["tree"], router=router, specialist=spec, head_hidden=32, head_epochs=4,
                             fingerprint="fp-test").fit(s["X"], s["y"])
    clf.save(tmp_path / "clf")
    back = TwoStageClassifier.load(tmp_path / "clf", fingerprint="fp-test")
    np.testing.assert_allclose(back.predict_proba(s["Q"], routing="soft", m=2),
                               clf.predict_proba(s["Q"], routing="soft", m=2), atol=1e-6)
    np.testing.assert_array_equal(back.classes_, clf.classes_)
    from memory import BackboneMismatchError

    with pytest.raises(BackboneMismatchError, match="fp-test"):
        TwoStageClassifier.load(tmp_path / "clf", fingerprint="other")


@pytest.mark.parametrize("router, spec", [("centroids", "memory"), ("memory", "memory"), ("head", "delta")])
def test_pickle_round_trip(synthetic, router, spec):
    import pickle

    s = synthetic
    clf = TwoStageClassifier(s["tree"], router=router, specialist=spec, k=5, head_epochs=2,
                             router_epochs=2).fit(s["X"], s["y"])
    back = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(back.predict_proba(s["Q"]), clf.predict_proba(s["Q"]))
    if spec == "memory":  # the copy is independent and editable: its locks were made anew
        back.remove_class(str(back.classes_[0]))
        assert str(back.classes_[0]) != str(clf.classes_[0]) and len(clf.classes_) == len(back.classes_) + 1


def test_scikit_learn_parameters_clone_and_not_fitted(synthetic):
    from sklearn.base import clone

    from router import NotFittedError

    s = synthetic
    clf = TwoStageClassifier(s["tree"], router="memory", k=7, routing="soft", m=2)
    params = clf.get_params()
    assert params["k"] == 7 and params["routing"] == "soft" and params["tree"] is s["tree"]
    twin = clone(clf).set_params(k=3)
    assert twin.k == 3 and clf.k == 7 and not hasattr(twin, "shard_set_")
    with pytest.raises(NotFittedError, match="not fitted"):
        twin.predict(s["Q"])
    fitted = twin.fit(s["X"], s["y"])
    assert fitted.n_features_in_ == s["X"].shape[1]
    with pytest.raises(InputError):  # NotFittedError is also the library's InputError
        clone(clf).predict_proba(s["Q"])


def test_probability_columns_are_sorted_and_stay_put_across_edits(synthetic, wordnet):
    s = synthetic
    clf = TwoStageClassifier(s["tree"], router="memory", k=5).fit(s["X"], s["y"])
    before = clf.classes_.tolist()
    assert before == sorted(set(s["y"].tolist()))  # as np.unique sorts them
    p = clf.predict_proba(s["Q"])
    tench = "n01440764"  # sorts before every Tiny-ImageNet wnid, yet goes to the last column
    far = np.random.default_rng(3).normal(size=(5, s["X"].shape[1])).astype(np.float32) * 50
    clf.add_class(tench, far, wordnet=wordnet)
    assert clf.classes_.tolist() == [*before, tench]
    after = clf.predict_proba(s["Q"])
    assert after.shape[1] == p.shape[1] + 1
    np.testing.assert_array_equal(after.argmax(1), p.argmax(1))  # far away: no old column moved or changed
    gone = before[1]
    clf.remove_class(gone)
    assert clf.classes_.tolist() == [c for c in before if c != gone] + [tench]
