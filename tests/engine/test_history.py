"""Score history: idempotent snapshots, backfills in one transaction that equal scoring each
date, and the trend queries."""

from __future__ import annotations

import contextlib
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from engine import history, store
from engine.problems import InputError
from engine.scoring import score

from .demo_db import END, demo_db

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def con(tmp_path: Path):
    """A private copy, for tests that write."""
    db = demo_db(tmp_path)
    yield store.cursor(db)
    store.close(db)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory):
    """One copy for the tests that only read."""
    db = demo_db(tmp_path_factory.mktemp("history"))
    yield store.cursor(db)
    store.close(db)


def test_snapshot_is_idempotent(con) -> None:
    before = store.row_count(con, "score_history")
    day = END - timedelta(days=7)
    first = history.snapshot(con, day)
    assert store.row_count(con, "score_history") == before
    history.snapshot(con, day)
    assert store.row_count(con, "score_history") == before
    stored = store.load_scores(con, dates=[day])
    assert stored.height == first.rows
    assert sum(first.grades.values()) == first.rows
    snaps = store.snapshots(con).filter(pl.col("as_of") == day)
    assert snaps.get_column("accounts").sum() == first.rows


def test_stored_scores_equal_scoring_the_whole_history(shared) -> None:
    cards = history.scorecard_set(shared)
    for day in (END - timedelta(days=28), END):
        accounts = store.load_accounts(shared, active_on=day)
        full = score(
            accounts,
            store.load_metric_values(shared, end=day),
            cards.cards,
            day,
            product_arr=store.load_products(shared),
        )
        stored = store.load_scores(
            shared, dates=[day], group_ids=cards.group_ids, measure_ids=cards.measure_ids
        ).sort("account_id")
        full = full.sort("account_id")
        assert stored.get_column("account_id").to_list() == full.get_column("account_id").to_list()
        cols = ["score", "raw_score", "grade", "adoption", "roi", "breadth", "overrides", "stale"]
        # equal up to float rounding: the product roll-up may sum in another order
        assert_frame_equal(stored.select(cols), full.select(cols), check_dtypes=False)


def test_batched_scoring_equals_scoring_date_by_date(shared) -> None:
    cards = history.scorecard_set(shared)
    dates = history.weekly_dates(END, weeks=3)
    with contextlib.closing(history._SeriesScorer(shared, cards)) as scorer:
        batched = scorer.score(dates, 0)
    assert batched.get_column("as_of").unique().sort().to_list() == dates
    single = history._Reader(shared, cards)
    for d in dates:
        one = single.score(d)
        part = batched.filter(pl.col("as_of") == d).drop("as_of")
        assert_frame_equal(part.sort("account_id"), one.sort("account_id").select(part.columns))


def test_backfill_reports_progress_and_replaces(con) -> None:
    calls: list[tuple[int, int, date]] = []
    result = history.backfill(con, weeks=4, progress=lambda i, n, d: calls.append((i, n, d)))
    assert [c[0] for c in calls] == [1, 2, 3, 4] and calls[-1][2] == END
    assert result.dates == history.weekly_dates(END, weeks=4)
    counts = store.snapshots(con).group_by("as_of").agg(pl.col("accounts").sum())
    assert counts.height == 12  # the demo's 12 weeks, the last 4 replaced, none doubled
    assert store.row_count(con, "score_history") == counts.get_column("accounts").sum()


def test_backfill_is_one_transaction(con, monkeypatch) -> None:
    before = store.table_checksums(con)
    calls = {"n": 0}
    real = history._write

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk on fire")
        return real(*args, **kwargs)

    monkeypatch.setattr(history, "_write", failing)
    monkeypatch.setattr(history, "BATCH_MAX_DATES", 1)  # a batch per date: fails on the third
    with pytest.raises(RuntimeError):
        history.backfill(con, weeks=6)
    assert store.table_checksums(con) == before


