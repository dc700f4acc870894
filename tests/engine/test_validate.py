"""The semantic rules of engine.validate: one case per rule, on a small valid base scorecard."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from engine.metrics import known_metrics
from engine.problems import Problem
from engine.scorecard import (
    MAX_BANDS,
    Scheme,
    SchemeType,
    load_scorecard,
    load_scorecards,
    parse_scorecard,
)
from engine.validate import RESERVED_IDS, validate, validate_set

ROOT = Path(__file__).resolve().parents[2]

# Metric ids the SQL definitions provide (tests/engine/test_metrics.py pins them to the contract).
CONTRACT_METRICS = known_metrics()

KNOWN = {"wau", "p1", "exec_rel", "sponsor_left"}

BASE: dict[str, Any] = {
    "id": "base",
    "name": "Base",
    "scheme": {"type": "ryg"},
    "groups": [
        {
            "id": "adoption",
            "weight": 60,
            "measures": [
                {
                    "id": "breadth",
                    "metric": "wau",
                    "weight": 2,
                    "map": {"linear": [[0.2, 0], [0.8, 100]]},
                    "validity_days": 14,
                },
                {
                    "id": "tickets",
                    "metric": "p1",
                    "weight": 1,
                    "map": {
                        "bands": [{"max": 0, "score": 100}, {"max": 3, "score": 50}, {"score": 0}]
                    },
                },
            ],
        },
        {
            "id": "engagement",
            "weight": 40,
            "measures": [
                {
                    "id": "relationship",
                    "metric": "exec_rel",
                    "map": {
                        "levels": [
                            {"label": "Strong", "score": 100, "value": 2},
                            {"label": "Weak", "score": 20, "value": 1},
                        ]
                    },
                }
            ],
        },
    ],
    "overrides": [
        {
            "id": "sponsor_left",
            "reason": "Executive sponsor left",
            "when": {"metric": "sponsor_left", "op": "==", "value": 1},
            "then": {"grade": "Red"},
            "expires_after_days": 60,
        },
        {
            "id": "usage_drop",
            "when": {
                "all": [
                    {"change": "wau", "days": 30, "op": "<=", "pct": -40},
                    {"group": "adoption", "op": "<", "value": 50},
                ]
            },
            "then": {"cap": 49},
        },
    ],
    "assignment": [
        {"scorecard": "enterprise", "when": {"attribute": "segment", "op": "==", "value": "Ent"}}
    ],
}


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``value`` at a file-shaped path such as ``groups[0].measures[1].weight``."""
    keys: list[str | int] = [
        int(index) if index else name for name, index in re.findall(r"(\w+)|\[(\d+)\]", path)
    ]
    node: Any = data
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value


