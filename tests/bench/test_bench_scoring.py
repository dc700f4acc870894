"""The scoring benchmark's pieces: its data, its discovery and its pandas baseline."""

from __future__ import annotations

import math
from datetime import date

import polars as pl
import pytest

from bench.__main__ import discover
from bench.bench_scoring import check_sample
from bench.gen import make_frames, metric_names, scorecard_dict
from bench.pandas_baseline import score_pandas, supported
from engine.scorecard import parse_scorecard


def test_benchmarks_are_discovered() -> None:
    assert "scoring" in discover()


def test_generated_data_shape() -> None:
    accounts, metrics = make_frames(2_000, seed=3)
    assert accounts.height == 2_000
    assert metrics.get_column("metric").n_unique() == len(metric_names()) == 20
    share = metrics.height / (2_000 * 20)
    assert 0.94 < share < 0.96  # 5% missing
    assert metrics.select(pl.struct("account_id", "metric").is_unique().all()).item()
    assert len(parse_scorecard(scorecard_dict()).measures) == 20


def test_pandas_baseline_matches_the_engine_on_a_sample() -> None:
    diff = check_sample(2_000)
    assert diff["ok"], diff


def test_pandas_baseline_hand_computed() -> None:
    # one group, two linear measures of weight 1 and 3; account b has the second only
    card = parse_scorecard(
        {
            "id": "default",
            "groups": [
                {
                    "id": "g",
                    "measures": [
                        {
                            "id": "s1",
                            "metric": "m1",
                            "weight": 1,
                            "map": {"linear": [[0, 0], [1, 100]]},
                        },
                        {
                            "id": "s2",
                            "metric": "m2",
                            "weight": 3,
                            "map": {"linear": [[0, 100], [1, 0]]},
                        },
                    ],
                }
            ],
        }
    )
    accounts = pl.DataFrame({"account_id": ["a", "b", "c"]}).to_pandas()
    metrics = pl.DataFrame(
        {
            "account_id": ["a", "a", "a", "b"],
            "metric": ["m1", "m2", "m2", "m2"],
            "value": [0.5, 0.9, 0.5, 2.0],
            "as_of": [date(2024, 1, 1), date(2024, 1, 1), date(2024, 1, 8), date(2024, 1, 8)],
        }
    ).to_pandas()
    out = score_pandas(accounts, metrics, card, date(2024, 1, 8)).set_index("account_id")
    assert out.loc["a", "score"] == pytest.approx((1 * 50 + 3 * 50) / 4)  # latest m2 = 0.5
    assert out.loc["b", "score"] == pytest.approx(0.0)  # clamped below the last point
    assert out.loc["b", "grade"] == "Red"
    assert math.isnan(out.loc["c", "score"])  # no value at all: no score


def test_pandas_baseline_refuses_what_it_does_not_implement() -> None:
    card = parse_scorecard({**scorecard_dict(), "missing": "zero"})
    with pytest.raises(NotImplementedError, match="renormalize"):
        supported(card)
