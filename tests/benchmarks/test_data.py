import numpy as np


def test_split_holds_out_dev_and_keeps_val_apart(split):
    assert len(split.X) == 200 * 20 and len(split.dev_X) == 200 * 5 and len(split.Q) == 200 * 5
    assert set(split.dev_y.tolist()) == set(split.y.tolist()) == set(split.qy.tolist())
    # no dev vector is also a training vector
    assert not (split.dev_X[:, None, :] == split.X[None, :50, :]).all(-1).any()


def test_score_counts_lca_heights_of_mistakes_only(split):
    tree = split.tree
    a, b, c = split.qy[0], split.qy[-1], split.qy[1]
    pred = np.array([b, c], dtype=object)
    truth = np.array([a, c], dtype=object)
    row = split.score(pred, truth)
    assert row["top1"] == 0.5
    assert row["mean_lca_height"] == tree.lca_height(a, b)
    same_super = tree.superclass_of(a) == tree.superclass_of(b)
    assert row["superclass_accuracy"] == (1.0 if same_super else 0.5)
