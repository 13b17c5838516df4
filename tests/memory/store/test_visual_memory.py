import numpy as np
import pytest

from memory import InputError, Steer, UnknownEntryError, VisualMemory


def snapshot(mem):
    return (mem.ids_, mem.vectors(mem.ids_) if len(mem) else None, mem.counts("label"),
            mem.counts("source"))


def assert_unchanged(before, mem):
    after = snapshot(mem)
    np.testing.assert_array_equal(before[0], after[0])
    if before[1] is not None:
        np.testing.assert_array_equal(before[1], after[1])
    assert before[2:] == after[2:]


def test_add_returns_ids_and_search_is_exact(data, exact_knn):
    brute_force = exact_knn
    X, y, Q, _ = data
    mem = VisualMemory(progress=False)
    ids = mem.add(X, y)
    np.testing.assert_array_equal(ids, np.arange(len(X)))
    more = mem.add(X[:3], y[:3])
    np.testing.assert_array_equal(more, [len(X), len(X) + 1, len(X) + 2])
    mem.remove(more)
    sims, found = mem.search(Q, 10)
    ref_sims, ref_ids = brute_force(X, Q, 10)
    np.testing.assert_array_equal(found, ref_ids)
    np.testing.assert_allclose(sims, ref_sims, atol=1e-5)


def test_single_sample_add_and_new_class(mem):
    v = np.random.default_rng(9).normal(size=(1, 24)).astype(np.float32)
    (new_id,) = mem.add(v, "brand_new_class", source="user")
    assert "brand_new_class" in mem.classes_
    assert mem.predict(v, k=1).tolist() == ["brand_new_class"]
    assert mem.get([new_id])[0]["source"] == "user"


def test_user_ids(data):
    X, y, _, _ = data
    mem = VisualMemory(progress=False)
    mem.add(X[:3], y[:3], ids=[100, 7, 55])
    np.testing.assert_array_equal(mem.ids_, [100, 7, 55])
    assert mem.get([7])[0]["label"] == y[1]
    assert mem.add(X[3:4], y[3])[0] == 101  # continues after the largest id


@pytest.mark.parametrize("by", ["ids", "label", "source", "superclass"])
def test_unlearning_matches_rebuild_bit_for_bit(data, mem, by):
    X, y, Q, _ = data
    sources = np.where(np.arange(len(X)) % 3 == 0, "web", "lab")
    supers = np.array(["A" if int(l[-2:]) < 4 else "B" for l in y])
    forget = {
        "ids": np.isin(np.arange(len(X)), np.arange(0, len(X), 7)),
        "label": y == "class03",
        "source": sources == "web",
        "superclass": supers == "B",
    }[by]
    kwargs = {"ids": np.flatnonzero(forget)} if by == "ids" else {
        by: {"label": "class03", "source": "web", "superclass": "B"}[by]}
    removed = mem.remove(**kwargs)
    np.testing.assert_array_equal(np.sort(removed), np.flatnonzero(forget))
    fresh = VisualMemory(progress=False)
    fresh.add(X[~forget], y[~forget], ids=np.flatnonzero(~forget))
    for voting in ("plurality", "distance", "softmax", "rank"):
        np.testing.assert_array_equal(
            mem.predict_proba(Q, voting=voting), fresh.predict_proba(Q, voting=voting)
        )
    s1, i1 = mem.search(Q, 25)
    s2, i2 = fresh.search(Q, 25)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(s1, s2)
    assert not np.isin(i1, removed).any()


def test_remove_combined_criteria(mem, data):
    _, y, _, _ = data
    n_before = len(mem)
    removed = mem.remove(label="class01", source="web")
    meta = mem.get(mem.ids_)
    assert not any(m["label"] == "class01" and m["source"] == "web" for m in meta)
    assert any(m["label"] == "class01" for m in meta)
    assert len(mem) == n_before - len(removed)


