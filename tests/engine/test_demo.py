"""The demo portfolio: seeded, realistic in shape, and following its documented model."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from engine import demo, store
from engine.history import score_at

from .demo_db import END, demo_db


@pytest.fixture(scope="module")
def portfolio() -> demo.DemoData:
    # large enough for the statistics, no database: about a second
    return demo.generate(3000, 52, seed=11, end=END)


def test_is_deterministic_per_seed() -> None:
    a = demo.generate(50, 6, seed=3, end=END)
    b = demo.generate(50, 6, seed=3, end=END)
    c = demo.generate(50, 6, seed=4, end=END)
    for name, frame in a.tables.items():
        assert frame.equals(b.tables[name]), name
    assert not a.tables["usage_weekly"].equals(c.tables["usage_weekly"])


def test_shape_of_the_portfolio(portfolio: demo.DemoData) -> None:
    acc = portfolio.tables["accounts"]
    assert acc.height == 3000 and acc.get_column("account_id").is_unique().all()
    assert set(acc.get_column("segment")) == set(demo.SEGMENTS)
    assert set(acc.get_column("region")) == set(demo.REGIONS)
    assert {"onboarding", "adoption", "expansion", "renewal"} <= set(
        acc.get_column("lifecycle_stage")
    )
    assert 20 <= acc.get_column("csm").n_unique() <= 60
    med = acc.group_by("segment").agg(pl.col("arr").median()).sort("arr")
    assert med.get_column("segment").to_list() == ["SMB", "Mid-Market", "Enterprise"]
    per_account = portfolio.tables["products"].group_by("account_id").len().get_column("len")
    assert per_account.min() >= 1 and per_account.max() <= 3
    months = acc.get_column("renewal_date").dt.month().n_unique()
    assert months == 12  # renewal dates spread over the year
    assert portfolio.as_of_dates[-1] == END and len(portfolio.as_of_dates) == 52
    assert all(
        b - a == timedelta(days=7)
        for a, b in zip(portfolio.as_of_dates, portfolio.as_of_dates[1:], strict=False)
    )
    for table in (
        "touchpoints",
        "tickets",
        "surveys",
        "success_plan_outcomes",
        "csm_ratings",
        "sponsor_changes",
        "integrations",
        "onboarding_milestones",
        "entitlements",
    ):
        assert portfolio.tables[table].height > 0, table
    personas = set(portfolio.tables["touchpoints"].get_column("persona"))
    assert {"executive", "champion", "end_user"} <= personas
    changes = set(portfolio.tables["sponsor_changes"].get_column("change"))
    assert "left" in changes
    outcome = (
        portfolio.tables["renewals"]
        .with_columns(
            pl.when(pl.col("arr_after") == 0)
            .then(pl.lit("churn"))
            .when(pl.col("arr_after") < pl.col("arr_before"))
            .then(pl.lit("downsell"))
            .when(pl.col("arr_after") > pl.col("arr_before"))
            .then(pl.lit("expansion"))
            .otherwise(pl.lit("flat"))
            .alias("k")
        )
        .get_column("k")
    )
    assert set(outcome) == {"churn", "downsell", "flat", "expansion"}


def _decision_truth(p: demo.DemoData) -> pl.DataFrame:
    """Each renewal with the latent state at its decision (17 weeks before)."""
    truth = p.tables["demo_truth"]
    ren = (
        p.tables["renewals"]
        .with_columns(
            (pl.col("arr_after") > 0).alias("renewed"),
            (pl.col("renewal_date") - pl.duration(days=7 * demo.DECISION_WEEKS)).alias("decided"),
        )
        .sort("decided")
    )
    return ren.join_asof(
        truth.sort("as_of"),
        left_on="decided",
        right_on="as_of",
        by="account_id",
        strategy="nearest",
        tolerance=timedelta(days=7),
        check_sortedness=False,
    ).drop_nulls("health")


def test_renewal_rate_rises_with_latent_health(portfolio: demo.DemoData) -> None:
    obs = _decision_truth(portfolio)
    assert obs.height > 300
    rates = (
        obs.with_columns(_bucket("health", 4).alias("q"))
        .group_by("q")
        .agg(pl.col("renewed").mean())
        .sort("q")
        .get_column("renewed")
        .to_list()
    )
    assert rates == sorted(rates), rates
    assert rates[-1] - rates[0] > 0.15, rates
    # the components drive renewal with the documented order of strength: a logistic fit
    # recovers Adoption as the largest coefficient
    x = obs.select("adoption", "roi", "deployment", "engagement").to_numpy()
    y = obs.get_column("renewed").cast(pl.Float64).to_numpy()
    coef = _logistic(np.column_stack([np.ones(len(y)), x]), y)
    assert coef[1] == max(coef[1:]), coef


def _bucket(column: str, k: int) -> pl.Expr:
    """0 .. k-1 by rank: equal-count buckets."""
    return pl.col(column).rank("ordinal") * k // (pl.len() + 1)


def _logistic(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    beta = np.zeros(x.shape[1])
    for _ in range(30):  # Newton steps
        p = 1 / (1 + np.exp(-x @ beta))
        w = p * (1 - p)
        beta += np.linalg.solve(x.T @ (x * w[:, None]) + 1e-6 * np.eye(len(beta)), x.T @ (y - p))
    return beta


def test_usage_falls_before_churn(portfolio: demo.DemoData) -> None:
    usage = (
        portfolio.tables["usage_weekly"]
        .filter(pl.col("product") == "Core")
        .with_columns(
            (pl.col("active_users") / pl.col("activated_users").clip(1, None)).alias("share")
        )
    )
    ren = portfolio.tables["renewals"].with_columns((pl.col("arr_after") > 0).alias("renewed"))
    joined = usage.join(ren, on="account_id").with_columns(
        ((pl.col("renewal_date") - pl.col("week_ending")).dt.total_days() // 7).alias(
            "weeks_before"
        )
    )
    early = joined.filter(pl.col("weeks_before").is_between(20, 26))
    late = joined.filter(pl.col("weeks_before").is_between(0, 3))

    def drop(renewed: bool) -> float:
        a = early.filter(pl.col("renewed") == renewed).get_column("share").mean()
        b = late.filter(pl.col("renewed") == renewed).get_column("share").mean()
        return float(a) - float(b)  # type: ignore[arg-type]

    assert drop(False) > 0.1  # churners' usage falls in the months before the renewal date
    assert abs(drop(True)) < 0.05


def test_csm_activity_lifts_adoption(tmp_path) -> None:
    db = demo_db(tmp_path, accounts=1000, weeks=4, history=False)
    con = store.cursor(db)
    try:
        from engine.history import ensure_scorecards

        ensure_scorecards(con)
        scores = score_at(con, END)
        since = END - timedelta(days=180)
        acts = store.load_activities(con, start=since).group_by("account_id").len()
        acc = store.load_accounts(con, active_on=END).filter(pl.col("customer_since") < since)
        obs = (
            acc.select("account_id")
            .join(acts, on="account_id", how="left")
            .with_columns(pl.col("len").fill_null(0))
            .join(scores.select("account_id", "adoption"), on="account_id")
            .drop_nulls("adoption")
            .with_columns(_bucket("len", 3).alias("t"))
        )
        mean = dict(obs.group_by("t").agg(pl.col("adoption").mean()).iter_rows())
        assert mean[2] > mean[0] + 3, mean  # most active third vs least active third
    finally:
        store.close(db)


def test_ground_truth_is_written_in_the_docstring() -> None:
    doc = demo.__doc__ or ""
    assert (
        "logit P(renew) = 1.9 + 0.9 z_A + 0.6 z_R + 0.4 z_D + 0.3 z_E - 0.8 sponsor_left_26w" in doc
    )
    assert demo.RENEWAL_INTERCEPT == 1.9
    assert demo.RENEWAL_COEF == {"adoption": 0.9, "roi": 0.6, "deployment": 0.4, "engagement": 0.3}
    assert demo.SPONSOR_LEFT_COEF == -0.8
    for activity, effects in demo.ACTIVITY_EFFECTS.items():
        for _component, size in effects.items():
            assert f"+{size:.2f}" in doc, (activity, size)


def test_build_writes_every_table_and_metric(tmp_path) -> None:
    db = demo_db(tmp_path)
    con = store.cursor(db)
    try:
        counts = store.table_counts(con)
        for t in [
            *store.CONTRACT_TABLES,
            *store.SOURCE_TABLES,
            "demo_truth",
            "score_history",
            "scorecard_versions",
        ]:
            assert counts[t] > 0, t
        from engine.metrics import load_definitions

        metrics = set(store.query(con, "SELECT DISTINCT metric FROM metric_values")["metric"])
        assert metrics == set(load_definitions())
        assert store.snapshot_dates(con)[-1] == END
    finally:
        store.close(db)


def test_default_end_is_the_last_sunday() -> None:
    assert demo.default_end(date(2025, 7, 2)) == date(2025, 6, 29)
    assert demo.default_end(date(2025, 6, 29)) == date(2025, 6, 29)
