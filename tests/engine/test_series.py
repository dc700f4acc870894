"""The weekly backfill's latest-value series (engine.series) against scoring the whole history
at each date (engine.scoring.score), on a small store built to hit every rule: product values
over company values (even older), stale values, levels, NaN values, change windows with the
company-level fallback, customers who start or churn in the range, accounts without values,
manual overrides that start and expire between two dates, ARR-weighted and worst roll-ups
(with a tie) and batches of several dates."""

from __future__ import annotations

import contextlib
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from engine import history, store
from engine.conditions import age_col, change_col, level_col, value_col
from engine.scoring import score
from engine.series import Series

END = date(2024, 3, 31)
DATES = history.weekly_dates(END, weeks=10)

DEFAULT = """\
id: default
name: Default
scheme:
  type: ryg
  bands:
    - {label: Red, below: 50}
    - {label: Yellow, below: 75}
    - {label: Green}
missing: renormalize
stale: exclude
rollup: arr_weighted
groups:
  - id: adoption
    weight: 60
    measures:
      - id: usage
        metric: usage
        weight: 2
        map: {linear: [[0, 0], [1, 100]]}
        validity_days: 20
      - id: depth
        metric: depth
        weight: 1
        map: {linear: [[0, 0], [10, 100]]}
  - id: engagement
    weight: 40
    measures:
      - id: nps
        metric: nps
        weight: 1
        map: {linear: [[-50, 0], [50, 100]]}
        validity_days: 45
      - id: rel
        metric: rel
        weight: 1
        map:
          levels:
            - {label: Strong, score: 100}
            - {label: Weak, score: 20}
overrides:
  - id: usage_drop
    when: {change: usage, days: 30, op: "<=", pct: -40}
    then: {grade: Red}
assignment:
  - {scorecard: worst, when: {attribute: segment, op: "==", value: Ent}}
"""

WORST = (
    DEFAULT.replace("id: default\nname: Default", "id: worst\nname: Worst")
    .replace("rollup: arr_weighted", "rollup: worst")
    .split("assignment:")[0]
)


def _metric_rows() -> pl.DataFrame:
    rows: list[tuple[str, str, str | None, date, float | None, str | None]] = []
    start = END - timedelta(days=7 * 13)
    for w in range(14):
        d = start + timedelta(days=7 * w)
        # A: two products; P2 reports usage only in the first weeks (then its own old value
        # wins over the company-level one, and goes stale); a company usage too.
        rows.append(("A", "usage", "P1", d, 0.5 + 0.02 * w, None))
        if w < 4:
            rows.append(("A", "usage", "P2", d, 0.9, None))
        rows.append(("A", "usage", None, d, 0.1, None))
        rows.append(("A", "depth", None, d, float(w % 7), None))
        # B (Ent, worst roll-up): both products equal (a tie), usage halves from week 6
        level = 0.8 if w < 6 else 0.3
        rows.append(("B", "usage", "P1", d, level, None))
        rows.append(("B", "usage", "P2", d, level, None))
        rows.append(("B", "depth", "P2", d, 5.0, None))
        # C: company level only, customer from February; D churns in March
        rows.append(("C", "usage", None, d, 0.6 - 0.03 * w, None))
        rows.append(("D", "usage", None, d, 0.7, None))
        # F: a product value for depth only: usage (and its change base) from company level
        rows.append(("F", "usage", None, d, 0.9 if w < 7 else 0.4, None))
        rows.append(("F", "depth", "P1", d, 8.0, None))
        # G: P2 starts in week 8; a product without a base of its own does not fall back
        # to the company-level base while its account has product values of the metric
        rows.append(("G", "usage", "P1", d, 0.8, None))
        rows.append(("G", "usage", None, d, 1.0, None))
        if w >= 8:
            rows.append(("G", "usage", "P2", d, 0.3, None))
    # surveys at odd dates, a level-only metric, a NaN value
    rows += [
        ("A", "nps", None, date(2024, 1, 10), 40.0, None),
        ("A", "nps", None, date(2024, 3, 3), -10.0, None),
        ("C", "nps", None, date(2024, 2, 20), float("nan"), None),
        ("B", "nps", None, date(2024, 1, 20), 10.0, None),
        ("A", "rel", None, date(2024, 1, 15), None, "Strong"),
        ("A", "rel", None, date(2024, 3, 12), None, "Weak"),
        ("B", "rel", "P1", date(2024, 2, 1), None, "Weak"),
        ("F", "rel", None, date(2024, 2, 1), None, "Strong"),
    ]
    return pl.DataFrame(
        rows,
        schema={
            "account_id": pl.Utf8,
            "metric": pl.Utf8,
            "product": pl.Utf8,
            "as_of": pl.Date,
            "value": pl.Float64,
            "level": pl.Utf8,
        },
        orient="row",
    )


