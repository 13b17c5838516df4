"""Nodes of a tree as answers: masses, information gain, DARTS and threshold choices, CRM."""

import numpy as np
import pytest

from hierarchy import ClassTree, HierarchyError, TreeNodes, UnknownClassError, crm_decisions


@pytest.fixture
def tree():
    """root -> {animal -> {cat -> {tabby, lion}, dog}, thing -> {car}}; 'chain' holds car alone."""
    return ClassTree.from_parents({"animal": "root", "thing": "root", "cat": "animal", "dog": "animal",
                                   "tabby": "cat", "lion": "cat", "chain": "thing", "car": "chain"})


def test_nodes_masses_and_gain(tree):
    nodes = TreeNodes(tree, ["tabby", "lion", "dog", "car"])
    assert nodes.nodes[0] == "root" and set(nodes.nodes) == {"root", "animal", "cat", "tabby", "lion", "dog", "car"}
    # 'thing' and 'chain' hold exactly what 'car' holds: one answer, named by the deepest node
    assert "thing" not in nodes.nodes and "chain" not in nodes.nodes
    gain = dict(zip(nodes.nodes, nodes.gain))
    assert gain["root"] == 0 and gain["tabby"] == gain["car"] == 1
    assert gain["animal"] == pytest.approx((2 - np.log2(3)) / 2) and gain["cat"] == pytest.approx(0.5)
    p = np.array([[0.5, 0.2, 0.2, 0.1]])
    mass = dict(zip(nodes.nodes, nodes.masses(p)[0]))
    assert mass["root"] == pytest.approx(1) and mass["cat"] == pytest.approx(0.7) and mass["animal"] == pytest.approx(0.9)


def test_a_confident_query_gets_its_class_and_a_uniform_one_the_root(tree):
    nodes = TreeNodes(tree, ["tabby", "lion", "dog", "car"])
    p = np.array([[0.97, 0.01, 0.01, 0.01], [0.25, 0.25, 0.25, 0.25]])
    mass = nodes.masses(p)
    assert [nodes.nodes[r] for r in nodes.darts(mass, 0.5)] == ["tabby", "animal"]
    assert [nodes.nodes[r] for r in nodes.darts(mass, 2.0)] == ["tabby", "root"]
    assert nodes.nodes[nodes.darts(mass, 0.0)[0]] == "tabby"
    assert [nodes.nodes[r] for r in nodes.deepest_above(mass, 0.9)] == ["tabby", "root"]
    assert [nodes.nodes[r] for r in nodes.deepest_above(mass, 0.5)] == ["tabby", "cat"]  # cat: 0.5 exactly
    assert [nodes.nodes[r] for r in nodes.deepest_above(mass, 0.6)] == ["tabby", "animal"]


def test_a_larger_lambda_or_tau_is_never_more_specific(tree):
    rng = np.random.default_rng(0)
    nodes = TreeNodes(tree, ["tabby", "lion", "dog", "car"])
    mass = nodes.masses(rng.dirichlet(np.ones(4) * 0.5, size=500))
    gains = [nodes.gain[nodes.darts(mass, lam)].mean() for lam in (0, 0.1, 0.5, 1, 3, 10, 100)]
    assert gains == sorted(gains, reverse=True) and gains[0] > gains[-1]
    gains = [nodes.gain[nodes.deepest_above(mass, tau)].mean() for tau in (0.3, 0.5, 0.7, 0.9, 0.99)]
    assert gains == sorted(gains, reverse=True) and gains[0] > gains[-1]


def test_correct_answers_hold_the_true_class_even_one_the_model_lacks(tree):
    nodes = TreeNodes(tree, ["tabby", "dog", "car"])  # lion is novel
    at = {n: i for i, n in enumerate(nodes.nodes)}
    rows = np.array([at["cat"] if "cat" in at else at["tabby"], at["animal"], at["root"], at["car"]])
    assert nodes.correct(rows, ["lion", "lion", "lion", "lion"]).tolist() == [nodes.nodes[rows[0]] == "cat",
                                                                             True, True, False]
    assert nodes.correct(np.array([at["tabby"]]), ["tabby"]).tolist() == [True]


def test_crm_with_a_constant_matrix_is_argmax_and_with_lca_heights_avoids_far_mistakes(tree):
    classes = ["tabby", "lion", "dog", "car"]
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(4), size=200)
    const = np.ones((4, 4)) - np.eye(4)  # every mistake equally bad
    assert np.array_equal(crm_decisions(p, np.full((4, 4), 3.0)), p.argmax(1))
    assert np.array_equal(crm_decisions(p, const), p.argmax(1))
    H = tree.lca_height_matrix(classes)
    p = np.array([[0.3, 0.3, 0.05, 0.35]])  # car is the argmax, but the cats together are likelier
    assert p.argmax(1)[0] == 3 and crm_decisions(p, H)[0] in (0, 1)


def test_bad_input_is_refused(tree):
    with pytest.raises(UnknownClassError, match="not classes of the tree"):
        TreeNodes(tree, ["tabby", "unicorn"])
    nodes = TreeNodes(tree, ["tabby", "dog"])
    with pytest.raises(HierarchyError, match=r"shape \(n, 2\)"):
        nodes.masses(np.ones((3, 3)))
    with pytest.raises(HierarchyError, match="NaN"):
        nodes.masses(np.array([[np.nan, 1.0]]))
    with pytest.raises(HierarchyError, match="heights must have shape"):
        crm_decisions(np.ones((2, 2)) / 2, np.ones((3, 3)))


def test_soft_labels_favour_near_classes():
    from hierarchy import soft_labels

    H = np.array([[0, 1, 4], [1, 0, 4], [4, 4, 0]])
    S = soft_labels(H, 4.0)
    assert np.allclose(S.sum(1), 1) and (S.argmax(1) == np.arange(3)).all()
    assert S[0, 1] > S[0, 2] and S[2, 0] == pytest.approx(S[2, 1])  # the near class gets more mass
    assert soft_labels(H, 40.0)[0, 0] > S[0, 0]  # a larger beta is closer to one-hot
    with pytest.raises(HierarchyError, match="beta must be a positive number"):
        soft_labels(H, 0.0)
