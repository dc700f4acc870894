"""Backtest: constructed data where the answer is known, the exact scoring at the horizon,
bad input, and the demo's documented behaviour (green renews more than yellow, yellow more
than red)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from engine import backtest as bt
from engine.problems import InputError
from engine.scorecard import parse_scorecard
from engine.scoring import score

DAY0 = date(2024, 1, 7)


def _card(**extra: object) -> object:
    data = {
        "id": "default",
        "name": "Test",
        "scheme": {"type": "ryg"},
        "groups": [
            {
                "id": "adoption",
                "label": "Adoption",
                "weight": 60,
                "measures": [
                    {
                        "id": "usage",
                        "metric": "usage",
                        "weight": 1,
                        "map": {"linear": [[0, 0], [1, 100]]},
                        "validity_days": 20,
                    },
                ],
            },
            {
                "id": "roi",
                "label": "ROI",
                "weight": 40,
                "measures": [
                    {
                        "id": "value",
                        "metric": "value",
                        "weight": 1,
                        "map": {"linear": [[0, 0], [1, 100]]},
                    },
                ],
            },
        ],
    }
    data.update(extra)
    return parse_scorecard(data)


def _portfolio(n: int, seed: int, *, signal: float, weeks: int = 8) -> tuple[pl.DataFrame, ...]:
    """``n`` accounts with weekly usage and value; renewal odds rise with usage by ``signal``."""
    rng = np.random.default_rng(seed)
    ids = [f"A{i:04d}" for i in range(n)]
    usage = rng.uniform(0, 1, n)
    value = rng.uniform(0, 1, n)
    dates = [DAY0 + timedelta(weeks=w) for w in range(weeks)]
    rows = []
    for metric, base in (("usage", usage), ("value", value)):
        for d in dates:
            rows.append(
                pl.DataFrame({"account_id": ids, "metric": metric, "value": base, "as_of": [d] * n})
            )
    metrics = pl.concat(rows)
    p = 1 / (1 + np.exp(-(signal * (usage - 0.5))))
    renewed = rng.uniform(size=n) < p
    arr = rng.uniform(1e4, 1e5, n)
    renew_day = dates[-1] + timedelta(days=90)
    renewals = pl.DataFrame(
        {
            "account_id": ids,
            "renewal_date": [renew_day] * n,
            "arr_before": arr,
            "arr_after": np.where(renewed, arr * 1.1, 0.0),
        }
    )
    accounts = pl.DataFrame(
        {
            "account_id": ids,
            "name": ids,
            "arr": arr,
            "segment": rng.choice(["SMB", "Enterprise"], n),
        }
    )
    return accounts, metrics, renewals


# --------------------------------------------------------------------------- AUC


def test_auc_known_cases() -> None:
    assert bt.auc([1, 2, 3, 4], [0, 0, 1, 1]) == 1.0
    assert bt.auc([4, 3, 2, 1], [0, 0, 1, 1]) == 0.0
    assert bt.auc([5, 5, 5, 5], [0, 1, 0, 1]) == 0.5
    # one tie between a churned and a renewed account counts one half: (1 + 1 + 0.5 + 1) / 4
    assert bt.auc([1, 2, 2, 3], [0, 0, 1, 1]) == pytest.approx(0.875)
    assert bt.auc([1, 2], [1, 1]) is None


def test_auc_matches_sklearn() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    s = rng.integers(0, 20, 500).astype(float)  # many ties
    y = (rng.uniform(size=500) < s / 25).astype(float)
    assert bt.auc(s, y) == pytest.approx(roc_auc_score(y, s))


def test_noise_gives_about_half_and_the_interval_covers_it() -> None:
    rng = np.random.default_rng(11)
    s = rng.uniform(size=4000)
    y = (rng.uniform(size=4000) < 0.8).astype(float)
    a, lo, hi = bt.auc_interval(s, y, bootstrap=200, seed=1)
    assert a == pytest.approx(0.5, abs=0.03)
    assert lo is not None and hi is not None
    assert lo < 0.5 < hi
    assert hi - lo < 0.1


# --------------------------------------------------------------------------- backtest


def test_perfect_predictor_gives_auc_one_and_clean_bands() -> None:
    accounts, metrics, renewals = _portfolio(300, 1, signal=0.0)
    usage = (
        metrics.filter(pl.col("metric") == "usage")
        .group_by("account_id")
        .agg(pl.col("value").first())
    )
    # renewed exactly when usage is above 0.5: the score (60% usage) orders them perfectly
    renewals = (
        renewals.join(usage, on="account_id")
        .with_columns(
            pl.when(pl.col("value") > 0.5)
            .then(pl.col("arr_before"))
            .otherwise(0.0)
            .alias("arr_after")
        )
        .drop("value")
    )
    card = _card(
        groups=[
            {
                "id": "adoption",
                "weight": 1,
                "measures": [
                    {
                        "id": "usage",
                        "metric": "usage",
                        "weight": 1,
                        "map": {"linear": [[0, 0], [1, 100]]},
                    }
                ],
            }
        ]
    )
    result = bt.backtest(accounts, metrics, renewals, card, bootstrap=50)
    assert result.auc == 1.0
    assert result.renewals == 300 and result.unscored == 0
    bands = {r["grade"]: r for r in result.to_dict()["bands"]}
    assert bands["Red"]["renewal_rate"] == 0.0 and bands["Red"]["grr"] == 0.0
    assert bands["Green"]["renewal_rate"] == 1.0 and bands["Green"]["nrr"] == 1.0
    lift = result.lift
    assert lift.get_column("decile").to_list() == list(range(1, 11))
    assert lift.get_column("churn_captured")[4] == pytest.approx(1.0, abs=0.05)


def test_noise_backtest_is_about_half() -> None:
    accounts, metrics, renewals = _portfolio(3000, 2, signal=0.0)
    result = bt.backtest(accounts, metrics, renewals, _card(), bootstrap=100)
    assert result.auc == pytest.approx(0.5, abs=0.035)
    assert result.auc_low < 0.5 < result.auc_high


def test_to_dict_has_the_promised_keys() -> None:
    accounts, metrics, renewals = _portfolio(400, 3, signal=6.0)
    d = bt.backtest(accounts, metrics, renewals, _card(), bootstrap=20).to_dict()
    for key in ("auc", "auc_low", "auc_high", "renewals", "bands", "lift", "calibration", "groups"):
        assert key in d
    assert {"grade", "accounts", "renewal_rate", "grr", "nrr"} <= set(d["bands"][0])
    assert [g["group"] for g in d["groups"]] == ["adoption", "roi"]
    # the signal is in usage (Adoption), not in value (ROI)
    aucs = {g["group"]: g["auc"] for g in d["groups"]}
    assert aucs["adoption"] > 0.75 > 0.6 > aucs["roi"]
    assert sum(r["accounts"] for r in d["calibration"]) == d["renewals"]
    assert (
        abs(
            sum(r["predicted"] * r["accounts"] for r in d["calibration"]) / d["renewals"]
            - d["renewal_rate"]
        )
        < 0.02
    )


def test_grr_and_nrr_add_product_rows_before_dividing() -> None:
    outcomes = bt.renewal_outcomes(
        pl.DataFrame(
            {
                "account_id": ["a", "a", "b"],
                "renewal_date": [date(2024, 5, 1)] * 3,
                "arr_before": [100.0, 100.0, 50.0],
                "arr_after": [150.0, 50.0, 0.0],
                "product": ["x", "y", None],
            }
        )
    )
    a = outcomes.filter(pl.col("account_id") == "a").row(0, named=True)
    # the downsell of y is not hidden by the expansion of x: retained 100 + 50
    assert (a["arr_before"], a["arr_after"], a["retained"], a["renewed"]) == (
        200.0,
        200.0,
        150.0,
        True,
    )
    assert outcomes.filter(pl.col("account_id") == "b").get_column("renewed").to_list() == [False]


def test_the_score_is_read_horizon_days_before_the_renewal() -> None:
    """Usage flips on 2024-03-03: a 90-day horizon must see the values before the flip."""
    ids = ["r1", "r2", "c1", "c2"]
    early = [0.9, 0.8, 0.1, 0.2]  # renewers high, churners low
    late = [0.1, 0.2, 0.9, 0.8]  # reversed after the flip
    rows = []
    for w in range(16):
        d = DAY0 + timedelta(weeks=w)
        vals = early if d < date(2024, 3, 3) else late
        rows.append(
            pl.DataFrame({"account_id": ids, "metric": "usage", "value": vals, "as_of": [d] * 4})
        )
    metrics = pl.concat(rows)
    renewal = date(2024, 5, 20)  # minus 90 days = 2024-02-20: the snapshot of 2024-02-18
    renewals = pl.DataFrame(
        {
            "account_id": ids,
            "renewal_date": [renewal] * 4,
            "arr_before": [1.0] * 4,
            "arr_after": [1.0, 1.0, 0.0, 0.0],
        }
    )
    accounts = pl.DataFrame({"account_id": ids, "name": ids, "arr": [1.0] * 4})
    card = _card(
        groups=[
            {
                "id": "adoption",
                "weight": 1,
                "measures": [
                    {
                        "id": "usage",
                        "metric": "usage",
                        "weight": 1,
                        "map": {"linear": [[0, 0], [1, 100]]},
                    }
                ],
            }
        ]
    )
    at90 = bt.backtest(accounts, metrics, renewals, card, horizon_days=90, bootstrap=0)
    assert at90.auc == 1.0
    assert at90.observations.get_column("score_date").unique().to_list() == [date(2024, 2, 18)]
    at0 = bt.backtest(accounts, metrics, renewals, card, horizon_days=0, bootstrap=0)
    assert at0.auc == 0.0


def test_one_scoring_call_equals_scoring_each_date() -> None:
    """The shifted single call equals scoring each snapshot date on its own, with stale
    values, a change-window override and manual overrides in play."""
    rng = np.random.default_rng(5)
    n, weeks = 60, 12
    ids = [f"A{i:03d}" for i in range(n)]
    frames = []
    for w in range(weeks):
        d = DAY0 + timedelta(weeks=w)
        keep = rng.uniform(size=n) < 0.7  # gaps: some values go stale
        frames.append(
            pl.DataFrame(
                {
                    "account_id": ids,
                    "metric": "usage",
                    "value": rng.uniform(0, 1, n),
                    "as_of": [d] * n,
                }
            ).filter(pl.Series(keep))
        )
        frames.append(
            pl.DataFrame(
                {
                    "account_id": ids,
                    "metric": "value",
                    "value": rng.uniform(0, 1, n),
                    "as_of": [d] * n,
                }
            )
        )
    metrics = pl.concat(frames)
    card = _card(
        overrides=[
            {
                "id": "drop",
                "reason": "usage halved",
                "when": {"change": "usage", "days": 28, "op": "<=", "pct": -50},
                "then": {"grade": "Red"},
            }
        ]
    )
    accounts = pl.DataFrame({"account_id": ids, "name": ids, "arr": [1.0] * n})
    manual = pl.DataFrame(
        {
            "account_id": ["A001", "A002"],
            "action": ["cap", "set"],
            "value": ["30", "90"],
            "reason": ["r", "r"],
            "author": ["x", "x"],
            "created_on": [DAY0 + timedelta(weeks=5)] * 2,
            "expires_on": [DAY0 + timedelta(weeks=8), None],
        }
    )
    keys = pl.DataFrame(
        {
            "account_id": ids,
            "score_date": [DAY0 + timedelta(weeks=int(w)) for w in rng.integers(3, weeks, n)],
        }
    )
    cards = {"default": card}
    one = bt._score_shifted(keys, accounts, metrics, cards, "default", manual, None)
    each = bt._score_per_date(keys, accounts, metrics, cards, "default", manual, None)
    one = one.sort("account_id")
    each = each.sort("account_id").select(one.columns)
    assert_frame_equal(one, each)
    assert one.get_column("stale").list.len().sum() > 0
    assert one.filter(pl.col("overrides").list.len() > 0).height > 0


def test_stored_history_gives_the_same_backtest() -> None:
    accounts, metrics, renewals = _portfolio(200, 4, signal=5.0, weeks=6)
    card = _card()
    dates = metrics.get_column("as_of").unique().sort().to_list()
    history = pl.concat(
        [score(accounts, metrics, card, d).with_columns(pl.lit(d).alias("as_of")) for d in dates]
    )
    live = bt.backtest(accounts, metrics, renewals, card, bootstrap=0)
    stored = bt.backtest(accounts, metrics.clear(), renewals, card, bootstrap=0, history=history)
    assert stored.auc == live.auc
    assert_frame_equal(stored.bands, live.bands)


def test_a_draft_replaces_its_namesake_and_drops_dangling_assignment() -> None:
    base = _card(
        assignment=[
            {"scorecard": "smb", "when": {"attribute": "segment", "op": "==", "value": "SMB"}}
        ]
    )
    smb = _card(id="smb", name="SMB")
    active = {"default": base, "smb": smb}
    draft = _card(name="Draft")
    assert bt.scorecard_set(draft, active)["default"].name == "Draft"
    assert set(bt.scorecard_set(draft, active)) == {"default", "smb"}
    alone = bt.scorecard_set(base, None)
    assert alone["default"].assignment == ()


# --------------------------------------------------------------------------- bad input


def test_no_renewals_is_a_clear_input_error() -> None:
    accounts, metrics, renewals = _portfolio(20, 6, signal=1.0)
    with pytest.raises(InputError, match="no renewals"):
        bt.backtest(accounts, metrics, renewals.clear(), _card())


def test_a_single_outcome_is_a_clear_input_error() -> None:
    accounts, metrics, renewals = _portfolio(50, 7, signal=1.0)
    renewals = renewals.with_columns(pl.col("arr_before").alias("arr_after"))
    with pytest.raises(InputError, match="all 50 scored renewals renewed"):
        bt.backtest(accounts, metrics, renewals, _card())


def test_no_snapshot_before_the_horizon_names_the_dates() -> None:
    accounts, metrics, renewals = _portfolio(30, 8, signal=1.0)
    renewals = renewals.with_columns(pl.lit(DAY0 + timedelta(days=10)).alias("renewal_date"))
    with pytest.raises(InputError, match="smaller horizon"):
        bt.backtest(accounts, metrics, renewals, _card())


def test_missing_columns_and_negative_horizon() -> None:
    accounts, metrics, renewals = _portfolio(30, 9, signal=1.0)
    with pytest.raises(InputError, match="arr_after"):
        bt.backtest(accounts, metrics, renewals.drop("arr_after"), _card())
    with pytest.raises(InputError, match="0 or more"):
        bt.backtest(accounts, metrics, renewals, _card(), horizon_days=-1)


# --------------------------------------------------------------------------- the demo


@pytest.fixture(scope="module")
def demo_frames(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pl.DataFrame]:
    from engine import demo, store

    db = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    demo.build(db, n_accounts=400, weeks=60, scorecards=None)
    con = store.cursor(db)
    frames = {
        "accounts": store.load_accounts(con),
        "metrics": store.load_metric_values(con),
        "renewals": store.load_renewals(con),
        "products": store.load_products(con),
    }
    store.close(db)
    return frames


def test_on_the_demo_green_renews_more_than_yellow_and_yellow_more_than_red(
    demo_frames: dict[str, pl.DataFrame],
) -> None:
    from engine.scorecard import load_scorecards

    cards = load_scorecards("data/scorecards")
    f = demo_frames
    result = bt.backtest(
        f["accounts"], f["metrics"], f["renewals"], cards, product_arr=f["products"], bootstrap=100
    )
    rates = {r["grade"]: r["renewal_rate"] for r in result.to_dict()["bands"]}
    assert rates["Green"] > rates["Yellow"] > rates["Red"]
    assert result.auc > 0.75
    assert result.auc_low < result.auc < result.auc_high
    adoption = next(g for g in result.groups if g.group == "adoption")
    assert adoption.auc == max(g.auc for g in result.groups)
