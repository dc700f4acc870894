"""Importing data files: a corpus of malformed files, each with the error it must produce and
nothing written; upserts; a single snapshot with a churn label; SQL metrics vs imported values."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from engine import history, importer, store
from engine.problems import InputError

from .demo_db import END, demo_db

ROOT = Path(__file__).resolve().parents[2]
TODAY = date(2025, 7, 1)

ACC = "account_id,name,arr,segment\na,Acme,1000,Enterprise\nb,Beta,200,SMB\n"
MET = "account_id,metric,value,as_of,product\n"


def _parquet(frame: dict) -> Callable[[Path], None]:
    return lambda p: pl.DataFrame(frame).write_parquet(p)


# (id, file name, content or writer, import argument, expected fragments of the error)
CORPUS: list[tuple[str, str, str | Callable[[Path], None], str, tuple[str, ...]]] = [
    (
        "acc-missing-column",
        "accounts.csv",
        "account_id,name\na,Acme\n",
        "accounts",
        ("accounts.csv", "missing required column 'arr'"),
    ),
    (
        "acc-misspelt-column",
        "accounts.csv",
        "Account ID,name,arr\na,Acme,1\n",
        "accounts",
        ("'account_id' (found 'Account ID': check the spelling)",),
    ),
    (
        "acc-arr-not-number",
        "accounts.csv",
        "account_id,name,arr\na,Acme,lots\n",
        "accounts",
        ("column 'arr'", "not a number", "line 2", "'lots'"),
    ),
    (
        "acc-negative-arr",
        "accounts.csv",
        "account_id,name,arr\na,Acme,10\nb,Beta,-5\n",
        "accounts",
        ("column 'arr'", "must not be negative", "line 3"),
    ),
    (
        "acc-duplicate-id",
        "accounts.csv",
        "account_id,name,arr\na,Acme,1\na,Again,2\n",
        "accounts",
        ("column 'account_id'", "duplicate key", "line 2", "line 3"),
    ),
    ("acc-empty-file", "accounts.csv", "", "accounts", ("accounts.csv", "the file is empty")),
    ("acc-header-only", "accounts.csv", "account_id,name,arr\n", "accounts", ("no data rows",)),
    (
        "acc-empty-id",
        "accounts.csv",
        "account_id,name,arr\n,Acme,1\n",
        "accounts",
        ("column 'account_id'", "a value is required", "line 2"),
    ),
    (
        "acc-bad-renewal-date",
        "accounts.csv",
        "account_id,name,arr,renewal_date\na,A,1,31/12/2024\n",
        "accounts",
        ("column 'renewal_date'", "not a date", "'31/12/2024'"),
    ),
    (
        "acc-bad-customer-since",
        "accounts.csv",
        "account_id,name,arr,customer_since\na,A,1,soon\n",
        "accounts",
        ("column 'customer_since'", "not a date", "line 2"),
    ),
    (
        "acc-date-out-of-range",
        "accounts.csv",
        "account_id,name,arr,renewal_date\na,A,1,1899-01-01\n",
        "accounts",
        ("column 'renewal_date'", "date out of range", "line 2"),
    ),
    (
        "acc-unknown-extension",
        "accounts.xlsx",
        "whatever",
        "accounts",
        ("accounts.xlsx", "unknown file extension '.xlsx'"),
    ),
    (
        "acc-parquet-arr-text",
        "accounts.parquet",
        _parquet({"account_id": ["a"], "name": ["A"], "arr": ["x"]}),
        "accounts",
        ("accounts.parquet", "column 'arr'", "not a number", "row 1"),
    ),
    (
        "met-missing-as-of",
        "metrics.csv",
        "account_id,metric,value\na,nps,10\n",
        "metrics",
        ("metrics.csv", "missing required column 'as_of'"),
    ),
    (
        "met-unparsable-date",
        "metrics.csv",
        MET + "a,nps,10,2024-13-45,\n",
        "metrics",
        ("column 'as_of'", "not a date", "'2024-13-45'"),
    ),
    (
        "met-future-date",
        "metrics.csv",
        MET + "a,nps,10,2099-01-01,\n",
        "metrics",
        ("column 'as_of'", "date out of range", "line 2"),
    ),
    (
        "met-duplicate-key",
        "metrics.csv",
        MET + "a,nps,10,2024-01-07,\na,nps,20,2024-01-07,\n",
        "metrics",
        ("account_id + metric + product + as_of", "duplicate key", "line 3"),
    ),
    (
        "met-unknown-account",
        "metrics.csv",
        MET + "a,nps,10,2024-01-07,\nzz,nps,5,2024-01-07,\n",
        "metrics",
        ("column 'account_id'", "unknown account", "line 3", "'zz'"),
    ),
    (
        "met-share-out-of-range",
        "metrics.csv",
        MET + "a,licence_activation,1.5,2024-01-07,Core\n",
        "metrics",
        ("value out of range [0, 1] for metric licence_activation", "line 2"),
    ),
    (
        "met-nps-out-of-range",
        "metrics.csv",
        MET + "a,nps,-150,2024-01-07,\n",
        "metrics",
        ("value out of range [-100, 100] for metric nps",),
    ),
    (
        "met-count-negative",
        "metrics.csv",
        MET + "a,open_escalations,-1,2024-01-07,\n",
        "metrics",
        ("value out of range [0, ] for metric open_escalations",),
    ),
    (
        "met-text-for-number",
        "metrics.csv",
        MET + "a,weekly_active_user_share,high,2024-01-07,Core\n",
        "metrics",
        ("wrong type: metric weekly_active_user_share takes numbers", "'high'"),
    ),
    (
        "met-unknown-level",
        "metrics.csv",
        MET + "a,executive_relationship,Excellent,2024-01-07,\n",
        "metrics",
        ("unknown level for metric executive_relationship", "'Excellent'"),
    ),
    (
        "met-empty-metric",
        "metrics.csv",
        MET + "a,,10,2024-01-07,\n",
        "metrics",
        ("column 'metric'", "a value is required"),
    ),
    (
        "met-parquet-date-as-number",
        "metrics.parquet",
        _parquet({"account_id": ["a"], "metric": ["nps"], "value": [1.0], "as_of": [20240107]}),
        "metrics",
        ("metrics.parquet", "column 'as_of'", "expected dates"),
    ),
    (
        "ren-missing-column",
        "renewals.csv",
        "account_id,renewal_date,arr_before\na,2024-01-01,1\n",
        "renewals",
        ("missing required column 'arr_after'",),
    ),
    (
        "ren-negative-arr",
        "renewals.csv",
        "account_id,renewal_date,arr_before,arr_after\na,2024-01-01,100,-1\n",
        "renewals",
        ("column 'arr_after'", "must not be negative"),
    ),
    (
        "ren-unknown-account",
        "renewals.csv",
        "account_id,renewal_date,arr_before,arr_after\nq,2024-01-01,100,0\n",
        "renewals",
        ("unknown account", "'q'"),
    ),
    (
        "ren-duplicate",
        "renewals.csv",
        "account_id,renewal_date,arr_before,arr_after\na,2024-01-01,100,0\na,2024-01-01,100,90\n",
        "renewals",
        ("duplicate key", "account_id + renewal_date + product"),
    ),
    (
        "act-bad-date",
        "activities.csv",
        "account_id,date,type\na,yesterday,ebr\n",
        "activities",
        ("column 'date'", "not a date", "'yesterday'"),
    ),
    (
        "act-missing-type",
        "activities.csv",
        "account_id,date\na,2024-01-01\n",
        "activities",
        ("missing required column 'type'",),
    ),
    (
        "act-unknown-account",
        "activities.csv",
        "account_id,date,type\nx,2024-01-01,ebr\n",
        "activities",
        ("unknown account",),
    ),
    (
        "prod-negative-arr",
        "products.csv",
        "account_id,product,arr\na,Core,-3\n",
        "products",
        ("column 'arr'", "must not be negative"),
    ),
    (
        "src-unknown-table",
        "sources/usage.csv",
        "account_id\na\n",
        "sources",
        ("usage.csv", "unknown source table 'usage'"),
    ),
    (
        "src-missing-column",
        "sources/usage_weekly.csv",
        "account_id,product,week_ending,activated_users\na,Core,2024-01-07,3\n",
        "sources",
        ("usage_weekly.csv", "missing required column(s) 'active_users'"),
    ),
    (
        "src-not-whole-number",
        "sources/entitlements.csv",
        "account_id,product,start_date,licences,core_features\na,Core,2024-01-01,many,12\n",
        "sources",
        ("column 'licences'", "not a whole number", "'many'"),
    ),
    (
        "src-bad-boolean",
        "sources/tickets.csv",
        "ticket_id,account_id,product,opened_on,closed_on,priority,escalated\n"
        "t,a,Core,2024-01-01,,P1,maybe\n",
        "sources",
        ("column 'escalated'", "expected true/false"),
    ),
    (
        "src-bad-date",
        "sources/surveys.csv",
        "account_id,contact_id,responded_on,kind,score\na,c,last week,nps,9\n",
        "sources",
        ("column 'responded_on'", "not a date"),
    ),
]


@pytest.fixture
def con(tmp_path: Path):
    path = tmp_path / "i.duckdb"
    cur = store.cursor(path)
    store.append(
        cur,
        "accounts",
        pl.DataFrame({"account_id": ["a", "b"], "name": ["A", "B"], "arr": [1.0, 2.0]}),
    )
    yield cur
    store.close(path)


def test_the_corpus_is_big_enough() -> None:
    assert len(CORPUS) >= 25
    assert len({c[0] for c in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize(
    ("name", "fname", "content", "arg", "expected"), CORPUS, ids=[c[0] for c in CORPUS]
)
def test_malformed_file_is_refused_with_its_error(
    con, tmp_path: Path, name: str, fname: str, content, arg: str, expected: tuple[str, ...]
) -> None:
    path = tmp_path / fname
    path.parent.mkdir(parents=True, exist_ok=True)
    if callable(content):
        content(path)
    else:
        path.write_text(content)
    before = store.table_checksums(con)
    target = path.parent if arg == "sources" else path
    with pytest.raises(InputError) as err:
        importer.import_files(con, **{arg: target}, today=TODAY)
    text = str(err.value)
    for fragment in expected:
        assert fragment in text, f"{name}: {fragment!r} not in\n{text}"
    assert store.table_checksums(con) == before


def test_every_problem_of_every_file_is_reported_at_once(con, tmp_path: Path) -> None:
    acc = tmp_path / "accounts.csv"
    acc.write_text("account_id,name,arr\nc,C,-1\nc,C2,5\n")
    met = tmp_path / "metrics.csv"
    met.write_text(MET + "zz,nps,500,2024-01-07,\n")
    with pytest.raises(InputError) as err:
        importer.import_files(con, accounts=acc, metrics=met, today=TODAY)
    text = str(err.value)
    assert "must not be negative" in text and "duplicate key" in text
    assert "unknown account" in text and "out of range" in text
    assert len(err.value.problems) == 4


def test_nothing_to_import_is_an_error(con) -> None:
    with pytest.raises(InputError, match="nothing to import"):
        importer.import_files(con)


def test_import_upserts_on_natural_keys(con, tmp_path: Path) -> None:
    acc = tmp_path / "accounts.csv"
    acc.write_text("account_id,name,arr,plan\na,Acme,1000,gold\nc,Cee,50,silver\n")
    met = tmp_path / "metrics.csv"
    met.write_text(
        MET + "a,nps,10,2024-01-07,\na,executive_relationship,Strong,2024-01-07,\n"
        "c,licence_activation,0.5,2024-01-07,Core\n"
    )
    ren = tmp_path / "renewals.csv"
    ren.write_text("account_id,renewal_date,arr_before,arr_after\nc,2024-03-01,50,0\n")
    act = tmp_path / "activities.csv"
    act.write_text("account_id,date,type\na,2024-01-02,ebr\na,2024-01-02,ebr\n")
    result = importer.import_files(
        con, accounts=acc, metrics=met, renewals=ren, activities=act, today=TODAY
    )
    assert result.rows == {"accounts": 2, "metric_values": 3, "renewals": 1, "activities": 1}
    first = store.table_checksums(con)
    importer.import_files(con, accounts=acc, metrics=met, renewals=ren, activities=act, today=TODAY)
    again = store.table_checksums(con)
    for t in ("accounts", "metric_values", "renewals", "activities"):
        assert again[t] == first[t], t
    assert store.row_count(con, "accounts") == 3
    accounts = store.load_accounts(con)
    assert accounts.filter(pl.col("account_id") == "c").get_column("plan").to_list() == ["silver"]
    met.write_text(MET + "a,nps,30,2024-01-07,\n")
    importer.import_files(con, metrics=met, today=TODAY)
    values = store.load_metric_values(con).filter(pl.col("metric") == "nps")
    assert values.get_column("value").to_list() == [30.0]
    assert values.get_column("source").to_list() == ["import"]
    level = store.load_metric_values(con).filter(pl.col("metric") == "executive_relationship")
    assert level.get_column("level").to_list() == ["Strong"]
    assert "import" in store.audit_entries(con).get_column("action").to_list()


def test_a_single_snapshot_with_a_churn_label_imports_and_scores(tmp_path: Path) -> None:
    db = tmp_path / "snap.duckdb"
    con = store.cursor(db)
    try:
        (tmp_path / "accounts.csv").write_text(
            "account_id,name,arr,segment\n1,One,1000,Mid-Market\n2,Two,500,Mid-Market\n"
            "3,Three,800,Enterprise\n"
        )
        (tmp_path / "metrics.csv").write_text(
            "account_id,metric,value,as_of\n"
            "1,weekly_active_user_share,0.8,2024-06-30\n1,nps,40,2024-06-30\n"
            "2,weekly_active_user_share,0.1,2024-06-30\n2,executive_relationship,Weak,2024-06-30\n"
            "3,weekly_active_user_share,0.5,2024-06-30\n"
        )
        (tmp_path / "renewals.csv").write_text(
            "account_id,renewal_date,arr_before,arr_after\n1,2024-09-30,1000,1100\n"
            "2,2024-10-15,500,0\n3,2024-11-01,800,800\n"
        )
        importer.import_files(
            con,
            accounts=tmp_path / "accounts.csv",
            metrics=tmp_path / "metrics.csv",
            renewals=tmp_path / "renewals.csv",
            today=TODAY,
        )
        history.ensure_scorecards(con, ROOT / "data" / "scorecards")
        snap = history.snapshot(con)
        assert snap.as_of == date(2024, 6, 30) and snap.rows == 3
        scores = store.load_scores(con, group_ids=["adoption"]).sort("account_id")
        assert (
            scores.get_column("adoption").to_list()[0] > scores.get_column("adoption").to_list()[1]
        )
        assert store.load_renewals(con).filter(pl.col("arr_after") == 0).height == 1
    finally:
        store.close(db)


def test_scores_from_sql_metrics_equal_scores_from_imported_values(tmp_path: Path) -> None:
    src = demo_db(tmp_path)
    con = store.cursor(src)
    target = tmp_path / "imported.duckdb"
    try:
        from_sql = history.score_at(con, END)
        out = tmp_path / "files"
        out.mkdir()
        acc = store.load_accounts(con)
        acc.write_parquet(out / "accounts.parquet")
        store.load_metric_values(con).write_parquet(out / "metrics.parquet")
        store.load_metric_values(con).write_csv(out / "metrics.csv")
        store.load_products(con).write_csv(out / "products.csv")
        versions = store.active_scorecard_versions(con)
        con2 = store.cursor(target)
        importer.import_files(
            con2,
            accounts=out / "accounts.parquet",
            metrics=out / "metrics.parquet",
            products=out / "products.csv",
            today=TODAY,
        )
        for sv in versions.values():
            store.save_scorecard_version(con2, sv.yaml, author="t", status="active")
        direct = history.score_at(con2, END)
        assert_frame_equal(from_sql.sort("account_id"), direct.sort("account_id"))
        # and from a CSV export of the same values
        importer.import_files(con2, metrics=out / "metrics.csv", today=TODAY)
        assert_frame_equal(
            from_sql.sort("account_id"), history.score_at(con2, END).sort("account_id")
        )
    finally:
        store.close(src)
        store.close(target)


def test_sources_import_derives_the_same_metrics_as_the_demo(tmp_path: Path) -> None:
    src = demo_db(tmp_path, history=False)
    con = store.cursor(src)
    target = tmp_path / "fromsources.duckdb"
    try:
        folder = tmp_path / "sources"
        folder.mkdir()
        for table in store.SOURCE_TABLES:
            store.load_table(con, table).write_csv(folder / f"{table}.csv")
        store.load_accounts(con).write_csv(tmp_path / "accounts.csv")
        con2 = store.cursor(target)
        result = importer.import_files(
            con2, accounts=tmp_path / "accounts.csv", sources=folder, weeks=3, today=TODAY
        )
        assert result.as_of_dates[-1] == END and len(result.as_of_dates) == 3
        keys = ["account_id", "metric", "product", "as_of"]
        cols = [*keys, "value", "level"]
        expect = store.load_metric_values(con, start=result.as_of_dates[0]).select(cols).sort(keys)
        got = store.load_metric_values(con2, start=result.as_of_dates[0]).select(cols).sort(keys)
        assert_frame_equal(got, expect)
    finally:
        store.close(src)
        store.close(target)
