"""The explorer on a network-level model: its neighbours come from the specialist memories (the page itself,
in Chromium, is tested for both model kinds in tests/router/test_surface.py)."""

import shutil

import pytest

from memory import Steer, open_image, tiny_imagenet
from router import NetworkTwoStage, QueryEncoder, main
from router.explore import Explorer

@pytest.fixture(scope="module")
def network_model(tiny_layout, tmp_path_factory):
    work = tmp_path_factory.mktemp("network-explore")
    assert main(["build", "--data", str(tiny_layout["tar"]), "--router", "generalist", "--specialist", "tail-delta",
                 "--size", "64", "--crop", "1", "--epochs", "2", "--specialist-epochs", "1", "--rank", "4",
                 "--k", "3", "--no-progress", "-o", str(work / "net")]) == 0
    return work / "net"


@pytest.fixture
def net_copy(network_model, tmp_path):
    return shutil.copytree(network_model, tmp_path / "net")


def test_a_query_shows_the_specialist_memorys_neighbours(network_model, tiny_layout):
    explorer = Explorer(network_model, neighbours=3)
    clf = NetworkTwoStage.load(network_model)
    val = tiny_imagenet("val", tiny_layout["tar"])
    image = open_image(val.paths[0])
    shown = explorer.predict(explorer.add_query(image, "val_0"))
    X = QueryEncoder(clf, progress=False).images([image])
    assert shown["prediction"]["class"] == str(clf.predict(X)[0])  # what the API predicts
    assert [r["superclass"] for r in shown["route"]][0] == clf.superclasses_[int(clf.route_proba(X)[0].argmax())]
    assert len(shown["neighbours"]) == 3
    train_root = tiny_imagenet("train", tiny_layout["tar"]).root
    for nb in shown["neighbours"]:  # each neighbour is a training image, found where the model was trained
        assert nb["image"] and (train_root / nb["image"]).is_file()


def test_steering_changes_the_memory_votes_not_the_route(network_model, tiny_layout):
    explorer = Explorer(network_model, neighbours=3)
    image = open_image(tiny_imagenet("val", tiny_layout["tar"]).paths[0])
    qid = explorer.add_query(image, "val_0")
    base = explorer.predict(qid)
    first = base["neighbours"][0]
    steered = explorer.predict(qid, Steer(exclude_ids=(first["id"],)))
    assert first["id"] not in [nb["id"] for nb in steered["neighbours"]]
    assert steered["route"] == base["route"]  # the generalist routes; no memory edit or steer changes it
    assert steered["steered"] and "baseline" in steered


def test_edits_go_to_the_memories_and_a_new_class_is_refused(net_copy, tiny_layout):
    explorer = Explorer(net_copy, neighbours=3)
    before = explorer.clf.n_entries
    rec = explorer.set_weight(0.5, source="tiny-imagenet-200/train")
    assert rec.entries == before
    assert {r["weight"] for m in explorer.clf.shards_ for r in m.get(m.ids_)} == {0.5}
    cls = str(explorer.clf.class_ids_[0])
    rec = explorer.unlearn_class(cls)
    assert rec.entries > 0 and explorer.clf.n_entries == before - rec.entries
    assert NetworkTwoStage.load(net_copy).n_entries == before - rec.entries  # saved
    png = (tiny_layout["folder"] / "val" / "images" / "val_0.JPEG").read_bytes()
    with pytest.raises(Exception, match="cannot add the new class"):
        explorer.add_images([("a.jpg", png)], "n02099601")
    assert NetworkTwoStage.load(net_copy).n_entries == before - rec.entries  # unchanged by the refusal
