"""The NumPy weight-change path gives score()'s numbers, and refuses what it cannot do."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_series_equal

from engine.reweight import NotReweightable, Reweighter
from engine.scorecard import Scorecard, parse_scorecard
from engine.scoring import score

AS_OF = date(2026, 11, 2)


def make_card(
    policy: str, w: list[float], gw: list[float], overrides: list | None = None
) -> Scorecard:
    return parse_scorecard(
        {
            "missing": policy,
            "groups": [
                {
                    "id": "g1",
                    "weight": gw[0],
                    "measures": [
                        {
                            "id": "a",
                            "metric": "m1",
                            "weight": w[0],
                            "map": {"linear": [[0, 0], [1, 100]]},
                        },
                        {
                            "id": "b",
                            "metric": "m2",
                            "weight": w[1],
                            "map": {"linear": [[0, 100], [1, 0]]},
                        },
                    ],
                },
                {
                    "id": "g2",
                    "weight": gw[1],
                    "measures": [
                        {
                            "id": "c",
                            "metric": "m3",
                            "weight": w[2],
                            "map": {"bands": [{"max": 0.5, "score": 20}, {"score": 90}]},
                        }
                    ],
                },
            ],
            "overrides": overrides or [],
        }
    )


OVERRIDES = [
    {"id": "flag", "when": {"metric": "m4", "op": ">", "value": 0.9}, "then": {"grade": "Red"}},
    {"id": "low_g1", "when": {"group": "g1", "op": "<", "value": 30}, "then": {"cap": 20}},
    {"id": "high", "when": {"overall": True, "op": ">=", "value": 80}, "then": {"set": 80}},
]


def population(n: int = 400, seed: int = 1) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    ids = [f"x{i}" for i in range(n)]
    rows = []
    for metric in ("m1", "m2", "m3", "m4"):
        vals = rng.uniform(0, 1, n)
        keep = rng.uniform(0, 1, n) > 0.2
        rows.append(
            pl.DataFrame({"account_id": ids, "metric": metric, "value": vals}).filter(
                pl.Series(keep)
            )
        )
    metrics = pl.concat(rows).with_columns(pl.lit(AS_OF).alias("as_of"))
    return pl.DataFrame({"account_id": ids, "name": ids, "arr": [1.0] * n}), metrics


@pytest.mark.parametrize("policy", ["renormalize", "zero", "fixed"])
def test_reweight_equals_a_full_rescore(policy: str) -> None:
    acc, metrics = population()
    base_card = make_card(policy, [1, 1, 1], [1, 1], OVERRIDES)
    base = score(acc, metrics, base_card, AS_OF)
    rw = Reweighter.from_units(base, base_card, AS_OF)
    for w, gw in [([1, 1, 1], [1, 1]), ([5, 1, 2], [3, 1]), ([0, 1, 2], [1, 0.5])]:
        card = make_card(policy, w, gw, OVERRIDES)
        full = score(acc, metrics, card, AS_OF)
        fast = rw.score(card)
        for col in ("score", "raw_score", "g1", "g2"):
            assert_series_equal(fast.get_column(col), full.get_column(col), abs_tol=1e-9)
        assert (fast.get_column("grade") == full.get_column("grade")).all()
        assert fast.get_column("grade").null_count() == full.get_column("grade").null_count()


def test_a_change_beyond_weights_is_refused() -> None:
    acc, metrics = population(50)
    card = make_card("renormalize", [1, 1, 1], [1, 1])
    rw = Reweighter.from_units(score(acc, metrics, card, AS_OF), card, AS_OF)
    with pytest.raises(NotReweightable, match="more than its weights"):
        rw.score(make_card("zero", [1, 1, 1], [1, 1]))


def test_mixed_conditions_and_products_are_refused() -> None:
    acc, metrics = population(50)
    mixed = [
        {
            "id": "x",
            "when": {
                "all": [
                    {"metric": "m4", "op": ">", "value": 0.5},
                    {"overall": True, "op": "<", "value": 50},
                ]
            },
            "then": {"set": 0},
        }
    ]
    card = make_card("renormalize", [1, 1, 1], [1, 1], mixed)
    with pytest.raises(NotReweightable, match="mixes"):
        Reweighter.from_units(score(acc, metrics, card, AS_OF), card, AS_OF)
    units = score(acc, metrics, make_card("renormalize", [1, 1, 1], [1, 1]), AS_OF).with_columns(
        pl.lit("P").alias("product")
    )
    with pytest.raises(NotReweightable, match="product"):
        Reweighter.from_units(units, make_card("renormalize", [1, 1, 1], [1, 1]), AS_OF)
