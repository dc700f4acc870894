"""The DuckDB store: schema, migrations, connections, transactions, reads and writes.

This module (and ``data/metrics.yaml``) is the only place with SQL strings.

One file (``data/vitals.duckdb`` by default) holds

- the contract tables ``accounts``, ``metric_values``, ``renewals``, ``activities`` and
  ``products`` (see ``docs/contracts.md``; ``accounts`` also has the optional ``customer_since``
  and ``churned_on`` dates, which bound the dates at which an account is scored, and an
  ``attributes`` JSON object for any extra attribute);
- the raw source tables listed in :data:`SOURCE_TABLES`, from which SQL metric definitions
  derive ``metric_values`` (see :mod:`engine.metrics`);
- ``scorecard_versions``, ``score_history`` and ``score_snapshots`` (see :mod:`engine.history`),
  ``manual_overrides`` and ``audit_log``;
- ``schema_version``: the migrations applied. :func:`migrate` runs every missing migration in
  one transaction when a connection is opened.

Concurrency (DuckDB allows one writing process per file):

- Inside a process there is **one connection per file** (:func:`connect`), and each thread
  works on its own cursor (:func:`cursor`), so the app serves many browser sessions at once.
  Reads see a consistent snapshot; two sessions that write the same rows at the same time get
  a conflict on the second commit, which is rolled back and raised, never half-applied.
- Another process that opens the file while it is held (say a nightly ``score`` beside the
  running app) retries for ``VITALS_BUSY_TIMEOUT`` seconds (default 5) and then fails with
  :class:`engine.cli.BusyError` ("database is busy"); the command line exits 3. Nothing is
  written by the side that could not get the lock, and the side that holds it is untouched.
- Every write runs in a transaction (:func:`transaction`: ``BEGIN`` ... ``COMMIT``, ``ROLLBACK``
  on any error). A process killed half-way leaves the committed state: DuckDB replays only
  committed transactions from its write-ahead log.

Big tables (``metric_values``, ``score_history``) have no index: keys are kept unique by the
writers (delete-then-insert on the natural key inside one transaction), which keeps bulk loads of
hundreds of millions of rows fast. ``IS NOT DISTINCT FROM`` matches the nullable ``product``.
"""

# ruff: noqa: S608  -- SQL text is built only from fixed allow-listed table and column names;
# every value is bound as a parameter.
from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from engine.cli import BusyError
from engine.problems import InputError

SCHEMA_VERSION = 2

# --------------------------------------------------------------------------- schema

# Contract tables: column -> DuckDB type. The natural key of each is in NATURAL_KEYS.
CONTRACT_TABLES: dict[str, dict[str, str]] = {
    "accounts": {
        "account_id": "VARCHAR NOT NULL PRIMARY KEY",
        "name": "VARCHAR NOT NULL",
        "arr": "DOUBLE NOT NULL",
        "segment": "VARCHAR",
        "lifecycle_stage": "VARCHAR",
        "region": "VARCHAR",
        "industry": "VARCHAR",
        "csm": "VARCHAR",
        "renewal_date": "DATE",
        "parent_account_id": "VARCHAR",
        "customer_since": "DATE",
        "churned_on": "DATE",
        "attributes": "JSON",
    },
    "metric_values": {
        "account_id": "VARCHAR NOT NULL",
        "metric": "VARCHAR NOT NULL",
        "product": "VARCHAR",
        "as_of": "DATE NOT NULL",
        "value": "DOUBLE",
        "level": "VARCHAR",
        "source": "VARCHAR",
        "author": "VARCHAR",
        "comment": "VARCHAR",
    },
    "renewals": {
        "account_id": "VARCHAR NOT NULL",
        "renewal_date": "DATE NOT NULL",
        "arr_before": "DOUBLE NOT NULL",
        "arr_after": "DOUBLE NOT NULL",
        "product": "VARCHAR",
    },
    "activities": {
        "account_id": "VARCHAR NOT NULL",
        "date": "DATE NOT NULL",
        "type": "VARCHAR NOT NULL",
        "csm": "VARCHAR",
    },
    "products": {
        "account_id": "VARCHAR NOT NULL",
        "product": "VARCHAR NOT NULL",
        "arr": "DOUBLE NOT NULL",
    },
}

NATURAL_KEYS: dict[str, tuple[str, ...]] = {
    "accounts": ("account_id",),
    "metric_values": ("account_id", "metric", "product", "as_of"),
    "renewals": ("account_id", "renewal_date", "product"),
    "activities": ("account_id", "date", "type", "csm"),
    "products": ("account_id", "product"),
}

# Raw source tables (the demo writes them; `import --sources DIR` loads them as they are).
# Every column is required in an imported source file.
SOURCE_TABLES: dict[str, dict[str, str]] = {
    "entitlements": {
        "account_id": "VARCHAR",
        "product": "VARCHAR",
        "start_date": "DATE",
        "licences": "INTEGER",
        "core_features": "INTEGER",
    },
    "usage_weekly": {
        "account_id": "VARCHAR",
        "product": "VARCHAR",
        "week_ending": "DATE",
        "activated_users": "INTEGER",
        "active_users": "INTEGER",
        "sticky_users": "INTEGER",
        "features_used_30d": "INTEGER",
    },
    "integrations": {
        "account_id": "VARCHAR",
        "product": "VARCHAR",
        "integration": "VARCHAR",
        "live_on": "DATE",
        "retired_on": "DATE",
    },
    "onboarding_milestones": {
        "account_id": "VARCHAR",
        "product": "VARCHAR",
        "milestone": "VARCHAR",
        "completed_on": "DATE",
    },
    "touchpoints": {
        "account_id": "VARCHAR",
        "date": "DATE",
        "type": "VARCHAR",
        "persona": "VARCHAR",
        "contact_id": "VARCHAR",
        "csm": "VARCHAR",
    },
    "tickets": {
        "ticket_id": "VARCHAR",
        "account_id": "VARCHAR",
        "product": "VARCHAR",
        "opened_on": "DATE",
        "closed_on": "DATE",
        "priority": "VARCHAR",
        "escalated": "BOOLEAN",
    },
    "surveys": {
        "account_id": "VARCHAR",
        "contact_id": "VARCHAR",
        "responded_on": "DATE",
        "kind": "VARCHAR",
        "score": "INTEGER",
    },
    "success_plan_outcomes": {
        "account_id": "VARCHAR",
        "plan_id": "VARCHAR",
        "outcome": "VARCHAR",
        "created_on": "DATE",
        "due_on": "DATE",
        "verified_on": "DATE",
    },
    "csm_ratings": {
        "account_id": "VARCHAR",
        "rated_on": "DATE",
        "dimension": "VARCHAR",
        "rating": "VARCHAR",
        "comment": "VARCHAR",
        "csm": "VARCHAR",
    },
    "sponsor_changes": {
        "account_id": "VARCHAR",
        "changed_on": "DATE",
        "change": "VARCHAR",
        "contact_id": "VARCHAR",
    },
}

