"""Random sequences of edits, checked step by step against a brute-force numpy model."""

import os
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from memory import VisualMemory

DIM, K = 8, 5
LABELS = ["a", "b", "c"]
QUERIES = np.random.default_rng(123).standard_normal((6, DIM)).astype(np.float32)
LONG = os.environ.get("SUPERSUB_LONG_PROPERTIES") == "1"
STEP_LOG = os.environ.get("SUPERSUB_STEP_LOG")  # the reliability benchmark counts the steps run


class MemoryModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.mem = VisualMemory(DIM, k=K, voting="plurality", progress=False)
        self.ref: dict[int, tuple[np.ndarray, str]] = {}
        self.tmp = tempfile.TemporaryDirectory()
        self.steps = 0

    def teardown(self) -> None:
        self.tmp.cleanup()
        if STEP_LOG:
            with open(STEP_LOG, "a") as fh:
                fh.write(f"{self.steps}\n")

    def _step(self) -> None:
        self.steps += 1

    @rule(n=st.integers(1, 15), seed=st.integers(0, 10_000), duplicate=st.booleans())
    def add(self, n, seed, duplicate):
        self._step()
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((n, DIM)).astype(np.float32)
        if duplicate and self.ref:  # near-copies of stored entries, for the pruner
            X[0] = next(iter(self.ref.values()))[0] + 1e-5
        labels = [LABELS[i] for i in rng.integers(0, 3, n)]
        ids = self.mem.add(X, labels, source=f"s{seed % 2}")
        for i, x, lab in zip(ids, X, labels):
            self.ref[int(i)] = (x / np.linalg.norm(x), lab)

    @precondition(lambda self: self.ref)
    @rule(data=st.data())
    def remove_ids(self, data):
        self._step()
        ids = data.draw(st.lists(st.sampled_from(sorted(self.ref)), min_size=1, max_size=5, unique=True))
        self.mem.remove(ids)
        for i in ids:
            del self.ref[i]

    @precondition(lambda self: self.ref)
    @rule(data=st.data())
    def remove_label(self, data):
        self._step()
        label = data.draw(st.sampled_from(sorted({lab for _, lab in self.ref.values()})))
        removed = set(self.mem.remove(label=label).tolist())
        assert removed == {i for i, (_, lab) in self.ref.items() if lab == label}
        self.ref = {i: v for i, v in self.ref.items() if v[1] != label}

    @precondition(lambda self: self.ref)
    @rule()
    def prune_redundant(self):
        self._step()
        removed = set(self.mem.prune_redundant(0.9999).removed_ids.tolist())
        expect = set()
        for label in LABELS:
            kept: list[np.ndarray] = []
            for i in sorted(i for i, (_, lab) in self.ref.items() if lab == label):
                v = self.ref[i][0].astype(np.float64)
                if any(float(v @ k) >= 0.9999 for k in kept):
                    expect.add(i)
                else:
                    kept.append(v)
        assert removed == expect
        for i in removed:
            del self.ref[i]

    @rule()
    def save_and_load(self):
        self._step()
        self.mem.save(self.tmp.name)
        self.mem = VisualMemory.load(self.tmp.name)

    @invariant()
    def matches_reference(self):
        assert len(self.mem) == len(self.ref)
        if not self.ref:
            return
        ids = np.array(sorted(self.ref))
        V = np.stack([self.ref[i][0] for i in ids]).astype(np.float64)
        Q = QUERIES / np.linalg.norm(QUERIES, axis=1, keepdims=True)
        sims = Q @ V.T
        k = min(K, len(ids))
        order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        ref_sims = np.take_along_axis(sims, order, 1)
        got_sims, got_ids = self.mem.search(QUERIES, K)
        np.testing.assert_allclose(got_sims[:, :k], ref_sims, atol=1e-5)
        # A rank is unambiguous when its similarity differs from both neighbours' (and the
        # (k+1)-th candidate's); exact ties may come back in either order.
        padded = np.concatenate([np.full((len(Q), 1), 9.0), ref_sims,
                                 np.take_along_axis(sims, np.argsort(-sims, 1, kind="stable")[:, k:k + 1], 1)
                                 if len(ids) > k else np.full((len(Q), 1), -9.0)], 1)
        gaps = np.abs(np.diff(padded, axis=1)) > 1e-5
        clear = gaps[:, :-1] & gaps[:, 1:]
        np.testing.assert_array_equal(np.where(clear, got_ids[:, :k], -2), np.where(clear, ids[order], -2))
        # Plurality votes of the reference neighbours; ties to the first label in sorted order.
        for q in range(len(Q)):
            if not clear[q].all():
                continue
            votes = {}
            for i in ids[order[q]]:
                votes[self.ref[int(i)][1]] = votes.get(self.ref[int(i)][1], 0) + 1
            best = max(sorted(votes), key=lambda lab: votes[lab])
            assert self.mem.predict(QUERIES[q : q + 1]).tolist() == [best]


MemoryModel.TestCase.settings = settings(
    max_examples=1000 if LONG else 12,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestMemoryModel = pytest.mark.slow(MemoryModel.TestCase) if LONG else MemoryModel.TestCase
