"""Shared fixtures: the real WordNet and the shipped class lists."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the benchmarks package: its functions run in the tests too
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def wordnet():
    import hierarchy

    return hierarchy.load_wordnet()


@pytest.fixture(scope="session")
def tiny_wnids() -> list[str]:
    return (ROOT / "data" / "tiny-imagenet-200" / "wnids.txt").read_text().split()


@pytest.fixture(scope="session")
def imagenet_wnids() -> list[str]:
    return (ROOT / "data" / "imagenet-1k" / "wnids.txt").read_text().split()


@pytest.fixture(scope="session")
def tiny_tree(wordnet, tiny_wnids):
    import hierarchy

    return hierarchy.ClassTree.from_wnids(tiny_wnids, wordnet=wordnet)


#: The markers that ``make test-fast`` leaves out (``make test`` runs everything).
SLOW_TIERS = ("subprocess", "milvus_server", "browser", "data", "slow")


#: The files that take longest (about 35 to 120 s each on 2 cores), run first: the suite runs a file
#: per worker (``make test``), and a long file started last would leave the other workers idle.
LONGEST_FIRST = (
    "memory/test_backend_contract.py", "router/twostage/test_backends.py", "benchmarks/test_specialists_bench.py",
    "router/test_checks.py", "router/test_surface.py", "router/twostage/test_classifier.py",
    "benchmarks/test_real_subset.py", "test_integrity.py", "router/cli/test_cli.py",
    "benchmarks/test_reliability_bench.py",
)


def _file_rank(item) -> int:
    path = Path(str(item.fspath)).resolve().relative_to(ROOT / "tests").as_posix()
    return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_collection_modifyitems(config, items):
    """Run the longest files first; mark tests by what they need, from their fixtures: a Milvus
    server, a browser, another process."""
    items.sort(key=_file_rank)  # stable: the order within a file, and of the other files, is kept
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "milvus_server" in names or any(isinstance(v, str) and v == "milvus-server" for v in params.values()):
            item.add_marker(pytest.mark.milvus_server)
        if names & {"browser", "page"}:
            item.add_marker(pytest.mark.browser)
        if names & {"saving_writer", "lock_held_elsewhere"}:  # fixtures that start another process
            item.add_marker(pytest.mark.subprocess)


#: Extracted archives, kept between test runs (keyed by the archive's content, so never stale).
DATASET_CACHE = ROOT / ".cache" / "test-datasets"


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Keep exported graphs and embedding caches out of the user's cache, fresh for every run.

    Only extracted datasets persist (``.cache/test-datasets``): extracting the
    real Tiny-ImageNet again each run would add time and test nothing new.
    """
    import os

    old = os.environ.get("SUPERSUB_CACHE")
    cache = tmp_path_factory.mktemp("supersub-cache")
    DATASET_CACHE.mkdir(parents=True, exist_ok=True)
    (cache / "datasets").symlink_to(DATASET_CACHE, target_is_directory=True)
    os.environ["SUPERSUB_CACHE"] = str(cache)
    yield
    if old is None:
        os.environ.pop("SUPERSUB_CACHE", None)
    else:
        os.environ["SUPERSUB_CACHE"] = old


TINY_WNIDS = ["n01443537", "n01629819", "n02123045"]  # goldfish, salamander, tabby


