"""One surface, both model kinds: every front end works the same for the memory-level and the
network-level model, on a user's own labelled images (class folders outside WordNet).

Training and test files share names, and one test image is filed under the wrong class, so
every picture a surface shows can be traced: a neighbour must be the training image it names,
never a test image of the same name.  Pictures are compared by the hash of their decoded pixels.
"""

import base64
import hashlib
import json

import numpy as np
import pytest

from memory import InputError, MemoryFormatError, open_image
from router import NetworkTwoStage, TwoStageClassifier, load_model, main
from router.explore import ExploreServer, Explorer, create_app

KINDS = ["memory", "network"]
NAMES = ["red_round", "green_box", "blue_wedge"]
NETWORK_BUILD = ["--router", "generalist", "--specialist", "tail-delta", "--crop", "1", "--epochs", "1",
                 "--specialist-epochs", "1", "--rank", "4"]


def pixels(image) -> str:
    """The hash of an image's decoded RGB pixels (a file path, PNG bytes, or a PIL image)."""
    if isinstance(image, bytes):
        import io

        from PIL import Image

        image = Image.open(io.BytesIO(image))
    elif not hasattr(image, "convert"):
        image = open_image(image)
    return hashlib.sha256(np.asarray(image.convert("RGB")).tobytes()).hexdigest()


@pytest.fixture(scope="module")
def own_images(tmp_path_factory, draw):
    root = tmp_path_factory.mktemp("own-images")
    for split, n, seed in (("train", 8, 0), ("test", 3, 500), ("calib", 12, 700)):
        for k, c in enumerate(NAMES):
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                draw(k, seed + 100 * k + i).save(root / split / c / f"img_{i}.jpg")
    draw(1, 999).save(root / "test" / "red_round" / "img_2.jpg")  # a box filed as red_round
    (root / "hierarchy.csv").write_text("class,superclass\nred_round,warm\ngreen_box,cool\nblue_wedge,cool\n")
    assert main(["tree", "build", "--mapping", str(root / "hierarchy.csv"), "--cut", "balanced:2",
                 "-o", str(root / "tree.json")]) == 0
    return {"root": root, "trained": {pixels(p) for p in (root / "train").rglob("*.jpg")},
            "tested": {pixels(p) for p in (root / "test").rglob("*.jpg")} | {
                pixels(p) for p in (root / "calib").rglob("*.jpg")}}


@pytest.fixture(scope="module", params=KINDS)
def built(request, own_images, tmp_path_factory):
    """Each kind, built once from the command line and evaluated on the test folder."""
    kind, root = request.param, own_images["root"]
    work = tmp_path_factory.mktemp(f"surface-{kind}")
    assert main(["build", "--data", str(root / "train"), "--tree", str(root / "tree.json"), "--size", "64",
                 "--k", "3", "--no-progress", "-o", str(work / "model"),
                 *(NETWORK_BUILD if kind == "network" else [])]) == 0
    assert main(["evaluate", "--model", str(work / "model"), "--data", str(root / "test"), "--split", "test",
                 "--no-progress", "-o", str(work / "eval")]) == 0
    return {"kind": kind, "model": work / "model", "eval": work / "eval", **own_images}


def test_load_model_gives_the_kind_and_each_class_loads_only_its_own(built):
    clf = load_model(built["model"])
    own, other = (TwoStageClassifier, NetworkTwoStage) if built["kind"] == "memory" else \
        (NetworkTwoStage, TwoStageClassifier)
    assert type(clf) is own and type(own.load(built["model"])) is own
    with pytest.raises(MemoryFormatError, match="load it with router.load_model"):
        other.load(built["model"])
    assert repr(clf).startswith(f"{own.__name__}(router=") and f"{len(NAMES)} classes" in repr(clf)


