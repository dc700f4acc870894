"""The DuckDB store: schema and migrations, one connection per process with cursors per thread,
transactions, upserts, the busy error, scorecard versions, manual overrides and the audit log."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from engine import store
from engine.cli import BusyError
from engine.problems import InputError, ScorecardError

ROOT = Path(__file__).resolve().parents[2]

CARD = """\
id: default
name: Tiny
groups:
  - id: adoption
    weight: 1
    measures:
      - id: breadth
        metric: weekly_active_user_share
        weight: 1
        map: {linear: [[0, 0], [1, 100]]}
"""


@pytest.fixture
def con(tmp_path: Path):
    path = tmp_path / "s.duckdb"
    yield store.cursor(path)
    store.close(path)


def test_schema_is_created_and_versioned(con) -> None:
    assert store.schema_version(con) == store.SCHEMA_VERSION
    counts = store.table_counts(con)
    assert set(counts) == set(store.ALL_TABLES)
    assert all(n == 0 for t, n in counts.items() if t != "schema_version")
    assert store.migrate(con) == store.SCHEMA_VERSION  # idempotent
    assert store.row_count(con, "schema_version") == store.SCHEMA_VERSION


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.duckdb"
    raw = duckdb.connect(str(path))
    raw.execute(
        "CREATE TABLE schema_version (version INTEGER, description VARCHAR, applied_at TIMESTAMP)"
    )
    raw.execute("INSERT INTO schema_version VALUES (99, 'future', now())")
    raw.close()
    with pytest.raises(InputError, match="newer than this program"):
        store.connect(path)


def test_migration_2_turns_score_maps_into_lists_with_layouts(tmp_path: Path) -> None:
    """A database of schema 1 (scores as maps) keeps every stored score after migrating."""
    path = tmp_path / "v1.duckdb"
    raw = duckdb.connect(str(path))
    raw.execute(
        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description VARCHAR,"
        " applied_at TIMESTAMP NOT NULL)"
    )
    for stmt in store.MIGRATIONS[1][1]:
        raw.execute(stmt)
    raw.execute("INSERT INTO schema_version VALUES (1, 'initial schema', now())")
    raw.execute(
        "INSERT INTO score_history VALUES ('2024-06-30', 3, 'A1', 'default', 70, 72, 'Yellow',"
        " NULL, NULL, false, map(['adoption', 'roi'], [80.0, 60.0]),"
        " map(['breadth', 'value'], [90.0, NULL]), ['value'], [], [])"
    )
    raw.close()
    con = store.cursor(path)
    try:
        assert store.schema_version(con) == store.SCHEMA_VERSION
        layouts = con.execute("SELECT * FROM score_layouts").fetchall()
        assert layouts == [(3, ["adoption", "roi"], ["breadth", "value"])]
        got = store.load_scores(con, group_ids=["roi", "adoption"], measure_ids=["breadth", "x"])
        row = got.row(0, named=True)
        assert (row["roi"], row["adoption"], row["breadth"], row["x"]) == (60.0, 80.0, 90.0, None)
        assert row["missing"] == ["value"] and row["score"] == 70
    finally:
        store.close(path)


def test_a_version_keeps_one_layout(con) -> None:
    rows = pl.DataFrame(
        {
            "as_of": [date(2024, 6, 30)],
            "scorecard_version": [1],
            "account_id": ["A1"],
            "scorecard_id": ["default"],
            "score": [50.0],
            "raw_score": [50.0],
            "grade": ["Yellow"],
            "outcomes_score": [None],
            "experience_score": [None],
            "incomplete": [False],
            "missing": [[]],
            "stale": [[]],
            "overrides": [[]],
            "g0": [50.0],
            "m0": [50.0],
        },
        schema_overrides={"outcomes_score": pl.Float64, "experience_score": pl.Float64},
    )
    with store.transaction(con):
        store.write_history(con, rows, group_ids=["adoption"], measure_ids=["breadth"])
    before = store.table_checksums(con)
    with pytest.raises(ValueError, match="stored with groups"), store.transaction(con):
        store.write_history(con, rows, group_ids=["roi"], measure_ids=["breadth"])
    assert store.table_checksums(con) == before
    got = store.load_scores(con, group_ids=["adoption", "roi"], measure_ids=["breadth"])
    assert got.select("adoption", "roi", "breadth").row(0) == (50.0, None, 50.0)


def test_one_connection_per_process_and_a_cursor_per_thread(tmp_path: Path) -> None:
    path = tmp_path / "t.duckdb"
    assert store.connect(path) is store.connect(str(path))
    main_cursor = store.cursor(path)
    assert store.cursor(path) is main_cursor
    store.append(
        main_cursor,
        "accounts",
        pl.DataFrame({"account_id": ["a", "b"], "name": ["A", "B"], "arr": [1.0, 2.0]}),
    )
    seen: list[object] = []
    counts: list[int] = []

    def work() -> None:
        cur = store.cursor(path)
        seen.append(cur)
        counts.append(store.row_count(cur, "accounts"))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counts == [2, 2, 2, 2]
    assert len({id(c) for c in seen}) == 4 and main_cursor not in seen
    store.close(path)


def test_a_locked_database_raises_busy(tmp_path: Path) -> None:
    path = tmp_path / "busy.duckdb"
    store.connect(path)  # this process holds the lock
    code = (
        "import sys; from engine import store\n"
        "from engine.cli import BusyError\n"
        "try:\n    store.connect(sys.argv[1], timeout=0.2)\n"
        "except BusyError as e:\n    print(e); sys.exit(3)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3, done.stderr
    assert "is busy" in done.stdout and "was not changed" in done.stdout
    store.close(path)
    assert issubclass(BusyError, RuntimeError)


def test_transaction_rolls_back_on_error(con) -> None:
    before = store.table_checksums(con)
    with pytest.raises(RuntimeError), store.transaction(con):
        store.append(
            con, "accounts", pl.DataFrame({"account_id": ["a"], "name": ["A"], "arr": [1.0]})
        )
        raise RuntimeError("boom")
    assert store.table_checksums(con) == before


def test_upsert_replaces_on_the_natural_key_including_null_product(con) -> None:
    rows = pl.DataFrame(
        {
            "account_id": ["a", "a", "a"],
            "metric": ["nps", "wau", "wau"],
            "product": [None, "Core", "Analytics"],
            "as_of": [date(2024, 1, 7)] * 3,
            "value": [10.0, 0.5, 0.4],
        }
    )
    with store.transaction(con):
        store.upsert(con, "metric_values", rows)
    again = rows.with_columns(pl.col("value") * 2)
    with store.transaction(con):
        store.upsert(con, "metric_values", again)
    got = store.load_metric_values(con).sort("metric", "product")
    assert got.height == 3
    assert sorted(got.get_column("value").to_list()) == [0.8, 1.0, 20.0]


def test_checksums_see_any_change(con) -> None:
    a = store.table_checksums(con)
    store.append(con, "accounts", pl.DataFrame({"account_id": ["a"], "name": ["A"], "arr": [1.0]}))
    b = store.table_checksums(con)
    assert a["accounts"] != b["accounts"] and b["accounts"][0] == 1
    with store.transaction(con):
        store.upsert(
            con, "accounts", pl.DataFrame({"account_id": ["a"], "name": ["A"], "arr": [2.0]})
        )
    c = store.table_checksums(con)
    assert c["accounts"][0] == 1 and c["accounts"] != b["accounts"]


def test_accounts_attributes_are_unpacked(con) -> None:
    store.append(
        con,
        "accounts",
        pl.DataFrame(
            {
                "account_id": ["a", "b"],
                "name": ["A", "B"],
                "arr": [1.0, 2.0],
                "customer_since": [date(2020, 1, 1), date(2024, 6, 1)],
                "churned_on": [None, date(2024, 9, 1)],
                "attributes": ['{"tier": "gold", "seats": 5}', None],
            }
        ),
    )
    acc = store.load_accounts(con)
    assert acc.get_column("tier").to_list() == ["gold", None]
    assert "attributes" not in acc.columns
    assert store.load_accounts(con, active_on=date(2024, 7, 1)).height == 2
    assert store.load_accounts(con, active_on=date(2024, 9, 1)).get_column(
        "account_id"
    ).to_list() == ["a"]
    assert store.load_accounts(con, active_on=date(2024, 1, 1)).get_column(
        "account_id"
    ).to_list() == ["a"]


def test_scorecard_versions(con) -> None:
    v1 = store.save_scorecard_version(con, CARD, author="ana", comment="first", status="active")
    assert store.save_scorecard_version(con, CARD, author="ana") == v1  # same content: reused
    v2 = store.save_scorecard_version(
        con,
        CARD.replace("weight: 1\n    measures", "weight: 2\n    measures"),
        author="bo",
        comment="heavier",
    )
    versions = store.scorecard_versions(con)
    assert versions.get_column("version").to_list() == [v2, v1]
    assert dict(zip(versions["version"], versions["status"], strict=True)) == {
        v1: "active",
        v2: "draft",
    }
    store.set_scorecard_status(con, v2, "active", author="bo")
    active = store.active_scorecard_versions(con)
    assert active["default"].version == v2
    assert store.get_scorecard_version(con, v1).status == "archived"
    actions = store.audit_entries(con).get_column("action").to_list()
    assert "scorecard.save" in actions and "scorecard.active" in actions
    before = store.table_checksums(con)
    with pytest.raises(ScorecardError):
        store.save_scorecard_version(
            con, CARD.replace("weight: 1\n        map", "weight: -1\n        map"), author="x"
        )
    assert store.table_checksums(con) == before
    with pytest.raises(InputError, match="no scorecard version"):
        store.get_scorecard_version(con, 999)


def test_manual_overrides(con) -> None:
    store.append(con, "accounts", pl.DataFrame({"account_id": ["a"], "name": ["A"], "arr": [1.0]}))
    oid = store.add_manual_override(
        con,
        account_id="a",
        action="grade",
        value="Red",
        reason="sponsor on leave",
        author="cs",
        created_on=date(2024, 1, 1),
        expires_on=date(2024, 3, 1),
    )
    assert store.load_manual_overrides(con, as_of=date(2024, 2, 1)).get_column("id").to_list() == [
        oid
    ]
    assert store.load_manual_overrides(con, as_of=date(2024, 3, 1)).is_empty()
    with pytest.raises(InputError, match="unknown account"):
        store.add_manual_override(
            con, account_id="zz", action="cap", value=50, reason="", author="cs"
        )
    with pytest.raises(InputError, match="grade, cap or set"):
        store.add_manual_override(
            con, account_id="a", action="nuke", value=0, reason="", author="cs"
        )
    store.remove_manual_override(con, oid, author="cs")
    assert store.load_manual_overrides(con).is_empty()
    assert store.audit_entries(con).height == 2


def test_table_names_are_allow_listed(con) -> None:
    with pytest.raises(ValueError, match="unknown table"):
        store.load_table(con, "accounts; DROP TABLE accounts")
