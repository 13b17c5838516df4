"""Calibration and hedged answers: the accuracy promise, its persistence, staleness, and bad input."""

import numpy as np
import pytest

from memory import InputError
from router import (Calibration, FlatClassifier, TwoStageClassifier, calibrate, ece, load_model,
                    temperature_scale)


def noisy(synthetic, noise, n_per, seed):
    """More queries like ``synthetic``'s, noisier, so that the model errs often enough to hedge."""
    rng = np.random.default_rng(seed)
    X, y = synthetic["X"], synthetic["y"]
    centres = {c: X[y == c].mean(0) for c in synthetic["classes"]}
    Q = np.concatenate([centres[c] + noise * rng.normal(size=(n_per, X.shape[1])) for c in synthetic["classes"]])
    return Q.astype(np.float32), np.repeat(synthetic["classes"], n_per)


@pytest.fixture(scope="module")
def setting(synthetic):
    clf = TwoStageClassifier(synthetic["tree"], router="centroids", k=10).fit(synthetic["X"], synthetic["y"])
    Xc, yc = noisy(synthetic, 4.0, 30, 10)
    Xt, yt = noisy(synthetic, 4.0, 30, 11)
    return clf, Xc, yc, Xt, yt


def test_the_promised_accuracy_holds_on_fresh_queries(setting):
    clf, Xc, yc, Xt, yt = setting
    cal = calibrate(clf, Xc, yc)
    assert clf.calibration_ is cal and cal.n == len(yc) and 0.3 < cal.top1 < 0.85  # a model worth hedging
    from hierarchy import TreeNodes

    nodes = TreeNodes(clf.tree, clf.class_names())
    for rule in ("darts", "threshold"):
        for alpha in (0.8, 0.9, 0.95):
            ans = clf.predict_hedged(Xt, accuracy=alpha, rule=rule)
            rows = np.array([nodes.nodes.index(n) for n in ans.nodes])
            achieved = nodes.correct(rows, yt).mean()
            assert achieved >= alpha - 0.02, (rule, alpha, achieved)
            assert 0 < ans.gain.mean() < 1  # neither all classes nor all root


def test_raising_alpha_never_makes_answers_more_specific(setting):
    clf, Xc, yc, Xt, _ = setting
    calibrate(clf, Xc, yc)
    for rule in ("darts", "threshold"):
        gains = [clf.predict_hedged(Xt, accuracy=a, rule=rule).gain.mean() for a in (0.5, 0.7, 0.8, 0.9, 0.95, 0.99)]
        assert gains == sorted(gains, reverse=True), (rule, gains)
        assert gains[0] > gains[-1]


def test_answers_carry_their_path_and_masses(setting):
    clf, Xc, yc, Xt, _ = setting
    calibrate(clf, Xc, yc)
    ans = clf.predict_hedged(Xt[:20], accuracy=0.9)
    for q in range(20):
        path = ans.paths[q]
        assert path[0][0] == clf.tree.root and path[0][1] == pytest.approx(1.0)
        assert path[-1] == (ans.nodes[q], pytest.approx(ans.mass[q]))
        assert [m for _, m in path] == sorted((m for _, m in path), reverse=True)  # mass shrinks going down
        assert ans.depth[q] == clf.tree.depth(ans.nodes[q]) and ans.labels[q] == clf.tree.label(ans.nodes[q])
    assert ans.is_class.tolist() == [n in clf.class_names() for n in ans.nodes]


def test_temperature_scaling_lowers_the_calibration_error(setting):
    clf, Xc, yc, _, _ = setting
    cal = calibrate(clf, Xc, yc)
    assert cal.ece_after < cal.ece_before and cal.temperature != pytest.approx(1.0)
    p = np.array([[0.7, 0.2, 0.1]])
    assert np.allclose(temperature_scale(p, 1.0), p, atol=1e-5)
    assert temperature_scale(p, 0.5)[0, 0] > 0.7 > temperature_scale(p, 2.0)[0, 0]
    assert ece(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1])) == 0


def test_crm_with_lca_heights_makes_less_severe_mistakes(setting):
    clf, _, _, Xt, yt = setting
    arg, crm = clf.predict(Xt), clf.predict(Xt, decision="crm")
    H = clf.tree.lca_height_matrix(clf.class_names())
    col = {c: i for i, c in enumerate(clf.class_names())}

    def severity(pred):
        wrong = pred != yt
        return np.mean([H[col[t], col[p]] for t, p in zip(yt[wrong], pred[wrong])])

    assert severity(crm) <= severity(arg)
    with pytest.raises(InputError, match="unknown decision 'mode'"):
        clf.predict(Xt, decision="mode")


