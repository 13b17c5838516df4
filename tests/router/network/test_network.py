"""The network-level classifier end to end on real images: fit, predict, explain, edit, save, load."""

import numpy as np
import pytest

from hierarchy import UnknownClassError, shipped_tree
from memory import BackboneMismatchError, InputError, MemoryFormatError, UnknownEntryError, tiny_imagenet
from router import NetworkTwoStage, TwoStageClassifier, load_classifier

OPTS = dict(size=64, crop_pct=1.0, epochs=3, specialist_epochs=1, rank=4, k=3, progress=False)


@pytest.fixture(scope="module")
def data(tiny_layout):
    return tiny_imagenet("train", tiny_layout["folder"]), tiny_imagenet("val", tiny_layout["folder"])


@pytest.fixture(scope="module")
def fitted(data):
    train, _ = data
    return NetworkTwoStage(shipped_tree("tiny-imagenet-200"), specialist="tail-delta", **OPTS).fit(train)


def test_images_in_predictions_out(fitted, data):
    _, val = data
    pred = fitted.predict(val)
    assert set(pred) <= set(fitted.classes_) and len(pred) == len(val)
    assert list(fitted.predict([str(p) for p in val.paths])) == list(pred)  # paths give the same answer
    assert fitted.score(val, val.labels) >= 5 / 6  # measured: 6 of 6 on these drawn images
    p = fitted.predict_proba(val)
    assert p.shape == (6, 3) and np.allclose(p.sum(1), 1)
    assert len(fitted.superclasses_) == 2  # goldfish and salamander share one superclass, tabby another
    oracle = fitted.predict_proba(val, routing="oracle", y_true=val.labels)
    assert np.allclose(oracle.sum(1), 1)
    st = fitted.storage()
    assert st["tails"] <= st["published_bound_tails"] and st["memory_entries"] == 18


def test_predict_runs_fewer_specialists_for_the_same_answers(fitted, data):
    _, val = data
    for routing in ("soft", "hard"):
        full = fitted.predict_proba(val, routing=routing)
        assert list(fitted.predict(val, routing=routing)) == list(fitted.classes_[full.argmax(1)])
    runs, every = fitted.specialists_run(val), fitted.specialists_run(val, settle=False)
    assert every.tolist() == [2] * 6  # soft routing over both superclasses
    assert runs.tolist() == [1] * 6  # measured: each answer settled by its first superclass


def test_explain_names_route_and_neighbours(fitted, data):
    _, val = data
    e = fitted.explain(val.paths[:2], top=2)[0]
    assert abs(sum(e.route.values()) - 1) < 1e-9
    assert e.searched and e.prediction in fitted.classes_
    assert len(e.neighbours) == 3 and all(n.weight > 0 for n in e.neighbours)
    assert all(n.ref.startswith("train/") for n in e.neighbours)


def test_save_load_round_trip_is_identical(fitted, data, tmp_path):
    _, val = data
    fitted.save(tmp_path / "m")
    back = load_classifier(tmp_path / "m")
    assert isinstance(back, NetworkTwoStage)
    assert np.array_equal(back.predict_proba(val), fitted.predict_proba(val))
    assert back.fingerprint == fitted.fingerprint and back.mix_ == fitted.mix_ and back.mix == fitted.mix
    with pytest.raises(BackboneMismatchError, match="trunk"):
        load_classifier(tmp_path / "m", fingerprint="lite0@224/crop0.875:aaaa:bbbb|trunk<blocks.6")


