"""Hand-computed cases for every scoring rule of docs/scoring.md."""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from engine.scorecard import Scorecard, parse_scorecard
from engine.scoring import score, score_detail

AS_OF = date(2026, 11, 2)
D = date(2026, 11, 1)


def card(**over: Any) -> Scorecard:
    """Two groups: adoption (60) with breadth (linear, w 1) and depth (bands, w 1); engagement
    (40, experience) with rel (levels)."""
    base: dict[str, Any] = {
        "id": "default",
        "name": "t",
        "scheme": {"type": "ryg"},
        "groups": [
            {
                "id": "adoption",
                "weight": 60,
                "measures": [
                    {
                        "id": "breadth",
                        "metric": "wau",
                        "weight": 1,
                        "map": {"linear": [[0.2, 0], [0.5, 50], [0.8, 100]]},
                        "validity_days": 14,
                    },
                    {
                        "id": "depth",
                        "metric": "depth",
                        "weight": 1,
                        "map": {
                            "bands": [
                                {"max": 0.3, "score": 20},
                                {"max": 0.6, "score": 60},
                                {"score": 100},
                            ]
                        },
                    },
                ],
            },
            {
                "id": "engagement",
                "weight": 40,
                "category": "experience",
                "measures": [
                    {
                        "id": "rel",
                        "metric": "rel",
                        "map": {
                            "levels": [
                                {"label": "Strong", "score": 100},
                                {"label": "Weak", "score": 10, "value": 1},
                            ]
                        },
                    }
                ],
            },
        ],
    }
    base.update(over)
    return parse_scorecard(base)


def accounts(*ids: str, **attrs: list[Any]) -> pl.DataFrame:
    return pl.DataFrame(
        {"account_id": list(ids), "name": list(ids), "arr": [1.0] * len(ids), **attrs}
    )


def mv(rows: list[tuple[Any, ...]]) -> pl.DataFrame:
    """rows: (account, metric, value or level text, as_of[, product])."""
    out = []
    for r in rows:
        acc, metric, v, d = r[:4]
        product = r[4] if len(r) > 4 else None
        out.append(
            {
                "account_id": acc,
                "metric": metric,
                "value": None if isinstance(v, str) else v,
                "level": v if isinstance(v, str) else None,
                "as_of": d,
                "product": product,
            }
        )
    return pl.DataFrame(
        out,
        schema={
            "account_id": pl.Utf8,
            "metric": pl.Utf8,
            "value": pl.Float64,
            "level": pl.Utf8,
            "as_of": pl.Date,
            "product": pl.Utf8,
        },
    )


def one(frame: pl.DataFrame, account: str, col: str) -> Any:
    got = frame.filter(pl.col("account_id") == account).get_column(col).item()
    return got.to_list() if isinstance(got, pl.Series) else got


# --------------------------------------------------------------------------- maps


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.0, 0.0),  # below the first point: clamped
        (0.2, 0.0),  # on the first point
        (0.35, 25.0),  # interpolated
        (0.5, 50.0),  # on a middle point
        (0.65, 75.0),
        (0.8, 100.0),
        (1.5, 100.0),  # above the last point: clamped
    ],
)
def test_linear_map_interpolates_and_clamps(value: float, expected: float) -> None:
    out = score(accounts("a"), mv([("a", "wau", value, D)]), card(), AS_OF)
    assert one(out, "a", "breadth") == pytest.approx(expected)


def test_linear_map_direction_follows_the_points() -> None:
    c = card()
    data = c.model_dump()
    data["groups"][0]["measures"][0]["map"] = {
        "kind": "linear",
        "points": [[30, 100], [90, 60], [180, 0]],
    }
    dec = Scorecard.model_validate(data)
    out = score(
        accounts("a", "b", "c"),
        mv([("a", "wau", 10, D), ("b", "wau", 60, D), ("c", "wau", 135, D)]),
        dec,
        AS_OF,
    )
    assert one(out, "a", "breadth") == 100.0
    assert one(out, "b", "breadth") == pytest.approx(80.0)
    assert one(out, "c", "breadth") == pytest.approx(30.0)


@pytest.mark.parametrize(
    ("value", "expected"), [(0.1, 20.0), (0.3, 20.0), (0.30001, 60.0), (0.6, 60.0), (0.9, 100.0)]
)
def test_bands_map_edges_belong_to_the_step_whose_max_they_reach(
    value: float, expected: float
) -> None:
    out = score(accounts("a"), mv([("a", "depth", value, D)]), card(), AS_OF)
    assert one(out, "a", "depth") == expected


