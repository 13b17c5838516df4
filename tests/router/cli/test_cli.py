import json
import os
import subprocess
import sys

import numpy as np
import pytest

from router.cli import main


def test_tree_build_and_show(tmp_path, capsys):
    out = tmp_path / "tree.json"
    assert main(["tree", "build", "--dataset", "tiny-imagenet-200", "--cut", "balanced:10", "-o", str(out)]) == 0
    data = json.loads(out.read_text())
    assert len(data["classes"]) == 200 and len(data["superclasses"]["names"]) == 10
    capsys.readouterr()
    assert main(["tree", "show", str(out)]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert "10 superclasses (balanced:10)" in shown
    assert "golden retriever" in shown  # members are listed by name


def test_tree_build_from_wnids_file_with_mapping_cut(tmp_path, capsys):
    wnids = tmp_path / "wnids.txt"
    wnids.write_text("n01440764\nn01443537\nn02084071\n")
    mapping = tmp_path / "m.csv"
    mapping.write_text("n01440764,fish\nn01443537,fish\nn02084071,dog\n")
    out = tmp_path / "t.json"
    assert main(["tree", "build", "--wnids", str(wnids), "--cut", f"file:{mapping}", "-o", str(out)]) == 0
    assert json.loads(out.read_text())["superclasses"]["assignment"]["n02084071"] == "dog"


def test_tree_build_from_mapping_file(tmp_path):
    mapping = tmp_path / "m.json"
    mapping.write_text(json.dumps({"animal": ["cat", "dog"], "vehicle": ["car", "bus"]}))
    out = tmp_path / "t.json"
    assert main(["tree", "build", "--mapping", str(mapping), "--cut", "depth:1", "-o", str(out)]) == 0
    assert json.loads(out.read_text())["superclasses"]["names"] == {"animal": "animal", "vehicle": "vehicle"}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["tree", "build", "--wnids", "/no/such/file", "-o", "x.json"], "does not exist"),
        (["tree", "show", "/no/such/tree.json"], "does not exist; build one"),
        (["tree", "build", "--dataset", "tiny-imagenet-200", "--cut", "balanced:0", "-o", "x.json"], "n must be"),
    ],
)
@pytest.mark.subprocess
def test_errors_exit_nonzero_without_traceback(argv, message, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "router.cli", *argv], cwd=tmp_path, capture_output=True, text=True,
        env=dict(os.environ),
    )
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "x.json").exists()


