import shutil
import tarfile

import numpy as np
import pytest

from memory import DataError, image_folder, tiny_imagenet
from memory.embedding import resolve_tiny_imagenet


@pytest.mark.parametrize("kind", ["folder", "tar", "zip"])
def test_official_layout_from_every_source(tiny_layout, kind, tmp_path):
    train = tiny_imagenet("train", tiny_layout[kind], cache=tmp_path)
    val = tiny_imagenet("val", tiny_layout[kind], cache=tmp_path)
    assert train.classes == tiny_layout["wnids"] and len(train) == 18 and len(val) == 6
    assert train.refs[0] == "train/n01443537/images/n01443537_0.JPEG"
    np.testing.assert_array_equal(np.bincount(train.targets), [6, 6, 6])
    assert list(val.labels[:2]) == ["n01443537", "n01443537"]
    image, target = val[5]
    assert image.size == (64, 64) and image.mode == "RGB" and target == 2
    assert (train.root / train.refs[-1]).is_file()


def test_parent_folder_and_env_var(tiny_layout, monkeypatch, tmp_path):
    assert resolve_tiny_imagenet(tiny_layout["folder"].parent) == tiny_layout["folder"]
    monkeypatch.setenv("SUPERSUB_DATA", str(tiny_layout["tar"]))
    assert len(tiny_imagenet("val", cache=tmp_path)) == 6


def test_download_path_with_a_local_url(tiny_layout, monkeypatch, tmp_path):
    monkeypatch.delenv("SUPERSUB_DATA", raising=False)
    url = tiny_layout["zip"].as_uri()  # the real download code, reading a file:// URL
    root = resolve_tiny_imagenet(cache=tmp_path, url=url)
    assert (tmp_path / "tiny-imagenet-200.zip").is_file()
    assert (root / "wnids.txt").read_text().split() == tiny_layout["wnids"]
    with pytest.raises(DataError, match="cannot download"):
        resolve_tiny_imagenet(cache=tmp_path / "other", url=(tmp_path / "missing.zip").as_uri())


def test_extraction_is_cached(tiny_layout, tmp_path):
    a = resolve_tiny_imagenet(tiny_layout["tar"], cache=tmp_path)
    marker = a / "marker"
    marker.write_text("x")
    assert resolve_tiny_imagenet(tiny_layout["tar"], cache=tmp_path) == a and marker.exists()


def test_a_copied_archive_is_not_extracted_again(tiny_layout, tmp_path):
    """The extraction is keyed by the archive's content, not its path, name or time."""
    a = resolve_tiny_imagenet(tiny_layout["tar"], cache=tmp_path / "cache")
    (a / "marker").write_text("x")
    copy = tmp_path / "elsewhere" / "renamed.tar.xz"
    copy.parent.mkdir()
    shutil.copyfile(tiny_layout["tar"], copy)
    assert resolve_tiny_imagenet(copy, cache=tmp_path / "cache") == a
    assert len([p for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")]) == 1
    changed = tmp_path / "changed.tar.xz"  # other bytes: another extraction
    with tarfile.open(changed, "w:xz") as tf:
        tf.add(a, arcname="tiny-imagenet-200")
    assert resolve_tiny_imagenet(changed, cache=tmp_path / "cache") != a


def test_subset(tiny_layout):
    ds = tiny_imagenet("train", tiny_layout["folder"])
    sub = ds.subset(2, classes=["n02123045", "n01443537"])
    assert sub.classes == ["n02123045", "n01443537"] and len(sub) == 4
    assert set(sub.labels) == {"n02123045", "n01443537"}
    assert sub.key() != ds.key()
    seeded = ds.subset(2, seed=1)
    assert seeded.refs == ds.subset(2, seed=1).refs  # reproducible
    np.testing.assert_array_equal(np.bincount(seeded.targets), [2, 2, 2])
    # A seeded choice is random: over a few seeds it leaves the first-two-per-class choice.
    assert any(ds.subset(2, seed=s).refs != ds.subset(2).refs for s in range(5))


def test_corrupt_and_wrong_sources(tmp_path, tiny_layout):
    bad = tmp_path / "broken.tar.xz"
    bad.write_bytes(tiny_layout["tar"].read_bytes()[:300])
    with pytest.raises(DataError, match="truncated or corrupt"):
        tiny_imagenet("train", bad, cache=tmp_path / "c")
    with pytest.raises(DataError, match="does not exist"):
        tiny_imagenet("train", tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="official layout"):
        tiny_imagenet("train", tmp_path / "empty")
    with pytest.raises(DataError, match="split must be"):
        tiny_imagenet("test", tiny_layout["folder"])


def test_image_folder_with_wnids_names_and_mapping(tiny_layout, tmp_path):
    from shutil import copy

    for k, w in enumerate(tiny_layout["wnids"]):
        for name in (w, f"class{k}"):
            d = tmp_path / ("by_wnid" if name == w else "by_name") / name
            d.mkdir(parents=True)
            copy(tiny_layout["folder"] / "train" / w / "images" / f"{w}_0.JPEG", d / "a.jpg")
    ds = image_folder(tmp_path / "by_wnid")
    assert ds.classes == tiny_layout["wnids"] and len(ds) == 3
    assert image_folder(tmp_path / "by_name").classes == ["class0", "class1", "class2"]  # any label
    mapping = tmp_path / "map.csv"
    mapping.write_text("folder,label\n" + "".join(f"class{k},{w}\n" for k, w in enumerate(tiny_layout["wnids"])))
    named = image_folder(tmp_path / "by_name", mapping=mapping)
    assert named.classes == tiny_layout["wnids"]  # the header row is not a class
    mapping.write_text("class0,x\n")
    with pytest.raises(DataError, match="'class1' is not in the mapping file .*add a 'class1,LABEL' row"):
        image_folder(tmp_path / "by_name", mapping=mapping)


@pytest.mark.subprocess
def test_processes_opening_one_archive_at_once_extract_it_once(tiny_layout, tmp_path):
    """Three processes open the same archive at the same moment: one extracts, the others read its extraction."""
    import subprocess
    import sys
    import time

    go = tmp_path / "go"
    code = ("import sys, time, pathlib\n"
            "from memory.embedding import resolve_tiny_imagenet\n"
            "while not pathlib.Path(sys.argv[3]).exists(): time.sleep(0.001)\n"
            "print(resolve_tiny_imagenet(sys.argv[1], cache=sys.argv[2]))\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tiny_layout["tar"]), str(tmp_path / "cache"), str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    time.sleep(3)  # every process has imported the library and is waiting
    go.write_text("")
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in outs]
    roots = {out.strip() for out, _ in outs}
    assert len(roots) == 1
    assert sum("extracting" in err for _, err in outs) == 1
    assert len([p for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")]) == 1