@pytest.mark.parametrize(
    ("level", "expected"),
    [("Strong", 100.0), ("  strong ", 100.0), ("WEAK", 10.0), (1.0, 10.0), ("Unknown", None)],
)
def test_levels_map_matches_label_case_insensitively_or_value(
    level: Any, expected: float | None
) -> None:
    out = score(accounts("a"), mv([("a", "rel", level, D)]), card(), AS_OF)
    assert one(out, "a", "rel") == expected
    if expected is None:
        assert one(out, "a", "missing") == ["breadth", "depth", "rel"]


# --------------------------------------------------------------------------- latest value, stale


def test_latest_value_on_or_before_as_of_counts() -> None:
    data = mv(
        [
            ("a", "wau", 0.2, date(2026, 10, 25)),
            ("a", "wau", 0.8, date(2026, 11, 2)),  # on the as-of date: counts
            ("a", "wau", 0.5, date(2026, 11, 3)),  # after: ignored
        ]
    )
    assert one(score(accounts("a"), data, card(), AS_OF), "a", "breadth") == 100.0
    assert one(score(accounts("a"), data, card(), date(2026, 11, 1)), "a", "breadth") == 0.0


def test_stale_exclude_drops_the_value_and_flags_it() -> None:
    data = mv([("a", "wau", 0.8, date(2026, 10, 18)), ("a", "depth", 0.9, D)])  # 15 days > 14
    out = score(accounts("a"), data, card(), AS_OF)
    assert one(out, "a", "stale") == ["breadth"]
    assert "breadth" in one(out, "a", "missing")
    assert one(out, "a", "breadth") is None
    assert one(out, "a", "score") == 100.0  # depth alone, renormalised


def test_stale_on_the_validity_edge_is_fresh() -> None:
    data = mv([("a", "wau", 0.8, date(2026, 10, 19))])  # exactly 14 days
    out = score(accounts("a"), data, card(), AS_OF)
    assert one(out, "a", "stale") == []
    assert one(out, "a", "breadth") == 100.0


def test_stale_keep_uses_the_value_and_flags_it() -> None:
    data = mv([("a", "wau", 0.5, date(2026, 10, 1)), ("a", "depth", 0.9, D)])
    out = score(accounts("a"), data, card(stale="keep"), AS_OF)
    assert one(out, "a", "stale") == ["breadth"]
    assert one(out, "a", "breadth") == 50.0
    assert one(out, "a", "adoption") == pytest.approx(75.0)


# --------------------------------------------------------------------------- missing policies


FULL = [("a", "wau", 0.5, D), ("a", "rel", "Strong", D)]  # breadth 50, depth missing, rel 100


def test_renormalize_drops_missing_and_rescales() -> None:
    out = score(accounts("a"), mv(FULL), card(missing="renormalize"), AS_OF)
    assert one(out, "a", "adoption") == pytest.approx(50.0)  # 1*50 / 1
    assert one(out, "a", "score") == pytest.approx(0.6 * 50 + 0.4 * 100)
    assert one(out, "a", "depth") is None
    assert one(out, "a", "missing") == ["depth"]
    assert one(out, "a", "incomplete") is False


def test_zero_scores_missing_as_zero() -> None:
    out = score(accounts("a"), mv(FULL), card(missing="zero"), AS_OF)
    assert one(out, "a", "adoption") == pytest.approx(25.0)  # (50 + 0) / 2
    assert one(out, "a", "depth") == 0.0
    assert one(out, "a", "score") == pytest.approx(0.6 * 25 + 0.4 * 100)
    assert one(out, "a", "missing") == ["depth"]


def test_fixed_keeps_weights_and_flags_incomplete() -> None:
    out = score(accounts("a"), mv(FULL), card(missing="fixed"), AS_OF)
    assert one(out, "a", "adoption") == pytest.approx(25.0)  # 50 * 1 / (1 + 1)
    assert one(out, "a", "depth") is None
    assert one(out, "a", "incomplete") is True
    assert one(out, "a", "score") == pytest.approx(0.6 * 25 + 0.4 * 100)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("renormalize", 50.0), ("zero", 0.6 * 25), ("fixed", 0.6 * 25)],
)
def test_a_group_with_no_value_is_missing_the_same_way(policy: str, expected: float) -> None:
    out = score(accounts("a"), mv([("a", "wau", 0.5, D)]), card(missing=policy), AS_OF)
    assert one(out, "a", "score") == pytest.approx(expected)
    assert one(out, "a", "engagement") == (0.0 if policy == "zero" else None)