# Ground truth of the demo portfolio (weekly latent state); only the demo writes it.
DEMO_TRUTH_TABLE: dict[str, str] = {
    "account_id": "VARCHAR",
    "as_of": "DATE",
    "health": "DOUBLE",
    "deployment": "DOUBLE",
    "engagement": "DOUBLE",
    "adoption": "DOUBLE",
    "roi": "DOUBLE",
    "activity_stock": "DOUBLE",
}

_APP_DDL: tuple[str, ...] = (
    """CREATE SEQUENCE IF NOT EXISTS scorecard_version_seq START 1""",
    """CREATE TABLE IF NOT EXISTS scorecard_versions (
        version INTEGER PRIMARY KEY DEFAULT nextval('scorecard_version_seq'),
        scorecard_id VARCHAR NOT NULL,
        yaml VARCHAR NOT NULL,
        fingerprint VARCHAR NOT NULL,
        author VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL,
        comment VARCHAR,
        status VARCHAR NOT NULL CHECK (status IN ('draft', 'active', 'archived')))""",
    # One row per (as_of, scorecard_version, account_id). Group and measure scores are maps
    # keyed by id: scorecards differ in their groups, and one table keeps trend reads cheap.
    """CREATE TABLE IF NOT EXISTS score_history (
        as_of DATE NOT NULL,
        scorecard_version INTEGER NOT NULL,
        account_id VARCHAR NOT NULL,
        scorecard_id VARCHAR NOT NULL,
        score DOUBLE,
        raw_score DOUBLE,
        grade VARCHAR,
        outcomes_score DOUBLE,
        experience_score DOUBLE,
        incomplete BOOLEAN,
        groups MAP(VARCHAR, DOUBLE),
        measures MAP(VARCHAR, DOUBLE),
        missing VARCHAR[],
        stale VARCHAR[],
        overrides VARCHAR[])""",
    """CREATE TABLE IF NOT EXISTS score_snapshots (
        as_of DATE NOT NULL,
        scorecard_version INTEGER NOT NULL,
        scorecard_id VARCHAR NOT NULL,
        accounts INTEGER NOT NULL,
        created_at TIMESTAMP NOT NULL,
        PRIMARY KEY (as_of, scorecard_version))""",
    """CREATE SEQUENCE IF NOT EXISTS manual_override_seq START 1""",
    """CREATE TABLE IF NOT EXISTS manual_overrides (
        id INTEGER PRIMARY KEY DEFAULT nextval('manual_override_seq'),
        account_id VARCHAR NOT NULL,
        action VARCHAR NOT NULL CHECK (action IN ('grade', 'cap', 'set')),
        value VARCHAR NOT NULL,
        reason VARCHAR,
        author VARCHAR NOT NULL,
        created_on DATE NOT NULL,
        expires_on DATE,
        created_at TIMESTAMP NOT NULL)""",
    """CREATE SEQUENCE IF NOT EXISTS audit_log_seq START 1""",
    """CREATE TABLE IF NOT EXISTS audit_log (
        id BIGINT PRIMARY KEY DEFAULT nextval('audit_log_seq'),
        logged_at TIMESTAMP NOT NULL,
        actor VARCHAR NOT NULL,
        action VARCHAR NOT NULL,
        entity VARCHAR,
        detail JSON)""",
)


def _create_table_sql(name: str, columns: Mapping[str, str]) -> str:
    cols = ",\n  ".join(f"{c} {t}" for c, t in columns.items())
    return f"CREATE TABLE IF NOT EXISTS {name} (\n  {cols})"


def _migration_1() -> list[str]:
    out = [_create_table_sql(n, cols) for n, cols in CONTRACT_TABLES.items()]
    out += [_create_table_sql(n, cols) for n, cols in SOURCE_TABLES.items()]
    out.append(_create_table_sql("demo_truth", DEMO_TRUTH_TABLE))
    out += list(_APP_DDL)
    return out


def _migration_2() -> list[str]:
    """Group and measure scores as plain lists, their ids once per scorecard version in
    ``score_layouts``: maps repeated the ids on every row and made writing the weekly history
    of a large portfolio several times slower."""
    return [
        """CREATE TABLE score_layouts (
        scorecard_version INTEGER PRIMARY KEY,
        group_ids VARCHAR[] NOT NULL,
        measure_ids VARCHAR[] NOT NULL)""",
        "INSERT INTO score_layouts SELECT scorecard_version, map_keys(any_value(groups)),"
        " map_keys(any_value(measures)) FROM score_history GROUP BY scorecard_version",
        _SCORE_HISTORY_V2.format(name="score_history_v2"),
        "INSERT INTO score_history_v2 SELECT as_of, scorecard_version, account_id, scorecard_id,"
        " score, raw_score, grade, outcomes_score, experience_score, incomplete,"
        " map_values(groups), map_values(measures), missing, stale, overrides FROM score_history",
        "DROP TABLE score_history",
        "ALTER TABLE score_history_v2 RENAME TO score_history",
    ]


# One row per (as_of, scorecard_version, account_id). ``groups`` and ``measures`` hold the
# scores in the order of the version's ids in ``score_layouts``.
_SCORE_HISTORY_V2 = """CREATE TABLE {name} (
        as_of DATE NOT NULL,
        scorecard_version INTEGER NOT NULL,
        account_id VARCHAR NOT NULL,
        scorecard_id VARCHAR NOT NULL,
        score DOUBLE,
        raw_score DOUBLE,
        grade VARCHAR,
        outcomes_score DOUBLE,
        experience_score DOUBLE,
        incomplete BOOLEAN,
        groups DOUBLE[],
        measures DOUBLE[],
        missing VARCHAR[],
        stale VARCHAR[],
        overrides VARCHAR[])"""


# version -> (description, statements). Append new migrations; never edit an applied one.
MIGRATIONS: dict[int, tuple[str, list[str]]] = {
    1: ("initial schema", _migration_1()),
    2: ("score history: group and measure scores as lists, ids in score_layouts", _migration_2()),
}

