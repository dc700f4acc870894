"""Portfolio summaries on tiny frames, with hand-computed answers."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from engine.scorecard import parse_scorecard
from ui import summaries
from ui.components.filters import Filters, RenewalWindow

AS_OF = date(2026, 6, 1)

CARD = parse_scorecard(
    {
        "id": "default",
        "scheme": {
            "type": "ryg",
            "bands": [
                {"label": "Red", "below": 50},
                {"label": "Yellow", "below": 75},
                {"label": "Green"},
            ],
        },
        "groups": [
            {
                "id": "adoption",
                "label": "Adoption",
                "weight": 1,
                "measures": [
                    {
                        "id": "breadth",
                        "metric": "wau",
                        "label": "Breadth",
                        "help": "Active users",
                        "weight": 1,
                        "map": {"linear": [[0, 0], [1, 100]]},
                        "validity_days": 14,
                    },
                    {
                        "id": "rel",
                        "metric": "exec",
                        "label": "Relationship",
                        "weight": 1,
                        "map": {
                            "levels": [
                                {"label": "Strong", "score": 100, "help": "meets quarterly"},
                                {"label": "Weak", "score": 10},
                            ]
                        },
                    },
                ],
            },
        ],
        "overrides": [
            {
                "id": "sponsor",
                "reason": "Sponsor left",
                "when": {"metric": "left", "op": "==", "value": 1},
                "then": {"grade": "Red"},
            }
        ],
    }
)
CARDS = {"default": CARD}


def scored() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "account_id": ["a", "b", "c", "d"],
            "name": ["A", "B", "C", "D"],
            "arr": [100.0, 200.0, 300.0, 400.0],
            "segment": ["SMB", "SMB", "Enterprise", "Enterprise"],
            "renewal_date": [
                AS_OF + timedelta(days=30),
                AS_OF + timedelta(days=400),
                AS_OF + timedelta(days=10),
                AS_OF - timedelta(days=5),
            ],
            "score": [30.0, 40.0, 80.0, None],
            "grade": ["Red", "Red", "Green", None],
        }
    )


def test_grades_and_groups() -> None:
    assert summaries.grade_order(CARDS) == ["Red", "Yellow", "Green"]
    assert summaries.lowest_grade(CARDS) == "Red"
    assert summaries.groups_of(CARDS) == [("adoption", "Adoption")]
    assert [summaries.grade_of(s, CARD) for s in (0, 49.99, 50, 74.9, 75, 100, None)] == [
        "Red",
        "Red",
        "Yellow",
        "Yellow",
        "Green",
        "Green",
        None,
    ]


def test_kpis_and_at_risk() -> None:
    k = summaries.kpis(scored(), as_of=AS_OF, risk_grade="Red")
    assert (k.accounts, k.scored, k.arr) == (4, 3, 1000.0)
    assert k.average_score == pytest.approx(50.0)
    # Only 'a' is red and renews within two quarters ('b' renews in 400 days).
    assert (k.at_risk_accounts, k.at_risk_arr) == (1, 100.0)


def test_grade_mix() -> None:
    mix = summaries.grade_mix(scored())
    assert dict(zip(mix["grade"], mix["accounts"], strict=True)) == {
        "Green": 1,
        "No score": 1,
        "Red": 2,
    }
    by = summaries.grade_mix_by(scored(), "segment").filter(pl.col("segment") == "SMB")
    assert by.select("grade", "accounts", "arr").rows() == [("Red", 2, 300.0)]


def history() -> pl.DataFrame:
    d0, d1 = date(2026, 5, 4), date(2026, 6, 1)
    return pl.DataFrame(
        {
            "as_of": [d0, d0, d0, d1, d1, d1],
            "account_id": ["a", "b", "c", "a", "b", "d"],
            "score": [50.0, 40.0, 90.0, 30.0, 45.0, 60.0],
            "grade": ["Yellow", "Red", "Green", "Red", "Red", "Yellow"],
            "arr": [100.0, 200.0, 300.0, 100.0, 200.0, 400.0],
            "adoption": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        }
    )


def test_trend_and_dates() -> None:
    h = history()
    t = summaries.average_trend(h, end=date(2026, 6, 1), weeks=13)
    assert t["score"].to_list() == pytest.approx([60.0, 45.0])
    assert summaries.change_over(t) == pytest.approx(-15.0)
    dates = summaries.history_dates(h)
    assert summaries.date_before(dates, date(2026, 6, 1), weeks=4) == date(2026, 5, 4)
    assert summaries.date_before(dates, date(2026, 6, 1), weeks=52) == date(
        2026, 5, 4
    )  # earliest before
    assert summaries.date_before([date(2026, 6, 1)], date(2026, 6, 1), weeks=4) is None


def test_movers_transitions_and_group_trends() -> None:
    h = history()
    m = summaries.movers(h, scored(), start=date(2026, 5, 4), end=date(2026, 6, 1), n=5)
    assert m.select("account_id", "change").rows() == [("a", -20.0), ("b", 5.0)]
    t = summaries.transitions(h, start=date(2026, 5, 4), end=date(2026, 6, 1))
    rows = {(r["from_grade"], r["to_grade"]): r["accounts"] for r in t.iter_rows(named=True)}
    assert rows == {
        ("Yellow", "Red"): 1,
        ("Red", "Red"): 1,
        ("Green", None): 1,
        (None, "Yellow"): 1,
    }
    g = summaries.group_trends(h, [("adoption", "Adoption"), ("roi", "ROI")])
    assert_frame_equal(
        g,
        pl.DataFrame(
            {
                "as_of": [date(2026, 5, 4), date(2026, 6, 1)],
                "group": ["adoption"] * 2,
                "score": [2.0, 5.0],
            }
        ),
    )
    mix = summaries.grade_mix_over_time(h).filter(pl.col("as_of") == date(2026, 6, 1))
    assert dict(zip(mix["grade"], mix["arr"], strict=True)) == {"Red": 300.0, "Yellow": 400.0}


def test_measure_table_and_help() -> None:
    contrib = pl.DataFrame(
        {
            "account_id": ["a", "a"],
            "product": [None, None],
            "group": ["adoption", "adoption"],
            "measure": ["breadth", "rel"],
            "metric": ["wau", "exec"],
            "value": [0.4, None],
            "level": [None, "Weak"],
            "value_as_of": [AS_OF - timedelta(days=20), AS_OF - timedelta(days=3)],
            "raw_measure_score": [40.0, 10.0],
            "score": [None, 10.0],
            "weight": [0.0, 1.0],
            "stale": [True, False],
            "missing": [True, False],
        },
        schema_overrides={"product": pl.Utf8},
    )
    t = summaries.measure_table(contrib, CARD, as_of=AS_OF)
    assert t["label"].to_list() == ["Breadth", "Relationship"]
    assert t["value"].to_list() == ["0.4", "Weak"]
    assert t["age_days"].to_list() == [20, 3]
    assert t["grade"].to_list() == ["Red", "Red"]
    assert t["contribution"].to_list() == pytest.approx([0.0, 10.0])
    assert t["stale"].to_list() == [True, False]
    assert "Stale after 14 days" in t["help"][0]
    assert "Strong 100 (meets quarterly)" in t["help"][1]


def test_explanation_parts_add_up() -> None:
    parts = pl.DataFrame(
        {
            "account_id": ["a"] * 5,
            "kind": ["score", "weight", "missing", "score", "override"],
            "product": ["Core", None, None, None, None],
            "group": ["adoption"] * 4 + [None],
            "measure": ["breadth", "breadth", "rel", "rel", None],
            "amount": [-4.0, 1.0, -0.5, 0.25, -10.0],
        }
    )
    steps = summaries.explanation_parts(parts, {"breadth": "Breadth", "rel": "Relationship"}, top=3)
    assert steps["label"].to_list() == [
        "Overrides",
        "Breadth · Core",
        "Breadth (weight)",
        "Other changes",
    ]
    assert steps["amount"].sum() == pytest.approx(parts["amount"].sum())


def test_subjective_measures_and_override_reasons() -> None:
    assert summaries.subjective_measures(CARD) == [
        ("exec", "Relationship", [("Strong", "meets quarterly"), ("Weak", "")])
    ]
    assert summaries.override_reasons(CARD) == {"sponsor": "Sponsor left"}


def test_filters_apply() -> None:
    f = Filters(as_of=AS_OF, attributes=(("segment", ("SMB",)),))
    assert f.apply(scored())["account_id"].to_list() == ["a", "b"]
    assert f.active and "Segment: SMB" in f.describe()
    assert Filters(as_of=AS_OF, grades=("Red",)).apply(scored())["account_id"].to_list() == [
        "a",
        "b",
    ]
    soon = Filters(as_of=AS_OF, renewal=RenewalWindow.DAYS_90).apply(scored())
    assert soon["account_id"].to_list() == ["a", "c"]
    past = Filters(as_of=AS_OF, renewal=RenewalWindow.PAST).apply(scored())
    assert past["account_id"].to_list() == ["d"]
    holdings = pl.DataFrame(
        {"account_id": ["a", "c", "c"], "product": ["Core", "Core", "Analytics"]}
    )
    assert Filters(products=("Analytics",)).apply(scored(), product_accounts=holdings)[
        "account_id"
    ].to_list() == ["c"]
    assert not Filters().active and Filters().describe() == "all accounts"


def test_grade_expr_matches_grade_of() -> None:
    frame = pl.DataFrame({"s": [0.0, 49.99, 50.0, 75.0, 100.0, None]})
    got = frame.select(summaries.grade_expr("s", CARD)).to_series().to_list()
    assert got == [summaries.grade_of(v, CARD) for v in frame["s"].to_list()]


def test_sample_caps_rows() -> None:
    frame = pl.DataFrame({"x": list(range(50))})
    assert summaries.sample(frame, 10).height == 10
    assert summaries.sample(frame, 100) is frame