def test_no_value_at_all_means_no_score_under_every_policy() -> None:
    for policy in ("renormalize", "zero", "fixed"):
        out = score(accounts("a", "b"), mv([("b", "wau", 0.5, D)]), card(missing=policy), AS_OF)
        assert one(out, "a", "score") is None
        assert one(out, "a", "grade") is None


def test_unknown_accounts_in_metrics_are_ignored_and_accounts_without_metrics_kept() -> None:
    out = score(accounts("a"), mv([("zz", "wau", 0.5, D)]), card(), AS_OF)
    assert out.height == 1 and one(out, "a", "score") is None


# --------------------------------------------------------------------------- grades


@pytest.mark.parametrize(
    ("wau", "grade"),
    [
        (0.2, "Red"),
        (0.499, "Red"),
        (0.5, "Yellow"),
        (0.649, "Yellow"),
        (0.65, "Green"),
        (0.8, "Green"),
    ],
)
def test_ryg_band_edges_belong_to_the_higher_band(wau: float, grade: str) -> None:
    # breadth alone: score = (wau - 0.2) / 0.6 * 100 piecewise; 0.5 -> 50, 0.65 -> 75
    out = score(accounts("a"), mv([("a", "wau", wau, D)]), card(), AS_OF)
    assert one(out, "a", "grade") == grade


def test_letter_scheme_and_custom_bands() -> None:
    c = card(scheme={"type": "letter"})
    out = score(accounts("a", "b"), mv([("a", "wau", 0.5, D), ("b", "wau", 0.8, D)]), c, AS_OF)
    assert one(out, "a", "grade") == "F" and one(out, "b", "grade") == "A"
    c2 = card(
        scheme={
            "type": "ryg",
            "bands": [
                {"label": "Bad", "below": 40},
                {"label": "Ok", "below": 50},
                {"label": "Good"},
            ],
        }
    )
    out2 = score(accounts("a"), mv([("a", "wau", 0.5, D)]), c2, AS_OF)
    assert one(out2, "a", "grade") == "Good"


def test_numeric_scheme_grade_is_the_rounded_score() -> None:
    c = card(scheme={"type": "numeric"})
    out = score(accounts("a"), mv([("a", "wau", 0.35, D)]), c, AS_OF)
    assert one(out, "a", "grade") == "25"
    assert one(out, "a", "score") == pytest.approx(25.0)


# --------------------------------------------------------------------------- overrides


def _with_override(**o: Any) -> Scorecard:
    base = {"id": "o1", "reason": "r"}
    base.update(o)
    return card(overrides=[base])


GOOD = [("a", "wau", 0.8, D), ("a", "depth", 0.9, D), ("a", "rel", "Strong", D)]  # score 100


@pytest.mark.parametrize(
    ("then", "expected_score", "grade"),
    [
        ({"grade": "Red"}, 49.0, "Red"),  # clamped into the band, a point under its edge
        ({"grade": "Yellow"}, 74.0, "Yellow"),
        ({"grade": "Green"}, 100.0, "Green"),
        ({"cap": 60}, 60.0, "Yellow"),
        ({"set": 10}, 10.0, "Red"),
    ],
)
def test_override_actions(then: dict[str, Any], expected_score: float, grade: str) -> None:
    c = _with_override(when={"metric": "flag", "op": "==", "value": 1}, then=then)
    out = score(accounts("a"), mv([*GOOD, ("a", "flag", 1, D)]), c, AS_OF)
    assert one(out, "a", "score") == expected_score
    assert one(out, "a", "raw_score") == 100.0
    assert one(out, "a", "grade") == grade
    assert one(out, "a", "overrides") == ["o1"]


def test_grade_override_raises_a_low_score_into_the_band() -> None:
    c = _with_override(when={"overall": True, "op": "<", "value": 30}, then={"grade": "Yellow"})
    out = score(accounts("a"), mv([("a", "wau", 0.2, D)]), c, AS_OF)
    assert one(out, "a", "score") == 50.0 and one(out, "a", "grade") == "Yellow"


