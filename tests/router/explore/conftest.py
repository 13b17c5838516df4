"""A small routed memory on real images, with mislabelled entries of a second source, and its evaluation."""

import shutil

import pytest

from router._cli import main


@pytest.fixture(scope="session")
def explore_model(tiny_layout, tmp_path_factory, wordnet):
    """A built model whose class A val images were also added as class B (same superclass) from source "web".

    Returns a dict with the model and evaluation paths, the classes A and B, and the val dataset.
    """
    from hierarchy import ClassTree, cut_balanced, save_tree
    from memory import open_image, tiny_imagenet
    from router import QueryEncoder, TwoStageClassifier

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


@pytest.fixture
def model_copy(explore_model, tmp_path):
    """A private copy of the model, to edit."""
    def copy(name: str = "model"):
        return shutil.copytree(explore_model["model"], tmp_path / name)
    return copy