def test_remove_unknown_leaves_memory_unchanged(mem):
    before = snapshot(mem)
    with pytest.raises(UnknownEntryError, match="unknown id 99999"):
        mem.remove([3, 99999])
    with pytest.raises(UnknownEntryError, match="unknown label 'nope'"):
        mem.remove(label="nope")
    with pytest.raises(UnknownEntryError, match="unknown source"):
        mem.remove(source="elsewhere")
    assert_unchanged(before, mem)


def test_shard_search_returns_k_hits_and_stays_in_shard(mem, data):
    _, _, Q, _ = data
    for shard in ("A", "B"):
        sims, ids = mem.search(Q, 10, superclass=shard)
        assert (ids >= 0).all()
        assert {m["superclass"] for m in mem.get(np.unique(ids))} == {shard}
        # Same as searching a memory holding only that shard.
        shard_ids = mem.select(superclass=shard)
        sub = VisualMemory(progress=False)
        sub.add(mem.vectors(shard_ids), "x", ids=shard_ids)
        np.testing.assert_array_equal(ids, sub.search(Q, 10)[1])


def test_per_query_superclass(mem, data):
    _, _, Q, _ = data
    route = np.where(np.arange(len(Q)) % 2 == 0, "A", "B")
    _, ids = mem.search(Q, 5, superclass=route)
    for q in (0, 1, 2, 3):
        _, expect = mem.search(Q[q : q + 1], 5, superclass=route[q])
        np.testing.assert_array_equal(ids[q], expect[0])


def test_superclass_sets_and_lists(mem, data):
    _, _, Q, _ = data
    _, both = mem.search(Q[:2], 5, superclass=("A", "B"))
    _, everything = mem.search(Q[:2], 5)
    np.testing.assert_array_equal(both, everything)  # a tuple restricts to the union of shards
    with pytest.raises(InputError, match="must match their number"):
        mem.search(Q[:3], 5, superclass=["A", "B"])  # a list routes each query


def test_filtered_search_returns_k_when_k_exist(mem, data):
    _, _, Q, _ = data
    lab_ids = mem.select(source="lab")
    for steer in (Steer(exclude_sources=("web",)), Steer(exclude_ids=tuple(range(0, 60)))):
        _, ids = mem.search(Q, 10, steer=steer)
        assert (ids >= 0).all()
    _, ids = mem.search(Q, 10, steer=Steer(exclude_sources=("web",)))
    assert np.isin(ids, lab_ids).all()
    # When fewer than k exist, the rest is padded.
    one = mem.select(label="class05")[:3]
    keep = Steer(exclude_ids=tuple(np.setdiff1d(mem.ids_, one).tolist()))
    sims, ids = mem.search(Q[:2], 5, steer=keep)
    assert (ids[:, :3] >= 0).all() and (ids[:, 3:] == -1).all() and np.isinf(sims[:, 3:]).all()


def test_steer_excludes_and_reweights(mem, data):
    _, _, Q, qy = data
    p = mem.predict_proba(Q)
    col = list(mem.classes_).index("class02")
    excl = mem.predict_proba(Q, steer=Steer(exclude_labels=("class02",)))
    assert (excl[:, col] == 0).all()
    assert (mem.predict(Q, steer=Steer(exclude_labels=("class02",))) != "class02").all()
    p = mem.predict_proba(Q, k=200, voting="plurality")  # mixed neighbourhoods
    boosted = mem.predict_proba(
        Q, k=200, voting="plurality", steer=Steer(label_weights={"class02": 5.0})
    )
    assert (boosted[:, col] >= p[:, col] - 1e-12).all() and (boosted[:, col] > p[:, col]).any()
    silenced = mem.predict_proba(Q, steer=Steer(source_weights={"web": 0.0}))
    ex = mem.explain(Q[:3], steer=Steer(source_weights={"web": 0.0}))
    assert all(n.weight == 0 for e in ex for n in e.neighbours if n.source == "web")
    # A steered weight of 0 votes exactly as a stored weight of 0 does, and web votes mattered.
    stored = mem.copy()
    stored.set_weight(0.0, source="web")
    np.testing.assert_array_equal(silenced, stored.predict_proba(Q))
    assert not np.array_equal(silenced, mem.predict_proba(Q))