def test_cap_never_raises_a_score() -> None:
    c = _with_override(when={"overall": True, "op": ">=", "value": 0}, then={"cap": 60})
    out = score(accounts("a"), mv([("a", "wau", 0.35, D)]), c, AS_OF)
    assert one(out, "a", "score") == pytest.approx(25.0)


@pytest.mark.parametrize(
    ("when", "fires"),
    [
        ({"metric": "flag", "op": "==", "value": 1}, True),
        ({"metric": "flag", "op": "!=", "value": 1}, False),
        ({"metric": "flag", "op": "in", "value": [0, 1]}, True),
        ({"metric": "flag", "op": "not in", "value": [0, 1]}, False),
        ({"metric": "nope", "op": "<", "value": 5}, False),  # missing metric: false
        ({"not": {"metric": "nope", "op": "<", "value": 5}}, True),
        ({"measure": "breadth", "op": ">=", "value": 100}, True),
        ({"measure": "breadth", "op": ">", "value": 100}, False),
        ({"group": "adoption", "op": "==", "value": 100}, True),
        ({"overall": True, "op": ">", "value": 99}, True),
        ({"attribute": "segment", "op": "==", "value": "SMB"}, True),
        ({"attribute": "segment", "op": "in", "value": ["Enterprise"]}, False),
        (
            {
                "all": [
                    {"metric": "flag", "op": "==", "value": 1},
                    {"overall": True, "op": "<", "value": 50},
                ]
            },
            False,
        ),
        (
            {
                "any": [
                    {"metric": "flag", "op": "==", "value": 1},
                    {"overall": True, "op": "<", "value": 50},
                ]
            },
            True,
        ),
        ({"all": [{"metric": "rel", "op": "==", "value": "Strong"}]}, True),
    ],
)
def test_override_conditions(when: dict[str, Any], fires: bool) -> None:
    c = _with_override(when=when, then={"set": 0})
    out = score(accounts("a", segment=["SMB"]), mv([*GOOD, ("a", "flag", 1, D)]), c, AS_OF)
    assert (one(out, "a", "overrides") == ["o1"]) is fires
    assert one(out, "a", "score") == (0.0 if fires else 100.0)


@pytest.mark.parametrize(
    ("base", "now", "fires"),
    [
        (0.8, 0.48, True),
        (0.8, 0.47, True),
        (0.8, 0.49, False),
        (0.0, 0.1, False),
        (None, 0.1, False),
    ],
)
def test_change_over_a_window(base: float | None, now: float, fires: bool) -> None:
    c = _with_override(
        when={"change": "wau", "days": 30, "op": "<=", "pct": -40}, then={"grade": "Red"}
    )
    rows = [("a", "wau", now, D)]
    if base is not None:
        rows.append(("a", "wau", base, date(2026, 10, 3)))  # on as_of - 30 days
    out = score(accounts("a"), mv(rows), c, AS_OF)
    assert (one(out, "a", "overrides") == ["o1"]) is fires


def test_absolute_change_condition() -> None:
    c = _with_override(
        when={"change": "wau", "days": 30, "op": "<=", "delta": -0.2}, then={"set": 1}
    )
    rows = [("a", "wau", 0.5, D), ("a", "wau", 0.75, date(2026, 9, 1))]
    assert one(score(accounts("a"), mv(rows), c, AS_OF), "a", "score") == 1.0


def test_expires_after_days_stops_an_old_event() -> None:
    c = _with_override(
        when={"metric": "sponsor_left", "op": "==", "value": 1},
        then={"grade": "Red"},
        expires_after_days=60,
    )
    fresh = mv([*GOOD, ("a", "sponsor_left", 1, date(2026, 9, 3))])  # 60 days old: still fires
    old = mv([*GOOD, ("a", "sponsor_left", 1, date(2026, 9, 2))])  # 61 days old: expired
    assert one(score(accounts("a"), fresh, c, AS_OF), "a", "grade") == "Red"
    assert one(score(accounts("a"), old, c, AS_OF), "a", "grade") == "Green"


def test_calendar_bounds_of_an_override() -> None:
    when = {"overall": True, "op": ">", "value": 0}
    later = _with_override(when=when, then={"set": 5}, starts_on=date(2026, 11, 3))
    ended = _with_override(when=when, then={"set": 5}, expires_on=AS_OF)  # exclusive
    active = _with_override(
        when=when, then={"set": 5}, starts_on=AS_OF, expires_on=date(2026, 11, 3)
    )
    data = mv(GOOD)
    assert one(score(accounts("a"), data, later, AS_OF), "a", "score") == 100.0
    assert one(score(accounts("a"), data, ended, AS_OF), "a", "score") == 100.0
    assert one(score(accounts("a"), data, active, AS_OF), "a", "score") == 5.0