# Every table a caller may name (fixed allow-list: table names are never user text).
ALL_TABLES: tuple[str, ...] = (
    *CONTRACT_TABLES,
    *SOURCE_TABLES,
    "demo_truth",
    "scorecard_versions",
    "score_history",
    "score_layouts",
    "score_snapshots",
    "manual_overrides",
    "audit_log",
    "schema_version",
)


def _table(name: str) -> str:
    if name not in ALL_TABLES:
        raise ValueError(f"unknown table {name!r}")
    return name


# --------------------------------------------------------------------------- connections

_lock = threading.Lock()
_connections: dict[str, duckdb.DuckDBPyConnection] = {}
_local = threading.local()


def _key(path: str | Path) -> str:
    return ":memory:" if str(path) == ":memory:" else str(Path(path).resolve())


def _is_lock_conflict(exc: Exception) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


def connect(path: str | Path, *, timeout: float | None = None) -> duckdb.DuckDBPyConnection:
    """The process-wide connection to ``path`` (created, and migrated, on first use).

    The parent folder is created if needed. When another process holds the file, retry for
    ``timeout`` seconds (default: env ``VITALS_BUSY_TIMEOUT`` or 5) and then raise
    :class:`BusyError`. Threads should not share this object: use :func:`cursor`.
    """
    key = _key(path)
    with _lock:
        con = _connections.get(key)
        if con is not None:
            return con
        if timeout is None:
            timeout = float(os.environ.get("VITALS_BUSY_TIMEOUT", "5"))
        if key != ":memory:":
            Path(key).parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + max(timeout, 0.0)
        delay = 0.05
        while True:
            try:
                con = duckdb.connect(key)
                break
            except duckdb.IOException as exc:
                if not _is_lock_conflict(exc):
                    raise
                if time.monotonic() >= deadline:
                    holder = str(exc).split("Conflicting lock is held in", 1)[-1].split(".")[0]
                    raise BusyError(
                        f"database {path} is busy: another process holds it"
                        f" ({holder.strip()}); it was not changed. Wait for that process"
                        " (or stop the app) and retry."
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
        try:
            _configure(con)
            migrate(con)
        except Exception:
            con.close()
            raise
        _connections[key] = con
        return con


def _configure(con: duckdb.DuckDBPyConnection) -> None:
    """Cap DuckDB's memory (env ``VITALS_DUCKDB_MEMORY``, e.g. ``4GB``; default a quarter of
    the machine's memory, leaving the rest to Polars) so that big jobs spill to disk instead
    of being killed. (A million-account demo peaks at 11 GB in all with a 4 GB cap, 18 GB
    with DuckDB's own default of 80 %.)"""
    limit = os.environ.get("VITALS_DUCKDB_MEMORY")
    if not limit:
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
            limit = f"{max(256, total // 4 // 2**20)}MB"
        except (ValueError, OSError, AttributeError):
            return
    con.execute(f"SET memory_limit = '{_setting(limit)}'")


def _setting(text: str) -> str:
    if not all(ch.isalnum() or ch in ". " for ch in text):
        raise InputError(f"VITALS_DUCKDB_MEMORY must look like 4GB, not {text!r}")
    return text


def cursor(path: str | Path) -> duckdb.DuckDBPyConnection:
    """This thread's cursor on the process-wide connection to ``path``."""
    key = _key(path)
    cursors: dict[str, duckdb.DuckDBPyConnection] = getattr(_local, "cursors", None) or {}
    _local.cursors = cursors
    cur = cursors.get(key)
    base = connect(path)
    if cur is None or getattr(_local, "bases", {}).get(key) is not base:
        cur = base.cursor()
        cursors[key] = cur
        bases = getattr(_local, "bases", None) or {}
        bases[key] = base
        _local.bases = bases
    return cur


def close(path: str | Path | None = None) -> None:
    """Close the process-wide connection to ``path`` (all of them when None), releasing the
    file lock. Cursors of every thread become unusable; :func:`cursor` makes new ones."""
    with _lock:
        keys = list(_connections) if path is None else [_key(path)]
        for key in keys:
            con = _connections.pop(key, None)
            if con is not None:
                con.close()


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """``BEGIN`` ... ``COMMIT``; ``ROLLBACK`` and re-raise on any error (also on Ctrl-C)."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def write_pause(stage: str) -> None:
    """A test hook: with env ``VITALS_TEST_WRITE_DELAY`` (seconds), announce ``stage`` on
    stderr and sleep, so a test can kill the process in the middle of a write."""
    delay = os.environ.get("VITALS_TEST_WRITE_DELAY")
    if delay:
        print(f"[write-pause] {stage}", file=sys.stderr, flush=True)
        time.sleep(float(delay))


# --------------------------------------------------------------------------- migrations


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Apply every missing migration (one transaction); return the schema version."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, description VARCHAR, applied_at TIMESTAMP NOT NULL)"
    )
    row = _one(con.execute("SELECT coalesce(max(version), 0) FROM schema_version"))
    current = int(row[0]) if row else 0
    if current > SCHEMA_VERSION:
        raise InputError(
            f"the database has schema version {current}, newer than this program"
            f" ({SCHEMA_VERSION}); upgrade Vitals"
        )
    if current == SCHEMA_VERSION:
        return current
    with transaction(con):
        for version in range(current + 1, SCHEMA_VERSION + 1):
            description, statements = MIGRATIONS[version]
            for stmt in statements:
                con.execute(stmt)
            con.execute(
                "INSERT INTO schema_version VALUES (?, ?, ?)", [version, description, _now()]
            )
    return SCHEMA_VERSION


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    row = _one(con.execute("SELECT coalesce(max(version), 0) FROM schema_version"))
    return int(row[0]) if row else 0


def _one(cursor: duckdb.DuckDBPyConnection) -> tuple[Any, ...] | None:
    """The first row of an executed statement, reading the result to the end (DuckDB keeps a
    cursor busy until its result is exhausted)."""
    rows = cursor.fetchall()
    return rows[0] if rows else None


def _now() -> datetime:
    return datetime.now().replace(microsecond=0)


# --------------------------------------------------------------------------- generic I/O


def query(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None
) -> pl.DataFrame:
    """Run a read query of this module's (or ``data/metrics.yaml``'s) SQL -> Polars."""
    rel = con.sql(sql, params=list(params) if params is not None else None)
    if rel is None:
        return pl.DataFrame()
    return rel.pl()


@contextlib.contextmanager
def _registered(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame) -> Iterator[str]:
    name = f"_stage_{uuid.uuid4().hex[:12]}"
    con.register(name, frame)
    try:
        yield name
    finally:
        # in a transaction aborted by an error, this fails too: keep the first error
        with contextlib.suppress(duckdb.Error):
            con.unregister(name)


def _key_match(table: str, stage: str, keys: Sequence[str]) -> str:
    return " AND ".join(f"{table}.{k} IS NOT DISTINCT FROM {stage}.{k}" for k in keys)


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ?"
        " AND table_schema = 'main' ORDER BY ordinal_position",
        [_table(table)],
    ).fetchall()
    return [r[0] for r in rows]


def upsert(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> int:
    """Insert ``frame`` into ``table``, replacing rows with the same natural key.

    Call inside :func:`transaction`. ``frame`` must be unique on the key (the importer checks
    it); its columns are matched by name, missing ones are null. Returns rows written.
    """
    keys = NATURAL_KEYS[_table(table)]
    cols = [c for c in table_columns(con, table) if c in frame.columns]
    if frame.is_empty():
        return 0
    with _registered(con, frame.select(cols)) as stage:
        con.execute(f"DELETE FROM {table} USING {stage} WHERE {_key_match(table, stage, keys)}")
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {stage}")
    return frame.height


def append(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame | Any) -> int:
    """Append rows (a Polars frame or an Arrow table) as they are; columns matched by name."""
    _table(table)
    with _registered(con, frame) as stage:
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {stage}")
    return int(frame.height if isinstance(frame, pl.DataFrame) else frame.num_rows)


def replace(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame | Any) -> int:
    """Replace the whole content of ``table`` (inside the caller's transaction)."""
    con.execute(f"DELETE FROM {_table(table)}")
    return append(con, table, frame)


def clear(con: duckdb.DuckDBPyConnection, tables: Sequence[str]) -> None:
    for t in tables:
        con.execute(f"DELETE FROM {_table(t)}")


def row_count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    row = _one(con.execute(f"SELECT count(*) FROM {_table(table)}"))
    return int(row[0]) if row else 0


def table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows per table of the schema."""
    out: dict[str, int] = {}
    for t in ALL_TABLES:
        row = _one(con.execute(f"SELECT count(*) FROM {t}"))
        out[t] = int(row[0]) if row else 0
    return out


def table_checksums(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, int]]:
    """``{table: (rows, checksum)}``: an order-independent hash of every row's content.

    Two databases with equal checksums hold the same rows (up to hash collisions)."""
    out: dict[str, tuple[int, int]] = {}
    for t in ALL_TABLES:
        row = _one(con.execute(f"SELECT count(*), coalesce(sum(hash({t})::HUGEINT), 0) FROM {t}"))
        out[t] = (int(row[0]), int(row[1])) if row else (0, 0)
    return out


# --------------------------------------------------------------------------- contract reads


def load_accounts(con: duckdb.DuckDBPyConnection, *, active_on: date | None = None) -> pl.DataFrame:
    """The accounts frame of the contract, extra attributes unpacked into columns.

    ``active_on``: only accounts that are customers on that date (``customer_since`` on or
    before it, or unknown, and ``churned_on`` after it, or unknown).
    """
    where = ""
    params: list[Any] = []
    if active_on is not None:
        where = (
            " WHERE (customer_since IS NULL OR customer_since <= ?)"
            " AND (churned_on IS NULL OR churned_on > ?)"
        )
        params = [active_on, active_on]
    df = query(con, f"SELECT * FROM accounts{where} ORDER BY account_id", params)
    return _unpack_attributes(df)


def _unpack_attributes(df: pl.DataFrame) -> pl.DataFrame:
    if "attributes" not in df.columns:
        return df
    attrs = df.get_column("attributes")
    if attrs.null_count() == df.height:
        return df.drop("attributes")
    decoded = attrs.str.json_decode(infer_schema_length=None)
    if not isinstance(decoded.dtype, pl.Struct):
        return df.drop("attributes")
    extra = decoded.struct.unnest()
    extra = extra.select([c for c in extra.columns if c not in df.columns])
    return pl.concat([df.drop("attributes"), extra], how="horizontal")


def account_ids(con: duckdb.DuckDBPyConnection) -> pl.Series:
    """Every stored account_id."""
    return query(con, "SELECT account_id FROM accounts").get_column("account_id")


def load_metric_values(
    con: duckdb.DuckDBPyConnection,
    *,
    start: date | None = None,
    end: date | None = None,
    metrics: Sequence[str] | None = None,
    accounts: Sequence[str] | None = None,
) -> pl.DataFrame:
    """``metric_values`` rows with ``start <= as_of <= end`` (either bound optional)."""
    clauses, params = _metric_filter(start, end, metrics, accounts)
    sql = (
        "SELECT account_id, metric, value, level, as_of, product, source, author, comment"
        f" FROM metric_values{clauses}"
    )
    return query(con, sql, params)


def _metric_filter(
    start: date | None,
    end: date | None,
    metrics: Sequence[str] | None,
    accounts: Sequence[str] | None,
    *,
    start_exclusive: bool = False,
) -> tuple[str, list[Any]]:
    conds: list[str] = []
    params: list[Any] = []
    if start is not None:
        conds.append("as_of > ?" if start_exclusive else "as_of >= ?")
        params.append(start)
    if end is not None:
        conds.append("as_of <= ?")
        params.append(end)
    if metrics is not None:
        conds.append("list_contains(?, metric)")
        params.append(list(metrics))
    if accounts is not None:
        conds.append("list_contains(?, account_id)")
        params.append(list(accounts))
    return ((" WHERE " + " AND ".join(conds)) if conds else ""), params


def latest_metric_values(
    con: duckdb.DuckDBPyConnection,
    as_of: date,
    *,
    since: date | None = None,
    metrics: Sequence[str] | None = None,
) -> pl.DataFrame:
    """The latest value of every (account, product, metric) on or before ``as_of``
    (values older than ``since`` ignored): what a score at ``as_of`` reads."""
    clauses, params = _metric_filter(since, as_of, metrics, None)
    # a hash aggregate (keys are unique per as_of): much cheaper than a window over the history
    sql = (
        "SELECT account_id, metric, arg_max_null(value, as_of) AS value,"
        " arg_max_null(level, as_of) AS level, max(as_of) AS as_of, product"
        f" FROM metric_values{clauses} GROUP BY account_id, metric, product"
    )
    return query(con, sql, params)


def metric_values_between(
    con: duckdb.DuckDBPyConnection,
    after: date | None,
    upto: date,
    *,
    metrics: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Rows with ``after < as_of <= upto`` (all up to ``upto`` when ``after`` is None)."""
    clauses, params = _metric_filter(after, upto, metrics, None, start_exclusive=True)
    sql = f"SELECT account_id, metric, value, level, as_of, product FROM metric_values{clauses}"
    return query(con, sql, params)


def prepare_metric_codes(
    con: duckdb.DuckDBPyConnection, account_ids: Sequence[str], metrics: Sequence[str]
) -> tuple[list[str], list[str]]:
    """Number accounts (their position in ``account_ids``), ``metrics`` (their position),
    products and levels in temp tables read by :func:`metric_codes_between`. Returns the
    products (code ``i + 1``; 0 is the company level) and the levels (code ``i``) in code
    order."""
    ids = pl.DataFrame(
        {"account_id": list(account_ids), "a": range(len(account_ids))},
        schema={"account_id": pl.Utf8, "a": pl.Int32},
    )
    with _registered(con, ids) as stage:
        con.execute(f"CREATE OR REPLACE TEMP TABLE _codes_accounts AS SELECT * FROM {stage}")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _codes_metrics AS"
        " SELECT m::SMALLINT - 1 AS m, metric"
        " FROM unnest(?::VARCHAR[]) WITH ORDINALITY t(metric, m)",
        [list(metrics)],
    )
    row = _one(
        con.execute(
            "SELECT list(DISTINCT product ORDER BY product) FILTER (product IS NOT NULL),"
            " list(DISTINCT level ORDER BY level) FILTER (level IS NOT NULL)"
            " FROM metric_values WHERE list_contains(?::VARCHAR[], metric)",
            [list(metrics)],
        )
    )
    products: list[str] = list(row[0] or []) if row else []
    levels: list[str] = list(row[1] or []) if row else []
    for table, code, column, values, first in (
        ("_codes_products", "p", "product", products, 1),
        ("_codes_levels", "lv", "level", levels, 0),
    ):
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT ({code}::INTEGER - 1 + ?) AS {code},"
            f" {column} FROM unnest(?::VARCHAR[]) WITH ORDINALITY t({column}, {code})",
            [first, values],
        )
    return products, levels


