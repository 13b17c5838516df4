"""The explorer's model side, against the public API on the same model."""

import numpy as np
import pytest

from hierarchy import HierarchyError
from memory import InputError, Steer, UnknownEntryError, open_image
from router import QueryEncoder, TwoStageClassifier
from router.explore import Explorer, Mistakes, parse_steer


def _embed(clf, path):
    return QueryEncoder(clf, progress=False).images([open_image(path)])


def test_prediction_and_steering_equal_the_api(explore_model):
    ex = Explorer(explore_model["model"])
    val, a, b = explore_model["val"], explore_model["a"], explore_model["b"]
    path = val.root / explore_model["a_refs"][0]
    qid = ex.add_query(open_image(path), "q")
    clf = TwoStageClassifier.load(explore_model["model"])
    X = _embed(clf, path)
    plain = ex.predict(qid)
    assert plain["prediction"]["class"] == clf.predict(X)[0] == b  # the mislabelled web copies win
    assert plain["neighbours"][0]["source"] == "web" and plain["neighbours"][0]["similarity"] > 0.99
    assert len(plain["neighbours"]) == clf.k and len(plain["route"]) == len(clf.superclasses_)
    assert np.isclose(sum(r["p"] for r in plain["route"]), 1.0)
    assert [r["p"] for r in plain["route"]] == sorted((r["p"] for r in plain["route"]), reverse=True)
    steered = ex.predict(qid, parse_steer({"exclude_sources": ["web"]}))
    api = clf.predict(X, steer=Steer(exclude_sources=("web",)))[0]
    assert steered["prediction"]["class"] == api == a
    assert steered["changed"] and steered["baseline"]["prediction"]["class"] == b
    assert all(nb["source"] != "web" for nb in steered["neighbours"])
    top = {c["class"]: c["p"] for c in steered["top"]}
    np.testing.assert_allclose(top[a], clf.predict_proba(X, steer=Steer(exclude_sources=("web",)))[0][
        list(clf.class_ids_).index(a)])


def test_edits_are_the_apis_edits(explore_model, model_copy):
    served, twin = model_copy("served"), model_copy("twin")
    ex = Explorer(served)
    rec = ex.unlearn_source("web")
    clf = TwoStageClassifier.load(twin)
    removed = clf.remove(source="web")
    assert rec.entries == sum(len(v) for v in removed.values()) == len(explore_model["a_refs"])
    rec = ex.set_weight(0.25, label=explore_model["a"])
    clf.set_weight(0.25, label=explore_model["a"])
    X = QueryEncoder(clf, progress=False).images([open_image(p) for p in explore_model["val"].paths])
    saved = TwoStageClassifier.load(served)
    np.testing.assert_array_equal(saved.predict(X), clf.predict(X))
    np.testing.assert_allclose(saved.predict_proba(X), clf.predict_proba(X))
    assert [e.action for e in ex.edits] == ["unlearn source", "weight 0.25"]


def test_added_images_join_their_class_and_a_new_class_is_placed(explore_model, model_copy, tiny_layout):
    ex = Explorer(model_copy())
    val = explore_model["val"]
    files = [(r, (val.root / r).read_bytes()) for r in val.refs[:2]]
    rec = ex.add_images(files, "n02085620", source="mine")  # Chihuahua: a new wnid, placed through WordNet
    assert rec.entries == 2 and rec.superclasses == [ex.clf.tree.superclass_of("n02085620")]
    assert "n02085620" in ex.clf.class_ids_ and "mine" in ex.summary()["sources"]
    rec = ex.add_images(files[:1], explore_model["a"])
    assert rec.target == explore_model["a"] and rec.entries == 1
    with pytest.raises(HierarchyError, match="not a wnid"):
        ex.add_images(files, "my own class")
    with pytest.raises(InputError, match="not a usable image"):
        ex.add_images([("x.png", b"not an image")], explore_model["a"])
    assert ex.clf.n_entries == TwoStageClassifier.load(ex.path).n_entries  # the refused add wrote nothing


def test_another_writers_save_is_reloaded(explore_model, model_copy):
    path = model_copy()
    ex = Explorer(path)
    before = ex.clf.n_entries
    clf = TwoStageClassifier.load(path)
    clf.remove(source="web")
    clf.save(path)
    qid = ex.add_query(open_image(explore_model["val"].paths[0]), "q")
    ex.predict(qid)
    assert ex.clf.n_entries == before - len(explore_model["a_refs"])


@pytest.mark.parametrize("spec, message", [
    ({"exclude_things": []}, "unknown steering keys"),
    ({"exclude_ids": [-1]}, "non-negative integers"),
    ({"exclude_sources": "web"}, "must be a list"),
    ({"label_weights": {"a": -1}}, "finite weight >= 0"),
    ({"label_weights": {"a": float("nan")}}, "finite weight >= 0"),
    ({"id_weights": {"x": 1}}, "entry ids"),
    ([], "JSON object"),
])
def test_bad_steering_is_named(spec, message):
    with pytest.raises(InputError, match=message):
        parse_steer(spec)


def test_steering_spec_maps_to_steer():
    assert parse_steer({}) is None and parse_steer({"exclude_ids": []}) is None
    s = parse_steer({"exclude_ids": [3], "id_weights": {"4": 0.5}, "source_weights": {"web": 0}})
    assert s == Steer(exclude_ids=(3,), id_weights={4: 0.5}, source_weights={"web": 0.0})


def test_unknown_query_is_named(explore_model):
    with pytest.raises(UnknownEntryError, match="query the image again"):
        Explorer(explore_model["model"]).predict("feedbeef")


def test_mistakes_follow_the_predictions_file(explore_model):
    from router import load_predictions

    clf = TwoStageClassifier.load(explore_model["model"])
    m = Mistakes(explore_model["eval"], clf.tree)
    routed = load_predictions(explore_model["eval"] / "predictions.csv")["routed"]
    assert m.error_matrix().sum() == routed.wrong.sum() >= len(explore_model["a_refs"])
    i = m.superclass_ids.index(clf.assignment_[explore_model["a"]])
    pairs = m.cell(i, i)
    assert pairs[0] == {"true": explore_model["a"], "pred": explore_model["b"], "count": len(explore_model["a_refs"])}
    rows = m.examples(explore_model["a"], explore_model["b"])
    assert sorted(r["ref"] for r in rows) == sorted(explore_model["a_refs"])
    summary = m.summary()
    assert summary["routed"]["errors"] == routed.wrong.sum()
    assert summary["routed"]["routing_errors"] + summary["routed"]["specialist_errors"] == routed.wrong.sum()
    with pytest.raises(InputError, match="outside"):
        m.cell(len(m.superclass_ids), 0)
    with pytest.raises(InputError, match="no predictions.csv"):
        Mistakes(explore_model["model"], clf.tree)


def test_a_query_unlike_the_memory_is_flagged(explore_model):
    from PIL import Image

    ex = Explorer(explore_model["model"])
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, size=(64, 64, 3), dtype=np.uint8))
    odd = ex.predict(ex.add_query(noise, "noise"))
    same = ex.predict(ex.add_query(open_image(explore_model["val"].paths[0]), "val"))
    assert odd["unlike"] is not None and odd["unlike"]["nearest"] < odd["unlike"]["typical"] == ex.typical
    assert odd["unlike"]["nearest"] == odd["neighbours"][0]["similarity"]
    assert same["unlike"] is None