def test_overrides_apply_in_file_order_on_pre_override_values() -> None:
    c = card(
        overrides=[
            {"id": "first", "when": {"overall": True, "op": ">", "value": 90}, "then": {"set": 80}},
            # reads the raw overall (100), not 80, so it fires; then caps 80 to 70
            {
                "id": "second",
                "when": {"overall": True, "op": ">", "value": 90},
                "then": {"cap": 70},
            },
        ]
    )
    out = score(accounts("a"), mv(GOOD), c, AS_OF)
    assert one(out, "a", "score") == 70.0
    assert one(out, "a", "overrides") == ["first", "second"]


def test_manual_overrides_apply_last_with_expiry() -> None:
    manual = pl.DataFrame(
        {
            "account_id": ["a", "b", "c"],
            "action": ["grade", "cap", "set"],
            "value": ["Red", "30", "90"],
            "reason": ["r1", "r2", "r3"],
            "author": ["ops", "ops", "ops"],
            "created_on": [date(2026, 11, 1), date(2026, 11, 1), date(2026, 10, 1)],
            "expires_on": [None, date(2026, 12, 1), AS_OF],  # c expired on the as-of date
        }
    )
    data = mv([*GOOD, *[(x, *r[1:]) for x in ("b", "c") for r in GOOD]])
    out = score(accounts("a", "b", "c"), data, card(), AS_OF, manual_overrides=manual)
    assert (one(out, "a", "score"), one(out, "a", "grade"), one(out, "a", "overrides")) == (
        49.0,
        "Red",
        ["manual"],
    )
    assert one(out, "b", "score") == 30.0
    assert one(out, "c", "score") == 100.0 and one(out, "c", "overrides") == []


# --------------------------------------------------------------------------- assignment


def test_assignment_order_and_fallback() -> None:
    default = card(
        assignment=[
            {
                "scorecard": "ent",
                "when": {"attribute": "segment", "op": "==", "value": "Enterprise"},
            },
            {"scorecard": "big", "when": {"attribute": "region", "op": "==", "value": "EMEA"}},
        ]
    )
    ent = card(id="ent", scheme={"type": "letter"})
    big = card(id="big", scheme={"type": "numeric"})
    acc = accounts(
        "a", "b", "c", segment=["Enterprise", "SMB", "SMB"], region=["EMEA", "EMEA", "NA"]
    )
    data = mv([(x, "wau", 0.8, D) for x in ("a", "b", "c")])
    out = score(acc, data, {"default": default, "ent": ent, "big": big}, AS_OF)
    assert out.select("account_id", "scorecard", "grade").to_dicts() == [
        {"account_id": "a", "scorecard": "ent", "grade": "A"},  # first rule wins over the second
        {"account_id": "b", "scorecard": "big", "grade": "100"},
        {"account_id": "c", "scorecard": "default", "grade": "Green"},  # fallback
    ]


def test_assignment_on_a_missing_attribute_falls_back() -> None:
    default = card(
        assignment=[{"scorecard": "ent", "when": {"attribute": "tier", "op": "==", "value": "x"}}]
    )
    out = score(accounts("a"), mv(GOOD), {"default": default, "ent": card(id="ent")}, AS_OF)
    assert one(out, "a", "scorecard") == "default"


# --------------------------------------------------------------------------- products


PRODUCTS = [
    ("a", "wau", 0.8, D, "Core"),  # Core breadth 100
    ("a", "wau", 0.2, D, "Analytics"),  # Analytics breadth 0
    ("a", "depth", 0.1, D),  # company level: both products get depth 20
    ("a", "rel", "Weak", D),  # company level: rel 10
]
# Core: adoption (100 + 20) / 2 = 60; overall .6*60 + .4*10 = 40
# Analytics: adoption (0 + 20) / 2 = 10; overall .6*10 + .4*10 = 10
PRODUCT_ARR = pl.DataFrame(
    {"account_id": ["a", "a"], "product": ["Core", "Analytics"], "arr": [3.0, 1.0]}
)