def test_predict_and_explain_show_training_images(built, capsys):
    test = built["root"] / "test" / "green_box"
    capsys.readouterr()
    assert main(["predict", "--model", str(built["model"]), "--top", "1", "--neighbours", "2", str(test)]) == 0
    out = capsys.readouterr().out
    assert out.count("route:") == 3 and out.count("green_box") >= 3
    clf = load_model(built["model"])
    from router import QueryEncoder

    X = QueryEncoder(clf, progress=False).images([open_image(p) for p in sorted(test.glob("*.jpg"))])
    explained = clf.explain(X, top=2)
    assert [e.prediction for e in explained] == [str(p) for p in clf.predict(X)]
    for e in explained:
        assert abs(sum(e.route.values()) - 1) < 1e-5 and e.searched and len(e.neighbours) == 3
        for nb in e.neighbours:  # a stored training image, of the class it says
            assert nb.label in NAMES and nb.ref.startswith(f"{nb.label}/")
            assert pixels(built["root"] / "train" / nb.ref) in built["trained"]


def test_evaluate_report_gallery_and_compare(built, capsys):
    metrics = json.loads((built["eval"] / "metrics.json").read_text())
    assert metrics["queries"] == 9 and metrics["data_root"] == str((built["root"] / "test").resolve())
    assert set(metrics) >= {"routed", "flat_baseline", "flat", "routing"} and "flat_knn" not in metrics
    assert metrics["routing"]["mode"] == ("hard" if built["kind"] == "memory" else "soft")
    out = built["eval"].parent / "report"
    assert main(["report", "--predictions", str(built["eval"] / "predictions.csv"), "--model", str(built["model"]),
                 "--system", "routed", "--baseline", "flat", "-o", str(out)]) == 0
    html = (out / "report.html").read_text()
    gallery = html[html.index('id="gallery"'):html.index('id="comparison"')]
    import re

    figures = re.findall(r'<figure( class="query")?><img alt="[^"]*" src="data:image/png;base64,([^"]+)"', gallery)
    neighbours = {pixels(base64.b64decode(b)) for query, b in figures if not query}
    assert figures and figures[0][0] and neighbours  # the mistake, then the neighbours that outvoted it
    assert neighbours <= built["trained"] and not neighbours & built["tested"]
    assert pixels(base64.b64decode(figures[0][1])) == pixels(built["root"] / "test" / "red_round" / "img_2.jpg")
    capsys.readouterr()
    assert main(["compare", str(built["eval"] / "metrics.json")]) == 0
    shown = capsys.readouterr().out
    assert "best routed" in shown and metrics["flat"] in shown
    gap = metrics["routed_minus_flat"]  # the paired interval, in metrics.json and in compare's line
    assert gap["difference"] == pytest.approx(metrics["routed"]["top1"] - metrics["flat_baseline"]["top1"], abs=1e-4)
    assert gap["n"] == 9 and gap["interval_95"][0] <= gap["difference"] <= gap["interval_95"][1]
    assert f"paired over the same 9 queries: {100 * gap['difference']:+.1f} points" in shown


def test_an_evaluation_runs_each_model_once_and_gives_what_separate_runs_give(built, tmp_path, monkeypatch):
    from router import QueryEncoder, evaluate_with_flat, evaluation_outputs, flat_from, write_evaluation

    clf = load_model(built["model"])
    paths = sorted((built["root"] / "test").rglob("*.jpg"))
    y = [p.parent.name for p in paths]
    X = QueryEncoder(clf, progress=False).images([open_image(p) for p in paths])
    flat = flat_from(clf)
    calls = []
    real = type(clf).predict_proba
    monkeypatch.setattr(type(clf), "predict_proba", lambda self, *a, **k: calls.append(k) or real(self, *a, **k))
    outs = evaluation_outputs(clf, X, y, flat)
    assert len(calls) == 2  # routed, and oracle-routed
    with_outputs = evaluate_with_flat(clf, X, y, flat, decision="crm", outputs=outs)
    assert len(calls) == 2
    assert with_outputs == evaluate_with_flat(clf, X, y, flat, decision="crm")
    refs = [str(p.relative_to(built["root"] / "test")) for p in paths]
    write_evaluation(tmp_path / "a", clf, X, y, refs, with_outputs, flat, outputs=outs)
    write_evaluation(tmp_path / "b", clf, X, y, refs, with_outputs, flat)
    assert (tmp_path / "a" / "predictions.csv").read_text() == (tmp_path / "b" / "predictions.csv").read_text()
    with pytest.raises(InputError, match="outputs are of 9 queries, not of the 8 given"):
        evaluate_with_flat(clf, X[:8], y[:8], flat, outputs=outs)
    with pytest.raises(InputError, match="no flat baseline"):
        evaluate_with_flat(clf, X, y, flat, outputs=evaluation_outputs(clf, X, y))


