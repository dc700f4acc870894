"""The explanation of a score change adds up exactly and names its parts."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
from test_scoring import PRODUCT_ARR, accounts, card, mv

from engine.explain import change_summary, explain_change
from engine.scoring import score_detail

T0, T1 = date(2026, 10, 1), date(2026, 11, 2)


def _explain(rows, c=None, **kw):
    c = c or card()
    acc = accounts(*sorted({r[0] for r in rows}))
    d0 = score_detail(acc, mv(rows), c, T0, **kw)
    d1 = score_detail(acc, mv(rows), c, T1, **kw)
    return explain_change(d0, d1), change_summary(d0, d1)


def test_a_score_change_splits_into_measure_effects() -> None:
    rows = [
        ("a", "wau", 0.5, T0),
        ("a", "wau", 0.8, T1),  # breadth 50 -> 100
        ("a", "depth", 0.9, T0),
        ("a", "depth", 0.9, T1),  # depth 100 both
        ("a", "rel", "Weak", T0),
        ("a", "rel", "Strong", T1),  # rel 10 -> 100
    ]
    parts, summary = _explain(rows)
    # weights: breadth .3, depth .3, rel .4; score 0.3*50+0.3*100+0.4*10 = 49 -> 100
    by = {r["measure"]: r["amount"] for r in parts.filter(pl.col("kind") == "score").to_dicts()}
    assert by == pytest.approx({"breadth": 15.0, "rel": 36.0})
    assert summary.get_column("change").item() == pytest.approx(51.0)
    assert summary.get_column("explained").item() == pytest.approx(51.0, abs=1e-9)


def test_missing_measure_and_renormalisation_are_named() -> None:
    rows = [
        ("a", "wau", 0.8, T0),
        ("a", "wau", 0.8, T1),  # breadth 100 both
        (
            "a",
            "depth",
            0.1,
            T0,
        ),  # depth 20 at T0, stale/missing at T1? bands map has no validity: still counts
        ("a", "rel", "Strong", T0),  # rel only at T0 ... still latest at T1, so present
    ]
    c = card()
    data = c.model_dump()
    data["groups"][1]["measures"][0]["validity_days"] = 7  # rel goes stale by T1
    from engine.scorecard import Scorecard

    c2 = Scorecard.model_validate(data)
    parts, summary = _explain(rows, c2)
    kinds = set(parts.get_column("kind"))
    assert {"missing", "weight"} <= kinds
    missing = parts.filter(pl.col("kind") == "missing")
    assert missing.get_column("measure").to_list() == ["rel"]
    assert missing.get_column("amount").item() == pytest.approx(-40.0)  # 0.4 * 100 gone
    assert summary.get_column("explained").item() == pytest.approx(
        summary.get_column("change").item(), abs=1e-9
    )


def test_override_effect_is_named() -> None:
    c = card(
        overrides=[
            {
                "id": "sp",
                "when": {"metric": "sponsor_left", "op": "==", "value": 1},
                "then": {"grade": "Red"},
            }
        ]
    )
    rows = [("a", "wau", 0.8, T0), ("a", "wau", 0.8, T1), ("a", "sponsor_left", 1, T1)]
    parts, summary = _explain(rows, c)
    assert parts.filter(pl.col("kind") == "override").get_column("amount").item() == pytest.approx(
        -51.0
    )
    assert summary.get_column("change").item() == pytest.approx(-51.0)


@settings(max_examples=50, deadline=None)
@given(
    vals=st.lists(st.one_of(st.none(), st.floats(0, 1)), min_size=6, max_size=6),
    levels=st.lists(st.sampled_from([None, "Strong", "Weak"]), min_size=2, max_size=2),
    policy=st.sampled_from(["renormalize", "zero", "fixed"]),
    products=st.booleans(),
)
def test_parts_always_sum_to_the_change(vals, levels, policy, products) -> None:
    rows = []
    for i, t in enumerate((T0, T1)):
        for j, metric in enumerate(("wau", "depth")):
            v = vals[i * 3 + j]
            if v is not None:
                rows.append(
                    ("a", metric, v, t, "Core")
                    if products and metric == "wau"
                    else ("a", metric, v, t)
                )
        extra = vals[i * 3 + 2]
        if products and extra is not None:
            rows.append(("a", "wau", extra, t, "Analytics"))
        if levels[i]:
            rows.append(("a", "rel", levels[i], t))
    if not rows:
        return
    c = card(
        missing=policy,
        overrides=[
            {"id": "low", "when": {"overall": True, "op": "<", "value": 30}, "then": {"set": 0}}
        ],
    )
    _, summary = _explain(rows, c, product_arr=PRODUCT_ARR)
    for r in summary.to_dicts():
        if r["change"] is not None:
            assert r["explained"] == pytest.approx(r["change"], abs=1e-9)