def test_crm_decides_on_the_calibrated_probabilities_while_the_calibration_is_fresh(setting, synthetic):
    from hierarchy import crm_decisions

    clf, Xc, yc, Xt, _ = setting
    fresh = TwoStageClassifier(synthetic["tree"], router="centroids", k=10).fit(synthetic["X"], synthetic["y"])
    H = fresh.tree.lca_height_matrix(fresh.class_names())
    p = fresh.predict_proba(Xt)
    assert np.array_equal(fresh.decide(p, "crm"), crm_decisions(p, H))  # not calibrated: the raw probabilities
    cal = calibrate(fresh, Xc, yc)
    scaled = crm_decisions(cal.scale(p), H)
    assert not np.array_equal(scaled, crm_decisions(p, H))  # the calibration changes some choices here
    assert np.array_equal(fresh.decide(p, "crm"), scaled)
    assert np.array_equal(fresh.decide(p), p.argmax(1)) and np.array_equal(cal.scale(p).argmax(1), p.argmax(1))
    cal.stale = True
    assert np.array_equal(fresh.decide(p, "crm"), crm_decisions(p, H))


def test_the_calibration_is_saved_with_the_model_and_an_edit_makes_it_stale(setting, tmp_path, synthetic, caplog):
    clf, Xc, yc, Xt, _ = setting
    calibrate(clf, Xc, yc)
    clf.save(tmp_path / "m")
    back = load_model(tmp_path / "m")
    assert back.calibration_ == clf.calibration_
    want = clf.predict_hedged(Xt, accuracy=0.9)
    assert np.array_equal(back.predict_hedged(Xt, accuracy=0.9).nodes, want.nodes)
    back.remove_class(synthetic["classes"][0])
    assert back.calibration_.stale
    with pytest.raises(InputError, match="calibration is stale"):
        back.predict_hedged(Xt, accuracy=0.9, strict=True)
    back.save(tmp_path / "m")
    assert load_model(tmp_path / "m").calibration_.stale  # the flag is saved
    assert not hasattr(back.fit(synthetic["X"], synthetic["y"]), "calibration_")  # a refit drops it
    other = load_model(tmp_path / "m")
    other.calibration_.stale = False  # a calibration of another memory size is stale too
    with pytest.raises(InputError, match="calibration is stale"):
        other.check_calibration(strict=True)


def test_bad_input_gets_a_clear_error_and_changes_nothing(setting, synthetic, tmp_path):
    clf, Xc, yc, Xt, _ = setting
    fresh = TwoStageClassifier(synthetic["tree"], k=10).fit(synthetic["X"], synthetic["y"])
    with pytest.raises(InputError, match="is not calibrated: run router.calibrate"):
        fresh.predict_hedged(Xt, accuracy=0.9)
    cal = calibrate(clf, Xc, yc)
    for alpha in (0, 1, 1.5, -0.1, float("nan"), True):
        with pytest.raises(InputError, match="accuracy must be a number strictly between 0 and 1"):
            clf.predict_hedged(Xt, accuracy=alpha)
    with pytest.raises(InputError, match="unknown rule"):
        clf.predict_hedged(Xt, accuracy=0.9, rule="greedy")
    other = [c for c in synthetic["tree"].classes if c not in synthetic["classes"]][0]
    with pytest.raises(InputError, match="classes the model lacks, e.g. " + repr(other)):
        calibrate(clf, Xc[:3], [yc[0], yc[1], other])
    assert clf.calibration_ is cal  # unchanged by the refusal
    small = calibrate(clf, Xc[:40], yc[:40])
    with pytest.raises(InputError, match=r"40 calibration images cannot promise 99% .* at least 230 images"):
        clf.predict_hedged(Xt, accuracy=0.99)
    assert small.parameter(0.5) >= 0
    with pytest.raises(InputError, match="not a valid calibration"):
        Calibration.from_dict({"temperature": 1.0})


def test_a_flat_model_is_calibrated_against_a_tree(synthetic):
    flat = FlatClassifier("knn", k=10).fit(synthetic["X"], synthetic["y"])
    with pytest.raises(InputError, match="pass tree="):
        calibrate(flat, synthetic["Q"], synthetic["qy"])
    cal = calibrate(flat, synthetic["Q"], synthetic["qy"], tree=synthetic["tree"])
    assert cal.n == len(synthetic["qy"]) and flat.calibration_ is cal


def test_hedging_precomputed_probabilities_gives_the_same_answers(setting):
    from router import hedged_curve

    clf, Xc, yc, Xt, yt = setting
    calibrate(clf, Xc, yc)
    proba = clf.predict_proba(Xt)
    for rule in ("darts", "threshold"):
        want = clf.predict_hedged(Xt, accuracy=0.9, rule=rule)
        got = clf.hedged_from_proba(proba, accuracy=0.9, rule=rule)
        assert np.array_equal(got.nodes, want.nodes) and np.array_equal(got.mass, want.mass)
    assert hedged_curve(clf, Xt, yt, proba=proba) == hedged_curve(clf, Xt, yt)
    with pytest.raises(InputError, match="rows of probabilities but"):
        hedged_curve(clf, Xt, yt, proba=proba[:5])