def metric_codes_between(
    con: duckdb.DuckDBPyConnection, after: date | None, upto: date, metrics: Sequence[int]
) -> pl.DataFrame:
    """Rows with ``after < as_of <= upto`` of the metrics numbered ``metrics`` (see
    :func:`prepare_metric_codes`) as codes: ``a`` (account), ``p`` (product, 0 company level),
    ``m`` (metric), ``day`` (days since 1970-01-01), ``value`` (NaN as null) and ``lv`` (level,
    -1 none). Rows of unknown accounts and rows with neither value nor level are left out."""
    return query(
        con,
        "SELECT c.a, coalesce(p.p, 0)::SMALLINT AS p, k.m, (v.as_of - DATE '1970-01-01')::INTEGER"
        " AS day, CASE WHEN isnan(v.value) THEN NULL ELSE v.value END AS value,"
        " coalesce(l.lv, -1)::INTEGER AS lv"
        " FROM metric_values v JOIN _codes_accounts c ON c.account_id = v.account_id"
        " JOIN _codes_metrics k ON k.metric = v.metric"
        " LEFT JOIN _codes_products p ON p.product = v.product"
        " LEFT JOIN _codes_levels l ON l.level = v.level"
        " WHERE (? IS NULL OR v.as_of > ?) AND v.as_of <= ? AND list_contains(?::SMALLINT[], k.m)"
        " AND ((v.value IS NOT NULL AND NOT isnan(v.value)) OR v.level IS NOT NULL)",
        [after, after, upto, [int(m) for m in metrics]],
    )


