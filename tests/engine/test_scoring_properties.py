"""Properties of scoring that hold for any data (hypothesis)."""

from __future__ import annotations

from datetime import date

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.scorecard import Scorecard, parse_scorecard
from engine.scoring import score

AS_OF = date(2026, 11, 2)
METRICS = ["m1", "m2", "m3", "m4"]

weights = st.floats(min_value=0.1, max_value=100, allow_nan=False)
values = st.one_of(st.none(), st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
policies = st.sampled_from(["renormalize", "zero", "fixed"])


def make_card(w: list[float], gw: list[float], policy: str) -> Scorecard:
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
                            "map": {"linear": [[0, 0], [10, 60], [20, 100]]},
                        },
                        {
                            "id": "b",
                            "metric": "m2",
                            "weight": w[1],
                            "map": {"bands": [{"max": 5, "score": 10}, {"score": 90}]},
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
                            "map": {"linear": [[0, 100], [50, 0]]},
                        },
                        {
                            "id": "d",
                            "metric": "m4",
                            "weight": w[3],
                            "map": {"linear": [[-5, 0], [5, 100]]},
                        },
                    ],
                },
            ],
        }
    )


def frames(rows: list[list[float | None]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    ids = [f"x{i}" for i in range(len(rows))]
    acc = pl.DataFrame({"account_id": ids, "name": ids, "arr": [1.0] * len(ids)})
    recs = [
        {"account_id": i, "metric": m, "value": v, "as_of": AS_OF}
        for i, row in zip(ids, rows, strict=True)
        for m, v in zip(METRICS, row, strict=True)
        if v is not None
    ]
    schema = {"account_id": pl.Utf8, "metric": pl.Utf8, "value": pl.Float64, "as_of": pl.Date}
    return acc, pl.DataFrame(recs, schema=schema)


rows_strategy = st.lists(st.lists(values, min_size=4, max_size=4), min_size=1, max_size=8)
common = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@common
@given(
    rows=rows_strategy,
    w=st.lists(weights, min_size=4, max_size=4),
    gw=st.lists(weights, min_size=2, max_size=2),
    policy=policies,
)
def test_scores_stay_within_0_and_100(rows, w, gw, policy) -> None:
    acc, m = frames(rows)
    out = score(acc, m, make_card(w, gw, policy), AS_OF)
    for col in ["score", "raw_score", "g1", "g2", "a", "b", "c", "d"]:
        s = out.get_column(col).drop_nulls()
        assert ((s >= 0) & (s <= 100)).all(), col


@common
@given(
    rows=rows_strategy,
    w=st.lists(weights, min_size=4, max_size=4),
    gw=st.lists(weights, min_size=2, max_size=2),
    k=st.floats(min_value=0.01, max_value=1000),
    policy=policies,
)
def test_scaling_all_weights_changes_nothing(rows, w, gw, k, policy) -> None:
    acc, m = frames(rows)
    base = score(acc, m, make_card(w, gw, policy), AS_OF)
    scaled = score(acc, m, make_card([x * k for x in w], [x * k for x in gw], policy), AS_OF)
    for col in ["score", "g1", "g2"]:
        a, b = base.get_column(col), scaled.get_column(col)
        assert a.is_null().to_list() == b.is_null().to_list()
        assert ((a - b).abs().drop_nulls() < 1e-6).all()
    # grades agree, except where float rounding puts a score within 1e-6 of a band edge
    near_edge = pl.any_horizontal(
        [(pl.col("score") - edge).abs() < 1e-6 for edge in (50.0, 75.0)]
    ).fill_null(False)
    differ = base.select(near_edge.alias("near")).with_columns(
        (base.get_column("grade") != scaled.get_column("grade")).fill_null(False).alias("differ")
    )
    assert differ.filter(pl.col("differ") & ~pl.col("near")).height == 0


@common
@given(
    row=st.lists(st.floats(min_value=-100, max_value=100, allow_nan=False), min_size=4, max_size=4),
    bump=st.floats(min_value=0, max_value=100, allow_nan=False),
    w=st.lists(weights, min_size=4, max_size=4),
    gw=st.lists(weights, min_size=2, max_size=2),
    policy=policies,
)
def test_raising_a_value_on_an_increasing_map_never_lowers_the_score(
    row, bump, w, gw, policy
) -> None:
    card = make_card(w, gw, policy)
    acc, m = frames([row])
    raised = list(row)
    raised[0] = row[0] + bump  # m1 feeds measure a: an increasing linear map
    acc2, m2 = frames([raised])
    before = score(acc, m, card, AS_OF).get_column("score").item()
    after = score(acc2, m2, card, AS_OF).get_column("score").item()
    assert after >= before - 1e-9
