"""The bad-input matrix: each case gets an error that names the problem, and nothing changes.

API cases check the exception type and message and that the memory is unchanged; CLI cases
check a non-zero exit, the message on stderr, no traceback, and that files on disk are
unchanged.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hierarchy import ClassTree, HierarchyError, TreeFormatError, UnknownClassError, cut_balanced, load_tree, save_tree
from memory import (
    BackboneMismatchError,
    Embedder,
    InputError,
    MemoryFormatError,
    UnknownEntryError,
    VisualMemory,
)
from benchmarks.hostile_inputs import cli
from router import TwoStageClassifier

X = np.random.default_rng(0).standard_normal((60, 8)).astype(np.float32)
Y = np.array([f"c{i % 3}" for i in range(60)])


def fresh_memory():
    mem = VisualMemory(k=3, progress=False)
    mem.add(X, Y, source="base", superclass=np.where(np.arange(60) % 2 == 0, "even", "odd"))
    return mem


def state(mem):
    return mem.ids_.tolist(), mem.vectors(mem.ids_).tobytes(), mem.counts("label"), mem.counts("source")


API_CASES = [
    ("wrong dimension", lambda m: m.add(X[:2, :5], Y[:2]), InputError, "expected 8-d embeddings, got 5-d"),
    ("NaN", lambda m: m.add(np.full((2, 8), np.nan, np.float32), Y[:2]), InputError, "NaN or inf"),
    ("inf", lambda m: m.add(np.full((2, 8), np.inf, np.float32), Y[:2]), InputError, "NaN or inf"),
    ("empty array", lambda m: m.add(np.zeros((0, 8), np.float32), []), InputError, "is empty"),
    ("wrong dtype", lambda m: m.add(np.full((2, 8), "x"), Y[:2]), InputError, "must be numeric"),
    ("not 2-D", lambda m: m.add(X[0], Y[0]), InputError, "must be 2-D"),
    ("labels length", lambda m: m.add(X[:3], Y[:2]), InputError, "got 2 labels for 3 embeddings"),
    ("duplicate id in batch", lambda m: m.add(X[:2], Y[:2], ids=[500, 500]), InputError, "duplicate id 500"),
    ("id already stored", lambda m: m.add(X[:1], Y[:1], ids=[3]), InputError, "already in the memory"),
    ("unknown label", lambda m: m.remove(label="c9"), UnknownEntryError, "unknown label 'c9'"),
    ("unknown id", lambda m: m.remove([0, 12345]), UnknownEntryError, "unknown id 12345"),
    ("unknown superclass", lambda m: m.search(X[:1], superclass="prime"), UnknownEntryError, "unknown superclass"),
    ("zero k", lambda m: m.predict(X[:1], k=0), InputError, "k must be a positive integer"),
    ("negative k", lambda m: m.search(X[:1], k=-2), InputError, "k must be a positive integer"),
    ("query dimension", lambda m: m.predict(X[:1, :4]), InputError, "expected 8-d"),
    ("unknown voting rule", lambda m: m.predict(X[:1], voting="majority"), InputError, "unknown voting rule"),
    ("bad weight", lambda m: m.set_weight(-1.0, label="c1"), InputError, "weight must be"),
    ("redundancy threshold", lambda m: m.prune_redundant(2.0), InputError, "threshold"),
]


@pytest.mark.parametrize("name, call, exc, match", API_CASES, ids=[c[0] for c in API_CASES])
def test_memory_api_case(name, call, exc, match):
    mem = fresh_memory()
    before = state(mem)
    with pytest.raises(exc, match=match):
        call(mem)
    assert state(mem) == before


def test_saved_memory_cases(tmp_path):
    mem = fresh_memory()
    mem.fingerprint = "lite0@128"
    mem.save(tmp_path / "m")
    with pytest.raises(BackboneMismatchError, match="holds 8-d embeddings, expected 1280-d"):
        VisualMemory.load(tmp_path / "m", dim=1280)
    with pytest.raises(BackboneMismatchError, match="not 'lite2@128'"):
        VisualMemory.load(tmp_path / "m", fingerprint="lite2@128")
    snap = next((tmp_path / "m" / "snapshots").iterdir())
    manifest = json.loads((snap / "manifest.json").read_text())
    original = (snap / "manifest.json").read_bytes()
    (snap / "manifest.json").write_text(json.dumps({**manifest, "version": 9}))
    with pytest.raises(MemoryFormatError, match="manifest.json is corrupt or was edited"):
        VisualMemory.load(tmp_path / "m")
    (snap / "manifest.json").write_bytes(original)
    (snap / "index.faiss").write_bytes(b"garbage")
    with pytest.raises(MemoryFormatError, match="index.faiss is missing or corrupt"):
        VisualMemory.load(tmp_path / "m")


def test_tree_and_router_cases(tmp_path, wordnet):
    with pytest.raises(UnknownClassError, match="n09999999"):
        ClassTree.from_wnids(["n01440764", "n09999999"], wordnet=wordnet)
    with pytest.raises(HierarchyError, match="duplicate class"):
        ClassTree.from_wnids(["n01440764", "n01440764"], wordnet=wordnet)
    tree = ClassTree.from_parents({"c0": "s0", "c1": "s0", "c2": "s1"})
    tree = tree.with_superclasses(cut_balanced(tree, 2))
    path = save_tree(tree, tmp_path / "t.json")
    path.write_text(path.read_text()[:40])
    with pytest.raises(TreeFormatError, match="truncated"):
        load_tree(path)
    clf = TwoStageClassifier(tree, k=3).fit(X, Y)
    with pytest.raises(InputError, match="m = 5 exceeds the number of superclasses"):
        clf.predict(X[:2], routing="soft", m=5)
    with pytest.raises(UnknownClassError, match="unknown label 'c7'"):
        TwoStageClassifier(tree).fit(X[:2], ["c0", "c7"])
    before = [sh.ids_.tolist() for sh in clf.shards_]
    with pytest.raises(UnknownEntryError, match="no entry has source 'nowhere'"):
        clf.remove(source="nowhere")
    assert [sh.ids_.tolist() for sh in clf.shards_] == before


def test_image_cases(tmp_path, lite0_64):
    emb = Embedder(lite0_64, progress=False)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff not really")
    with pytest.raises(InputError, match="cannot read image .*broken.jpg"):
        emb.embed_images([bad])
    with pytest.raises(InputError, match="does not exist"):
        emb.embed_images([tmp_path / "nope.jpg"])


# ---------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def cli_model(tmp_path_factory, tiny_layout, wordnet):
    """A routed model built by the CLI from the miniature Tiny-ImageNet."""
    work = tmp_path_factory.mktemp("cli")
    tree = ClassTree.from_wnids(tiny_layout["wnids"], wordnet=wordnet)
    save_tree(tree.with_superclasses(cut_balanced(tree, 2)), work / "tree.json")
    run(["build", "--data", str(tiny_layout["tar"]), "--tree", str(work / "tree.json"), "--size", "64",
         "--k", "3", "--no-progress", "-o", str(work / "model")], expect=0)
    return work


def run(args, expect=2):
    """The command line in this process (a subprocess would add only start-up time)."""
    proc = cli(*args)
    assert proc.returncode == expect, proc.stderr
    if expect:
        assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    return proc


def snapshot(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
            and p.name != ".lock"}


CLI_CASES = [
    ("tree: unknown wnid", lambda w, d: ["tree", "build", "--wnids", str(w / "bad_wnids.txt"), "-o", str(w / "x.json")],
     "unknown wnid 'n09999999'"),
    ("tree: missing file", lambda w, d: ["tree", "show", str(w / "none.json")], "does not exist; build one"),
    ("tree: cyclic mapping", lambda w, d: ["tree", "build", "--mapping", str(w / "cyc.csv"), "-o", str(w / "x.json")],
     "cycle: a -> b -> a"),
    ("tree: truncated file", lambda w, d: ["tree", "show", str(w / "trunc.json")], "truncated"),
    ("tree: bad cut", lambda w, d: ["tree", "build", "--dataset", "tiny-imagenet-200", "--cut", "balanced:0",
                                    "-o", str(w / "x.json")], "n must be an integer"),
    ("predict: missing image", lambda w, d: ["predict", str(w / "none.jpg"), "--model", str(w / "model")],
     "does not exist"),
    ("predict: unreadable image", lambda w, d: ["predict", str(w / "broken.jpg"), "--model", str(w / "model")],
     "cannot read image"),
    ("predict: not a model", lambda w, d: ["predict", str(w / "broken.jpg"), "--model", str(w)],
     "not a saved classifier"),
    ("memory: unknown class", lambda w, d: ["memory", "remove", str(w / "model"), "--label", "n02085620"],
     "unknown class 'n02085620'"),
    ("memory: unknown source", lambda w, d: ["memory", "remove", str(w / "model"), "--source", "web"],
     "no entry has source 'web'"),
    ("memory: unreadable image", lambda w, d: ["memory", "add", str(w / "model"), str(w / "broken.jpg"),
                                               "--label", "n01443537"], "cannot read image"),
    ("evaluate: m too large", lambda w, d: ["evaluate", "--model", str(w / "model"), "--data", str(d), "--routing",
                                            "soft", "--m", "9", "--no-progress"], "m = 9 exceeds"),
    ("embed: unknown backbone", lambda w, d: ["embed", "--data", str(d), "--backbone", "lite9", "-o", str(w / "e")],
     "unknown backbone 'lite9'"),
    ("embed: missing data", lambda w, d: ["embed", "--data", str(w / "no-data.tar.xz"), "-o", str(w / "e")],
     "does not exist"),
    ("predict: decompression bomb", lambda w, d: ["predict", str(w / "bomb.png"), "--model", str(w / "model")],
     "400,000,000 pixels, over the limit of 64,000,000"),
    ("predict: --top 0", lambda w, d: ["predict", str(w / "broken.jpg"), "--model", str(w / "model"), "--top", "0"],
     "argument --top: must be an integer >= 1, got 0"),
    ("predict: --top -1", lambda w, d: ["predict", str(w / "broken.jpg"), "--model", str(w / "model"), "--top", "-1"],
     "argument --top: must be an integer >= 1, got -1"),
    ("predict: --neighbours -1", lambda w, d: ["predict", str(w / "broken.jpg"), "--model", str(w / "model"),
                                               "--neighbours", "-1"], "argument --neighbours: must be an integer >= 0"),
    ("predict: --top x", lambda w, d: ["predict", str(w / "broken.jpg"), "--model", str(w / "model"), "--top", "x"],
     "argument --top: expected an integer, got 'x'"),
    ("build: --per-class 0", lambda w, d: ["build", "--data", str(d), "--per-class", "0", "-o", str(w / "model")],
     "argument --per-class: must be an integer >= 1, got 0"),
    ("build: --per-class -2", lambda w, d: ["build", "--data", str(d), "--per-class", "-2", "-o", str(w / "model")],
     "argument --per-class: must be an integer >= 1, got -2"),
    ("build: --k 0", lambda w, d: ["build", "--data", str(d), "--k", "0", "-o", str(w / "model")],
     "argument --k: must be an integer >= 1"),
    ("build: --crop 1.5", lambda w, d: ["build", "--data", str(d), "--crop", "1.5", "-o", str(w / "model")],
     "argument --crop: must be in (0, 1], got 1.5"),
    ("evaluate: --m 0", lambda w, d: ["evaluate", "--model", str(w / "model"), "--m", "0"],
     "argument --m: must be an integer >= 1"),
    ("embed: --batch-size 0", lambda w, d: ["embed", "--data", str(d), "--batch-size", "0", "-o", str(w / "e")],
     "argument --batch-size: must be an integer >= 1"),
    ("report: --gallery -3", lambda w, d: ["report", "--predictions", "p.csv", "--gallery", "-3", "-o", str(w / "r")],
     "argument --gallery: must be an integer >= 0"),
    ("milvus: --port 70000", lambda w, d: ["milvus", "serve", "--data", str(w / "mv"), "--port", "70000"],
     "must be a port in 1..65535"),
    ("memory: --wait -1", lambda w, d: ["memory", "remove", str(w / "model"), "--label", "x", "--wait", "-1"],
     "argument --wait: must be a number >= 0"),
    ("memory: verb synset", lambda w, d: ["memory", "add", str(w / "model"), str(d.parent / "tiny-imagenet-200" / "val"
                                          / "images" / "val_0.JPEG"), "--label", "v00001740"],
     "'v00001740' is a verb synset (breathe.v.01); classes must be noun synsets"),
    ("tree: null name", lambda w, d: ["tree", "show", str(w / "null-name.json")],
     "node 'n01443537' has name None; it must be a non-empty string"),
    ("tree: dict label", lambda w, d: ["tree", "show", str(w / "dict-label.json")],
     "node 'n01443537' has label {'a': 1}; it must be a non-empty string"),
]


@pytest.mark.parametrize("name, argv, match", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_case(cli_model, tiny_layout, name, argv, match):
    w = cli_model
    (w / "bad_wnids.txt").write_text("n01440764\nn09999999\n")
    (w / "cyc.csv").write_text("a,b\nb,a\n")
    (w / "trunc.json").write_text('{"format": "supersub-tree", "ver')
    (w / "broken.jpg").write_bytes(b"\xff\xd8 not an image")
    if not (w / "bomb.png").exists():  # 20000 x 20000 pixels in a few kilobytes
        Image.new("1", (20000, 20000)).save(w / "bomb.png")
    tree = json.loads((w / "tree.json").read_text())
    for name, key, value in (("null-name", "name", None), ("dict-label", "label", {"a": 1})):
        bad = json.loads(json.dumps(tree))
        bad["nodes"]["n01443537"][key] = value
        (w / f"{name}.json").write_text(json.dumps(bad))
    before = snapshot(w / "model")
    proc = run(argv(w, tiny_layout["tar"]))
    assert match in proc.stderr
    assert snapshot(w / "model") == before


def test_sixteen_bit_and_rotated_copies_predict_as_the_original(cli_model, tiny_layout, tmp_path):
    """A 16-bit greyscale PNG and an EXIF-rotated copy get the original's prediction and neighbours."""
    src = Image.open(tiny_layout["folder"] / "val" / "images" / "val_0.JPEG").convert("L")
    grey8 = np.asarray(src)
    Image.fromarray(grey8).save(tmp_path / "grey8.png")
    Image.fromarray(grey8.astype(np.uint16) * 257).save(tmp_path / "grey16.png")
    exif = Image.Exif()
    exif[0x0112] = 8  # stored rotated; a viewer turns it back
    Image.fromarray(grey8).transpose(Image.Transpose.ROTATE_270).save(tmp_path / "rotated.png", exif=exif)
    outputs = []
    for name in ("grey8.png", "grey16.png", "rotated.png"):
        proc = run(["predict", str(tmp_path / name), "--model", str(cli_model / "model"), "--top", "3"], expect=0)
        outputs.append(proc.stdout.replace(str(tmp_path / name), "IMAGE"))
    assert outputs[0] == outputs[1] == outputs[2]