def metric_dates(con: duckdb.DuckDBPyConnection) -> list[date]:
    """Distinct ``as_of`` dates of ``metric_values``, ascending."""
    return [
        r[0] for r in con.execute("SELECT DISTINCT as_of FROM metric_values ORDER BY 1").fetchall()
    ]


def metric_date_range(con: duckdb.DuckDBPyConnection) -> tuple[date | None, date | None]:
    row = _one(con.execute("SELECT min(as_of), max(as_of) FROM metric_values"))
    return (row[0], row[1]) if row else (None, None)


def load_renewals(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return query(
        con,
        "SELECT account_id, renewal_date, arr_before, arr_after, product FROM renewals"
        " ORDER BY renewal_date, account_id",
    )


def load_activities(
    con: duckdb.DuckDBPyConnection, *, start: date | None = None, end: date | None = None
) -> pl.DataFrame:
    return query(
        con,
        "SELECT account_id, date, type, csm FROM activities"
        " WHERE (? IS NULL OR date >= ?) AND (? IS NULL OR date <= ?) ORDER BY date, account_id",
        [start, start, end, end],
    )


def load_products(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The ``product_arr`` frame of the contract: ``account_id``, ``product``, ``arr``."""
    return query(con, "SELECT account_id, product, arr FROM products ORDER BY account_id, product")


def load_table(
    con: duckdb.DuckDBPyConnection, table: str, *, limit: int | None = None
) -> pl.DataFrame:
    """Any table of the schema (allow-listed name), optionally the first ``limit`` rows."""
    sql = f"SELECT * FROM {_table(table)}" + (" LIMIT ?" if limit is not None else "")
    return query(con, sql, [limit] if limit is not None else None)


# --------------------------------------------------------------------------- manual overrides


def load_manual_overrides(
    con: duckdb.DuckDBPyConnection, *, as_of: date | None = None
) -> pl.DataFrame:
    """The ``manual_overrides`` frame of the contract; with ``as_of``, only those in force
    (created on or before it, ``expires_on`` after it or none)."""
    return query(
        con,
        "SELECT id, account_id, action, value, reason, author, created_on, expires_on"
        " FROM manual_overrides WHERE ? IS NULL OR (created_on <= ?"
        " AND (expires_on IS NULL OR expires_on > ?)) ORDER BY id",
        [as_of, as_of, as_of],
    )


def add_manual_override(
    con: duckdb.DuckDBPyConnection,
    *,
    account_id: str,
    action: str,
    value: str | float,
    reason: str,
    author: str,
    created_on: date | None = None,
    expires_on: date | None = None,
) -> int:
    """Record a manual override (grade|cap|set) with its author, and audit it. Returns its id."""
    if action not in ("grade", "cap", "set"):
        raise InputError(f"manual override action must be grade, cap or set, not {action!r}")
    created_on = created_on or date.today()
    with transaction(con):
        exists = _one(
            con.execute("SELECT count(*) FROM accounts WHERE account_id = ?", [account_id])
        )
        if not exists or not exists[0]:
            raise InputError(f"unknown account {account_id!r}")
        row = _one(
            con.execute(
                "INSERT INTO manual_overrides (account_id, action, value, reason, author,"
                " created_on,"
                " expires_on, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                [account_id, action, str(value), reason, author, created_on, expires_on, _now()],
            )
        )
        oid = int(row[0]) if row else 0
        _audit(
            con,
            author,
            "manual_override.add",
            account_id,
            {
                "id": oid,
                "action": action,
                "value": str(value),
                "reason": reason,
                "expires_on": expires_on,
            },
        )
    return oid


def remove_manual_override(
    con: duckdb.DuckDBPyConnection, override_id: int, *, author: str
) -> None:
    with transaction(con):
        con.execute("DELETE FROM manual_overrides WHERE id = ?", [override_id])
        _audit(con, author, "manual_override.remove", str(override_id), {})


# --------------------------------------------------------------------------- audit log


def _audit(
    con: duckdb.DuckDBPyConnection,
    actor: str,
    action: str,
    entity: str | None,
    detail: Mapping[str, Any] | None,
) -> None:
    import json

    con.execute(
        "INSERT INTO audit_log (logged_at, actor, action, entity, detail) VALUES (?, ?, ?, ?, ?)",
        [_now(), actor, action, entity, json.dumps(detail or {}, default=str)],
    )


def audit(
    con: duckdb.DuckDBPyConnection,
    actor: str,
    action: str,
    entity: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Append an audit entry. One statement: on its own it commits at once; inside the
    caller's transaction it commits or rolls back with the rest."""
    _audit(con, actor, action, entity, detail)


def audit_entries(con: duckdb.DuckDBPyConnection, *, limit: int = 200) -> pl.DataFrame:
    return query(
        con,
        "SELECT id, logged_at, actor, action, entity, detail FROM audit_log"
        " ORDER BY id DESC LIMIT ?",
        [limit],
    )


# --------------------------------------------------------------------------- scorecard versions


@dataclass(frozen=True)
class ScorecardVersion:
    version: int
    scorecard_id: str
    yaml: str
    fingerprint: str
    author: str
    created_at: datetime
    comment: str | None
    status: str


def save_scorecard_version(
    con: duckdb.DuckDBPyConnection,
    yaml_text: str,
    *,
    author: str,
    comment: str = "",
    status: str = "draft",
) -> int:
    """Store a scorecard's YAML as a new version (parsed and validated first: an invalid
    scorecard raises :class:`engine.problems.ScorecardError` and nothing is stored).

    ``status='active'`` archives the previously active version of the same scorecard id.
    A YAML identical in content (same fingerprint) to the newest version of that id is not
    stored again: that version is returned (and activated if asked).
    """
    from engine.scorecard import parse_scorecard_yaml
    from engine.validate import validate

    if status not in ("draft", "active", "archived"):
        raise InputError(f"status must be draft, active or archived, not {status!r}")
    card = parse_scorecard_yaml(yaml_text)
    problems = validate(card)
    if problems:
        from engine.problems import ScorecardError

        raise ScorecardError(problems)
    fp = card.fingerprint()
    with transaction(con):
        row = _one(
            con.execute(
                "SELECT version, fingerprint FROM scorecard_versions WHERE scorecard_id = ?"
                " ORDER BY version DESC LIMIT 1",
                [card.id],
            )
        )
        if row and row[1] == fp:
            version = int(row[0])
        else:
            got = _one(
                con.execute(
                    "INSERT INTO scorecard_versions (scorecard_id, yaml, fingerprint, author,"
                    " created_at, comment, status) VALUES (?, ?, ?, ?, ?, ?, 'draft')"
                    " RETURNING version",
                    [card.id, yaml_text, fp, author, _now(), comment],
                )
            )
            version = int(got[0]) if got else 0
            _audit(con, author, "scorecard.save", card.id, {"version": version, "comment": comment})
        if status != "draft":
            _set_status(con, version, status, author)
    return version


def _set_status(con: duckdb.DuckDBPyConnection, version: int, status: str, author: str) -> None:
    row = _one(
        con.execute(
            "SELECT scorecard_id, status FROM scorecard_versions WHERE version = ?", [version]
        )
    )
    if not row:
        raise InputError(f"no scorecard version {version}")
    if row[1] == status:
        return
    if status == "active":
        con.execute(
            "UPDATE scorecard_versions SET status = 'archived'"
            " WHERE scorecard_id = ? AND status = 'active'",
            [row[0]],
        )
    con.execute("UPDATE scorecard_versions SET status = ? WHERE version = ?", [status, version])
    _audit(con, author, f"scorecard.{status}", row[0], {"version": version})


def set_scorecard_status(
    con: duckdb.DuckDBPyConnection, version: int, status: str, *, author: str
) -> None:
    """Activate (archiving the active version of the same id), archive or re-draft a version."""
    if status not in ("draft", "active", "archived"):
        raise InputError(f"status must be draft, active or archived, not {status!r}")
    with transaction(con):
        _set_status(con, version, status, author)


def scorecard_versions(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every version (newest first) without its YAML: version, scorecard_id, fingerprint,
    author, created_at, comment, status."""
    return query(
        con,
        "SELECT version, scorecard_id, fingerprint, author, created_at, comment, status"
        " FROM scorecard_versions ORDER BY version DESC",
    )


def get_scorecard_version(con: duckdb.DuckDBPyConnection, version: int) -> ScorecardVersion:
    row = _one(
        con.execute(
            "SELECT version, scorecard_id, yaml, fingerprint, author, created_at, comment, status"
            " FROM scorecard_versions WHERE version = ?",
            [version],
        )
    )
    if not row:
        raise InputError(f"no scorecard version {version}")
    return ScorecardVersion(*row)


def active_scorecard_versions(con: duckdb.DuckDBPyConnection) -> dict[str, ScorecardVersion]:
    """``{scorecard_id: version}`` of the active version of every scorecard."""
    rows = con.execute(
        "SELECT version, scorecard_id, yaml, fingerprint, author, created_at, comment, status"
        " FROM scorecard_versions WHERE status = 'active' ORDER BY scorecard_id"
    ).fetchall()
    return {r[1]: ScorecardVersion(*r) for r in rows}


# --------------------------------------------------------------------------- score history


def delete_snapshot(
    con: duckdb.DuckDBPyConnection, as_of: date | Sequence[date], versions: Sequence[int]
) -> None:
    """Delete the stored scores at ``as_of`` (one date or several) for ``versions``."""
    dates = [as_of] if isinstance(as_of, date) else list(as_of)
    for table in ("score_history", "score_snapshots"):
        con.execute(
            f"DELETE FROM {table} WHERE list_contains(?, as_of)"
            " AND list_contains(?, scorecard_version)",
            [dates, list(versions)],
        )


def write_history(
    con: duckdb.DuckDBPyConnection,
    rows: pl.DataFrame,
    *,
    group_ids: Sequence[str],
    measure_ids: Sequence[str],
) -> int:
    """Append score-history rows of one scorecard: ``as_of``, ``scorecard_version``,
    ``account_id``, ``scorecard_id``, ``score``, ``raw_score``, ``grade``, ``outcomes_score``,
    ``experience_score``, ``incomplete``, ``missing``, ``stale``, ``overrides``, and columns
    ``g0``.. / ``m0``.. holding the scores of ``group_ids`` / ``measure_ids`` in that order
    (stored as the ``groups`` / ``measures`` lists; the ids once per version in
    ``score_layouts``). Call inside :func:`transaction` after :func:`delete_snapshot`."""
    groups, measures = list(group_ids), list(measure_ids)
    for version in rows.get_column("scorecard_version").unique().to_list():
        _ensure_layout(con, int(version), groups, measures)

    def as_list(prefix: str, n: int) -> str:
        values = ", ".join(f"CAST({prefix}{i} AS DOUBLE)" for i in range(n))
        return f"CAST([{values}] AS DOUBLE[])"

    with _registered(con, rows) as stage:
        con.execute(
            "INSERT INTO score_history SELECT as_of, scorecard_version, account_id,"
            " scorecard_id, score, raw_score, grade, outcomes_score, experience_score,"
            f" incomplete, {as_list('g', len(groups))}, {as_list('m', len(measures))},"
            f" missing, stale, overrides FROM {stage}"
        )
        con.execute(
            "INSERT INTO score_snapshots SELECT as_of, scorecard_version, any_value(scorecard_id),"
            f" count(*), ? FROM {stage} GROUP BY as_of, scorecard_version",
            [_now()],
        )
    return rows.height


def _ensure_layout(
    con: duckdb.DuckDBPyConnection, version: int, groups: list[str], measures: list[str]
) -> None:
    """Record the group and measure ids of a scorecard version (fixed: a version's scorecard
    never changes); refuse rows whose layout differs from the stored one."""
    row = _one(
        con.execute(
            "SELECT group_ids, measure_ids FROM score_layouts WHERE scorecard_version = ?",
            [version],
        )
    )
    if row is None:
        con.execute("INSERT INTO score_layouts VALUES (?, ?, ?)", [version, groups, measures])
    elif list(row[0]) != groups or list(row[1]) != measures:
        raise ValueError(
            f"scorecard version {version} is stored with groups {list(row[0])} and measures"
            f" {list(row[1])}, not {groups} and {measures}"
        )


# --------------------------------------------------------------------------- SQL metrics
# The runner in engine/metrics.py orchestrates; the SQL lives here and in data/metrics.yaml.

_DERIVED = "_derived_metric_values"


def prepare_metric_dates(con: duckdb.DuckDBPyConnection, as_of_dates: Sequence[date]) -> None:
    """(Re)create the temp tables metric queries read: ``as_of_dates``, ``as_of_range``,
    ``account_dates`` and ``product_dates`` (see ``data/metrics.yaml``)."""
    dates = sorted(set(as_of_dates))
    if not dates:
        raise InputError("no as-of dates to derive metrics for")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE as_of_dates AS SELECT unnest(?::DATE[]) AS as_of", [dates]
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE as_of_range AS"
        " SELECT min(as_of) AS first_as_of, max(as_of) AS last_as_of FROM as_of_dates"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE account_dates AS"
        " SELECT a.account_id, d.as_of FROM accounts a JOIN as_of_dates d"
        " ON (a.customer_since IS NULL OR a.customer_since <= d.as_of)"
        " AND (a.churned_on IS NULL OR a.churned_on > d.as_of)"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE product_dates AS"
        " SELECT e.account_id, e.product, a.as_of FROM account_dates a"
        " JOIN entitlements e ON e.account_id = a.account_id"
        " AND (e.start_date IS NULL OR e.start_date <= a.as_of)"
    )


def drop_metric_dates(con: duckdb.DuckDBPyConnection) -> None:
    for t in ("product_dates", "account_dates", "as_of_range", "as_of_dates", _DERIVED):
        con.execute(f"DROP TABLE IF EXISTS temp.{t}")


def describe_query(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, str]:
    """``{column: DuckDB type}`` of a metric query's result, without running it (binds it:
    unknown tables, columns and functions raise ``duckdb.Error``)."""
    rows = con.execute(f"DESCRIBE ({sql})").fetchall()
    return {r[0]: str(r[1]) for r in rows}


def begin_derived(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_DERIVED} (account_id VARCHAR, metric VARCHAR,"
        " product VARCHAR, as_of DATE, value DOUBLE, level VARCHAR, source VARCHAR,"
        " author VARCHAR, comment VARCHAR)"
    )


def stage_metric(
    con: duckdb.DuckDBPyConnection, metric_id: str, sql: str, columns: Sequence[str], source: str
) -> int:
    """Run one metric query into the staging table; return its row count.

    ``columns`` are the query's columns (:func:`describe_query`): optional ones that are absent
    become null. Rows without a value and without a level are dropped."""

    def col(name: str, cast: str) -> str:
        return f"CAST(q.{name} AS {cast})" if name in columns else f"CAST(NULL AS {cast})"

    src = "coalesce(CAST(q.source AS VARCHAR), ?)" if "source" in columns else "CAST(? AS VARCHAR)"
    before = _one(con.execute(f"SELECT count(*) FROM {_DERIVED}"))
    con.execute(
        f"INSERT INTO {_DERIVED} SELECT CAST(q.account_id AS VARCHAR), ?,"
        f" {col('product', 'VARCHAR')},"
        f" CAST(q.as_of AS DATE), {col('value', 'DOUBLE')}, {col('level', 'VARCHAR')}, {src},"
        f" {col('author', 'VARCHAR')}, {col('comment', 'VARCHAR')}"
        f" FROM ({sql}) q WHERE q.account_id IS NOT NULL AND q.as_of IS NOT NULL"
        f" AND ({col('value', 'DOUBLE')} IS NOT NULL OR {col('level', 'VARCHAR')} IS NOT NULL)",
        [metric_id, source],
    )
    after = _one(con.execute(f"SELECT count(*) FROM {_DERIVED}"))
    return int(after[0] if after else 0) - int(before[0] if before else 0)


def derived_duplicates(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Metrics whose staged rows repeat a natural key: ``{metric: duplicated keys}``."""
    rows = con.execute(
        "SELECT metric, count(*) FROM (SELECT metric, account_id, product, as_of"
        f" FROM {_DERIVED} GROUP BY ALL HAVING count(*) > 1) GROUP BY metric ORDER BY metric"
    ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


def derived_frame(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return query(
        con,
        "SELECT account_id, metric, value, level, as_of, product, source, author, comment"
        f" FROM {_DERIVED} ORDER BY as_of, metric, account_id, product",
    )


def commit_derived(con: duckdb.DuckDBPyConnection) -> int:
    """Upsert the staged rows into ``metric_values`` (inside the caller's transaction)."""
    row = _one(con.execute(f"SELECT min(as_of), max(as_of), count(*) FROM {_DERIVED}"))
    if not row or not row[2]:
        return 0
    lo, hi, n = row
    keys = NATURAL_KEYS["metric_values"]
    con.execute(
        f"DELETE FROM metric_values USING {_DERIVED} WHERE metric_values.as_of BETWEEN ? AND ?"
        f" AND {_key_match('metric_values', _DERIVED, keys)}",
        [lo, hi],
    )
    con.execute(f"INSERT INTO metric_values SELECT * FROM {_DERIVED} ORDER BY as_of")
    con.execute(f"DELETE FROM {_DERIVED}")
    return int(n)


def snapshot_dates(
    con: duckdb.DuckDBPyConnection, versions: Sequence[int] | None = None
) -> list[date]:
    """Dates with stored scores (for ``versions``, all when None), ascending."""
    rows = con.execute(
        "SELECT DISTINCT as_of FROM score_snapshots"
        " WHERE ?::INTEGER[] IS NULL OR list_contains(?::INTEGER[], scorecard_version) ORDER BY 1",
        [_int_list(versions), _int_list(versions)],
    ).fetchall()
    return [r[0] for r in rows]


def snapshots(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every stored snapshot: as_of, scorecard_version, scorecard_id, accounts, created_at."""
    return query(con, "SELECT * FROM score_snapshots ORDER BY as_of, scorecard_version")


def _int_list(values: Sequence[int] | None) -> list[int] | None:
    return None if values is None else [int(v) for v in values]


def load_scores(
    con: duckdb.DuckDBPyConnection,
    *,
    dates: Sequence[date] | None = None,
    start: date | None = None,
    end: date | None = None,
    versions: Sequence[int] | None = None,
    accounts: Sequence[str] | None = None,
    group_ids: Sequence[str] = (),
    measure_ids: Sequence[str] = (),
) -> pl.DataFrame:
    """Stored scores: ``as_of``, ``account_id``, ``scorecard_id``, ``scorecard_version``,
    ``score``, ``raw_score``, ``grade``, ``outcomes_score``, ``experience_score``,
    ``incomplete``, ``missing``, ``stale``, ``overrides``, then one Float64 column per id in
    ``group_ids`` and ``measure_ids`` (null where that scorecard has no such group or measure).
    Filters are optional and combine: exact ``dates``, a ``start``..``end`` range (inclusive),
    ``versions``, ``accounts``."""
    picks = [f", h.groups[list_position(l.group_ids, ?)] AS _g{i}" for i in range(len(group_ids))]
    picks += [
        f", h.measures[list_position(l.measure_ids, ?)] AS _m{i}" for i in range(len(measure_ids))
    ]
    conds: list[str] = []
    params: list[Any] = [*group_ids, *measure_ids]
    if dates is not None:
        d = sorted(set(dates))
        if not d:
            conds.append("FALSE")
        else:  # the range lets DuckDB skip row groups; the list is exact
            conds.append("as_of BETWEEN ? AND ? AND list_contains(?::DATE[], as_of)")
            params += [d[0], d[-1], d]
    if start is not None:
        conds.append("as_of >= ?")
        params.append(start)
    if end is not None:
        conds.append("as_of <= ?")
        params.append(end)
    if versions is not None:
        conds.append("list_contains(?::INTEGER[], scorecard_version)")
        params.append(_int_list(versions))
    if accounts is not None:
        conds.append("list_contains(?::VARCHAR[], account_id)")
        params.append(list(accounts))
    sql = (
        "SELECT as_of, account_id, scorecard_id, scorecard_version, score, raw_score, grade,"
        " outcomes_score, experience_score, incomplete, missing, stale, overrides"
        + "".join(picks)
        + " FROM score_history h LEFT JOIN score_layouts l USING (scorecard_version)"
        + (" WHERE " + " AND ".join(conds) if conds else "")
        + " ORDER BY as_of, account_id"
    )
    df = query(con, sql, params)
    renames = {f"_g{i}": g for i, g in enumerate(group_ids)}
    renames |= {f"_m{i}": m for i, m in enumerate(measure_ids) if m not in group_ids}
    df = df.rename(renames)
    return df.with_columns(pl.col(c).cast(pl.Float64) for c in renames.values())


def grade_counts(
    con: duckdb.DuckDBPyConnection,
    *,
    versions: Sequence[int],
    start: date | None = None,
    end: date | None = None,
) -> pl.DataFrame:
    """Per stored date and grade (null grade: no score): ``accounts``, ``arr`` (the accounts'
    current ARR) and ``mean_score``, aggregated in the database."""
    conds = ["list_contains(?::INTEGER[], h.scorecard_version)"]
    params: list[Any] = [_int_list(versions)]
    if start is not None:
        conds.append("h.as_of >= ?")
        params.append(start)
    if end is not None:
        conds.append("h.as_of <= ?")
        params.append(end)
    return query(
        con,
        "SELECT h.as_of, h.grade, count(*)::INTEGER AS accounts, sum(a.arr) AS arr,"
        " avg(h.score) AS mean_score FROM score_history h"
        " LEFT JOIN accounts a ON a.account_id = h.account_id"
        f" WHERE {' AND '.join(conds)} GROUP BY h.as_of, h.grade ORDER BY h.as_of, h.grade",
        params,
    )
