"""The data-quality report: coverage, stale share, outliers, accounts without metrics."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from engine import quality, store

D = date(2024, 6, 30)


@pytest.fixture
def con(tmp_path: Path):
    path = tmp_path / "q.duckdb"
    cur = store.cursor(path)
    ids = [f"a{i}" for i in range(10)]
    store.append(
        cur,
        "accounts",
        pl.DataFrame(
            {
                "account_id": [*ids, "new", "gone"],
                "name": [*ids, "new", "gone"],
                "arr": [1.0] * 12,
                "customer_since": [None] * 10 + [D + timedelta(days=1), None],
                "churned_on": [None] * 11 + [D],
            }
        ),
    )
    wau = [0.50, 0.52, 0.48, 0.51, 0.49, 0.50, 0.53, 0.47, 0.99]  # a8 is an outlier, a9 has none
    rows = pl.DataFrame(
        {
            "account_id": [*ids[:9], "a0", "a1", "gone"],
            "metric": ["weekly_active_user_share"] * 9 + ["nps", "nps", "nps"],
            "product": [None] * 12,
            "as_of": [D] * 9 + [D - timedelta(days=200), D - timedelta(days=10), D],
            "value": [*wau, 150.0, 20.0, 5.0],  # nps 150 is out of range
        }
    )
    store.append(cur, "metric_values", rows)
    yield cur
    store.close(path)


def test_report(con) -> None:
    rep = quality.quality_report(con, validity_days={"nps": 120, "weekly_active_user_share": 14})
    assert rep.as_of == D and rep.accounts == 10  # 'new' starts later, 'gone' churned on D
    m = {r["metric"]: r for r in rep.metrics.iter_rows(named=True)}
    wau = m["weekly_active_user_share"]
    assert wau["accounts_with_value"] == 9 and wau["coverage"] == pytest.approx(0.9)
    assert wau["outliers"] == 1 and wau["out_of_range"] == 0 and wau["stale_share"] == 0
    nps = m["nps"]
    assert nps["accounts_with_value"] == 2 and nps["stale"] == 1 and nps["stale_share"] == 0.5
    assert nps["out_of_range"] == 1 and nps["validity_days"] == 120
    assert nps["latest_as_of"] == D - timedelta(days=10)
    assert m["csat"]["accounts_with_value"] == 0 and m["csat"]["coverage"] == 0  # defined, no data
    assert m["csat"]["stale_share"] is None
    assert rep.accounts_without_metrics.get_column("account_id").to_list() == ["a9"]
    payload = rep.to_dict()
    assert payload["accounts_without_metrics"] == 1 and payload["as_of"] == "2024-06-30"


def test_earlier_date_and_empty_database(con, tmp_path: Path) -> None:
    rep = quality.quality_report(con, D - timedelta(days=30), validity_days={})
    m = {r["metric"]: r for r in rep.metrics.iter_rows(named=True)}
    assert m["nps"]["accounts_with_value"] == 1 and m["nps"]["stale_share"] is None
    assert rep.accounts == 11 and rep.accounts_without_metrics.height == 10  # only a0 has a value
    empty = tmp_path / "e.duckdb"
    try:
        from engine.problems import InputError

        with pytest.raises(InputError, match="no metric values"):
            quality.quality_report(store.cursor(empty))
    finally:
        store.close(empty)


def test_validity_comes_from_the_active_scorecards(con) -> None:
    root = Path(__file__).resolve().parents[2]
    from engine.history import ensure_scorecards

    ensure_scorecards(con, root / "data" / "scorecards")
    rep = quality.quality_report(con)
    m = {r["metric"]: r for r in rep.metrics.iter_rows(named=True)}
    assert m["weekly_active_user_share"]["validity_days"] == 14
    assert m["nps"]["validity_days"] == 120