def test_edits_where_the_kind_takes_them_and_a_clear_refusal_where_not(built, tmp_path, capsys):
    import shutil

    model = shutil.copytree(built["model"], tmp_path / "model")
    image = str(built["root"] / "test" / "blue_wedge" / "img_0.jpg")
    before = load_model(model).n_entries
    assert main(["memory", "add", str(model), image, "--label", "blue_wedge", "--source", "late"]) == 0
    assert load_model(model).n_entries == before + 1
    assert main(["memory", "set-weight", str(model), "0", "--source", "late"]) == 0
    assert "set the weight of 1 entries to 0" in capsys.readouterr().out
    assert main(["memory", "remove", str(model), "--source", "late"]) == 0
    assert load_model(model).n_entries == before
    snapshot = {p.relative_to(model): p.read_bytes() for p in model.rglob("*") if p.is_file()}
    new_class = ["memory", "add", str(model), image, "--label", "purple_star", "--superclass", "cool"]
    if built["kind"] == "memory":
        assert main(new_class) == 0 and "purple_star" in load_model(model).classes_
    else:  # a new class cannot enter trained networks: a clear error, the model unchanged
        assert main(new_class) == 2 and "no output for it" in capsys.readouterr().err
        assert {p.relative_to(model): p.read_bytes() for p in model.rglob("*") if p.is_file()} == snapshot
        assert main(["build", "--data", str(built["root"] / "train"), "--tree", str(built["root"] / "tree.json"),
                     *NETWORK_BUILD, "--backend", "milvus://127.0.0.1:19530/x", "-o", str(tmp_path / "m")]) == 2
        assert "keeps its memories embedded" in capsys.readouterr().err


def test_the_explorer_page_shows_the_training_images_that_voted(built, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    explorer = Explorer(built["model"], neighbours=3)
    with ExploreServer(create_app(explorer)) as server:
        page.goto(server.url + "/")
        page.set_input_files("#upload", str(built["root"] / "test" / "green_box" / "img_1.jpg"))
        page.wait_for_selector("#neighbours figure")
        assert page.locator("#neighbours figure").count() == 3
        shown = page.evaluate("Promise.all(Array.from(document.querySelectorAll('#neighbours img')).map("
                              "img => fetch(img.src).then(r => r.arrayBuffer()).then("
                              "b => Array.from(new Uint8Array(b)))))")
        assert len(shown) == 3
        assert {pixels(bytes(b)) for b in shown} <= built["trained"]
        summary = page.locator("#model-summary").inner_text()
        assert ("generalist router" in summary) == (built["kind"] == "network")
    page.close()
    assert errors == []


@pytest.fixture(scope="module")
def calibrated(built, tmp_path_factory):
    """A copy of each kind's model, calibrated from the command line on the 36 'calib' images."""
    import contextlib
    import io
    import shutil

    model = shutil.copytree(built["model"], tmp_path_factory.mktemp(f"calibrated-{built['kind']}") / "model")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["calibrate", "--model", str(model), "--data", str(built["root"] / "calib"), "--split", "calib",
                     "--no-progress"])
    assert code == 0
    return {"model": model, "out": out.getvalue()}