def test_persistent_weights(mem, data):
    _, _, Q, _ = data
    ids = mem.set_weight(0.0, label="class04")
    assert len(ids) == len(mem.select(label="class04"))
    assert (mem.predict(Q) != "class04").all()
    assert {m["weight"] for m in mem.get(ids)} == {0.0}


def test_explain(mem, data):
    _, _, Q, _ = data
    ex = mem.explain(Q[:5], k=6)
    preds = mem.predict(Q[:5], k=6)
    proba = mem.predict_proba(Q[:5], k=6)
    for q, e in enumerate(ex):
        assert e.prediction == preds[q]
        assert len(e.neighbours) == 6
        assert sum(n.contribution for n in e.neighbours) == pytest.approx(1.0)
        for label, share in e.contributions().items():
            col = list(mem.classes_).index(label)
            assert share == pytest.approx(proba[q, col])
        sims = [n.similarity for n in e.neighbours]
        assert sims == sorted(sims, reverse=True)
        assert all(n.ref.startswith("img") for n in e.neighbours)
    assert ex[0].to_dict()["neighbours"][0].keys() >= {"id", "label", "source", "weight", "contribution"}


def test_top_k_and_score(mem, data):
    _, _, Q, qy = data
    labels, probs = mem.top_k(Q, 3)
    assert labels.shape == probs.shape == (len(Q), 3)
    assert (np.diff(probs, axis=1) <= 0).all()
    np.testing.assert_array_equal(labels[:, 0], mem.predict(Q))
    assert 0.8 < mem.score(Q, qy) <= 1.0


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda X: X[:, :10], "expected 24-d embeddings, got 10-d"),
        (lambda X: np.where(np.arange(24) == 3, np.nan, X), "NaN or inf"),
        (lambda X: np.where(np.arange(24) == 3, np.inf, X), "NaN or inf"),
        (lambda X: X[0], "must be 2-D"),
        (lambda X: X[:0], "is empty"),
        (lambda X: X.astype(str), "must be numeric"),
        (lambda X: X[None], "must be 2-D"),
        (lambda X: np.zeros_like(X), "zero vector"),
    ],
)
def test_bad_embeddings_leave_memory_unchanged(mem, data, make, match):
    X, y, _, _ = data
    before = snapshot(mem)
    with pytest.raises(InputError, match=match):
        mem.add(make(X[:5]), y[:5])
    assert_unchanged(before, mem)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"labels": ["a", "b"]}, "got 2 labels for 5 embeddings"),
        ({"ids": [1, 2, 3, 4, 4]}, "duplicate id 4"),
        ({"ids": [0, 9001, 9002, 9003, 9004]}, "duplicate id 0: it is already in the memory"),
        ({"ids": [1, 2]}, "got 2 ids for 5"),
        ({"source": ["a"] * 4}, "got 4 source"),
        ({"ids": [-1, 9001, 9002, 9003, 9004]}, "non-negative"),
    ],
)
def test_bad_metadata_leaves_memory_unchanged(mem, data, kwargs, match):
    X, y, _, _ = data
    before = snapshot(mem)
    kwargs.setdefault("labels", y[:5])
    labels = kwargs.pop("labels")
    with pytest.raises(InputError, match=match):
        mem.add(X[:5], labels, **kwargs)
    assert_unchanged(before, mem)


@pytest.mark.parametrize("k", [0, -3, 2.5, True])
def test_bad_k(mem, data, k):
    with pytest.raises(InputError, match="k must be a positive integer"):
        mem.predict(data[2][:2], k=k)