def test_backfill_a_draft_scorecard_file(con, tmp_path: Path) -> None:
    text = (ROOT / "data" / "scorecards" / "default.yaml").read_text()
    draft = tmp_path / "default.yaml"
    draft.write_text(text.replace("weight: 35", "weight: 60", 1))
    active_before = store.active_scorecard_versions(con)
    result = history.backfill(con, scorecard=draft, weeks=2)
    assert result.versions["default"] != active_before["default"].version
    assert (
        store.active_scorecard_versions(con)["default"].version == active_before["default"].version
    )
    versions = store.scorecard_versions(con)
    assert versions.filter(pl.col("version") == result.versions["default"])["status"].to_list() == [
        "draft"
    ]
    new = store.load_scores(con, dates=[END], versions=[result.versions["default"]])
    old = store.load_scores(con, dates=[END], versions=[active_before["default"].version])
    assert new.height == old.height > 0
    # the same file again reuses the stored draft
    assert history.backfill(con, scorecard=draft, weeks=1).versions == result.versions
    assert (
        history.backfill(con, scorecard=str(result.versions["default"]), weeks=1).versions
        == result.versions
    )


def test_backfill_range_errors(shared) -> None:
    with pytest.raises(InputError, match="after"):
        history.backfill(shared, start=END, end=END - timedelta(days=7))


def test_no_scorecard_stored_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.duckdb"
    try:
        with pytest.raises(InputError, match="no scorecard is stored"):
            history.scorecard_set(store.cursor(path))
    finally:
        store.close(path)


def test_trends(shared) -> None:
    tr = history.trends(shared, flat_within=2.0)
    now = store.load_scores(shared, dates=[END]).select("account_id", "score")
    then = store.load_scores(shared, dates=[END - timedelta(days=28)]).select(
        "account_id", pl.col("score").alias("then")
    )
    expect = now.join(then, on="account_id", how="left").with_columns(
        (pl.col("score") - pl.col("then")).alias("d")
    )
    got = tr.join(expect, on="account_id")
    assert got.height == now.height
    assert got.get_column("delta_4w").to_list() == got.get_column("d").to_list()
    d, a = pl.col("delta_4w"), pl.col("arrow_4w")
    arrows = got.select(
        (d.is_null() == a.is_null()).all().alias("null"),
        ((d >= 2) == (a == "up")).all().alias("up"),
        ((d <= -2) == (a == "down")).all().alias("down"),
        ((d.abs() < 2) == (a == "flat")).all().alias("flat"),
    ).row(0)
    assert all(arrows)
    assert {"adoption", "delta_13w", "arrow_13w", "name", "arr", "csm"} <= set(tr.columns)
    # 13 weeks back lies before the demo's 12 weeks: no earlier score
    assert tr.get_column("delta_13w").null_count() == tr.height


def test_movers_and_transitions(shared) -> None:
    start = END - timedelta(days=56)
    mv = history.movers(shared, start, END, n=5)
    rises = mv.filter(pl.col("kind") == "rise").get_column("delta").to_list()
    drops = mv.filter(pl.col("kind") == "drop").get_column("delta").to_list()
    assert len(rises) <= 5 and rises == sorted(rises, reverse=True) and all(d > 0 for d in rises)
    assert len(drops) <= 5 and drops == sorted(drops) and all(d < 0 for d in drops)
    changed = mv.filter(pl.col("kind") == "grade_change")
    assert changed.get_column("grade_changed").all()
    tr = history.transitions(shared, start, END)
    before = store.load_scores(shared, dates=[start]).height
    after = store.load_scores(shared, dates=[END]).height
    assert tr.filter(pl.col("grade_before").is_not_null()).get_column("accounts").sum() == before
    assert tr.filter(pl.col("grade_after").is_not_null()).get_column("accounts").sum() == after
    flows = {(r["grade_before"], r["grade_after"]): r["accounts"] for r in tr.iter_rows(named=True)}
    grade_changes = mv.filter(pl.col("grade_changed")).height
    moved = sum(n for (a, b), n in flows.items() if a and b and a != b)
    assert moved == grade_changes


def test_grade_mix_and_account_history(shared) -> None:
    mix = history.grade_mix(shared)
    assert mix.get_column("as_of").n_unique() == 12
    shares = mix.group_by("as_of").agg(pl.col("share").sum()).get_column("share")
    assert all(abs(s - 1.0) < 1e-9 for s in shares)
    one = store.load_scores(shared, dates=[END]).get_column("account_id")[0]
    hist = history.account_history(shared, one)
    assert hist.height >= 1 and {"adoption", "breadth", "score", "grade"} <= set(hist.columns)
    assert hist.get_column("as_of").is_sorted()