def _draw(kind: int, seed: int):
    """A 64x64 JPEG-able image whose colour and shape depend on its class."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    base = np.zeros((64, 64, 3), dtype=np.uint8)
    base[..., kind] = 150 + rng.integers(0, 60)
    base += rng.integers(0, 40, size=(64, 64, 3), dtype=np.uint8)
    im = Image.fromarray(base)
    d = ImageDraw.Draw(im)
    x, y = rng.integers(5, 30, size=2)
    [d.ellipse, d.rectangle, d.polygon][kind](
        [(x, y), (x + 25, y + 25)] if kind < 2 else [(x, y), (x + 25, y), (x + 12, y + 25)],
        fill=(255, 255, 255),
    )
    return im


@pytest.fixture(scope="session")
def draw():
    """The drawing function behind the miniature datasets: ``draw(kind, seed)`` -> PIL image."""
    return _draw


def _fixed_owner(info):
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


@pytest.fixture(scope="session")
def tiny_layout(tmp_path_factory):
    """A miniature Tiny-ImageNet in the official layout: folder, zip and tar.xz."""
    import os
    import tarfile
    import zipfile

    base = tmp_path_factory.mktemp("tiny-src")
    root = base / "tiny-imagenet-200"
    (root / "val" / "images").mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(TINY_WNIDS) + "\n")
    (root / "words.txt").write_text("n01443537\tgoldfish\nn01629819\tsalamander\nn02123045\ttabby\n")
    ann = []
    for k, w in enumerate(TINY_WNIDS):
        img_dir = root / "train" / w / "images"
        img_dir.mkdir(parents=True)
        for i in range(6):
            _draw(k, 100 * k + i).save(img_dir / f"{w}_{i}.JPEG")
        (root / "train" / w / f"{w}_boxes.txt").write_text("")
        for i in range(2):
            name = f"val_{2 * k + i}.JPEG"
            _draw(k, 1000 + 10 * k + i).save(root / "val" / "images" / name)
            ann.append(f"{name}\t{w}\t0\t0\t63\t63")
    (root / "val" / "val_annotations.txt").write_text("\n".join(ann) + "\n")
    for p in [root, *root.rglob("*")]:  # fixed times: the archives' bytes are the same every run
        os.utime(p, (1_600_000_000, 1_600_000_000))
    tarball = base / "tiny-imagenet-200.tar.xz"
    with tarfile.open(tarball, "w:xz", format=tarfile.PAX_FORMAT) as tf:
        tf.add(root, arcname="tiny-imagenet-200", filter=_fixed_owner)
    zpath = base / "tiny-imagenet-200.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for p in sorted(root.rglob("*")):
            zf.write(p, p.relative_to(base))
    return {"folder": root, "tar": tarball, "zip": zpath, "wnids": TINY_WNIDS}


@pytest.fixture(scope="session")
def lite0_64():
    from memory import get_backbone

    return get_backbone("lite0", size=64, crop_pct=1.0)


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory):
    """A real Milvus standalone server from the PyPI wheel, on loopback only.

    A server that cannot start fails the tests that need it; they are never skipped.
    """
    from memory import LocalMilvusServer

    server = LocalMilvusServer(tmp_path_factory.mktemp("milvus-server"))
    try:
        server.start()
    except Exception as exc:
        pytest.fail(f"the Milvus server did not start: {exc}")
    yield server
    server.stop()


@pytest.fixture
def memory_factory(request, tmp_path):
    """``make(backend, dim, **kw)``: a new, empty memory on 'faiss', 'milvus-lite' or 'milvus-server'."""
    import uuid

    made = []

    def make(backend: str, dim: int, **kw):
        from memory import MilvusMemory, VisualMemory

        if backend == "faiss":
            kw.pop("index", None), kw.pop("ef_search", None)
            return VisualMemory(dim, progress=False, **kw)
        name = "t" + uuid.uuid4().hex[:12]
        if backend == "milvus-lite":
            mem = MilvusMemory(str(tmp_path / "lite.db"), name, dim=dim, **kw)
        elif backend == "milvus-server":
            mem = MilvusMemory(request.getfixturevalue("milvus_server").uri, name, dim=dim, **kw)
        else:
            raise ValueError(backend)
        made.append(mem)
        return mem

    yield make
    for mem in made:
        try:
            mem.drop()
            mem.close()
        except Exception:
            pass


@pytest.fixture(scope="session")
def explore_model(tiny_layout, tmp_path_factory, wordnet):
    """A built model whose class A val images were also added as class B (same superclass) from source "web".

    Returns a dict with the model and evaluation paths, the classes A and B, and the val dataset.
    """
    from hierarchy import ClassTree, cut_balanced, save_tree
    from memory import open_image, tiny_imagenet
    from router import QueryEncoder, TwoStageClassifier
    from router.cli import main

    work = tmp_path_factory.mktemp("explore-model")
    tree = ClassTree.from_wnids(tiny_layout["wnids"], wordnet=wordnet)
    save_tree(tree.with_superclasses(cut_balanced(tree, 2)), work / "tree.json")
    assert main(["build", "--data", str(tiny_layout["tar"]), "--tree", str(work / "tree.json"), "--size", "64",
                 "--k", "3", "--no-progress", "-o", str(work / "model")]) == 0
    clf = TwoStageClassifier.load(work / "model")
    val = tiny_imagenet("val", tiny_layout["tar"])
    assert str(val.root) == clf.data["root"]  # the model's data root holds the val images too
    by_sup: dict[str, list[str]] = {}
    for c in clf.class_ids_:
        by_sup.setdefault(clf.assignment_[c], []).append(str(c))
    a, b = next(cs for cs in by_sup.values() if len(cs) >= 2)[:2]
    rows = [i for i, c in enumerate(val.labels) if c == a]
    refs = [val.refs[i] for i in rows]
    X = QueryEncoder(clf, progress=False).images([open_image(val.root / r) for r in refs])
    clf.add(X, [b] * len(X), source="web", refs=refs)
    clf.save(work / "model")
    assert main(["evaluate", "--model", str(work / "model"), "--data", str(tiny_layout["tar"]), "--no-progress",
                 "-o", str(work / "eval")]) == 0
    return {"model": work / "model", "eval": work / "eval", "a": a, "b": b, "val": val, "a_refs": refs}


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium through Playwright (Debian's chromium; ``make browser`` installs it)."""
    if CHROMIUM is None:
        pytest.skip("needs Debian's chromium (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                               args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                     "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield b
        b.close()
