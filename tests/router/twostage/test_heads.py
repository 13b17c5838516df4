"""Heads on frozen embeddings, trained in fp32 and under bf16 autocast."""

import numpy as np
import pytest
import torch

from memory import InputError
from memory.store import native_bf16
from router import TRAIN_PRECISION_ENV, DeltaSpecialists, fit_head, head_proba, training_precision
from router.twostage import train_module


@pytest.fixture(scope="module")
def coded(synthetic):
    index = {c: i for i, c in enumerate(synthetic["classes"])}
    yi = np.array([index[c] for c in synthetic["y"]])
    qi = np.array([index[c] for c in synthetic["qy"]])
    sup = np.array([synthetic["tree"].superclass_of(c) for c in synthetic["classes"]])
    groups = [np.flatnonzero(sup == s) for s in sorted(set(sup))]
    return synthetic["X"], yi, synthetic["Q"], qi, groups


@pytest.mark.parametrize("hidden", [0, 64])
def test_bf16_training_learns_what_fp32_learns(coded, hidden):
    X, yi, Q, qi, _ = coded
    acc = {}
    for precision in ("fp32", "bf16"):
        head = fit_head(X, yi, int(yi.max()) + 1, hidden=hidden, epochs=5, seed=0, precision=precision,
                        min_steps=100, lr=1e-2)
        assert all(p.dtype == torch.float32 for p in head.parameters())  # stored in fp32 either way
        acc[precision] = float(np.mean(head_proba(head, Q).argmax(1) == qi))
    assert acc["fp32"] >= 0.95  # chance is 1 in 40
    assert abs(acc["bf16"] - acc["fp32"]) <= 0.02


def test_bf16_training_is_not_fp32_training(coded):
    X, yi, *_ = coded
    a = fit_head(X, yi, int(yi.max()) + 1, epochs=2, seed=0, precision="fp32", min_steps=50)
    b = fit_head(X, yi, int(yi.max()) + 1, epochs=2, seed=0, precision="bf16", min_steps=50)
    c = fit_head(X, yi, int(yi.max()) + 1, epochs=2, seed=0, precision="bf16", min_steps=50)
    assert not torch.equal(a.out.weight, b.out.weight)  # autocast really ran
    assert torch.equal(b.out.weight, c.out.weight)  # and is deterministic


def test_training_is_seeded_and_leaves_the_callers_generator_alone(coded):
    X, yi, *_ = coded
    torch.manual_seed(5)
    state = torch.random.get_rng_state()
    a = fit_head(X, yi, int(yi.max()) + 1, hidden=64, epochs=2, seed=3, min_steps=20)
    assert torch.equal(torch.random.get_rng_state(), state)
    torch.rand(11)  # another state before the second fit
    b = fit_head(X, yi, int(yi.max()) + 1, hidden=64, epochs=2, seed=3, min_steps=20)
    c = fit_head(X, yi, int(yi.max()) + 1, hidden=64, epochs=2, seed=4, min_steps=20)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.out.weight, c.out.weight)


def test_delta_specialists_train_in_bf16(coded):
    X, yi, Q, qi, groups = coded
    base = fit_head(X, yi, int(yi.max()) + 1, hidden=64, epochs=5, seed=0, min_steps=100)
    right = {}
    for precision in ("fp32", "bf16"):
        spec = DeltaSpecialists(4).fit(base, X, yi, groups, epochs=3, seed=0, precision=precision)
        hits = 0
        for g, members in enumerate(groups):
            q = np.flatnonzero(np.isin(qi, members))
            hits += int(np.sum(members[spec.proba_in(g, Q[q]).argmax(1)] == qi[q]))
        right[precision] = hits / len(qi)
    assert right["fp32"] >= 0.9
    assert abs(right["bf16"] - right["fp32"]) <= 0.02


@pytest.mark.parametrize("hidden", [0, 64])
def test_zero_deltas_equal_the_base_head(coded, hidden):
    """A specialist whose deltas are all zero is the base head restricted to its classes."""
    from router import quantise_int8

    X, yi, Q, _, groups = coded
    base = fit_head(X, yi, int(yi.max()) + 1, hidden=hidden, epochs=2, seed=0, min_steps=20, precision="fp32")
    rank, width = 4, hidden or X.shape[1]
    state = {"rank": np.array(rank)}
    for s, rows in enumerate(groups):
        state[f"{s}/rows"], state[f"{s}/db"] = rows, np.zeros(len(rows), np.float32)
        shapes = {"a2": (len(rows), rank), "b2": (rank, width)}
        if hidden:
            shapes.update(a1=(hidden, rank), b1=(rank, X.shape[1]))
        for name, shape in shapes.items():
            state[f"{s}/{name}/q"], state[f"{s}/{name}/scale"] = quantise_int8(np.zeros(shape, np.float32))
    spec = DeltaSpecialists.from_state(base, state)
    full = head_proba(base, Q)
    for s, rows in enumerate(groups):
        expected = full[:, rows] / full[:, rows].sum(1, keepdims=True)  # the base, renormalised over the group
        np.testing.assert_allclose(spec.proba_in(s, Q), expected, rtol=0, atol=1e-5)


def test_unknown_precision_is_refused(coded, monkeypatch):
    X, yi, *_ = coded
    with pytest.raises(InputError, match="precision must be 'auto', 'bf16' or 'fp32', got 'fp16'"):
        train_module(torch.nn.Linear(X.shape[1], 3), X, yi % 3, precision="fp16")
    monkeypatch.setenv(TRAIN_PRECISION_ENV, "int4")
    with pytest.raises(InputError, match=f"{TRAIN_PRECISION_ENV}='int4' is not a precision"):
        training_precision()


def test_auto_follows_the_cpu_and_the_environment(coded, monkeypatch):
    monkeypatch.delenv(TRAIN_PRECISION_ENV, raising=False)
    assert training_precision() == ("bf16" if native_bf16() else "fp32")
    assert training_precision("fp32") == "fp32"
    X, yi, *_ = coded
    n = int(yi.max()) + 1
    for forced in ("fp32", "bf16"):
        monkeypatch.setenv(TRAIN_PRECISION_ENV, forced)
        assert training_precision() == forced
        auto = fit_head(X, yi, n, epochs=1, seed=0, min_steps=20)
        explicit = fit_head(X, yi, n, epochs=1, seed=0, precision=forced, min_steps=20)
        assert torch.equal(auto.out.weight, explicit.out.weight)
