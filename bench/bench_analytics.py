"""Backtest, drivers and optimizer timings at 2,000 and 100,000 accounts (``python -m bench
analytics``; ``BENCH_ACCOUNTS`` picks one size). See the "Analytics" section of bench/README.md.

Data: a synthetic portfolio with the default scorecard's sixteen metrics (the executive
relationship as a level), company level, weekly snapshots over one quarter, and one renewal
per account spread over the quarter that follows the horizon, drawn from a latent health that
also drives the metrics. Everything is scored on the fly (no stored history): the slow path.
"""

from __future__ import annotations

import os
import time
from datetime import date, timedelta
from typing import Any

import numpy as np
import polars as pl

from engine.backtest import backtest_observations, renewal_observations
from engine.drivers import drivers_from_observations
from engine.optimize import optimize_observations
from engine.scorecard import load_scorecard

SIZES = (2_000, 100_000)
WEEKS = 13
START = date(2024, 1, 7)
HORIZON = 90
CARD = load_scorecard("data/scorecards/default.yaml").model_copy(update={"assignment": ()})

# metric -> (mean, spread per unit of health, noise, low, high)
_NUMERIC = {
    "licence_activation": (0.65, 0.15, 0.05, 0, 1),
    "onboarding_milestones": (0.7, 0.15, 0.05, 0, 1),
    "integrations_live": (1.5, 0.8, 0.3, 0, 6),
    "weekly_active_user_share": (0.5, 0.15, 0.04, 0, 1),
    "feature_depth": (0.4, 0.12, 0.04, 0, 1),
    "sticky_feature_usage": (0.25, 0.1, 0.03, 0, 1),
    "exec_sponsor_meetings_90d": (1.0, 0.6, 0.3, 0, 5),
    "stakeholders_engaged_90d": (3.5, 1.2, 0.5, 0, 12),
    "days_since_last_ebr": (90, -30, 10, 0, 365),
    "nps": (10, 25, 8, -100, 100),
    "csat": (4.1, 0.3, 0.1, 1, 5),
    "success_plan_outcomes_verified": (0.45, 0.15, 0.05, 0, 1),
    "open_escalations": (0.6, -0.4, 0.2, 0, 5),
    "p1_tickets_90d": (1.2, -0.7, 0.4, 0, 10),
    "sponsor_left": (0, 0, 0, 0, 0),
}


def portfolio(n: int, seed: int = 1) -> dict[str, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    ids = pl.Series("account_id", [f"A{i:07d}" for i in range(n)])
    health = rng.normal(0, 1, n)
    dates = [START + timedelta(weeks=w) for w in range(WEEKS)]
    frames = []
    for metric, (mean, spread, noise, lo, hi) in _NUMERIC.items():
        base = mean + spread * health + rng.normal(0, abs(spread) / 2 + 1e-9, n)
        for d in dates:
            vals = np.clip(base + rng.normal(0, noise + 1e-9, n), lo, hi)
            frames.append(
                pl.DataFrame(
                    {
                        "account_id": ids,
                        "metric": metric,
                        "value": vals,
                        "level": pl.Series([None] * n, dtype=pl.Utf8),
                        "as_of": d,
                    }
                )
            )
    rel = np.where(
        health + rng.normal(0, 0.7, n) > 0.5,
        "Strong",
        np.where(health + rng.normal(0, 0.7, n) < -0.5, "Weak", "Neutral"),
    )
    for d in dates[::4]:
        frames.append(
            pl.DataFrame(
                {
                    "account_id": ids,
                    "metric": "executive_relationship",
                    "value": pl.Series([None] * n, dtype=pl.Float64),
                    "level": rel,
                    "as_of": d,
                }
            )
        )
    metrics = pl.concat(frames).with_columns(pl.lit(None, dtype=pl.Utf8).alias("product"))
    renewed = rng.uniform(size=n) < 1 / (1 + np.exp(-(1.6 + 1.2 * health)))
    arr = np.round(rng.lognormal(10.5, 0.8, n), -2)
    first = START + timedelta(days=HORIZON)
    renewals = pl.DataFrame(
        {
            "account_id": ids,
            "renewal_date": [first + timedelta(days=int(d)) for d in rng.integers(0, 7 * WEEKS, n)],
            "arr_before": arr,
            "arr_after": np.where(renewed, arr * rng.normal(1.05, 0.1, n), 0.0),
        }
    )
    accounts = pl.DataFrame(
        {
            "account_id": ids,
            "name": ids,
            "arr": arr,
            "segment": rng.choice(["Enterprise", "Mid-Market", "SMB"], n),
        }
    )
    return {"accounts": accounts, "metrics": metrics, "renewals": renewals}


def _timed(fn: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def measure(n: int) -> dict[str, Any]:
    # Import the model libraries first: their import time is not the analytics' time.
    import scipy.optimize  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import statsmodels.api  # noqa: F401

    data = portfolio(n)
    (obs, _), t_obs = _timed(
        lambda: renewal_observations(
            data["accounts"], data["metrics"], data["renewals"], CARD, horizon_days=HORIZON
        )
    )
    bt, t_bt = _timed(lambda: backtest_observations(obs, CARD, horizon_days=HORIZON, bootstrap=200))
    _, t_dr = _timed(lambda: drivers_from_observations(obs, CARD))
    op, t_op = _timed(lambda: optimize_observations(obs, CARD, bootstrap=30))
    return {
        "accounts": n,
        "metric_rows": data["metrics"].height,
        "renewals": bt.renewals,
        "score_renewals_s": round(t_obs, 2),
        "backtest_tables_s": round(t_bt, 2),
        "backtest_total_s": round(t_obs + t_bt, 2),
        "drivers_s": round(t_dr, 2),
        "optimize_s": round(t_op, 2),
        "optimize_total_s": round(t_obs + t_op, 2),
        "auc": round(bt.auc or 0, 4),
        "current_cv_auc": round(op.current_cv_auc or 0, 4),
        "suggested_cv_auc": round(op.suggested_cv_auc or 0, 4),
        "logistic_cv_auc": round(op.logistic_cv_auc or 0, 4),
    }


def run() -> dict[str, Any]:
    sizes = (int(os.environ["BENCH_ACCOUNTS"]),) if os.environ.get("BENCH_ACCOUNTS") else SIZES
    rows = [measure(n) for n in sizes]
    lines = [
        "| accounts | metric rows | renewals | score renewals | backtest (total) | drivers "
        "| optimize (total) | AUC | CV AUC current / suggested / logistic |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['accounts']:,} | {r['metric_rows']:,} | {r['renewals']:,} "
            f"| {r['score_renewals_s']} s | {r['backtest_total_s']} s | {r['drivers_s']} s "
            f"| {r['optimize_total_s']} s | {r['auc']} "
            f"| {r['current_cv_auc']} / {r['suggested_cv_auc']} / {r['logistic_cv_auc']} |"
        )
    return {"sizes": rows, "markdown": "\n".join(lines)}


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