def _card(edits: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    for path, value in edits.items():
        _set(data, path, value)
    return data


def _problems(edits: dict[str, Any], known: set[str] | None = KNOWN) -> list[Problem]:
    return validate(parse_scorecard(_card(edits)), known_metrics=known)


M0 = "groups[0].measures[0]"
M1 = "groups[0].measures[1]"
LV = "groups[1].measures[0].map.levels"
RYG_BANDS = [{"label": "Red", "below": 50}, {"label": "Yellow", "below": 75}, {"label": "Green"}]


def test_base_is_valid() -> None:
    assert _problems({}) == []


CASES = [
    # ---- structure and required text
    pytest.param({"groups": [], "overrides": []}, "groups", "has no groups", id="no-groups"),
    pytest.param(
        {"groups[1].measures": []},
        "groups[1].measures",
        "group 'engagement' has no measures",
        id="group-without-measures",
    ),
    pytest.param({"id": " "}, "id", "scorecard id is empty", id="empty-scorecard-id"),
    pytest.param({"groups[1].id": ""}, "groups[1].id", "group id is empty", id="empty-group-id"),
    pytest.param({f"{M1}.id": ""}, f"{M1}.id", "measure id is empty", id="empty-measure-id"),
    pytest.param(
        {f"{M1}.metric": ""}, f"{M1}.metric", "measure 'tickets' names no metric", id="no-metric"
    ),
    pytest.param(
        {"overrides[1].id": ""}, "overrides[1].id", "override id is empty", id="empty-override-id"
    ),
    pytest.param(
        {"assignment[0].scorecard": ""},
        "assignment[0].scorecard",
        "scorecard to assign is empty",
        id="empty-assignment-target",
    ),
    # ---- ids
    pytest.param(
        {"groups[1].id": "adoption"},
        "groups[1].id",
        "group id 'adoption' is already used at groups[0]",
        id="duplicate-group-id",
    ),
    pytest.param(
        {"groups[1].measures[0].id": "breadth"},
        "groups[1].measures[0].id",
        "measure id 'breadth' is already used at groups[0].measures[0]",
        id="duplicate-measure-id-across-groups",
    ),
    pytest.param(
        {f"{M1}.id": "engagement"},
        "groups[1].id",
        "group id 'engagement' is already used at groups[0].measures[1]",
        id="group-and-measure-share-an-id",
    ),
    pytest.param(
        {"overrides[1].id": "sponsor_left"},
        "overrides[1].id",
        "override id 'sponsor_left' is already used at overrides[0]",
        id="duplicate-override-id",
    ),
    pytest.param(
        {f"{M0}.id": "score"},
        f"{M0}.id",
        "measure id 'score' is reserved",
        id="reserved-measure-id",
    ),
    pytest.param(
        {"groups[1].id": "arr"}, "groups[1].id", "group id 'arr' is reserved", id="reserved-group"
    ),
    # ---- weights
    pytest.param(
        {"groups[0].weight": -5},
        "groups[0].weight",
        "group weight -5 is negative",
        id="negative-group-weight",
    ),
    pytest.param(
        {f"{M1}.weight": -0.5},
        f"{M1}.weight",
        "measure weight -0.5 is negative",
        id="negative-measure-weight",
    ),
    pytest.param(
        {f"{M1}.weight": float("nan")},
        f"{M1}.weight",
        "measure weight nan is not a finite number",
        id="nan-weight",
    ),
    pytest.param(
        {f"{M0}.weight": 0, f"{M1}.weight": 0},
        "groups[0].measures",
        "every measure weight of group 'adoption' is 0",
        id="all-zero-measure-weights",
    ),
    pytest.param(
        {"groups[0].weight": 0, "groups[1].weight": 0},
        "groups",
        "every group weight is 0",
        id="all-zero-group-weights",
    ),
    # ---- linear maps
    pytest.param(
        {f"{M0}.map": {"linear": [[0.5, 50]]}},
        f"{M0}.map.linear",
        "needs at least 2 points [value, score]; it has 1",
        id="linear-one-point",
    ),
    pytest.param(
        {f"{M0}.map": {"linear": [[0.8, 100], [0.2, 0]]}},
        f"{M0}.map.linear[1]",
        "value 0.2 is below the previous value 0.8",
        id="linear-unordered",
    ),
    pytest.param(
        {f"{M0}.map": {"linear": [[0.2, 0], [0.2, 100]]}},
        f"{M0}.map.linear[1]",
        "value 0.2 repeats the previous value 0.2",
        id="linear-duplicate-x",
    ),
    pytest.param(
        {f"{M0}.map": {"linear": [[0.2, 0], [0.8, 120]]}},
        f"{M0}.map.linear[1]",
        "score 120 is outside 0-100",
        id="linear-score-out-of-range",
    ),
    # ---- bands maps
    pytest.param({f"{M1}.map.bands": []}, f"{M1}.map.bands", "at least one step", id="bands-empty"),
    pytest.param(
        {f"{M1}.map.bands[1].max": 0},
        f"{M1}.map.bands[1].max",
        "max 0 is not above the previous max 0",
        id="bands-duplicate-max",
    ),
    pytest.param(
        {f"{M1}.map.bands[0].max": 5},
        f"{M1}.map.bands[1].max",
        "max 3 is not above the previous max 5",
        id="bands-unordered-max",
    ),
    pytest.param(
        {f"{M1}.map.bands[1].max": None},
        f"{M1}.map.bands[1].max",
        "only the last step may be open",
        id="bands-open-step-not-last",
    ),
    pytest.param(
        {f"{M1}.map.bands[2].score": -10},
        f"{M1}.map.bands[2].score",
        "score -10 is outside 0-100",
        id="bands-score-out-of-range",
    ),
    # ---- levels maps
    pytest.param({LV: []}, LV, "at least one level", id="levels-empty"),
    pytest.param(
        {f"{LV}[1].label": "strong"},
        f"{LV}[1].label",
        "level label 'strong' is already used at groups[1].measures[0].map.levels[0]",
        id="levels-duplicate-label-any-case",
    ),
    pytest.param({f"{LV}[0].label": ""}, f"{LV}[0].label", "label is empty", id="levels-no-label"),
    pytest.param(
        {f"{LV}[0].score": 150},
        f"{LV}[0].score",
        "score 150 is outside 0-100",
        id="levels-score-out-of-range",
    ),
    pytest.param(
        {f"{LV}[1].value": 2},
        f"{LV}[1].value",
        "level value 2 is already used at groups[1].measures[0].map.levels[0]",
        id="levels-duplicate-value",
    ),
    pytest.param(
        {f"{M0}.validity_days": 0},
        f"{M0}.validity_days",
        "validity_days 0 must be at least 1",
        id="validity-days-below-1",
    ),
    pytest.param(
        {f"{M0}.metric": "weekly"}, f"{M0}.metric", "unknown metric 'weekly'", id="unknown-metric"
    ),
    # ---- grading scheme
    pytest.param(
        {
            "scheme.bands": [{"label": f"B{i}", "below": 5 * (i + 1)} for i in range(MAX_BANDS)]
            + [{"label": "Red"}]
        },
        "scheme.bands",
        f"{MAX_BANDS + 1} bands is more than the maximum of {MAX_BANDS}",
        id="too-many-bands",
    ),
    pytest.param(
        {
            "scheme.bands": [
                {"label": "Red", "below": 75},
                {"label": "Y", "below": 50},
                {"label": "G"},
            ]
        },
        "scheme.bands[1].below",
        "below 50 is not above the previous edge 75",
        id="band-edges-unordered",
    ),
    pytest.param(
        {
            "scheme.bands": [
                {"label": "Red", "below": 50},
                {"label": "Y", "below": 50},
                {"label": "G"},
            ]
        },
        "scheme.bands[1].below",
        "below 50 is not above the previous edge 50",
        id="band-edges-equal",
    ),
    pytest.param(
        {"scheme.bands": [{"label": "Red", "below": 0}, {"label": "Green"}]},
        "scheme.bands[0].below",
        "below 0 is outside (0, 100]",
        id="band-edge-zero",
    ),
    pytest.param(
        {"scheme.bands": [{"label": "Red", "below": 120}, {"label": "Green"}]},
        "scheme.bands[0].below",
        "below 120 is outside (0, 100]",
        id="band-edge-above-100",
    ),
    pytest.param(
        {"scheme.bands": [{"label": "Red", "below": 50}, {"label": "Green", "below": 100}]},
        "scheme.bands[1].below",
        "the last band 'Green' must have no 'below'",
        id="last-band-with-edge",
    ),
    pytest.param(
        {"scheme.bands": [{"label": "Red"}, {"label": "Green"}]},
        "scheme.bands[0].below",
        "band 'Red' needs a 'below' edge",
        id="band-without-edge",
    ),
    pytest.param(
        {"scheme.bands": [{"label": "Red", "below": 50}, {"label": "red"}]},
        "scheme.bands[1].label",
        "band label 'red' is already used at scheme.bands[0]",
        id="duplicate-band-label",
    ),
    pytest.param(
        {"scheme.bands": [{"label": "Red", "below": 50}, {"label": " "}]},
        "scheme.bands[1].label",
        "band label is empty",
        id="empty-band-label",
    ),
    # ---- override conditions
    pytest.param(
        {"overrides[0].when.metric": "sponsor_gone"},
        "overrides[0].when.metric",
        "unknown metric 'sponsor_gone'",
        id="override-unknown-metric",
    ),
    pytest.param(
        {"overrides[1].when.all[0].change": "daily_users"},
        "overrides[1].when.all[0].change",
        "unknown metric 'daily_users'",
        id="change-unknown-metric",
    ),
    pytest.param(
        {"overrides[1].when.all[1]": {"measure": "depth", "op": "<", "value": 20}},
        "overrides[1].when.all[1].measure",
        "unknown measure 'depth'",
        id="override-unknown-measure",
    ),
    pytest.param(
        {"overrides[1].when.all[1].group": "roi"},
        "overrides[1].when.all[1].group",
        "unknown group 'roi'",
        id="override-unknown-group",
    ),
    pytest.param(
        {"overrides[0].when": {"any": [{"not": {"all": [{"group": "x", "op": ">", "value": 1}]}}]}},
        "overrides[0].when.any[0].not.all[0].group",
        "unknown group 'x'",
        id="deeply-nested-condition-path",
    ),
    pytest.param(
        {"overrides[1].when.all[0].days": 0},
        "overrides[1].when.all[0].days",
        "window of 0 days must be at least 1 day",
        id="change-window-below-1",
    ),
    pytest.param(
        {"overrides[1].when.all[0].op": "in"},
        "overrides[1].when.all[0].op",
        "op 'in' cannot compare a change",
        id="change-with-list-op",
    ),
    pytest.param(
        {"overrides[0].when.op": "in"},
        "overrides[0].when.value",
        "op 'in' needs a list of values; got 1.0",
        id="in-without-list",
    ),
    pytest.param(
        {"assignment[0].when.op": "not in"},
        "assignment[0].when.value",
        "op 'not in' needs a list of values; got 'Ent'",
        id="not-in-without-list",
    ),
    pytest.param(
        {"overrides[0].when.value": [1, 2]},
        "overrides[0].when.value",
        "op '==' compares one value; got the list [1.0, 2.0]",
        id="equals-with-list",
    ),
    pytest.param(
        {"overrides[1].when.all[1].value": "low"},
        "overrides[1].when.all[1].value",
        "op '<' on a group score needs a number; got 'low'",
        id="ordered-op-on-group-with-text",
    ),
    pytest.param(
        {"overrides[0].when": {"overall": True, "op": ">=", "value": "high"}},
        "overrides[0].when.value",
        "op '>=' on the overall score needs a number; got 'high'",
        id="ordered-op-on-overall-with-text",
    ),
    pytest.param(
        {"overrides[0].when": {"metric": "sponsor_left", "op": "<"}},
        "overrides[0].when.value",
        "op '<' on a metric needs a number; got None",
        id="ordered-op-without-value",
    ),
    pytest.param(
        {"overrides[0].when": {"metric": "sponsor_left", "op": "!="}},
        "overrides[0].when.value",
        "op '!=' needs a value; got none",
        id="equality-without-value",
    ),
    pytest.param(
        {"overrides[1].when.all": []},
        "overrides[1].when.all",
        "an 'all' needs at least one condition",
        id="empty-all",
    ),
    # ---- override actions and expiry
    pytest.param(
        {"overrides[0].then.grade": "Amber"},
        "overrides[0].then.grade",
        "grade 'Amber' is not a band of the scheme (bands: 'Red', 'Yellow', 'Green')",
        id="grade-not-in-scheme",
    ),
    pytest.param(
        {"overrides[0].then.grade": "red"},
        "overrides[0].then.grade",
        "did you mean 'Red'?",
        id="grade-wrong-case",
    ),
    pytest.param(
        {"scheme": "numeric"},
        "overrides[0].then.grade",
        "grade 'Red' cannot be forced: the numeric scheme has no bands",
        id="grade-on-numeric-scheme",
    ),
    pytest.param(
        {"overrides[1].then": {"cap": "high"}},
        "overrides[1].then.cap",
        "cap value 'high' is not a number",
        id="cap-not-a-number",
    ),
    pytest.param(
        {"overrides[1].then": {"cap": 140}},
        "overrides[1].then.cap",
        "cap value 140 is outside 0-100",
        id="cap-above-100",
    ),
    pytest.param(
        {"overrides[1].then": {"set": -5}},
        "overrides[1].then.set",
        "set value -5 is outside 0-100",
        id="set-below-0",
    ),
    pytest.param(
        {"overrides[0].expires_after_days": 0},
        "overrides[0].expires_after_days",
        "expires_after_days 0 must be at least 1",
        id="expires-after-days-below-1",
    ),
    pytest.param(
        {"overrides[0].starts_on": "2024-02-01", "overrides[0].expires_on": "2024-01-01"},
        "overrides[0].expires_on",
        "expires_on 2024-01-01 is not after starts_on 2024-02-01",
        id="expires-before-start",
    ),
    pytest.param(
        {"overrides[0].starts_on": "2024-02-01", "overrides[0].expires_on": "2024-02-01"},
        "overrides[0].expires_on",
        "expires_on 2024-02-01 is not after starts_on 2024-02-01",
        id="expires-on-start",
    ),
    # ---- assignment
    pytest.param(
        {"assignment[0].when": {"metric": "wau", "op": ">", "value": 0.5}},
        "assignment[0].when.metric",
        "assignment may only compare account attributes; got a comparison on a metric",
        id="assignment-on-metric",
    ),
    pytest.param(
        {
            "assignment[0].when": {
                "all": [
                    {"attribute": "region", "op": "in", "value": ["EMEA"]},
                    {"not": {"overall": True, "op": "<", "value": 50}},
                ]
            }
        },
        "assignment[0].when.all[1].not.overall",
        "got a comparison on the overall score",
        id="assignment-nested-non-attribute",
    ),
    pytest.param(
        {"assignment[0].when": {"change": "wau", "days": 7, "op": "<", "delta": 0}},
        "assignment[0].when.change",
        "got a change of 'wau'",
        id="assignment-on-change",
    ),
    pytest.param(
        {"assignment[0].when.attribute": ""},
        "assignment[0].when.attribute",
        "attribute to compare is empty",
        id="assignment-empty-attribute",
    ),
    pytest.param(
        {"assignment[0].scorecard": "base"},
        "assignment[0].scorecard",
        "scorecard 'base' assigns to itself",
        id="assignment-to-itself",
    ),
]


@pytest.mark.parametrize(("edits", "path", "fragment"), CASES)
def test_rule(edits: dict[str, Any], path: str, fragment: str) -> None:
    problems = _problems(edits)
    assert len(problems) == 1, problems
    assert problems[0].path == path
    assert fragment in problems[0].message


def test_every_reserved_id_is_flagged() -> None:
    for reserved in sorted(RESERVED_IDS):
        card = _card({"groups[1].id": reserved})
        assert validate(parse_scorecard(card)) == [
            Problem(
                "groups[1].id",
                f"group id {reserved!r} is reserved for an output column; choose another id",
            )
        ]


@pytest.mark.parametrize("scheme_type", [SchemeType.RYG, SchemeType.LETTER])
def test_banded_scheme_without_bands(scheme_type: SchemeType) -> None:
    # The parser fills default bands; a card built in code (e.g. by the designer) may not.
    card = parse_scorecard(_card({"overrides": []}))
    card = card.model_copy(update={"scheme": Scheme(type=scheme_type)})
    assert validate(card) == [
        Problem("scheme.bands", f"a {scheme_type.value} scheme needs bands; it has none")
    ]


def test_numeric_scheme_without_bands_is_valid() -> None:
    assert _problems({"scheme": "numeric", "overrides[0].then": {"cap": 40}}) == []


def test_metrics_are_only_checked_when_known_metrics_are_given() -> None:
    edits = {f"{M0}.metric": "weekly", "overrides[1].when.all[0].change": "weekly"}
    assert _problems(edits, known=None) == []
    assert [p.path for p in _problems(edits)] == [
        f"{M0}.metric",
        "overrides[1].when.all[0].change",
    ]


def test_many_problems_are_reported_at_once() -> None:
    edits = {
        "groups[0].weight": -1,
        f"{M0}.map": {"linear": [[0.8, 100], [0.2, 140]]},
        f"{M1}.id": "score",
        f"{LV}[1].label": "STRONG",
        "scheme.bands": [{"label": "Red", "below": 80}, {"label": "Green", "below": 60}],
        "overrides[0].then.grade": "Amber",
        "overrides[0].when.metric": "nope",
        "overrides[1].when.all[0].days": -3,
        "assignment[0].when.metric": "wau",
    }
    data = _card(edits)
    del data["assignment"][0]["when"]["attribute"]
    problems = validate(parse_scorecard(data), known_metrics=KNOWN)
    assert [(p.path, p.message) for p in problems] == [
        (f"{M1}.id", "measure id 'score' is reserved for an output column; choose another id"),
        ("groups[0].weight", "group weight -1 is negative; weights must be 0 or more"),
        (
            f"{M0}.map.linear[1]",
            "value 0.2 is below the previous value 0.8; the points must be in strictly "
            "increasing order of value",
        ),
        (f"{M0}.map.linear[1]", "score 140 is outside 0-100"),
        (
            f"{LV}[1].label",
            "level label 'STRONG' is already used at groups[1].measures[0].map.levels[0] "
            "(labels match regardless of case)",
        ),
        (
            "scheme.bands[1].below",
            "the last band 'Green' must have no 'below' (it runs up to 100); it has below 60",
        ),
        (
            "scheme.bands[1].below",
            "below 60 is not above the previous edge 80; band edges must be strictly increasing",
        ),
        ("overrides[0].when.metric", "unknown metric 'nope'"),
        ("overrides[1].when.all[0].days", "the window of -3 days must be at least 1 day"),
        (
            "overrides[0].then.grade",
            "grade 'Amber' is not a band of the scheme (bands: 'Red', 'Green')",
        ),
        (
            "assignment[0].when.metric",
            "assignment may only compare account attributes; got a comparison on a metric",
        ),
    ]


# --------------------------------------------------------------------------- sets


def test_validate_set_accepts_a_consistent_set() -> None:
    base = parse_scorecard(_card({}))
    enterprise = parse_scorecard(_card({"id": "enterprise", "assignment": []}))
    assert validate_set({"base": base, "enterprise": enterprise}) == []


def test_validate_set_flags_an_unknown_assignment_target() -> None:
    base = parse_scorecard(_card({"assignment[0].scorecard": "enterprize"}))
    enterprise = parse_scorecard(_card({"id": "enterprise", "assignment": []}))
    assert validate_set({"base": base, "enterprise": enterprise}) == [
        Problem(
            "base: assignment[0].scorecard",
            "assigns to scorecard 'enterprize', which does not exist (known: 'base', 'enterprise')",
        )
    ]


def test_validate_set_flags_a_card_filed_under_another_id() -> None:
    card = parse_scorecard(_card({"assignment": []}))
    assert validate_set({"other": card}) == [
        Problem("other: id", "scorecard id 'base' is filed under 'other'")
    ]


# --------------------------------------------------------------------------- shipped files


def test_shipped_scorecards_validate_clean() -> None:
    files = sorted((ROOT / "data" / "scorecards").glob("*.yaml"))
    assert files, "data/scorecards/ holds no scorecard"
    for f in files:
        card = load_scorecard(f, known_metrics=CONTRACT_METRICS)
        assert validate(card, known_metrics=CONTRACT_METRICS) == [], f.name
    cards = load_scorecards(ROOT / "data" / "scorecards", known_metrics=CONTRACT_METRICS)
    assert "default" in cards
    assert validate_set(cards) == []
