"""A tail's forward pass in row layout computes what its modules compute, and trains them the same way."""

import copy

import numpy as np
import pytest
import torch
from torch.func import functional_call

from memory import InputError, tiny_imagenet
from router import rows_forward, split_backbone, train_epoch, trunk_activations
from router.network import RowsForward


@pytest.fixture(scope="module")
def acts(lite0_64, tiny_layout, tmp_path_factory):
    """Real trunk activations at each split point tested (64 px, so the maps are small)."""
    ds = tiny_imagenet("train", tiny_layout["folder"])
    out = {}
    for at in ("blocks.6", "blocks.5", "blocks.4"):
        split = split_backbone(lite0_64, at)
        ta = trunk_activations(ds, split, precision="fp32", runtime="torch",
                               cache=tmp_path_factory.mktemp("trunk"), progress=False)
        out[at] = (split, torch.from_numpy(ta.acts.astype(np.float32)))
    return out


def _relative(a, b):
    return float((a - b).detach().norm() / b.detach().norm())


@pytest.mark.parametrize("at", ["blocks.6", "blocks.5", "blocks.4"])
@pytest.mark.parametrize("training", [True, False])
def test_rows_give_the_modules_logits_gradients_and_statistics(acts, at, training):
    split, x = acts[at]  # blocks.5 starts with a strided "same"-padded convolution; blocks.4 has residuals
    torch.manual_seed(0)
    mod = split.tail(7)
    rows_tail = copy.deepcopy(mod)
    rows = rows_forward(rows_tail)
    assert isinstance(rows, RowsForward)
    mod.train(training)
    rows_tail.train(training)
    want, got = mod(x), rows(x)
    assert got.shape == want.shape == (len(x), 7)
    assert _relative(got, want) < 1e-5
    assert _relative(rows.features(x), mod.features(x)) < 1e-5
    w = torch.randn_like(want)
    (want * w).sum().backward()
    (got * w).sum().backward()
    g_mod = torch.cat([p.grad.flatten() for p in mod.parameters()])
    g_rows = torch.cat([p.grad.flatten() for p in rows_tail.parameters()])
    # oneDNN's kernels for the channels-last depthwise convolution are its own choice: on one thread of an
    # AMD EPYC (AVX-512, no AMX) their gradients at blocks.4 were 2.1e-4 from float64's, against 2.7e-6 for
    # the modules; ATen's own kernels give 3.9e-6 for the same rows.  So the default kernels are held to
    # 1e-3, and the rows' own arithmetic to 1e-4 on ATen's kernels.
    assert _relative(g_rows, g_mod) < 1e-3
    enabled, torch.backends.mkldnn.enabled = torch.backends.mkldnn.enabled, False
    try:
        grads = []
        for tail, forward in ((copy.deepcopy(mod), None), (copy.deepcopy(rows_tail), rows_forward)):
            tail.zero_grad()
            out = (forward(tail) if forward else tail)(x)
            (out * w).sum().backward()
            grads.append(torch.cat([p.grad.flatten() for p in tail.parameters()]))
    finally:
        torch.backends.mkldnn.enabled = enabled
    assert _relative(grads[1], grads[0]) < 1e-4
    for (name, b_mod), b_rows in zip(mod.named_buffers(), rows_tail.buffers()):
        if name.endswith("num_batches_tracked"):  # two training passes (logits, features) or none
            assert int(b_rows) == int(b_mod) == (2 if training else 0)
        else:
            # batch means near zero are sums that cancel: their rounding is relative to the activations
            assert _relative(b_rows, b_mod) < (1e-3 if name.endswith("running_mean") else 1e-5), name


def test_rows_take_other_parameters_as_functional_call_does(acts):
    split, x = acts["blocks.6"]
    tail = split.tail(5).eval()
    gen = torch.Generator().manual_seed(1)
    params = {n: (p + 0.05 * torch.randn(p.shape, generator=gen)).detach() for n, p in tail.named_parameters()}
    params.update(dict(tail.named_buffers()))
    want = functional_call(tail, params, (x,))
    got = rows_forward(tail)(x, params)
    assert _relative(got, want) < 1e-5
    assert _relative(got, tail(x)) > 1e-3  # the other parameters were used, not the tail's own
    some = {n: params[n] for n in ("classifier.weight", "head.0.weight")}  # the rest: the tail's own
    assert _relative(rows_forward(tail)(x, some), functional_call(tail, some, (x,))) < 1e-5


def test_bad_input_is_refused_clearly(acts):
    split, x = acts["blocks.6"]
    rows = rows_forward(split.tail(3))
    with pytest.raises(InputError, match="does not have"):
        rows(x, {"stages.9.weight": torch.zeros(1)})
    with pytest.raises(InputError, match=r"shape \(n, C, H, W\)"):
        rows(x[0])
    bare = rows_forward(split.tail())
    assert bare.features(x).shape == (len(x), split.tail().dim)
    with pytest.raises(InputError, match="no classifier"):
        bare(x)


def test_parts_without_a_plan_leave_the_modules_to_run(acts):
    split, _ = acts["blocks.6"]
    tail = split.tail(3)
    block = next(m for m in tail.modules() if type(m).__name__ == "InvertedResidual")
    block.se = torch.nn.Sigmoid()  # any module the plan does not know
    assert rows_forward(tail) is None
    tail = split.tail(3)
    tail.head.append(torch.nn.Dropout(0.1))
    assert rows_forward(tail) is None
    tail = split.tail(3)
    tail.head[1].act = torch.nn.GELU(approximate="tanh")  # an activation the plan does not map
    assert rows_forward(tail) is None


def test_a_training_epoch_through_rows_matches_one_through_the_modules(acts):
    split, x = acts["blocks.6"]
    y = torch.arange(len(x)) % 3
    results = []
    for use_rows in (False, True):
        torch.manual_seed(0)
        tail = split.tail(3)
        tail.train()
        # SGD: Adam would scale the rounding noise of gradients that are zero in exact arithmetic (a bias
        # before a batch norm) up to full steps, so two exact implementations would drift apart
        opt = torch.optim.SGD(tail.parameters(), lr=0.05)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1.0)
        forward = rows_forward(tail) if use_rows else tail
        losses = [train_epoch(forward, x.numpy(), y, 6, opt, sched, torch.Generator().manual_seed(3), flip=True,
                              precision="fp32") for _ in range(3)]
        results.append((losses, torch.cat([p.detach().flatten() for p in tail.parameters()])))
    (l_mod, w_mod), (l_rows, w_rows) = results
    np.testing.assert_allclose(l_rows, l_mod, rtol=1e-4)
    assert l_mod[-1] < l_mod[0]
    assert _relative(w_rows, w_mod) < 1e-4