@pytest.mark.parametrize(
    ("rollup", "arr", "expected"),
    [
        ("arr_weighted", PRODUCT_ARR, 0.75 * 40 + 0.25 * 10),
        ("arr_weighted", None, 25.0),  # no product ARR: equal weights
        ("mean", PRODUCT_ARR, 25.0),
        ("worst", PRODUCT_ARR, 10.0),
    ],
)
def test_product_roll_up(rollup: str, arr: pl.DataFrame | None, expected: float) -> None:
    detail = score_detail(accounts("a"), mv(PRODUCTS), card(rollup=rollup), AS_OF, product_arr=arr)
    products = detail.products.sort("product")
    assert products.get_column("product").to_list() == ["Analytics", "Core"]
    assert products.get_column("score").to_list() == pytest.approx([10.0, 40.0])
    assert one(detail.company, "a", "score") == pytest.approx(expected)
    assert one(detail.company, "a", "grade") == "Red"


def test_product_value_wins_over_company_value_for_its_product() -> None:
    rows = [*PRODUCTS, ("a", "depth", 0.9, D, "Core")]  # Core depth 100 now
    detail = score_detail(accounts("a"), mv(rows), card(rollup="mean"), AS_OF)
    core = detail.products.filter(pl.col("product") == "Core")
    assert core.get_column("depth").item() == 100.0
    assert (
        detail.products.filter(pl.col("product") == "Analytics").get_column("depth").item() == 20.0
    )


def test_accounts_without_products_are_scored_once_at_company_level() -> None:
    detail = score_detail(
        accounts("a", "b"), mv([*PRODUCTS, *[("b", *r[1:]) for r in GOOD]]), card(), AS_OF
    )
    assert detail.company.height == 2
    assert detail.products.filter(pl.col("account_id") == "b").get_column("product").to_list() == [
        None
    ]


# --------------------------------------------------------------------------- outputs


def test_output_columns_and_experience_outcomes_scores() -> None:
    out = score(accounts("a"), mv(FULL), card(), AS_OF)
    assert out.columns[:11] == [
        "account_id",
        "scorecard",
        "score",
        "raw_score",
        "grade",
        "outcomes_score",
        "experience_score",
        "missing",
        "stale",
        "overrides",
        "incomplete",
    ]
    assert {"adoption", "engagement", "breadth", "depth", "rel"} <= set(out.columns)
    assert one(out, "a", "outcomes_score") == pytest.approx(50.0)  # adoption only
    assert one(out, "a", "experience_score") == 100.0  # engagement only


def test_contributions_sum_to_the_raw_score() -> None:
    detail = score_detail(
        accounts("a", "b"),
        mv([*PRODUCTS, *[("b", *r[1:]) for r in FULL]]),
        card(),
        AS_OF,
        product_arr=PRODUCT_ARR,
    )
    sums = (
        detail.contributions.group_by("account_id")
        .agg((pl.col("weight") * pl.col("score").fill_null(0)).sum().alias("s"))
        .sort("account_id")
    )
    expected = detail.company.select("account_id", pl.col("raw_score").alias("s")).sort(
        "account_id"
    )
    assert_frame_equal(sums, expected, abs_tol=1e-9)


def test_integer_account_ids_and_metrics_without_optional_columns() -> None:
    acc = pl.DataFrame({"account_id": [1, 2], "name": ["x", "y"], "arr": [1.0, 2.0]})
    m = pl.DataFrame({"account_id": ["1"], "metric": ["wau"], "value": [0.8], "as_of": [D]})
    out = score(acc, m, card(), AS_OF)
    assert out.get_column("account_id").to_list() == ["1", "2"]
    assert one(out, "1", "score") == 100.0


def test_quoted_date_attribute_and_yaml_words_that_are_not_booleans() -> None:
    from engine.scorecard import parse_scorecard_yaml

    c = parse_scorecard_yaml(
        """
groups: [{id: g, measures: [{id: m, metric: wau, map: {linear: [[0, 0], [1, 100]]}}]}]
overrides:
  - {id: soon, when: {attribute: renewal_date, op: "<", value: "2027-03-31"}, then: {cap: 40}}
  - {id: norway, when: {attribute: region, op: "==", value: NO}, then: {set: 1}}
"""
    )
    acc = accounts("a", "b", renewal_date=[date(2027, 1, 1), date(2027, 6, 1)], region=["NO", "SE"])
    out = score(acc, mv([("a", "wau", 1.0, D), ("b", "wau", 1.0, D)]), c, AS_OF)
    assert one(out, "a", "overrides") == ["soon", "norway"] and one(out, "a", "score") == 1.0
    assert one(out, "b", "overrides") == [] and one(out, "b", "score") == 100.0


