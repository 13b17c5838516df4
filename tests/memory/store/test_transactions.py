"""All-or-nothing edits: a failure injected between any two steps of add or remove changes nothing."""

import numpy as np
import pytest

from memory import VisualMemory


class Injected(RuntimeError):
    pass


def full_state(mem):
    """Everything a memory holds: ids, vectors, every metadata row, next id, vocabularies, predictions."""
    q = np.random.default_rng(9).standard_normal((20, mem.dim)).astype(np.float32)
    table = mem.table_
    return (mem.ids_.tolist(), mem.vectors(mem.ids_).tobytes(), mem.get(mem.ids_), table.next_id,
            mem.index_.ntotal, {c: list(v.values) for c, v in table.vocabs.items()},
            mem.counts("label"), mem.counts("source"), mem.predict_proba(q).tobytes())


def fail_on(monkeypatch, obj, method, after_calls=0):
    """Make ``obj.method`` raise on its call number ``after_calls`` (earlier calls run)."""
    real = getattr(obj, method)
    calls = {"n": 0}

    def wrapped(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > after_calls:
            raise Injected(f"{method} failed")
        return real(*args, **kwargs)

    monkeypatch.setattr(obj, method, wrapped)


@pytest.fixture
def mem(data):
    X, y, _, _ = data
    m = VisualMemory(k=5, progress=False)
    m.add(X[:600], y[:600], source="base", superclass="A")
    return m


# (part, step, calls that succeed before it fails): the steps of add, in order.
ADD_STEPS = [("table", "appended", 0), ("index", "add_batch", 0), ("index", "add_batch", 1)]


@pytest.mark.parametrize("part, step, after", ADD_STEPS, ids=[f"{p}.{s}-after-{a}" for p, s, a in ADD_STEPS])
def test_add_fails_cleanly_at_every_step(mem, data, monkeypatch, part, step, after):
    X, y, _, _ = data
    before = full_state(mem)
    fail_on(monkeypatch, mem.table_ if part == "table" else mem.index_, step, after)
    with pytest.raises(Injected):
        mem.add(X[600:], y[600:], source="new", batch_size=300)  # two batches: fail inside or between
    monkeypatch.undo()
    assert full_state(mem) == before
    mem.add(X[600:], y[600:], source="new")  # and the memory still works
    assert len(mem) == len(X)


def test_add_fails_cleanly_while_encoding_a_column(mem, data, monkeypatch):
    """A failure while the new table encodes its text columns leaves the vocabularies untouched."""
    from memory.store import Vocab

    X, y, _, _ = data
    before = full_state(mem)
    real = Vocab.encode
    calls = {"n": 0}

    def encode(self, values):
        calls["n"] += 1
        if calls["n"] == 2:  # the label column is encoded, the source column fails
            raise Injected("columns")
        return real(self, values)

    monkeypatch.setattr(Vocab, "encode", encode)
    with pytest.raises(Injected):
        mem.add(X[600:], y[600:], source="new")
    monkeypatch.undo()
    assert full_state(mem) == before


REMOVE_STEPS = [("table", "kept"), ("index", "remove")]


@pytest.mark.parametrize("part, step", REMOVE_STEPS, ids=[f"{p}.{s}" for p, s in REMOVE_STEPS])
@pytest.mark.parametrize("how", ["label", "ids"])
def test_remove_fails_cleanly_at_every_step(mem, monkeypatch, part, step, how):
    before = full_state(mem)
    fail_on(monkeypatch, mem.table_ if part == "table" else mem.index_, step)
    with pytest.raises(Injected):
        if how == "label":
            mem.remove(label="class03")
        else:
            mem.remove(mem.ids_[::7])
    monkeypatch.undo()
    assert full_state(mem) == before
    assert mem.remove(label="class03").size  # and the memory still works


def test_remove_with_an_approximate_index_keeps_its_tombstones(data, monkeypatch):
    X, y, Q, _ = data
    mem = VisualMemory(index="HNSW16", progress=False)
    mem.add(X, y)
    mem.build_index()
    tomb = mem.index_.tomb.copy()
    fail_on(monkeypatch, mem.index_.flat, "remove_ids")
    with pytest.raises(Injected):
        mem.remove(label="class02")
    monkeypatch.undo()
    np.testing.assert_array_equal(mem.index_.tomb, tomb)
    assert "class02" in mem.predict(Q).tolist()


def test_routed_add_across_shards_is_all_or_nothing(monkeypatch):
    from hierarchy import ClassTree, cut_balanced
    from router import TwoStageClassifier

    rng = np.random.default_rng(0)
    tree = ClassTree.from_parents({"c0": "s0", "c1": "s0", "c2": "s1", "c3": "s1"})
    tree = tree.with_superclasses(cut_balanced(tree, 2))
    Xs = rng.standard_normal((40, 8)).astype(np.float32)
    ys = np.array([f"c{i % 4}" for i in range(40)])
    clf = TwoStageClassifier(tree, k=3).fit(Xs, ys)
    before = [(sh.ids_.tolist(), sh.vectors(sh.ids_).tobytes()) for sh in clf.shards_]
    route_before = clf.route_proba(Xs)
    second = clf.shards_[1]
    fail_on(monkeypatch, second.index_, "add_batch")  # the second shard fails after the first was written
    with pytest.raises(Injected):
        clf.add(Xs[:8], ys[:8], source="new")
    monkeypatch.undo()
    assert [(sh.ids_.tolist(), sh.vectors(sh.ids_).tobytes()) for sh in clf.shards_] == before
    np.testing.assert_array_equal(clf.route_proba(Xs), route_before)  # centroids restored too
