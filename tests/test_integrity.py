"""Saved models are refused when any part was edited, replaced or lost, and no edit is lost to a
concurrent writer: each case through the command line (exit 2, a message, no traceback)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.hostile_inputs import cli
from hierarchy import ClassTree, cut_balanced, save_tree

ROOT = Path(__file__).resolve().parents[1]


def run(args, expect=2):
    """The command line in this process (a subprocess would add only start-up time)."""
    proc = cli(*args)
    assert proc.returncode == expect, proc.stderr
    if expect:
        assert "Traceback" not in proc.stderr and proc.stderr.startswith("supersub: error:"), proc.stderr
    return proc


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_layout, wordnet):
    """Two models built by the command line from the miniature Tiny-ImageNet (different k)."""
    work = tmp_path_factory.mktemp("integrity")
    tree = ClassTree.from_wnids(tiny_layout["wnids"], wordnet=wordnet)
    save_tree(tree.with_superclasses(cut_balanced(tree, 2)), work / "tree.json")
    for name, k in (("model", "3"), ("other", "2")):
        run(["build", "--data", str(tiny_layout["tar"]), "--tree", str(work / "tree.json"), "--size", "64",
             "--k", k, "--no-progress", "-o", str(work / name)], expect=0)
    return work


@pytest.fixture
def model(built, tmp_path):
    """A fresh copy of the built model (and of the other one beside it)."""
    shutil.copytree(built / "model", tmp_path / "model")
    shutil.copytree(built / "other", tmp_path / "other")
    return tmp_path / "model"


def live(root: Path) -> Path:
    return root / "snapshots" / (root / "CURRENT").read_text().split()[0]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def reseal_memory(root: Path) -> None:
    """Recompute a memory's checksums after an edit, as a forger would."""
    snap = live(root)
    manifest = json.loads((snap / "manifest.json").read_text())
    manifest["files"] = {name: sha(snap / name) for name in manifest["files"]}
    (snap / "manifest.json").write_text(json.dumps(manifest))
    (root / "CURRENT").write_text(f"{snap.name}\n{sha(snap / 'manifest.json')}\n")


def reseal_model(root: Path, shards: bool = True) -> None:
    """Recompute every checksum of a classifier, shards first, so only the values' checks remain."""
    snap = live(root)
    if shards:
        for shard in sorted((snap / "shards").iterdir()):
            reseal_memory(shard)
    manifest = json.loads((snap / "manifest.json").read_text())
    manifest["files"] = {}
    for f in sorted(snap.rglob("*")):
        rel = f.relative_to(snap)
        parts = rel.parts
        if f.is_dir() or f.name == ".lock" or rel == Path("manifest.json") or (
                len(parts) >= 5 and parts[0] == "shards" and parts[2] == "snapshots" and parts[-1] != "manifest.json"):
            continue
        manifest["files"][rel.as_posix()] = sha(f)
    (snap / "manifest.json").write_text(json.dumps(manifest))
    (root / "CURRENT").write_text(f"{snap.name}\n{sha(snap / 'manifest.json')}\n")


def edit_manifest(root: Path, change) -> None:
    path = live(root) / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def set_entries(m):
    m["entries"] += 5


def add_class(m):
    m["classes"].append("n01440764")


def negative_k(m):
    m["options"]["k"] = -5


MANIFEST_EDITS = [("entry count", set_entries, "the manifest counts 23 entries, the shards hold 18"),
                  ("extra class", add_class, "class 'n01440764' is not in its tree"),
                  ("k = -5", negative_k, "k must be")]


@pytest.mark.parametrize("name, change, message", MANIFEST_EDITS, ids=[c[0] for c in MANIFEST_EDITS])
def test_edited_classifier_manifest_is_refused(model, name, change, message):
    edit_manifest(model, change)
    assert "manifest.json is corrupt or was edited" in run(["memory", "info", str(model)]).stderr
    reseal_model(model, shards=False)  # checksums recomputed: the values themselves are checked
    assert message in run(["memory", "info", str(model)]).stderr


def test_edited_shard_manifest_counts_are_refused(model):
    shard = live(model) / "shards" / "0"
    edit_manifest(shard, lambda m: m["counts"].update(entries=m["counts"]["entries"] + 1))
    assert "is not the shard saved with this model" in run(["memory", "info", str(model)]).stderr
    reseal_memory(shard)  # the shard's own chain recomputed: the model's still differs
    assert "is not the shard saved with this model" in run(["memory", "info", str(model)]).stderr
    reseal_model(model, shards=False)
    assert "is inconsistent: the manifest's counts" in run(["memory", "info", str(model)]).stderr


def test_replaced_tree_is_refused(model, wordnet):
    tree = ClassTree.from_wnids(["n01443537", "n01629819", "n02123394"], wordnet=wordnet)
    save_tree(tree.with_superclasses(cut_balanced(tree, 2)), live(model) / "tree.json")
    assert "tree.json is missing or corrupt" in run(["memory", "info", str(model)]).stderr
    reseal_model(model, shards=False)
    assert "is not in its tree" in run(["memory", "info", str(model)]).stderr