def test_answers_along_the_tree_with_a_promised_accuracy(built, calibrated, tmp_path, capsys):
    """calibrate -> predict/evaluate --accuracy; --decision crm; a bad accuracy; stale after an edit."""
    import shutil

    test = str(built["root"] / "test")
    assert main(["predict", "--model", str(built["model"]), "--accuracy", "0.8", test]) == 2
    assert "is not calibrated" in capsys.readouterr().err
    model = str(shutil.copytree(calibrated["model"], tmp_path / "model"))
    out = calibrated["out"]
    assert "calibrated" in out and "on 36 images" in out and "accuracy 80%: can be promised" in out
    assert "accuracy 99%: 36 calibration images cannot promise 99%" in out  # needs 230
    assert load_model(model).calibration_.n == 36
    assert main(["predict", "--model", model, "--accuracy", "0.8", "--neighbours", "0",
                 str(built["root"] / "test" / "green_box" / "img_0.jpg")]) == 0
    out = capsys.readouterr().out
    assert "at 80% accuracy: " in out and "path " in out
    assert main(["evaluate", "--model", model, "--data", test, "--split", "test", "--accuracy", "0.8",
                 "--decision", "crm", "--no-progress", "-o", str(tmp_path / "ev")]) == 0
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    h = metrics["hedged"]
    assert h["accuracy"] == 0.8 and h["n"] == 9 and 0 <= h["class_level"] <= 1 and 0 <= h["mean_gain"] <= 1
    assert metrics["routed"]["decision"] == "crm" and "mistake_severity" in metrics["routed"]
    routed, gap = metrics["routed"], metrics["routed"]["minus_argmax"]  # argmax from the same probabilities
    assert gap["n"] == 9 and gap["difference"] == pytest.approx(routed["top1"] - routed["argmax"]["top1"], abs=1e-4)
    shown = capsys.readouterr().out
    assert "what the tree buys: at 80% accuracy" in shown
    assert f"{100 * gap['difference']:+.1f} points of top-1 [{100 * gap['interval_95'][0]:+.1f}," in shown
    curve = metrics["hedged_curve"]["points"]
    assert [x["accuracy"] for x in curve] == [0.5, 0.6, 0.7, 0.8, 0.9]  # 0.95 and 0.99 need more than 36 images
    assert all(x["class_level"] + x["inner"] + x["root"] == pytest.approx(1) for x in curve)
    assert main(["report", "--predictions", str(tmp_path / "ev" / "predictions.csv"), "--model", model,
                 "--gallery", "0", "-o", str(tmp_path / "rep")]) == 0
    html = (tmp_path / "rep" / "report.html").read_text()
    assert 'id="hedging"' in html and "accuracy against specificity" in html
    assert "## Answers along the tree (darts)" in (tmp_path / "rep" / "summary.md").read_text()
    for bad, why in (("1", "must be strictly between 0 and 1"), ("0", "must be strictly between 0 and 1"),
                     ("1.5", "must be strictly between 0 and 1"), ("ninety", "expected a number")):
        with pytest.raises(SystemExit):
            main(["predict", "--model", model, "--accuracy", bad, test])
        assert f"argument --accuracy: {why}" in capsys.readouterr().err
    assert main(["memory", "add", model, str(built["root"] / "test" / "blue_wedge" / "img_0.jpg"),
                 "--label", "blue_wedge"]) == 0
    capsys.readouterr()
    assert main(["predict", "--model", model, "--accuracy", "0.8", "--strict", test]) == 2
    assert "calibration is stale" in capsys.readouterr().err
    assert main(["predict", "--model", model, "--accuracy", "0.8", "--neighbours", "0", test]) == 0
    assert "calibration is stale" in capsys.readouterr().err  # warned, still answered


def test_the_explorer_page_shows_the_hedged_answer_and_its_path(built, calibrated, browser):
    model = calibrated["model"]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    explorer = Explorer(model, neighbours=3, accuracy=0.8)
    with ExploreServer(create_app(explorer)) as server:
        page.goto(server.url + "/")
        page.set_input_files("#upload", str(built["root"] / "test" / "green_box" / "img_1.jpg"))
        page.wait_for_selector("#hedged:not([hidden])")
        text = page.locator("#hedged").inner_text()
        image = open_image(built["root"] / "test" / "green_box" / "img_1.jpg")
        from router import QueryEncoder

        clf = load_model(model)
        want = clf.predict_hedged(QueryEncoder(clf, progress=False).images([image]), accuracy=0.8)
        node = str(want.nodes[0])
        assert text.startswith("At 80% accuracy")
        assert (clf.tree.label(node) in text) or (node == clf.tree.root and "does not know" in text)
        assert "Path: " + clf.tree.label(clf.tree.root) in text  # the path starts at the root, with masses
    page.close()
    assert errors == []
