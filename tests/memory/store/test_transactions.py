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


#: The parts an edit goes through: every method of these classes is a step.
TRACED = ("EntryTable", "Vocab", "VectorIndex")

EDITS = {
    "add": lambda m, X, y: m.add(X[600:], y[600:], source="new", batch_size=300),  # two batches
    "remove by label": lambda m, X, y: m.remove(label="class03"),
    "remove by ids": lambda m, X, y: m.remove(m.ids_[::7]),
}


def trace(monkeypatch, fail_at=None):
    """Record every call of a method of the traced classes, in order; the call ``fail_at`` raises."""
    import inspect

    import memory.store as store

    log = []
    for cls in (getattr(store, name) for name in TRACED):
        for name, fn in list(vars(cls).items()):
            if name.startswith("__") or not inspect.isfunction(fn):
                continue

            def wrapped(*args, _fn=fn, _step=f"{cls.__name__}.{name}", **kwargs):
                log.append(_step)
                if len(log) - 1 == fail_at:
                    raise Injected(_step)
                return _fn(*args, **kwargs)

            monkeypatch.setattr(cls, name, wrapped)
    return log


@pytest.mark.parametrize("edit", list(EDITS))
def test_a_failure_at_every_step_of_an_edit_changes_nothing(mem, data, monkeypatch, edit):
    """The steps are found by tracing a successful edit, then each one fails in turn."""
    X, y, _, _ = data
    action = EDITS[edit]
    probe = mem.copy()
    full_state(probe)  # as below: a search first, so lazily built parts exist in both runs
    with monkeypatch.context() as mp:
        steps = trace(mp)
        action(probe, X, y)
    assert len(steps) >= 3, steps
    for i, step in enumerate(steps):
        m = mem.copy()
        before = full_state(m)
        with monkeypatch.context() as mp:
            trace(mp, fail_at=i)
            with pytest.raises(Injected, match=step):
                action(m, X, y)
        assert full_state(m) == before, f"a failure at step {i} ({step}) changed the memory"
        action(m, X, y)  # and the memory still works
        assert len(m) != len(mem)


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
    fail_on(monkeypatch, second.index_, "_append_lowp")  # the second shard fails after the first was written
    with pytest.raises(Injected):
        clf.add(Xs[:8], ys[:8], source="new")
    monkeypatch.undo()
    assert [(sh.ids_.tolist(), sh.vectors(sh.ids_).tobytes()) for sh in clf.shards_] == before
    np.testing.assert_array_equal(clf.route_proba(Xs), route_before)  # centroids restored too


def test_an_add_that_fails_between_batches_leaves_nothing(data, monkeypatch):
    X, y, Q, _ = data
    mem = VisualMemory(progress=False)
    mem.add(X[:20], y[:20])
    before = (mem.ids_.copy(), mem.vectors(mem.ids_).copy(), mem.index_.vectors().shape)
    fail_on(monkeypatch, mem.index_, "_append_lowp", after_calls=1)  # the second batch fails
    with pytest.raises(Injected):
        mem.add(X[20:], y[20:], batch_size=8)
    monkeypatch.undo()
    assert np.array_equal(mem.ids_, before[0]) and np.array_equal(mem.vectors(mem.ids_), before[1])
    assert mem.index_.vectors().shape == before[2]
    assert len(mem.add(X[20:], y[20:])) == len(X) - 20  # and the memory takes the same rows afterwards