def test_shard_copied_from_another_model_is_refused(model):
    mine, theirs = live(model) / "shards" / "1", live(model.parent / "other") / "shards" / "1"
    shutil.rmtree(mine)
    shutil.copytree(theirs, mine)
    assert "is not the shard saved with this model" in run(["memory", "info", str(model)]).stderr


@pytest.mark.parametrize("target", ["relative", "absolute"])
def test_current_may_only_name_a_snapshot_inside_the_model(model, target):
    other = live(model.parent / "other")
    digest = sha(other / "manifest.json")
    name = f"../../other/snapshots/{other.name}" if target == "relative" else str(other)
    (model / "CURRENT").write_text(f"{name}\n{digest}\n")
    assert "must name a snapshot inside" in run(["memory", "info", str(model)]).stderr
    # A symbolic link planted under snapshots/ does not lead outside either.
    (model / "snapshots" / "20990101T000000-1-000000000").symlink_to(other, target_is_directory=True)
    (model / "CURRENT").write_text(f"20990101T000000-1-000000000\n{digest}\n")
    assert "is a symbolic link" in run(["memory", "info", str(model)]).stderr


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_corrupt_sqlite_gives_the_clear_error(model, damage):
    db = live(live(model) / "shards" / "0") / "metadata.sqlite"
    db.write_bytes(db.read_bytes()[: len(db.read_bytes()) // 2] if damage == "truncated" else b"")
    assert "metadata.sqlite is missing or corrupt" in run(["memory", "info", str(model)]).stderr
    reseal_model(model)
    stderr = run(["memory", "info", str(model)]).stderr
    assert "metadata.sqlite is not a readable metadata database" in stderr


def test_metadata_with_foreign_types_is_refused(model):
    shard = live(model) / "shards" / "0"
    db = live(shard) / "metadata.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("UPDATE entries SET weight = 'heavy' WHERE id = 0")
    reseal_model(model)
    assert "invalid weight" in run(["memory", "info", str(model)]).stderr


def test_an_unlisted_file_is_refused(model):
    (live(model) / "router.pt").write_bytes(b"planted")
    assert "router.pt is not listed in its manifest" in run(["memory", "info", str(model)]).stderr


def test_stale_temporary_snapshots_are_removed(model):
    for i in range(20):  # as 20 writers killed inside the write window would leave them
        stale = model / "snapshots" / f".tmp-killed{i}"
        stale.mkdir()
        (stale / "index.faiss").write_bytes(os.urandom(4096))
    (model / ".CURRENT-killed").write_text("x")  # as older releases named it
    (model / ".CURRENT.k1ll3d.tmp").write_text("x")  # as atomic_write names it
    run(["memory", "info", str(model)], expect=0)  # an open with no writer about removes them
    assert not list((model / "snapshots").glob(".tmp-*")) and not list(model.glob(".CURRENT*tmp"))
    assert not list(model.glob(".CURRENT-*"))
    assert len(list((model / "snapshots").iterdir())) <= 2  # live + the one before it, at most


def test_old_format_is_refused_with_the_fix(model):
    (model / "CURRENT").write_text(live(model).name + "\n")
    assert "saved by an older supersub" in run(["memory", "info", str(model)]).stderr


# ----------------------------------------------------------- concurrent writers
def _add(model: Path, image: Path, source: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "router.cli", "memory", "add", str(model), str(image),
                             "--label", "n01443537", "--source", source, "--wait", "120"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _sources(model: Path) -> dict[str, int]:
    from router import TwoStageClassifier

    clf = TwoStageClassifier.load(model)
    out: dict[str, int] = {}
    for shard in clf.shards_:
        for s, n in shard.counts("source").items():
            out[s] = out.get(s, 0) + n
    return out


@pytest.mark.subprocess
def test_staggered_writers_never_lose_an_acknowledged_edit(model, tiny_layout):
    """Two ``memory add`` runs on one model, the second started 0 or 1 s after the first (more offsets:
    ``SUPERSUB_WRITER_REPS``; ``benchmarks/reliability_bench.py`` runs many)."""
    reps = int(os.environ.get("SUPERSUB_WRITER_REPS", "2"))
    image = next((tiny_layout["folder"] / "val" / "images").iterdir())
    offsets = [1.0 * i / max(reps - 1, 1) for i in range(reps)]
    for rep, offset in enumerate(offsets):
        first = _add(model, image, f"w{rep}a")
        time.sleep(offset)
        second = _add(model, image, f"w{rep}b")
        results = [(p.wait(300), p.stdout.read(), p.stderr.read()) for p in (first, second)]
        present = _sources(model)
        for (code, out, err), source in zip(results, (f"w{rep}a", f"w{rep}b")):
            if code == 0:  # acknowledged: the edit is in the saved model
                assert "added 1 images" in out
                assert present.get(source) == 1, (offset, present)
            else:  # refused, with a message; then it left nothing behind
                assert code == 2 and "Traceback" not in err and "being written" in err, err
                assert source not in present
        assert sum(code == 0 for code, _, _ in results) >= 1