def test_a_bug_is_reported_as_one_not_as_a_user_error(monkeypatch, capsys):
    import hierarchy

    def broken(path):
        raise TypeError("unsupported operand")

    monkeypatch.setattr(hierarchy, "load_tree", broken)
    assert main(["tree", "show", "t.json"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("supersub: internal error: TypeError: unsupported operand") and "-v" in err
    with pytest.raises(TypeError, match="unsupported operand"):
        main(["-v", "tree", "show", "t.json"])


@pytest.mark.subprocess
def test_console_script_is_installed(tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "supersub")
    proc = subprocess.run([exe, "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "tree" in proc.stdout


def test_embed_command(tiny_layout, tmp_path):
    from memory import load_embeddings

    out = tmp_path / "emb"
    rc = main(["embed", "--data", str(tiny_layout["tar"]), "--split", "val", "--size", "64",
               "--no-progress", "-o", str(out)])
    assert rc == 0
    es = load_embeddings(out)
    assert es.X.shape == (6, 1280) and es.fingerprint.startswith("lite0@64")


def test_embed_bad_backbone(tiny_layout, tmp_path, capsys):
    rc = main(["embed", "--data", str(tiny_layout["folder"]), "--backbone", "lite9", "-o", str(tmp_path / "e")])
    assert rc == 2
    assert "unknown backbone 'lite9'" in capsys.readouterr().err


def test_pipeline_on_milvus_lite_equals_faiss(tiny_layout, tmp_path, capsys, wordnet):
    """build -> info -> predict -> evaluate -> remove with --backend, against the embedded default."""
    from hierarchy import ClassTree, cut_balanced, save_tree

    tree = ClassTree.from_wnids(tiny_layout["wnids"], wordnet=wordnet)
    save_tree(tree.with_superclasses(cut_balanced(tree, 2)), tmp_path / "tree.json")
    image = str(tiny_layout["folder"] / "val" / "images" / "val_0.JPEG")
    outputs = {}
    for name, extra in (("faiss", []), ("milvus", ["--backend", str(tmp_path / "memory.db")])):
        model = str(tmp_path / name)
        assert main(["build", "--data", str(tiny_layout["tar"]), "--tree", str(tmp_path / "tree.json"),
                     "--size", "64", "--k", "3", "--no-progress", *extra, "-o", model]) == 0
        assert main(["memory", "info", model]) == 0
        assert main(["predict", "--model", model, "--top", "2", "--neighbours", "0", image]) == 0
        assert main(["evaluate", "--model", model, "--data", str(tiny_layout["tar"]), "--no-progress",
                     "-o", str(tmp_path / f"{name}-eval")]) == 0
        outputs[name] = capsys.readouterr().out.replace(model, "MODEL")
        metrics = json.loads((tmp_path / f"{name}-eval" / "metrics.json").read_text())
        outputs[name + "-metrics"] = json.dumps(metrics, sort_keys=True)
        assert main(["memory", "remove", model, "--source", "tiny-imagenet-200/train"]) == 0
    assert outputs["milvus-metrics"] == outputs["faiss-metrics"]
    assert outputs["milvus"].split("built")[1].split("\n", 1)[1] == outputs["faiss"].split("built")[1].split("\n", 1)[1]
    # the model directory reconnects to the collection: the removal is visible after reloading
    from router import TwoStageClassifier

    assert TwoStageClassifier.load(tmp_path / "milvus").n_entries == 0


def test_tree_without_a_cut_is_written_with_a_warning(tmp_path, capsys):
    out = tmp_path / "t.json"
    assert main(["tree", "build", "--dataset", "tiny-imagenet-200", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "has no superclass cut" in err and "add --cut balanced:10" in err
    assert main(["tree", "build", "--dataset", "tiny-imagenet-200", "--cut", "depth:1", "-o", str(out)]) == 2
    assert "gives one superclass (physical entity); routing needs at least two" in capsys.readouterr().err


def test_network_model_end_to_end(tiny_layout, tmp_path, capsys):
    """--router generalist --specialist tail-delta: build, info, predict, evaluate, edit, report."""
    model = str(tmp_path / "net")
    data = str(tiny_layout["tar"])
    assert main(["build", "--data", data, "--router", "generalist", "--specialist", "tail-delta", "--size", "64",
                 "--crop", "1", "--epochs", "2", "--specialist-epochs", "1", "--rank", "4", "--k", "3",
                 "--no-progress", "-o", model]) == 0
    out = capsys.readouterr().out
    assert "NetworkTwoStage(router='generalist', specialist='tail-delta'" in out and "tails (bound" in out
    assert main(["memory", "info", model]) == 0
    assert "12 entries" in capsys.readouterr().out  # goldfish and salamander share a shard: 2 x 6
    image = str(tiny_layout["folder"] / "val" / "images" / "val_0.JPEG")
    assert main(["predict", "--model", model, "--top", "2", "--neighbours", "2", image]) == 0
    shown = capsys.readouterr().out
    assert "route:" in shown and shown.count("neighbour") == 2
    assert main(["evaluate", "--model", model, "--data", data, "--no-progress", "-o", str(tmp_path / "ev")]) == 0
    shown = capsys.readouterr().out
    assert "flat tail (the generalist)" in shown
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["queries"] == 6 and 0 <= metrics["routed"]["top1"] <= 1
    assert metrics["flat"] == "fine-tuned flat tail (the generalist)" and "flat_knn" not in metrics
    assert 0 <= metrics["flat_baseline"]["top1"] <= 1
    assert metrics["routing"] == {"mode": "soft", "m": 2}  # the network model's own routing
    assert main(["evaluate", "--model", model, "--data", data, "--routing", "hard", "--no-progress",
                 "-o", str(tmp_path / "ev-hard")]) == 0
    assert json.loads((tmp_path / "ev-hard" / "metrics.json").read_text())["routing"] == {"mode": "hard", "m": None}
    assert main(["report", "--predictions", str(tmp_path / "ev" / "predictions.csv"), "--model", model,
                 "--data", data, "--system", "routed", "--baseline", "flat", "-o", str(tmp_path / "rep")]) == 0
    assert (tmp_path / "rep" / "report.html").is_file()
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "ev" / "metrics.json")]) == 0
    shown = capsys.readouterr().out
    assert "best routed" in shown and "fine-tuned flat tail (the generalist)" in shown
    assert main(["compare", str(tmp_path / "rep" / "report.html")]) == 2
    assert "not a metrics.json" in capsys.readouterr().err
    assert main(["memory", "add", model, image, "--label", "n01443537", "--source", "late"]) == 0
    assert main(["memory", "remove", model, "--source", "late"]) == 0
    assert "removed 1 entries" in capsys.readouterr().out
    # a new class cannot enter trained networks: a clear error, the model unchanged
    assert main(["memory", "add", model, image, "--label", "n02099601"]) == 2
    assert "no output for it" in capsys.readouterr().err
    assert main(["build", "--data", data, "--router", "generalist", "--specialist", "delta", "-o",
                 str(tmp_path / "bad")]) == 2
    assert "router='generalist'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def small_model(tiny_layout, tmp_path_factory, wordnet):
    from hierarchy import ClassTree, cut_balanced, save_tree

    work = tmp_path_factory.mktemp("cli-model")
    tree = ClassTree.from_wnids(tiny_layout["wnids"], wordnet=wordnet)
    save_tree(tree.with_superclasses(cut_balanced(tree, 2)), work / "tree.json")
    assert main(["build", "--data", str(tiny_layout["tar"]), "--tree", str(work / "tree.json"), "--size", "64",
                 "--k", "3", "--no-progress", "-o", str(work / "model")]) == 0
    return work / "model"


def test_predict_takes_folders_and_goes_on_past_unreadable_files(small_model, tiny_layout, tmp_path, capsys):
    import shutil

    folder = tmp_path / "inbox"
    (folder / "sub").mkdir(parents=True)
    val = tiny_layout["folder"] / "val" / "images"
    shutil.copy(val / "val_0.JPEG", folder / "a.jpg")
    shutil.copy(val / "val_2.JPEG", folder / "sub" / "b.jpg")
    (folder / "broken.png").write_bytes(b"not a png at all")
    (folder / "notes.txt").write_text("not an image suffix: ignored")
    capsys.readouterr()
    assert main(["predict", "--model", str(small_model), "--top", "1", "--neighbours", "0", str(folder)]) == 0
    out, err = capsys.readouterr()
    assert str(folder / "a.jpg") in out and str(folder / "sub" / "b.jpg") in out
    assert "broken.png" not in out and f"skipped {folder / 'broken.png'}" in err
    assert "classified 2 of 3 images" in err
    (folder / "a.jpg").unlink()
    (folder / "sub" / "b.jpg").unlink()
    assert main(["predict", "--model", str(small_model), str(folder)]) == 2
    assert "no readable image among the 1 given" in capsys.readouterr().err


def test_predict_warns_when_the_image_is_unlike_the_memory(small_model, tiny_layout, tmp_path, capsys):
    from PIL import Image

    from router import TwoStageClassifier
    from router import typical_similarity

    clf = TwoStageClassifier.load(small_model)
    typical = typical_similarity(clf)
    rng = np.random.default_rng(0)
    odd = tmp_path / "odd.png"  # high-frequency noise: nothing like the drawn shapes in the memory
    Image.fromarray(rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)).save(odd)
    same = tiny_layout["folder"] / "val" / "images" / "val_0.JPEG"
    capsys.readouterr()
    assert main(["predict", "--model", str(small_model), "--top", "1", "--neighbours", "1", str(odd), str(same)]) == 0
    out = capsys.readouterr().out
    blocks = out.split(str(same))
    assert "unlike the memory" in blocks[0] and "unlike the memory" not in blocks[1]
    sim = float(blocks[0].split("similarity ")[1].split(",")[0])
    assert sim < typical and f"below {typical:.2f}" in blocks[0]


def test_verbose_anywhere_and_no_abbreviations(small_model, capsys):
    assert main(["memory", "info", str(small_model), "-v"]) == 0
    with pytest.raises(SystemExit) as stop:
        main(["predict", "--mod", str(small_model), "x.jpg"])
    assert stop.value.code == 2 and "--model" in capsys.readouterr().err
    for flag in (["--top", "0"], ["--neighbours", "-1"]):
        with pytest.raises(SystemExit):
            main(["predict", "--model", str(small_model), *flag, "x.jpg"])
        assert "must be an integer >=" in capsys.readouterr().err


def test_evaluate_says_what_it_leaves_out(small_model, tiny_layout, capsys, tmp_path):
    from router import TwoStageClassifier

    clf = TwoStageClassifier.load(small_model)
    gone = str(clf.classes_[0])
    clf.remove_class(gone)
    clf.save(tmp_path / "fewer")
    capsys.readouterr()
    assert main(["evaluate", "--model", str(tmp_path / "fewer"), "--data", str(tiny_layout["tar"]),
                 "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert f"1 of 3 classes of the data (2 of 6 images) are not in the model and are left out: {gone}" in captured.err
    assert "4 queries" in captured.out


def test_build_checks_tree_and_data_before_embedding(tmp_path, capsys, draw):
    (tmp_path / "data" / "cat").mkdir(parents=True)
    (tmp_path / "data" / "dog").mkdir(parents=True)
    for i, c in enumerate(("cat", "dog")):
        draw(i, i).save(tmp_path / "data" / c / "a.jpg")
    build = ["build", "--data", str(tmp_path / "data"), "--size", "64", "--no-progress", "-o", str(tmp_path / "m")]
    assert main(build) == 2
    assert "--tree is needed for" in capsys.readouterr().err
    (tmp_path / "map.csv").write_text("cat,pets\ndog,pets\n")
    assert main(["tree", "build", "--mapping", str(tmp_path / "map.csv"), "-o", str(tmp_path / "nocut.json")]) == 0
    capsys.readouterr()
    assert main([*build, "--tree", str(tmp_path / "nocut.json")]) == 2
    assert "no superclass cut" in capsys.readouterr().err
    (tmp_path / "other.csv").write_text("cow,farm\nhen,farm\nemu,wild\n")
    assert main(["tree", "build", "--mapping", str(tmp_path / "other.csv"), "--cut", "balanced:2",
                 "-o", str(tmp_path / "other.json")]) == 0
    capsys.readouterr()
    assert main([*build, "--tree", str(tmp_path / "other.json")]) == 2
    err = capsys.readouterr().err
    assert "2 of 2 classes are not classes of the tree: 'cat', 'dog'" in err and "--mapping FILE" in err
    assert not (tmp_path / "m").exists()


def test_the_docs_state_the_network_builds_defaults():
    """The bracketed defaults of `supersub build --router generalist` in docs/routing.md are the real ones."""
    import re

    from pathlib import Path

    from router import DEFAULT_SPLITS, NetworkTwoStage
    from router.cli import build_parser

    page = (Path(__file__).resolve().parents[3] / "docs" / "routing.md").read_text()
    stated = re.search(r"supersub build --router generalist --specialist tail-delta \[([^\]]+)\]", page).group(1)
    pairs = dict(re.findall(r"--([a-z-]+) (\S+)", stated))
    args = build_parser().parse_args(["build", "--router", "generalist", "-o", "x"])
    defaults = NetworkTwoStage.__init__.__kwdefaults__
    assert pairs.pop("size") == str(defaults["size"])  # the network's own default (the parser's is None)
    assert args.split_at is None and pairs.pop("split-at") == DEFAULT_SPLITS[args.backbone]  # None: the default
    for flag, value in pairs.items():
        assert str(getattr(args, flag.replace("-", "_"))) == value, flag


def test_a_one_superclass_warning_is_said_once_in_the_command_lines_words(tmp_path, capsys, draw):
    for i, c in enumerate(("cat", "dog")):
        (tmp_path / "train" / c).mkdir(parents=True)
        for j in range(3):
            draw(i, 10 * i + j).save(tmp_path / "train" / c / f"{j}.jpg")
    (tmp_path / "map.csv").write_text("cat,pets\ndog,pets\nemu,wild\n")
    assert main(["tree", "build", "--mapping", str(tmp_path / "map.csv"), "--cut", "depth:1", "-q",
                 "-o", str(tmp_path / "t.json")]) == 0
    capsys.readouterr()
    assert main(["build", "--data", str(tmp_path / "train"), "--tree", str(tmp_path / "t.json"), "--size", "64",
                 "--k", "2", "--no-progress", "-o", str(tmp_path / "m")]) == 0
    err = capsys.readouterr().err
    assert err.count("supersub: warning: every class of the data lies in one superclass (pets)") == 1, err
    assert "WARNING" not in err
    assert main(["memory", "info", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    assert "sources: train" in out and "train/train" not in out  # a folder named for its split: one name


def test_skip_unreadable_reports_and_counts_what_it_leaves_out(tmp_path, capsys, draw):
    names = ["red_round", "green_box"]
    for split in ("train", "test"):
        for k, c in enumerate(names):
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(3):
                draw(k, 100 * k + i + (50 if split == "test" else 0)).save(tmp_path / split / c / f"{i}.jpg")
        (tmp_path / split / "green_box" / "broken.jpg").write_bytes(b"\xff\xd8 not an image")
    (tmp_path / "map.csv").write_text("red_round,warm\ngreen_box,cool\n")
    assert main(["tree", "build", "--mapping", str(tmp_path / "map.csv"), "--cut", "depth:1", "-q",
                 "-o", str(tmp_path / "t.json")]) == 0
    build = ["build", "--data", str(tmp_path / "train"), "--tree", str(tmp_path / "t.json"), "--size", "64",
             "--k", "2", "--no-progress", "-o", str(tmp_path / "m")]
    capsys.readouterr()
    assert main(build) == 2  # one unreadable image stops a plain run, and says how to go on
    err = capsys.readouterr().err
    assert "broken.jpg" in err and "pass --skip-unreadable" in err and not (tmp_path / "m").exists()
    assert main([*build, "--skip-unreadable"]) == 0
    err = capsys.readouterr().err
    assert "skipped green_box/broken.jpg: cannot read image" in err
    assert "skipped 1 of 7 images that do not decode" in err
    assert main(["evaluate", "--model", str(tmp_path / "m"), "--data", str(tmp_path / "test"), "--split", "test",
                 "--skip-unreadable", "--no-progress", "-o", str(tmp_path / "eval")]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["skipped_unreadable"] == 1 and metrics["queries"] == 6


def test_metrics_record_the_routing_used_and_name_the_baseline(small_model, tiny_layout, tmp_path):
    out = tmp_path / "ev"
    assert main(["evaluate", "--model", str(small_model), "--data", str(tiny_layout["tar"]), "--routing", "soft",
                 "--m", "2", "--no-progress", "-o", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["routing"] == {"mode": "soft", "m": 2}  # not the model's own default, hard
    assert metrics["flat"] == "flat kNN (same memory)" and 0 <= metrics["flat_baseline"]["top1"] <= 1
