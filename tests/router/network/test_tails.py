"""Fine-tuned tails and their int8 delta specialists, on real trunk activations."""

import numpy as np
import pytest
import torch

from memory import InputError, tiny_imagenet
from router import TailDeltas, TailSpecialists, split_backbone, tail_features, tail_logits, train_tail, trunk_activations
from router.network import DeltaParams, merged_params


@pytest.fixture(scope="module")
def data(lite0_64, tiny_layout, tmp_path_factory):
    split = split_backbone(lite0_64)
    ds = tiny_imagenet("train", tiny_layout["folder"])
    ta = trunk_activations(ds, split, cache=tmp_path_factory.mktemp("trunk"), progress=False)
    classes = sorted(set(ta.labels))
    y = np.array([classes.index(c) for c in ta.labels])
    return split, ta.acts, y


@pytest.fixture(scope="module")
def generalist(data):
    split, acts, y = data
    tail = split.tail(3)
    hist = train_tail(tail, acts, y, epochs=6, batch_size=8, lr=1e-3, dev=(acts, y), seed=0)
    return tail, hist


def test_fine_tuning_learns_the_classes(generalist, data):
    _, acts, y = data
    tail, hist = generalist
    assert hist["loss"][-1] < hist["loss"][0]
    assert np.mean(tail_logits(tail, acts).argmax(1) == y) == 1.0  # 18 training images, 3 classes


def test_zero_deltas_equal_the_generalist(generalist, data):
    _, acts, _ = data
    tail, _ = generalist
    groups = [np.array([0, 1]), np.array([1, 2])]
    specs = TailSpecialists(tail, rank=4)
    specs.groups, specs.deltas = groups, [TailDeltas.zeros(tail, g, 4) for g in groups]
    full = tail_logits(tail, acts, precision="fp32")
    for s, g in enumerate(groups):
        np.testing.assert_allclose(specs.logits(s, acts, precision="fp32"), full[:, g], rtol=0, atol=1e-5)
        np.testing.assert_array_equal(specs.features(s, acts, precision="fp32"),
                                      tail_features(tail, acts, precision="fp32"))


def _trained_deltas(tail, acts, y, rows, steps=100):
    """Deltas trained as a specialist's are (AdamW at the specialists' learning rate, 2e-3), for
    about as many steps as a specialist of the Tiny-ImageNet benchmark takes."""
    from torch.func import functional_call

    d = DeltaParams(tail, rows, 8, seed=1)
    keep = np.isin(y, rows)
    x = torch.from_numpy(acts[keep].astype(np.float32))
    local = torch.from_numpy(np.searchsorted(rows, y[keep]))
    buffers = dict(tail.named_buffers())
    opt = torch.optim.AdamW(d.parameters(), lr=2e-3, weight_decay=0.0)
    tail.eval()
    for _ in range(steps):
        logits = functional_call(tail, {**merged_params(tail, d), **buffers}, (x,))[:, torch.from_numpy(rows)]
        loss = torch.nn.functional.cross_entropy(logits, local)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return d


def test_int8_deltas_stay_close_to_fp32(generalist, data):
    _, acts, y = data
    tail, _ = generalist
    d = _trained_deltas(tail, acts, y, np.array([0, 2]))
    moved = max(float(p.detach().abs().max()) for p in [*d.a, *d.n, d.ca, d.cbias])
    assert moved > 1e-3  # the deltas did train away from zero
    q = TailDeltas.quantise(d)
    exact, rounded = merged_params(tail, d), merged_params(tail, q)

    def product_bound(a, b):
        """|A B - A' B'| elementwise, when each row of A and of B is rounded to half its int8 step."""
        a, b = a.detach().abs(), b.detach().abs()
        ea, eb = a.amax(1, keepdim=True) / 254, b.amax(1, keepdim=True) / 254  # (out, 1), (rank, 1)
        return ea * b.sum(0, keepdim=True) + a @ eb + ea * eb.sum()

    base = dict(tail.named_parameters())
    ulp = lambda name: 2 * float(torch.finfo(torch.float32).eps) * float(base[name].detach().abs().max())  # noqa: E731
    with torch.no_grad():  # each bound plus the float32 rounding of adding a delta to the weight
        for name, a, b in zip(d.convs, d.a, d.b):
            err = (exact[name] - rounded[name]).abs().reshape(a.shape[0], -1)
            assert (err <= product_bound(a, b) + ulp(name)).all(), name
        for name, t in zip(d.norms, d.n):  # one rounded vector: half a step of its own scale
            err = float((exact[name] - rounded[name]).abs().max())
            assert err <= float(t.abs().max()) / 254 + ulp(name), name
        head = (exact["classifier.weight"] - rounded["classifier.weight"]).abs()[d.rows]
        assert (head <= product_bound(d.ca, d.cb) + ulp("classifier.weight")).all()
    x = torch.from_numpy(acts.astype(np.float32))
    with torch.no_grad():
        a = torch.func.functional_call(tail, exact, (x,))
        b = torch.func.functional_call(tail, rounded, (x,))
    assert float((a - b).abs().max() / (a.max() - a.min())) <= 0.002  # the README's bound


