"""The analytics benchmark runs, on a small portfolio, and is discovered."""

from __future__ import annotations

import pytest

from bench import bench_analytics
from bench.__main__ import discover


def test_discovered() -> None:
    assert "analytics" in discover()


def test_run_on_a_small_portfolio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_ACCOUNTS", "400")
    out = bench_analytics.run()
    (row,) = out["sizes"]
    assert row["accounts"] == 400 and row["renewals"] == 400
    assert 0.6 < row["auc"] < 0.95
    assert row["logistic_cv_auc"] - row["suggested_cv_auc"] < 0.02
    assert "| 400 |" in out["markdown"]
