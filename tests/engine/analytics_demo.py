"""The demo portfolio as frames for the analytics tests: built once per test process.

The ground-truth checks need the default demo's size (2,000 accounts x 104 weeks, seed 7):
Deployment (0.4) and Engagement (0.3) are close in the true renewal model, and fewer renewals
leave their order to sampling noise, on the latent components and even more on the observed
scores (with this size, some other seeds swap the two on observed scores)."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

import polars as pl

from engine import demo, store

END = date(2025, 6, 29)
GROUPS = ("deployment", "engagement", "adoption", "roi")
_cache: dict[tuple[int, int], dict[str, pl.DataFrame]] = {}


def demo_frames(accounts: int = 2000, weeks: int = 104) -> dict[str, pl.DataFrame]:
    """accounts, metrics, renewals, activities, products and the latent truth (demo_truth)."""
    key = (accounts, weeks)
    if key not in _cache:
        db = Path(tempfile.mkdtemp(prefix="vitals-analytics-")) / "demo.duckdb"
        demo.build(db, n_accounts=accounts, weeks=weeks, seed=7, end=END, scorecards=None)
        con = store.cursor(db)
        _cache[key] = {
            "accounts": store.load_accounts(con),
            "metrics": store.load_metric_values(con),
            "renewals": store.load_renewals(con),
            "activities": store.load_activities(con),
            "products": store.load_products(con),
            "truth": store.load_table(con, "demo_truth"),
        }
        store.close(db)
    return _cache[key]


def truth_metrics(frames: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """The latent DEAR components as metric values (one metric per group)."""
    return frames["truth"].unpivot(
        index=["account_id", "as_of"], on=list(GROUPS), variable_name="metric", value_name="value"
    )
