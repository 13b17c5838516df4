"""From a folder of labelled images to a saved model and back, in Python: the pipeline functions
that the command line calls."""

import numpy as np
import pytest

from hierarchy import ClassTree, HierarchyError, UnknownClassError, cut_balanced
from memory import InputError, image_folder
from router import (
    DEFAULT_EMBEDDING,
    QueryEncoder,
    TwoStageClassifier,
    build_memory_model,
    evaluate,
    match_classes,
)
from router.cli import main

NAMES = ["red_round", "green_box", "blue_wedge"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory, draw):
    root = tmp_path_factory.mktemp("photos")
    for split, n, seed in (("train", 8, 0), ("test", 3, 500)):
        for k, c in enumerate(NAMES):
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                draw(k, seed + 100 * k + i).save(root / split / c / f"img_{i}.jpg")
    tree = ClassTree.from_parents({"red_round": "warm", "green_box": "cool", "blue_wedge": "cool"})
    return root, tree.with_superclasses(cut_balanced(tree, 2))


def test_folder_to_saved_model_to_predictions(photos, capsys):
    root, tree = photos
    clf = build_memory_model(tree, image_folder(root / "train"), progress=False, k=3)
    assert clf.embedding == DEFAULT_EMBEDDING and clf.data["root"] == str((root / "train").resolve())
    assert sorted(clf.classes_) == sorted(NAMES) and clf.n_entries == 24
    clf.save(root / "model")
    test = image_folder(root / "test")
    paths = [str(test.root / r) for r in test.refs]
    assert main(["predict", "--model", str(root / "model"), "--top", "1", "--neighbours", "0", *paths]) == 0
    out = capsys.readouterr().out
    for path, label in zip(paths, (test.classes[t] for t in test.targets)):  # each image, then its class
        assert out.split(path)[1].split("\n")[2].split()[1] == label
    back = TwoStageClassifier.load(root / "model")
    X = QueryEncoder(back, progress=False).images(paths)
    metrics = evaluate(back, X, [test.classes[t] for t in test.targets])
    assert metrics["n"] == 9 and metrics["top1"] == 1.0


def test_classes_are_checked_against_the_tree_first(photos, wordnet):
    root, tree = photos
    wrong = ClassTree.from_parents({"cat": "pets", "dog": "pets", "emu": "wild"})
    with pytest.raises(UnknownClassError, match="3 of 3 classes are not classes of the tree"):
        build_memory_model(wrong.with_superclasses(cut_balanced(wrong, 2)), image_folder(root / "train"))
    with pytest.raises(HierarchyError, match="no superclass cut"):
        build_memory_model(ClassTree.from_parents({c: "all" for c in NAMES}), image_folder(root / "train"))
    wn = ClassTree.from_wnids(["n01443537", "n02123045", "n01629819"], wordnet=wordnet)
    wn = wn.with_superclasses(cut_balanced(wn, 2))
    (root / "lemmas" / "goldfish.n.01").mkdir(parents=True)
    (root / "lemmas" / "n02123045").mkdir(parents=True)
    for i, d in enumerate(sorted((root / "lemmas").iterdir())):
        (d / "a.jpg").write_bytes((root / "train" / NAMES[i] / "img_0.jpg").read_bytes())
    matched = match_classes(wn, image_folder(root / "lemmas"))
    assert matched.classes == ["n01443537", "n02123045"]  # a synset name resolves to its wnid


def test_a_model_without_a_recipe_says_so(photos):
    root, tree = photos
    rng = np.random.default_rng(0)
    clf = TwoStageClassifier(tree, k=3).fit(rng.normal(size=(30, 16)).astype(np.float32),
                                            [NAMES[i % 3] for i in range(30)])
    clf.save(root / "bare")
    with pytest.raises(InputError, match="does not record how its embeddings were made"):
        QueryEncoder(TwoStageClassifier.load(root / "bare"))
    assert main(["predict", "--model", str(root / "bare"), str(root / "test" / "red_round" / "img_0.jpg")]) == 2