def test_corrupt_and_unlisted_files_are_refused(fitted, tmp_path):
    root = fitted.save(tmp_path / "m2")
    snap = next(p for p in (root / "snapshots").iterdir() if not p.name.startswith("."))
    raw = bytearray((snap / "specialists.npz").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (snap / "specialists.npz").write_bytes(bytes(raw))
    with pytest.raises(MemoryFormatError, match="specialists.npz"):
        load_classifier(root)
    root = fitted.save(tmp_path / "m3")
    snap = next(p for p in (root / "snapshots").iterdir() if not p.name.startswith("."))
    (snap / "extra.npz").write_bytes(b"x")
    with pytest.raises(MemoryFormatError, match="not listed"):
        load_classifier(root)


def test_adding_to_one_shard_leaves_the_others_bit_identical(fitted, data, tmp_path):
    _, val = data
    fitted.save(tmp_path / "edit")
    clf = load_classifier(tmp_path / "edit")
    tabby = [i for i, c in enumerate(val.labels) if c == "n02123045"]
    home = clf.cut_.of("n02123045")
    before = {s: (m.ids_.copy(), m.vectors(m.ids_).copy()) for s, m in zip(clf.superclasses_, clf.memories_)}
    added = clf.add([val.paths[i] for i in tabby], ["n02123045"] * len(tabby), source="late")
    assert list(added) == [home] and len(added[home]) == 2
    for s, m in zip(clf.superclasses_, clf.memories_):
        if s == home:
            assert len(m) == len(before[s][0]) + 2
        else:
            assert np.array_equal(m.ids_, before[s][0]) and np.array_equal(m.vectors(m.ids_), before[s][1])
    # removal is exact for the memory and leaves the networks as they were
    weights = {k: v.clone() for k, v in clf.generalist_.state_dict().items()}
    removed = clf.remove(source="late")
    assert [len(v) for v in removed.values()] == [2]
    for s, m in zip(clf.superclasses_, clf.memories_):
        assert np.array_equal(m.ids_, before[s][0])
    assert all((clf.generalist_.state_dict()[k] == v).all() for k, v in weights.items())
    with pytest.raises(UnknownEntryError, match="nothing was removed"):
        clf.remove(source="late")
    with pytest.raises(UnknownClassError, match="no output"):
        clf.add(val.paths[:1], ["n09999999"])


def test_bad_input(fitted, data):
    train, _ = data
    with pytest.raises(InputError, match="shape"):
        fitted.predict(np.zeros((2, 10, 2, 2), dtype=np.float32))
    with pytest.raises(InputError, match="NaN"):
        fitted.predict(np.full((1, 192, 2, 2), np.nan, dtype=np.float32))
    with pytest.raises(InputError, match="image paths"):
        fitted.predict(np.zeros((2, 5)))
    clf = NetworkTwoStage(shipped_tree("tiny-imagenet-200"), **OPTS)
    with pytest.raises(UnknownClassError, match="not a class"):
        clf.fit(train.paths[:4], ["n01443537", "n01629819", "cat", "n02123045"])
    with pytest.raises(InputError, match="not fitted"):
        clf.predict(train.paths[:1])
    with pytest.raises(InputError, match="specialist must be"):
        NetworkTwoStage(shipped_tree("tiny-imagenet-200"), specialist="delta").check_params()
    with pytest.raises(InputError, match="mix"):
        NetworkTwoStage(shipped_tree("tiny-imagenet-200"), mix=(0.8, 0.5)).fit(train)
    for beta in (-1.0, True, "4", float("inf")):
        with pytest.raises(InputError, match="hierarchy_beta must be a number >= 0"):
            NetworkTwoStage(shipped_tree("tiny-imagenet-200"), hierarchy_beta=beta).check_params()


def test_hierarchy_aware_labels_are_trained_and_saved(data, tmp_path):
    from router import load_model

    train, _ = data
    clf = NetworkTwoStage(shipped_tree("tiny-imagenet-200"), hierarchy_beta=8.0, **OPTS).fit(train)
    assert clf.history_["generalist"]["loss"][-1] < clf.history_["generalist"]["loss"][0]
    assert load_model(clf.save(tmp_path / "m")).hierarchy_beta == 8.0


def test_dev_split_chooses_epochs_and_mix(data):
    train, val = data
    start = (0.1, 0.1)  # outside the grid: a fit that chose nothing would keep it
    clf = NetworkTwoStage(shipped_tree("tiny-imagenet-200"), dev_per_class=2, **{**OPTS, "mix": start}).fit(train)
    assert clf.n_entries == 12  # 4 of 6 images per class stay in the memories, 2 are held out
    grid = {(a, b) for a in (0.0, 0.25, 0.5) for b in (0.0, 0.25, 0.5) if a + b <= 0.75}
    scores = clf.history_["mix"]["dev_top1"]
    assert {tuple(float(v) for v in k.split(",")) for k in scores} == grid  # every candidate was scored
    best = max(scores.values())
    first_best = next(k for k, v in scores.items() if v == best)  # ties go to the first in the grid
    assert clf.mix == start  # the parameter stays as given (scikit-learn's rule); the fitted mix_ is chosen
    assert clf.mix_ != start and clf.mix_ == tuple(float(v) for v in first_best.split(","))
    assert list(clf.mix_) == clf.history_["mix"]["chosen"]
    hist = clf.history_
    assert len(hist["generalist"]["dev_top1"]) == 3  # scored after each epoch
    assert all(len(d) == 2 for d in hist["specialists"]["dev_top1"])  # epoch 0 (the generalist) and 1
    assert all(e in (0, 1) for e in hist["specialists"]["best_epoch"])
    assert clf.predict(val).shape == (6,)


def test_two_writers_never_lose_an_edit(fitted, data, tmp_path):
    from memory import ConcurrentWriteError
    from router import edit_classifier

    _, val = data
    root = fitted.save(tmp_path / "shared")
    a, b = load_classifier(root), load_classifier(root)
    a.add(val.paths[:1], ["n01443537"], source="writer-a")
    b.add(val.paths[1:2], ["n01443537"], source="writer-b")
    a.save(root)
    with pytest.raises(ConcurrentWriteError, match="another writer"):
        b.save(root)  # b was loaded before a's save: saving would drop a's edit
    with edit_classifier(root) as c:  # the locked route: load, edit, save under the writer lock
        c.add(val.paths[1:2], ["n01443537"], source="writer-b")
    sources = {s for m in load_classifier(root).shards_ for s in (m.sources_ if len(m) else [])}
    assert {"writer-a", "writer-b"} <= sources


def test_a_build_says_each_stage_and_epoch_in_a_log(data, capfd, monkeypatch, tmp_path):
    """stderr is not a terminal here: lines, not a redrawn bar, one per stage and epoch."""
    monkeypatch.setenv("SUPERSUB_CACHE", str(tmp_path))  # no cached trunk: that stage runs and says so
    train, _ = data
    NetworkTwoStage(shipped_tree("tiny-imagenet-200"), dev_per_class=2, **{**OPTS, "progress": True}).fit(train)
    err = capfd.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("supersub: ")]
    assert any(ln.startswith("supersub: trunk ") and "done" in ln for ln in lines), err
    assert [ln.split(":")[1].strip() for ln in lines if "generalist epoch" in ln] == \
        [f"generalist epoch {e}/{OPTS['epochs']}" for e in range(1, OPTS["epochs"] + 1)]
    assert sum("specialist " in ln for ln in lines) >= 2 and any("mix chosen" in ln for ln in lines)
    assert "\r" not in err  # no bar redraws