def test_query_errors(mem, data):
    with pytest.raises(InputError, match="expected 24-d"):
        mem.predict(np.ones((2, 5), dtype=np.float32))
    with pytest.raises(UnknownEntryError, match="unknown superclass 'Z'"):
        mem.search(data[2][:2], superclass="Z")
    with pytest.raises(InputError, match="memory is empty"):
        VisualMemory().predict(np.ones((1, 3)))


def test_hnsw_recall_where_the_search_is_not_exhaustive(exact_knn):
    """The README's HNSW contract, recall@10 >= 0.99 at ef=64, on 20,000 points, where
    HNSW compares each query with about a tenth of them (measured, and bounded below)."""
    import faiss

    rng = np.random.default_rng(0)
    X = rng.standard_normal((20_000, 24)).astype(np.float32)
    Q = rng.standard_normal((300, 24)).astype(np.float32)
    mem = VisualMemory(index="HNSW32", ef_search=64, progress=False)
    mem.add(X, [f"c{i % 50}" for i in range(len(X))])
    mem.build_index()
    faiss.cvar.hnsw_stats.reset()
    _, approx = mem.search(Q, 10)
    compared = faiss.cvar.hnsw_stats.ndis / len(Q)
    _, exact = exact_knn(X, Q, 10)
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact)])
    assert recall >= 0.99
    assert compared < 0.15 * len(X)


@pytest.mark.parametrize("spec", ["HNSW32", "IVF16,Flat"])
def test_approximate_index_recall_and_tombstones(data, spec, exact_knn):
    brute_force = exact_knn
    X, y, Q, _ = data
    mem = VisualMemory(index=spec, nprobe=8, ef_search=64, progress=False)
    mem.add(X, y)
    _, approx = mem.search(Q, 10)
    _, exact = brute_force(X, Q, 10)
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact)])
    assert recall >= 0.9
    removed = mem.remove(label="class01")
    _, after = mem.search(Q, 10)
    assert not np.isin(after, removed).any()
    assert (after >= 0).all()
    mem.add(X[:5] + 0.01, "late")  # added after the build: found without a rebuild
    assert mem.predict(X[:5] + 0.01, k=1).tolist() == ["late"] * 5


def test_copy_is_independent(mem, data):
    c = mem.copy()
    c.remove(label="class00")
    assert "class00" in mem.classes_ and "class00" not in c.classes_
    np.testing.assert_array_equal(mem.predict(data[2][:20]), mem.copy().predict(data[2][:20]))


def test_queries_are_searched_in_bounded_chunks(mem, data, monkeypatch):
    import memory.store._query as query

    seen = []
    real = VisualMemory._search_rows

    def spy(self, Q, k, mask):
        seen.append(len(Q))
        return real(self, Q, k, mask)

    monkeypatch.setattr(query, "QUERY_CHUNK", 64)
    monkeypatch.setattr(VisualMemory, "_search_rows", spy)
    _, _, Q, _ = data
    sims, ids = mem.search(Q, 5)
    assert max(seen) == 64 and sum(seen) == len(Q)
    monkeypatch.undo()
    np.testing.assert_array_equal(ids, mem.search(Q, 5)[1])


def test_unknown_id_on_an_empty_memory():
    mem = VisualMemory(4, progress=False)
    with pytest.raises(UnknownEntryError, match="unknown id 3"):
        mem.remove([3])
    assert len(mem) == 0