def test_gallery_reads_only_decoded_images_inside_the_data_root(cli_model, tiny_layout, tmp_path, caplog):
    """Hostile refs (../, absolute) in a predictions file never reach report.html; every image is re-encoded."""
    import base64
    import csv
    import io
    import re

    root = tiny_layout["folder"]
    magenta = Image.new("RGB", (64, 64), (255, 0, 255))
    magenta.save(root.parent / "outside.png")  # beside the data root, not inside it
    magenta.save(tmp_path / "secret.png")
    run(["evaluate", "--model", str(cli_model / "model"), "--data", str(root), "--no-progress",
         "-o", str(tmp_path / "eval")], expect=0)
    with open(tmp_path / "eval" / "predictions.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    routed = [r for r in rows if r["system"] == "routed"]
    hostile = {0: "../outside.png", 1: str(tmp_path / "secret.png"), 2: "val/images/../../../outside.png"}
    for i, r in enumerate(routed):  # make every routed row a confident mistake
        r["pred"] = next(c for c in tiny_layout["wnids"] if c != r["true"])
        r["score"] = f"{0.99 - i / 100:.2f}"
        r["ref"] = hostile.get(i, r["ref"])
    with open(tmp_path / "preds.csv", "w", newline="") as fh:
        fields = [k for k in rows[0] if all(r.get(k) is not None for r in rows)]  # 3 classes: pred2, pred3
        w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    proc = run(["report", "--predictions", str(tmp_path / "preds.csv"), "--model", str(cli_model / "model"),
                "--data", str(root), "--system", "routed", "--gallery", "20", "-o", str(tmp_path / "r")], expect=0)
    assert "3 references point outside" in proc.stderr + caplog.text  # the warning, in process or not
    html = (tmp_path / "r" / "report.html").read_text()
    start = html.index('id="gallery"')
    gallery = html[start:html.find("<section", start)]  # (other tables list refs as escaped text)
    images = re.findall(r'src="data:(image/[a-z]+);base64,([^"]+)"', gallery)
    assert len(images) >= len(routed) - 3  # the legitimate queries are shown
    assert {mime for mime, _ in images} == {"image/png"}  # decoded, then re-encoded
    for _, data in images:
        pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))
        assert not (pixels == [255, 0, 255]).all(axis=-1).all()  # no magenta picture from outside
    for ref in hostile.values():
        assert ref not in gallery