def test_one_model_contract(fitted, tmp_path):
    """Each kind is its own class; load_model reads either; TwoStageClassifier is never a network model."""
    from router import load_model
    from sklearn.base import clone

    tree = shipped_tree("tiny-imagenet-200")
    with pytest.raises(InputError, match="use router.NetworkTwoStage"):
        TwoStageClassifier(tree, router="generalist").check_params()
    assert type(TwoStageClassifier(tree, router="generalist")) is TwoStageClassifier  # no class switch
    params = NetworkTwoStage(tree, mix=[0.1, 0.2], k=7).get_params()
    assert params["mix"] == [0.1, 0.2] and params["k"] == 7  # stored as given, checked in fit
    assert clone(NetworkTwoStage(tree, k=7)).k == 7
    root = fitted.save(tmp_path / "net")
    assert isinstance(load_model(root), NetworkTwoStage)
    with pytest.raises(Exception, match="holds a network-level model, not a memory-level one; load it with router.load_model"):
        TwoStageClassifier.load(root)


def test_one_seed_gives_a_bit_identical_model(data, fitted, tmp_path):
    import hashlib
    import re

    import torch

    train, val = data
    torch.manual_seed(1234)  # whatever state the caller's generators are in
    torch.rand(7)
    np.random.seed(99)
    again = NetworkTwoStage(shipped_tree("tiny-imagenet-200"), specialist="tail-delta", **OPTS).fit(train)
    assert np.array_equal(again.predict_proba(val), fitted.predict_proba(val))
    fitted.save(tmp_path / "a")
    again.save(tmp_path / "b")

    def contents(root):  # every saved array and index, by its path with the snapshot names left out
        out = {}
        for p in sorted(root.rglob("*")):
            key = re.sub(r"snapshots/[^/]+/", "", p.relative_to(root).as_posix())
            if p.suffix == ".npz":
                with np.load(p) as z:  # the zip's own member dates differ; the arrays must not
                    out.update({f"{key}:{name}": hashlib.sha256(z[name].tobytes()).hexdigest() for name in z.files})
            elif p.suffix in (".npy", ".faiss"):
                out[key] = hashlib.sha256(p.read_bytes()).hexdigest()
        return out

    a, b = contents(tmp_path / "a"), contents(tmp_path / "b")
    assert len(a) > 10 and a == b
    state = torch.random.get_rng_state()
    other = NetworkTwoStage(shipped_tree("tiny-imagenet-200"), specialist="tail-delta", seed=1, **OPTS).fit(train)
    assert torch.equal(torch.random.get_rng_state(), state)  # fitting leaves the caller's generator alone
    assert not np.array_equal(other.predict_proba(val), fitted.predict_proba(val))  # the seed matters