def test_added_vectors_are_numpys_normalisation_bit_for_bit():
    """Rows are divided by their norms straight into the index: the same bits as X / ||X||, in batches too."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((1000, 48)).astype(np.float32) * rng.uniform(0.01, 100, size=(1000, 1)).astype(np.float32)
    mem = VisualMemory(progress=False)
    mem.add(X[:300], ["a"] * 300)
    mem.add(X[300:], ["b"] * 700, batch_size=128)  # appended to a non-empty index, several batches
    ref = X / np.linalg.norm(X, axis=1, keepdims=True)
    assert np.array_equal(mem.vectors(mem.ids_), ref)


def test_a_large_add_split_across_cores_is_bit_for_bit_and_names_the_first_bad_row():
    """Large adds take their norms and divisions a block of rows per core; the result and errors are the same."""
    rng = np.random.default_rng(4)
    X = rng.standard_normal((40_000, 16)).astype(np.float32) * rng.uniform(0.01, 100, (40_000, 1)).astype(np.float32)
    mem = VisualMemory(progress=False)
    mem.add(X, np.arange(40_000) % 7, batch_size=30_000)
    assert np.array_equal(mem.vectors(mem.ids_), X / np.linalg.norm(X, axis=1, keepdims=True))
    bad = X.copy()
    bad[[31_000, 39_999], 5] = np.nan  # in the last block only
    with pytest.raises(InputError, match=r"NaN or inf \(first in row 31000\)"):
        mem.add(bad, "z")
    assert len(mem) == 40_000 and "z" not in mem.classes_


def test_labels_that_print_alike_stay_apart_and_keep_their_order():
    """Integer, float and boolean labels are spelled one by one: 1, 1.0 and True are three classes."""
    mem = VisualMemory(progress=False)
    X = np.random.default_rng(5).standard_normal((6, 8)).astype(np.float32)
    mem.add(X, [True, 1, 1.0, 1, "e\u0301", "\u00e9"])  # two spellings of one name are one class
    assert [mem.get([i])[0]["label"] for i in mem.ids_] == ["True", "1", "1.0", "1", "\u00e9", "\u00e9"]
    assert mem.table_.vocabs["label"].values == ["True", "1", "1.0", "\u00e9"]  # codes in order of first use


def test_rows_too_large_to_square_in_float32_are_kept_and_nan_rows_named():
    big = np.full((2, 8), 1e30, dtype=np.float32)  # squares overflow float32; the norm does not
    big[1, 0] = -3e30
    mem = VisualMemory(progress=False)
    mem.add(np.vstack([np.eye(8, dtype=np.float32)[:2], big]), ["x", "x", "y", "y"])
    v = mem.vectors(mem.ids_)
    assert np.isfinite(v).all() and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(v[2], np.full(8, 8 ** -0.5), rtol=1e-6)
    bad = np.ones((5, 8), dtype=np.float32)
    bad[3, 2] = np.nan
    with pytest.raises(InputError, match=r"NaN or inf \(first in row 3\)"):
        mem.add(bad, "z")
    bad[3, 2], bad[4, 7] = 1.0, np.inf
    with pytest.raises(InputError, match=r"NaN or inf \(first in row 4\)"):
        mem.add(bad, "z")
    with pytest.raises(InputError, match="row 1 of X has a norm beyond float32's range"):
        mem.add(np.vstack([np.ones(8), np.full(8, 3e38)]).astype(np.float32), "z")
    assert len(mem) == 4 and "z" not in mem.classes_


def test_set_search_params_changes_recall_without_a_rebuild(exact_knn):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((4000, 16)).astype(np.float32)
    Q = rng.standard_normal((100, 16)).astype(np.float32)
    _, ref = exact_knn(X, Q, 10)
    mem = VisualMemory(index="IVF64,Flat", nprobe=1, progress=False)
    mem.add(X, ["c"] * len(X))
    mem.build_index()
    built = mem.index_.ann

    def recall():
        _, ids = mem.search(Q, 10)
        return np.mean([len(np.intersect1d(a, b)) / 10 for a, b in zip(ids, ref)])

    low = recall()
    assert mem.set_search_params(nprobe=64) is mem and mem.nprobe == 64
    assert recall() == 1.0 > low  # all 64 lists probed: exhaustive
    assert mem.index_.ann is built  # the same index, searched differently
    with pytest.raises(InputError, match="nprobe must be a positive integer"):
        mem.set_search_params(nprobe=0)
    with pytest.raises(InputError, match="ef_search must be a positive integer"):
        VisualMemory(index="HNSW16", ef_search=-1)
    assert mem.nprobe == 64