def test_specialists_train_on_their_group_and_store_little(generalist, data):
    split, acts, y = data
    tail, _ = generalist
    groups = [np.array([0, 1]), np.array([2, 1])]
    specs = TailSpecialists(tail, rank=4).fit(acts, y, groups, epochs=2, batch_size=8, dev=(acts, y))
    assert [list(g) for g in specs.groups] == [[0, 1], [1, 2]]
    assert len(specs.fitted.dev_top1[0]) == 3  # epoch 0 (the generalist) and two epochs
    p = specs.proba_in(1, acts)
    assert p.shape == (18, 2) and np.allclose(p.sum(1), 1)
    st = specs.storage(sum(p.numel() for p in split.trunk.parameters()))
    # int8 values plus one float32 scale per row, counted from the tail's own shapes
    r, params = 4, dict(tail.named_parameters())
    convs = [p for n, p in params.items() if p.ndim == 4 and p.shape[2:] == (1, 1)]
    norms = [p for n, p in params.items() if p.ndim == 1 and not n.startswith("classifier")]
    per = sum(o * r + 4 * o + r * i + 4 * r for o, i in (p.shape[:2] for p in convs))
    per += sum(p.numel() + 4 for p in norms)
    head = lambda m: m * r + 4 * m + r * 1280 + 4 * r + m + 4  # noqa: E731  rows m of the classifier
    assert st["specialist_bytes"] == head(2) * 2 + 2 * per
    assert st["tails"] == pytest.approx(1 + st["specialist_bytes"] / (4 * tail.n_params()), abs=1e-4)
    assert st["tails"] <= st["published_bound_tails"] == 1.4
    assert st["networks"] < st["tails"]
    full = TailSpecialists(tail, kind="full").fit(acts, y, groups, epochs=1, batch_size=8)
    assert full.storage()["tails"] == 3.0  # the generalist and two whole copies


def test_deltas_round_trip_their_state(generalist):
    tail, _ = generalist
    d = TailDeltas.zeros(tail, np.array([0, 2]), 4)
    back = TailDeltas.from_state(d.state("s0/"), "s0/", tail)
    assert all(np.array_equal(a, b) for a, b in zip(d.arrays(), back.arrays()))
    state = d.state("s0/")
    state.pop("s0/head/a/q")
    with pytest.raises(InputError, match="lack"):
        TailDeltas.from_state(state, "s0/", tail)


def test_bad_input(generalist, data):
    split, acts, y = data
    tail, _ = generalist
    with pytest.raises(InputError, match="shape"):
        tail_logits(tail, acts[0])
    with pytest.raises(InputError, match="targets"):
        train_tail(split.tail(3), acts, y + 5, epochs=1)
    with pytest.raises(InputError, match="classifier"):
        train_tail(split.tail(), acts, y, epochs=1)
    with pytest.raises(InputError, match="precision"):
        tail_logits(tail, acts, precision="fp8")
    with pytest.raises(InputError, match="kind"):
        TailSpecialists(tail, kind="lora")
    with pytest.raises(InputError, match="class indices"):
        TailSpecialists(tail).fit(acts, y, [np.array([0, 7])], epochs=1)


def test_soft_labels_train_the_tail_and_bad_ones_are_refused(data):
    """Hierarchy-aware soft labels (a target distribution per true class) train as well as hard ones here."""
    from hierarchy import soft_labels

    split, acts, y = data
    heights = np.array([[0, 2, 6], [2, 0, 6], [6, 6, 0]])  # classes 0 and 1 are near, 2 is far
    tail = split.tail(3)
    hist = train_tail(tail, acts, y, epochs=6, batch_size=8, seed=0, soft_targets=soft_labels(heights, 10.0))
    assert hist["loss"][-1] < hist["loss"][0]
    assert np.mean(tail_logits(tail, acts).argmax(1) == y) == 1.0
    with pytest.raises(InputError, match=r"soft_targets must be \(3, 3\) rows that sum to 1"):
        train_tail(split.tail(3), acts, y, epochs=1, soft_targets=np.ones((3, 3)))


def test_keep_best_ends_on_the_epoch_of_best_dev_accuracy(data):
    split, acts, y = data
    dev = (acts[::2], y[::2])
    plain = split.tail(3)
    hist = train_tail(plain, acts, y, epochs=4, batch_size=8, seed=0, dev=dev)
    best = split.tail(3)
    kept = train_tail(best, acts, y, epochs=4, batch_size=8, seed=0, dev=dev, keep_best=True)
    assert kept["dev_top1"] == hist["dev_top1"]  # the same run, seeded
    want = int(np.argmax(kept["dev_top1"])) + 1  # the earliest of the best
    assert kept["best_epoch"] == want
    if want < 4:  # the weights of that epoch: they score what they scored then
        assert np.mean(tail_logits(best, dev[0]).argmax(1) == dev[1]) == pytest.approx(kept["dev_top1"][want - 1])
    else:
        assert all(torch.equal(a, b) for a, b in zip(best.state_dict().values(), plain.state_dict().values()))
    with pytest.raises(InputError, match="keep_best needs dev images"):
        train_tail(split.tail(3), acts, y, epochs=1, keep_best=True)


def test_a_new_tail_is_drawn_with_its_seed(data):
    split, _, _ = data
    torch.rand(3)  # the caller's generator state does not matter
    a, b, c = split.tail(3), split.tail(3), split.tail(3, seed=1)
    assert torch.equal(a.classifier.weight, b.classifier.weight)
    assert not torch.equal(a.classifier.weight, c.classifier.weight)