def test_policies_given_as_plain_strings_still_apply() -> None:
    c = card().model_copy(update={"missing": "zero"})
    out = score(accounts("a"), mv(FULL), c, AS_OF)
    assert one(out, "a", "adoption") == pytest.approx(25.0)


def test_products_on_one_band_edge_roll_up_to_that_edge() -> None:
    # three products each forced to exactly 75 (the Green edge); these ARR shares sum the
    # unrounded scores to 74.99999999999999
    c = card(
        overrides=[
            {"id": "set75", "when": {"overall": True, "op": ">=", "value": 0}, "then": {"set": 75}}
        ]
    )
    rows = [("a", "wau", 0.5, D, p) for p in ("P1", "P2", "P3")]
    arr = pl.DataFrame(
        {"account_id": ["a"] * 3, "product": ["P1", "P2", "P3"], "arr": [5000.0, 7777.0, 98000.0]}
    )
    out = score(accounts("a"), mv(rows), c, AS_OF, product_arr=arr)
    assert one(out, "a", "score") == 75.0 and one(out, "a", "grade") == "Green"


def test_missing_lists_with_more_measures_than_a_mask_holds() -> None:
    measures = [
        {"id": f"q{i}", "metric": f"k{i}", "map": {"linear": [[0, 0], [1, 100]]}} for i in range(70)
    ]
    c = parse_scorecard({"groups": [{"id": "g", "measures": measures}]})
    present = {0, 5, 63, 64, 69}
    out = score(accounts("a"), mv([("a", f"k{i}", 1.0, D) for i in present]), c, AS_OF)
    assert one(out, "a", "missing") == [f"q{i}" for i in range(70) if i not in present]
    assert one(out, "a", "score") == 100.0


@pytest.mark.parametrize("n", [5, 70])  # lists as one mask each, or as lists (> 63 flags)
def test_rolled_up_lists_are_the_sorted_union_of_the_products(n: int) -> None:
    measures = [
        {"id": f"q{i:02d}", "metric": f"k{i}", "map": {"linear": [[0, 0], [1, 100]]}}
        for i in reversed(range(n))
    ]
    c = parse_scorecard({"groups": [{"id": "g", "measures": measures}]})
    rows = [("a", f"k{i}", 1.0, D, "P1") for i in range(n) if i % 2 == 0]
    rows += [("a", f"k{i}", 1.0, D, "P2") for i in range(n) if i % 3 == 0]
    rows += [("b", f"k{i}", 1.0, D) for i in range(n) if i != 1]  # company level, one unit
    out = score(accounts("a", "b"), mv(rows), c, AS_OF)
    both_missing = [f"q{i:02d}" for i in range(n) if i % 2 and i % 3]
    missing_somewhere = [f"q{i:02d}" for i in range(n) if i % 2 or i % 3]
    assert one(out, "a", "missing") == missing_somewhere  # union, sorted by id
    assert set(both_missing) < set(missing_somewhere)
    assert one(out, "b", "missing") == ["q01"]  # a single unit keeps its own list


@pytest.mark.parametrize("order", ["as_of", "reverse", "shuffled"])
def test_latest_value_whatever_the_row_order(order: str) -> None:
    rows = [("a", "wau", v / 10, date(2026, 10, d)) for v, d in ((2, 1), (5, 10), (8, 20))]
    rows += [("b", "wau", 0.2, date(2026, 10, 20)), ("b", "wau", 0.8, date(2026, 10, 25))]
    frame = mv(rows)
    if order == "reverse":
        frame = frame.reverse()
    elif order == "shuffled":
        frame = frame.sample(fraction=1.0, shuffle=True, seed=3)
    out = score(accounts("a", "b"), frame, card(stale="keep"), AS_OF)
    assert one(out, "a", "breadth") == 100.0 and one(out, "b", "breadth") == 100.0


def test_two_values_on_one_date_the_first_row_counts_in_any_date_order() -> None:
    rows = [("a", "wau", 0.8, D), ("a", "wau", 0.2, D), ("a", "wau", 0.5, date(2026, 10, 30))]
    for frame in (mv(rows), mv(rows).sort("as_of", maintain_order=True)):
        assert one(score(accounts("a"), frame, card(), AS_OF), "a", "breadth") == 100.0