@pytest.fixture
def con(tmp_path: Path):
    path = tmp_path / "series.duckdb"
    con = store.cursor(path)
    accounts = pl.DataFrame(
        {
            "account_id": ["A", "B", "C", "D", "E", "F", "G"],
            "name": ["a", "b", "c", "d", "e", "f", "g"],
            "arr": [400.0, 100.0, 50.0, 50.0, 10.0, 20.0, 30.0],
            "segment": ["SMB", "Ent", "SMB", "SMB", "SMB", "SMB", "Ent"],
            "customer_since": [None, None, date(2024, 2, 1), None, None, None, None],
            "churned_on": [None, None, None, date(2024, 3, 10), None, None, None],
        },
        schema_overrides={"customer_since": pl.Date, "churned_on": pl.Date},
    )
    products = pl.DataFrame(
        {
            "account_id": ["A", "A", "B", "B", "F"],
            "product": ["P1", "P2", "P1", "P2", "P1"],
            "arr": [100.0, 300.0, 50.0, 50.0, 20.0],
        }
    )
    manual = pl.DataFrame(
        {
            "id": [1, 2],
            "account_id": ["A", "C"],
            "action": ["set", "grade"],
            "value": ["10", "Green"],
            "reason": ["test", "test"],
            "author": ["t", "t"],
            "created_on": [date(2024, 2, 5), date(2024, 3, 1)],
            "expires_on": [date(2024, 3, 4), None],
            "created_at": [datetime(2024, 1, 1), datetime(2024, 1, 1)],
        },
        schema_overrides={"expires_on": pl.Date},
    )
    (tmp_path / "cards").mkdir()
    (tmp_path / "cards" / "default.yaml").write_text(DEFAULT)
    (tmp_path / "cards" / "worst.yaml").write_text(WORST)
    with store.transaction(con):
        store.append(con, "accounts", accounts)
        store.append(con, "products", products)
        store.append(con, "metric_values", _metric_rows())
        store.append(con, "manual_overrides", manual)
    history.ensure_scorecards(con, tmp_path / "cards")
    yield con
    store.close(path)


@pytest.mark.parametrize("batch", [1, 4, 13])
def test_backfill_equals_scoring_the_whole_history_at_each_date(con, monkeypatch, batch) -> None:
    monkeypatch.setattr(history, "BATCH_MAX_DATES", batch)
    history.backfill(con, weeks=len(DATES))
    cards = history.scorecard_set(con)
    metrics = store.load_metric_values(con)
    fired: set[str] = set()
    for day in DATES:
        want = score(
            store.load_accounts(con, active_on=day),
            metrics.filter(pl.col("as_of") <= day),
            cards.cards,
            day,
            manual_overrides=store.load_manual_overrides(con),
            product_arr=store.load_products(con),
        ).sort("account_id")
        got = store.load_scores(
            con, dates=[day], group_ids=cards.group_ids, measure_ids=cards.measure_ids
        ).sort("account_id")
        cols = [
            "account_id",
            "scorecard_id" if "scorecard_id" in got.columns else "scorecard",
            "score",
            "raw_score",
            "grade",
            "adoption",
            "engagement",
            "usage",
            "depth",
            "nps",
            "rel",
            "missing",
            "stale",
            "overrides",
            "incomplete",
        ]
        assert_frame_equal(
            got.select(cols).rename({cols[1]: "scorecard"}),
            want.select([c if c != cols[1] else "scorecard" for c in cols]),
            check_dtypes=False,
        )
        fired |= {o for row in got.get_column("overrides").to_list() for o in row}
    # the data does reach the rules it is built for
    assert fired == {"usage_drop", "manual"}


def test_units_hold_the_latest_value_its_age_and_the_change_base(con) -> None:
    ids = ["A", "B", "C", "D", "E", "F", "G"]
    with Series(con, ids, ["depth", "nps", "rel", "usage"], [("usage", 30)]) as series:
        day = date(2024, 3, 17)
        frame, acc = series.units(day, np.ones(7, dtype=bool), ages={"usage", "nps"})
    rows = frame.with_columns(pl.Series("account_id", [ids[a] for a in acc]))

    def cell(account: str, product: str | None, col: str) -> object:
        match = rows.filter(
            (pl.col("account_id") == account) & pl.col("product").eq_missing(product)
        )
        assert match.height == 1, (account, product)
        return match.get_column(col).item()

    # A/P2's own usage is from 2024-01-21 (56 days old) and wins over the company value
    assert cell("A", "P2", value_col("usage")) == 0.9
    assert cell("A", "P2", age_col("usage")) == 56
    assert cell("A", "P1", value_col("usage")) == pytest.approx(0.5 + 0.02 * 11)
    assert cell("A", "P1", value_col("depth")) == 4.0  # company value on every product
    assert cell("A", "P1", level_col("rel")) == "Weak"  # the latest level
    assert cell("A", "P1", age_col("nps")) == 14
    # the bases 30 days back (2024-02-16, from 2024-02-11): B's own product value (already
    # halved), F's company-level one (before its drop)
    assert cell("B", "P1", change_col("usage", 30)) == 0.3
    assert cell("F", "P1", change_col("usage", 30)) == 0.9
    assert cell("F", "P1", value_col("usage")) == 0.4
    assert cell("G", "P2", change_col("usage", 30)) is None
    # C's NaN survey is no value; E has no value at all: a company unit of nulls
    assert cell("C", None, value_col("nps")) is None
    assert cell("E", None, value_col("usage")) is None
    assert sorted(rows.get_column("account_id").unique().to_list()) == ids


def test_dates_must_ascend(con) -> None:
    with contextlib.closing(Series(con, ["A"], ["usage"])) as series:
        series.units(date(2024, 2, 4), np.ones(1, dtype=bool))
        with pytest.raises(ValueError, match="dates must ascend"):
            series.units(date(2024, 1, 28), np.ones(1, dtype=bool))


def test_a_backfill_with_no_customer_stores_nothing_and_keeps_the_rest(con) -> None:
    with store.transaction(con):
        con.execute("UPDATE accounts SET churned_on = DATE '2023-01-01'")
    before = store.table_checksums(con)
    result = history.backfill(con, weeks=3)
    assert result.rows == 0 and len(result.dates) == 3
    after = store.table_checksums(con)
    assert after["score_history"] == before["score_history"] == (0, 0)
    assert after["metric_values"] == before["metric_values"]
