"""The entry table: one source of truth for ids and metadata, never changed in place."""

import sqlite3

import numpy as np
import pytest

from memory import InputError, UnknownEntryError
from memory.store import EntryTable


@pytest.fixture
def table():
    ids = np.array([5, 1, 9, 3], dtype=np.int64)
    t = EntryTable().appended(ids, ["cat", "dog", "cat", "car"], ["animal", "animal", "animal", "thing"],
                              ["web", "lab", "lab", "web"], ["a.jpg", None, "c.jpg", "d.jpg"], 1.0)
    return t


def test_rows_values_and_counts(table):
    np.testing.assert_array_equal(table.rows_of(np.array([9, 5])), [2, 0])
    assert table.values("label").tolist() == ["cat", "dog", "cat", "car"]
    assert table.counts("label") == {"car": 1, "cat": 2, "dog": 1}
    assert table.present("source").tolist() == ["lab", "web"]
    assert table.next_id == 10
    with pytest.raises(UnknownEntryError, match="unknown id 7"):
        table.rows_of(np.array([7]))


def test_select_matches_every_criterion_and_names_unknown_values(table):
    assert table.select(label="cat").tolist() == [5, 9]
    assert table.select(label="cat", source="lab").tolist() == [9]
    assert table.select([1, 9, 3], label={"cat", "dog"}).tolist() == [1, 9]
    with pytest.raises(UnknownEntryError, match="unknown source 'studio'"):
        table.select(source="studio")
    with pytest.raises(InputError, match="give ids, label"):
        table.select()


def test_edits_build_new_tables_and_leave_the_old_one_alone(table):
    before = (table.ids.copy(), table.weight.copy(), list(table.vocabs["label"].values))
    grown = table.appended(np.array([11]), ["emu"], ["animal"], ["zoo"], [None], 0.5)
    kept = table.kept(np.array([True, False, True, True]))
    heavier = table.reweighted(np.array([0]), 2.0)
    assert (table.ids.tolist(), table.weight.tolist(), table.vocabs["label"].values) == \
        (before[0].tolist(), before[1].tolist(), before[2])
    assert "emu" not in table.vocabs["label"].code  # the new value went into the new table's vocabulary only
    assert grown.counts("label")["emu"] == 1 and grown.weight[-1] == 0.5 and grown.next_id == 12
    assert kept.ids.tolist() == [5, 9, 3] and "dog" not in kept.present("label")
    assert heavier.weight.tolist() == [2.0, 1.0, 1.0, 1.0]


def test_get_returns_plain_python_values(table):
    rows = table.get(np.array([1, 5]))
    assert rows == [
        {"id": 1, "label": "dog", "superclass": "animal", "source": "lab", "ref": None, "weight": 1.0},
        {"id": 5, "label": "cat", "superclass": "animal", "source": "web", "ref": "a.jpg", "weight": 1.0},
    ]
    assert all(type(r["id"]) is int and type(r["weight"]) is float for r in rows)


def test_sqlite_round_trip_follows_the_given_id_order(table, tmp_path):
    table.write_sqlite(tmp_path / "m.sqlite")
    order = np.array([3, 9, 1, 5], dtype=np.int64)
    back = EntryTable.read_sqlite(tmp_path / "m.sqlite", order, table.next_id)
    assert back.get(order) == table.get(order)
    assert back.ids.tolist() == order.tolist()


def test_sqlite_that_disagrees_with_the_ids_is_refused(table, tmp_path):
    table.write_sqlite(tmp_path / "m.sqlite")
    with pytest.raises(InputError, match="disagree"):
        EntryTable.read_sqlite(tmp_path / "m.sqlite", np.array([5, 1, 9], dtype=np.int64), 10)
    db = sqlite3.connect(tmp_path / "m.sqlite")
    db.execute("UPDATE entries SET weight = -1 WHERE id = 5")
    db.commit()
    db.close()
    with pytest.raises(InputError, match="invalid weight"):
        EntryTable.read_sqlite(tmp_path / "m.sqlite", table.ids, 10)
