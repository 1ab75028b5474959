"""An existing database converted in place to compact raw rows (schema m004): a database written by
the store before (tests/fixtures/history_v3.py says how it was made) answers every read the pages,
the API and the alert engine make exactly as it did then, and is smaller."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from monitor.models import Result, Status
from monitor.store import Store, StoreError
from tests.fixtures.history_v3 import INSTANCES, NOW, answers

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def converted(tmp_path: Path):
    db = tmp_path / "old.db"
    shutil.copy(FIXTURES / "history-v3.db", db)
    store = Store(db)
    yield store, db
    if store.db.conn:
        store.close()


def test_every_read_answers_as_before(converted) -> None:
    store, _ = converted
    before = json.loads((FIXTURES / "history-v3.json").read_text())
    after = answers(store)
    assert after.keys() == before.keys()
    for key in before:
        assert after[key] == before[key], key


def test_rows_kept_ids_kept_and_the_file_smaller(converted) -> None:
    store, db = converted
    old = sqlite3.connect(FIXTURES / "history-v3.db")
    old_rows = old.execute("select * from results order by id").fetchall()
    new_rows = store.db.execute(
        'select id, instance, "check", started_at, status, kind, message, latency_ms, http_status, path, '
        "steps, skew_s, cert_days, token_days, version, maintenance from results order by id"
    ).fetchall()
    assert len(new_rows) == len(old_rows) > 300
    assert new_rows == old_rows
    tables = {r[0] for r in store.db.execute("select name from sqlite_master where type = 'table'")}
    assert "raw_results" in tables and "results" not in tables
    assert _bytes(store.db.conn, "raw_results%") < 0.6 * _bytes(old, "%results%")
    store.close()  # the converted file was compacted once; its WAL is checkpointed on close
    assert db.stat().st_size < (FIXTURES / "history-v3.db").stat().st_size
    old.close()


def _bytes(conn: sqlite3.Connection, like: str) -> int:
    """Bytes of the pages of the tables and indexes whose names are like this."""
    return conn.execute("select sum(pgsize) from dbstat where name like ?", (like,)).fetchone()[0]


def test_new_results_continue_after_the_converted_ones(converted) -> None:
    store, db = converted
    (last,) = store.db.execute("select max(id) from results").fetchone()
    for name in (*INSTANCES, "new-one"):
        store.record(Result(name, "live", Status.UP, latency_ms=1.5, started_at=NOW + 60, path="/up"))
    assert store.flush()
    rows = store.db.execute(
        'select id, instance, "check", latency_ms, path from results where id > ? order by id', (last,)
    ).fetchall()
    assert rows == [
        (last + i + 1, name, "live", 1.5, "/up") for i, name in enumerate((*INSTANCES, "new-one"))
    ]
    assert store.recent_results("new-one")[0]["started_at"] == NOW + 60
    store.close()
    reopened = Store(db)  # migrations are not run twice, ids go on from the last one
    reopened.record(Result("home", "live", Status.UP, started_at=NOW + 120))
    assert reopened.flush()
    assert reopened.recent_results("home", "live", limit=1)[0]["id"] == last + 5
    reopened.close()


def test_a_reader_of_a_database_not_converted_yet_says_so_in_one_line(tmp_path: Path) -> None:
    """`render` (a read-only store) on a database an older monitor still writes: a clear error."""
    db = tmp_path / "old.db"
    shutil.copy(FIXTURES / "history-v3.db", db)
    with pytest.raises(StoreError, match=r"has not been converted .* run the monitor") as caught:
        Store(db, read_only=True)
    assert "\n" not in str(caught.value)
    Store(db).close()  # the monitor converts it; then readers work
    reader = Store(db, read_only=True)
    assert reader.recent_results("home", limit=1)
    reader.db.conn.close()
