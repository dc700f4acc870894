"""Parsing of scorecard files: shorthand, defaults, shape problems, round trip, loading."""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from engine.problems import Problem, ScorecardError
from engine.scorecard import (
    DEFAULT_BANDS,
    Action,
    ActionType,
    AllOf,
    AnyOf,
    Band,
    BandsMap,
    Change,
    Compare,
    Level,
    LevelsMap,
    LinearMap,
    NotOf,
    Op,
    SchemeType,
    Step,
    Target,
    load_scorecard,
    load_scorecards,
    parse_scorecard,
    parse_scorecard_yaml,
)

LINEAR = {"linear": [[0.2, 0], [0.8, 100]]}


def _card(**extra: Any) -> dict[str, Any]:
    """A minimal valid scorecard: one group, one measure."""
    card: dict[str, Any] = {
        "name": "Tiny",
        "groups": [
            {
                "id": "adoption",
                "measures": [{"id": "breadth", "metric": "wau", "map": copy.deepcopy(LINEAR)}],
            }
        ],
    }
    card.update(extra)
    return card


def _with_map(mp: Any) -> dict[str, Any]:
    card = _card()
    card["groups"][0]["measures"][0]["map"] = mp
    return card


def _with_when(when: Any) -> dict[str, Any]:
    return _card(overrides=[{"id": "o", "when": when, "then": {"cap": 40}}])


def _problems(data: Any) -> list[Problem]:
    with pytest.raises(ScorecardError) as exc:
        parse_scorecard(data)
    return exc.value.problems


# --------------------------------------------------------------------------- shorthand


def test_minimal_card_gets_defaults() -> None:
    card = parse_scorecard(_card(), default_id="tiny")
    assert card.id == "tiny"
    assert card.scheme.type is SchemeType.RYG
    assert card.scheme.bands == DEFAULT_BANDS[SchemeType.RYG]
    measure = card.groups[0].measures[0]
    assert (measure.weight, card.groups[0].weight, measure.validity_days) == (1.0, 1.0, None)
    assert measure.title == "breadth"
    assert card.overrides == ()
    assert card.assignment == ()


def test_linear_map() -> None:
    card = parse_scorecard(_with_map({"linear": [[0.2, 0], [0.5, 50], [0.8, 100]]}))
    assert card.groups[0].measures[0].map == LinearMap(
        points=((0.2, 0.0), (0.5, 50.0), (0.8, 100.0))
    )


def test_bands_map() -> None:
    card = parse_scorecard(_with_map({"bands": [{"max": 0, "score": 100}, {"score": 10}]}))
    assert card.groups[0].measures[0].map == BandsMap(
        steps=(Step(max=0, score=100), Step(max=None, score=10))
    )


def test_levels_map() -> None:
    levels = [
        {"label": "Strong", "score": 100, "help": "Meets us quarterly", "value": 3},
        {"label": "Weak", "score": 15},
    ]
    card = parse_scorecard(_with_map({"levels": levels}))
    assert card.groups[0].measures[0].map == LevelsMap(
        levels=(
            Level(label="Strong", score=100, help="Meets us quarterly", value=3),
            Level(label="Weak", score=15),
        )
    )


def test_canonical_map_is_accepted() -> None:
    card = parse_scorecard(_with_map({"kind": "linear", "points": [[0, 0], [1, 100]]}))
    assert card.groups[0].measures[0].map == LinearMap(points=((0, 0), (1, 100)))


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        pytest.param(
            {"metric": "nps", "op": "<", "value": 0},
            Compare(target=Target.METRIC, name="nps", op=Op.LT, value=0.0),
            id="metric",
        ),
        pytest.param(
            {"measure": "breadth", "op": "<=", "value": 20},
            Compare(target=Target.MEASURE, name="breadth", op=Op.LE, value=20.0),
            id="measure",
        ),
        pytest.param(
            {"group": "adoption", "op": ">", "value": 50.5},
            Compare(target=Target.GROUP, name="adoption", op=Op.GT, value=50.5),
            id="group",
        ),
        pytest.param(
            {"attribute": "segment", "op": "in", "value": ["Enterprise", "Strategic"]},
            Compare(
                target=Target.ATTRIBUTE, name="segment", op=Op.IN, value=("Enterprise", "Strategic")
            ),
            id="attribute-in-list",
        ),
        pytest.param(
            {"attribute": "renewal_date", "op": "<", "value": date(2025, 1, 1)},
            Compare(target=Target.ATTRIBUTE, name="renewal_date", op=Op.LT, value=date(2025, 1, 1)),
            id="attribute-date",
        ),
        pytest.param(
            {"overall": True, "op": ">=", "value": 40},
            Compare(target=Target.OVERALL, name="", op=Op.GE, value=40.0),
            id="overall",
        ),
        pytest.param(
            {"metric": "executive_relationship", "op": "not in", "value": ["Weak"]},
            Compare(
                target=Target.METRIC, name="executive_relationship", op=Op.NOT_IN, value=("Weak",)
            ),
            id="metric-level-not-in",
        ),
        pytest.param(
            {"change": "wau", "days": 30, "op": "<=", "pct": -40},
            Change(metric="wau", days=30, op=Op.LE, value=-40, relative=True),
            id="change-pct",
        ),
        pytest.param(
            {"change": "open_escalations", "days": 14, "op": ">", "delta": 2},
            Change(metric="open_escalations", days=14, op=Op.GT, value=2, relative=False),
            id="change-delta",
        ),
        pytest.param(
            {
                "all": [
                    {"metric": "nps", "op": "<", "value": 0},
                    {"any": [{"group": "adoption", "op": "<", "value": 50}]},
                    {"not": {"attribute": "segment", "op": "==", "value": "SMB"}},
                ]
            },
            AllOf(
                items=(
                    Compare(target=Target.METRIC, name="nps", op=Op.LT, value=0),
                    AnyOf(
                        items=(Compare(target=Target.GROUP, name="adoption", op=Op.LT, value=50),)
                    ),
                    NotOf(
                        item=Compare(target=Target.ATTRIBUTE, name="segment", op=Op.EQ, value="SMB")
                    ),
                )
            ),
            id="all-any-not",
        ),
        pytest.param(
            {"kind": "any", "items": [{"metric": "nps", "op": "<", "value": 0}]},
            AnyOf(items=(Compare(target=Target.METRIC, name="nps", op=Op.LT, value=0),)),
            id="canonical-with-shorthand-inside",
        ),
    ],
)
def test_condition_shorthand(when: dict[str, Any], expected: Any) -> None:
    card = parse_scorecard(_with_when(when))
    assert card.overrides[0].when == expected


@pytest.mark.parametrize(
    ("then", "expected"),
    [
        ({"grade": "Red"}, Action(type=ActionType.GRADE, value="Red")),
        ({"cap": 49}, Action(type=ActionType.CAP, value=49.0)),
        ({"set": 0}, Action(type=ActionType.SET, value=0.0)),
        ({"type": "cap", "value": 30}, Action(type=ActionType.CAP, value=30.0)),
    ],
    ids=["grade", "cap", "set", "canonical"],
)
def test_action_shorthand(then: dict[str, Any], expected: Action) -> None:
    data = _card(
        overrides=[{"id": "o", "when": {"overall": True, "op": "<", "value": 1}, "then": then}]
    )
    assert parse_scorecard(data).overrides[0].then == expected


def test_override_dates_and_expiry() -> None:
    data = _card(
        overrides=[
            {
                "id": "o",
                "reason": "Sponsor left",
                "when": {"metric": "sponsor_left", "op": "==", "value": 1},
                "then": {"grade": "Red"},
                "expires_after_days": 60,
                "starts_on": "2024-01-01",
                "expires_on": date(2024, 7, 1),
            }
        ]
    )
    o = parse_scorecard(data).overrides[0]
    assert (o.reason, o.expires_after_days) == ("Sponsor left", 60)
    assert (o.starts_on, o.expires_on) == (date(2024, 1, 1), date(2024, 7, 1))


# --------------------------------------------------------------------------- schemes


@pytest.mark.parametrize("scheme", ["ryg", {"type": "ryg"}, {"type": "ryg", "bands": []}])
def test_ryg_gets_default_bands(scheme: Any) -> None:
    card = parse_scorecard(_card(scheme=scheme))
    assert [(b.label, b.below) for b in card.scheme.bands] == [
        ("Red", 50),
        ("Yellow", 75),
        ("Green", None),
    ]


def test_letter_gets_default_bands() -> None:
    card = parse_scorecard(_card(scheme="letter"))
    assert [(b.label, b.below) for b in card.scheme.bands] == [
        ("F", 60),
        ("D", 70),
        ("C", 80),
        ("B", 90),
        ("A", None),
    ]
    assert card.scheme.band_edges() == [
        ("F", 0.0, 60.0),
        ("D", 60.0, 70.0),
        ("C", 70.0, 80.0),
        ("B", 80.0, 90.0),
        ("A", 90.0, 100.0),
    ]


def test_numeric_has_no_bands_and_own_bands_are_kept() -> None:
    assert parse_scorecard(_card(scheme="numeric")).scheme.bands == ()
    own = {"type": "ryg", "bands": [{"label": "Red", "below": 40}, {"label": "Green"}]}
    assert parse_scorecard(_card(scheme=own)).scheme.bands == (
        Band(label="Red", below=40),
        Band(label="Green"),
    )


# --------------------------------------------------------------------------- shape problems


M0 = "groups[0].measures[0]"


@pytest.mark.parametrize(
    ("data", "path", "fragment"),
    [
        pytest.param(
            _card(
                groups=[
                    {
                        "id": "g",
                        "measures": [{"id": "m", "metric": "x", "weight": "heavy", "map": LINEAR}],
                    }
                ]
            ),
            f"{M0}.weight",
            "valid number, unable to parse string as a number (got 'heavy')",
            id="string-weight",
        ),
        pytest.param(
            _card(
                groups=[
                    {
                        "id": "g",
                        "measures": [{"id": "m", "metric": "x", "wieght": 2, "map": LINEAR}],
                    }
                ]
            ),
            f"{M0}.wieght",
            "unknown key (check the spelling)",
            id="unknown-measure-key",
        ),
        pytest.param(_card(colour="red"), "colour", "unknown key", id="unknown-top-level-key"),
        pytest.param(
            _card(groups=[{"id": "g", "measures": [{"id": "m", "map": LINEAR}]}]),
            f"{M0}.metric",
            "required key is missing",
            id="missing-metric",
        ),
        pytest.param(
            _card(groups=[{"id": "g", "weight": [1], "measures": []}]),
            "groups[0].weight",
            "valid number",
            id="list-group-weight",
        ),
        pytest.param(_card(missing="ignore"), "missing", "(got 'ignore')", id="bad-missing-policy"),
        pytest.param(_card(scheme="traffic"), "scheme.type", "(got 'traffic')", id="bad-scheme"),
        pytest.param(
            _card(
                scheme={"type": "ryg", "bands": [{"label": "Red", "below": "half"}, {"label": "G"}]}
            ),
            "scheme.bands[0].below",
            "(got 'half')",
            id="band-edge-text",
        ),
        pytest.param(
            _with_map({"linear": [[0, "low"], [1, 100]]}),
            f"{M0}.map.linear[0][1]",
            "valid number",
            id="linear-score-text",
        ),
        pytest.param(
            _with_map({"bands": [{"max": 1, "score": 50, "min": 0}]}),
            f"{M0}.map.bands[0].min",
            "unknown key",
            id="bands-unknown-key",
        ),
        pytest.param(
            _with_map({"levels": [{"label": "Strong", "score": "high"}]}),
            f"{M0}.map.levels[0].score",
            "(got 'high')",
            id="levels-score-text",
        ),
        pytest.param(
            _with_map({"linear": [[0, 0], [1, 100]], "bands": []}),
            f"{M0}.map",
            "exactly one of linear, bands or levels",
            id="two-map-kinds",
        ),
        pytest.param(
            _with_map({"linear": [[0, 0], [1, 100]], "clamp": True}),
            f"{M0}.map",
            "unknown keys in a map: ['clamp']",
            id="unknown-map-key",
        ),
        pytest.param(
            _with_when(
                {
                    "all": [
                        {"metric": "a", "op": "<", "value": 1},
                        {"not": {"metric": 5, "op": "<", "value": 1}},
                    ]
                }
            ),
            "overrides[0].when.all[1].not.metric",
            "valid string (got 5)",
            id="nested-condition-type",
        ),
        pytest.param(
            _with_when({"metric": "nps", "op": "=<", "value": 0}),
            "overrides[0].when.op",
            "(got '=<')",
            id="bad-op",
        ),
        pytest.param(
            _with_when({"metric": "nps", "value": 0}),
            "overrides[0].when.op",
            "required key is missing",
            id="missing-op",
        ),
        pytest.param(
            _with_when({"metric": "nps", "op": "<", "value": 0, "days": 3}),
            "overrides[0].when",
            "unknown keys in a condition: ['days']",
            id="unknown-condition-key",
        ),
        pytest.param(
            _with_when({"metric": "nps", "group": "adoption", "op": "<", "value": 0}),
            "overrides[0].when",
            "a condition needs exactly one of metric, measure, group",
            id="two-targets",
        ),
        pytest.param(
            _with_when({"metric": "nps", "op": "<", "value": {"a": 1}}),
            "overrides[0].when.value",
            "should be a valid number, a valid string, a valid boolean, a valid date "
            "or a valid list",
            id="compare-value-mapping",
        ),
        pytest.param(
            _with_when({"change": "wau", "op": "<", "pct": -40}),
            "overrides[0].when.days",
            "required key is missing",
            id="change-missing-days",
        ),
        pytest.param(
            _with_when({"change": "wau", "days": "month", "op": "<", "pct": -40}),
            "overrides[0].when.days",
            "(got 'month')",
            id="change-days-text",
        ),
        pytest.param(
            _with_when({"change": "wau", "days": 30, "op": "<", "pct": "a lot"}),
            "overrides[0].when.pct",
            "(got 'a lot')",
            id="change-pct-text",
        ),
        pytest.param(
            _with_when({"change": "wau", "days": 30, "op": "<"}),
            "overrides[0].when",
            "exactly one of pct (percent) or delta",
            id="change-without-amount",
        ),
        pytest.param(
            _with_when({"change": "wau", "days": 30, "op": "<", "pct": 1, "window": 2}),
            "overrides[0].when",
            "unknown keys in a change condition: ['window']",
            id="change-unknown-key",
        ),
        pytest.param(
            _with_when({"all": {"metric": "nps", "op": "<", "value": 0}}),
            "overrides[0].when.all",
            "must be a list of conditions",
            id="all-not-a-list",
        ),
        pytest.param(
            _with_when("nps < 0"), "overrides[0].when", "must be a mapping", id="text-condition"
        ),
        pytest.param(
            _card(
                overrides=[
                    {
                        "id": "o",
                        "when": {"overall": True, "op": "<", "value": 1},
                        "then": {"cap": [1]},
                    }
                ]
            ),
            "overrides[0].then.cap",
            "should be a valid number or a valid string (got [1])",
            id="cap-list",
        ),
        pytest.param(
            _card(
                overrides=[
                    {
                        "id": "o",
                        "when": {"overall": True, "op": "<", "value": 1},
                        "then": {"cap": 1, "set": 2},
                    }
                ]
            ),
            "overrides[0].then",
            "exactly one of grade, cap or set",
            id="two-actions",
        ),
        pytest.param(
            _card(
                overrides=[
                    {
                        "id": "o",
                        "when": {"overall": True, "op": "<", "value": 1},
                        "then": {"cap": 1, "why": "x"},
                    }
                ]
            ),
            "overrides[0].then",
            "unknown keys in an action: ['why']",
            id="unknown-action-key",
        ),
        pytest.param(
            _card(
                overrides=[
                    {
                        "id": "o",
                        "when": {"overall": True, "op": "<", "value": 1},
                        "then": {"cap": 1},
                        "expires_on": "soon",
                    }
                ]
            ),
            "overrides[0].expires_on",
            "(got 'soon')",
            id="bad-date",
        ),
        pytest.param(
            _card(assignment=[{"scorecard": "smb"}]),
            "assignment[0].when",
            "required key is missing",
            id="assignment-without-condition",
        ),
        pytest.param(
            _card(
                assignment=[
                    {
                        "scorecard": "smb",
                        "when": {"attribute": ["segment"], "op": "==", "value": "SMB"},
                    }
                ]
            ),
            "assignment[0].when.attribute",
            "valid string",
            id="assignment-attribute-list",
        ),
        pytest.param(["not", "a", "mapping"], "", "must be a mapping", id="not-a-mapping"),
    ],
)
def test_shape_problem(data: Any, path: str, fragment: str) -> None:
    problems = _problems(data)
    assert len(problems) == 1, problems
    assert problems[0].path == path
    assert fragment in problems[0].message


def test_every_shape_problem_is_reported_at_once() -> None:
    data = _card(
        scheme={"type": "ryg", "bands": [{"label": "Red", "below": "x"}, {"label": "G"}]},
        overrides=[{"id": "o", "when": {"change": "wau", "op": "<"}, "then": {"cap": "a", "x": 1}}],
    )
    data["groups"][0]["weight"] = "heavy"
    data["groups"][0]["measures"][0]["map"] = {"levels": [{"label": "A", "score": "x"}]}
    assert sorted(p.path for p in _problems(data)) == [
        f"{M0}.map.levels[0].score",
        "groups[0].weight",
        "overrides[0].then",
        "overrides[0].when",
        "overrides[0].when.days",
        "scheme.bands[0].below",
    ]


def test_invalid_yaml_names_the_line() -> None:
    text = "name: Tiny\ngroups:\n  - id: adoption\n    measures: [\n"
    with pytest.raises(ScorecardError) as exc:
        parse_scorecard_yaml(text)
    [problem] = exc.value.problems
    assert problem.path == ""
    assert problem.message.startswith("not valid YAML (line 5, column 1)")


def test_a_repeated_yaml_key_is_an_error() -> None:
    text = "name: Tiny\ngroups:\n  - id: adoption\n    weight: 1\n    weight: 2\n    measures: []\n"
    with pytest.raises(ScorecardError) as exc:
        parse_scorecard_yaml(text)
    assert exc.value.problems == [
        Problem(
            "",
            "not valid YAML (line 5, column 5): while reading a mapping: "
            "found the key 'weight' twice",
        )
    ]


def test_empty_yaml_is_not_a_scorecard() -> None:
    with pytest.raises(ScorecardError) as exc:
        parse_scorecard_yaml("")
    assert exc.value.problems == [Problem("", "a scorecard must be a mapping of keys to values")]


# --------------------------------------------------------------------------- round trip


RICH: dict[str, Any] = {
    "id": "rich",
    "name": "Rich",
    "description": "Every kind of part",
    "scheme": {"type": "letter"},
    "missing": "fixed",
    "stale": "keep",
    "rollup": "worst",
    "groups": [
        {
            "id": "adoption",
            "label": "Adoption",
            "weight": 35,
            "help": "Use of the product",
            "measures": [
                {
                    "id": "breadth",
                    "metric": "wau",
                    "label": "Breadth",
                    "help": "Active share",
                    "weight": 50,
                    "map": {"linear": [[0.2, 0], [0.5, 50], [0.8, 100]]},
                    "validity_days": 14,
                },
                {
                    "id": "tickets",
                    "metric": "p1",
                    "map": {"bands": [{"max": 0, "score": 100}, {"score": 0}]},
                },
            ],
        },
        {
            "id": "engagement",
            "category": "experience",
            "measures": [
                {
                    "id": "relationship",
                    "metric": "exec_rel",
                    "map": {
                        "levels": [
                            {
                                "label": "Strong",
                                "score": 100,
                                "help": "Sponsor engaged",
                                "value": 2,
                            },
                            {"label": "Weak", "score": 10},
                        ]
                    },
                }
            ],
        },
    ],
    "overrides": [
        {
            "id": "sponsor_left",
            "reason": "Sponsor left",
            "when": {"metric": "sponsor_left", "op": "==", "value": 1},
            "then": {"grade": "F"},
            "expires_after_days": 60,
        },
        {
            "id": "drop",
            "when": {
                "any": [
                    {"change": "wau", "days": 30, "op": "<=", "pct": -40},
                    {"change": "p1", "days": 7, "op": ">", "delta": 3},
                    {"not": {"overall": True, "op": ">=", "value": 20}},
                    {"all": [{"measure": "breadth", "op": "<", "value": 10}]},
                    {"attribute": "region", "op": "in", "value": ["EMEA", "APAC"]},
                ]
            },
            "then": {"cap": 59},
            "starts_on": date(2024, 1, 1),
            "expires_on": date(2025, 1, 1),
        },
        {"id": "reset", "when": {"group": "engagement", "op": "<", "value": 5}, "then": {"set": 0}},
    ],
    "assignment": [
        {"scorecard": "smb", "when": {"attribute": "segment", "op": "==", "value": "SMB"}}
    ],
}


def test_round_trip_through_dict_and_yaml() -> None:
    card = parse_scorecard(RICH)
    assert parse_scorecard(card.to_dict()) == card
    assert parse_scorecard_yaml(card.to_yaml()) == card
    assert card.to_dict()["groups"][0]["measures"][0]["map"] == {
        "linear": [[0.2, 0], [0.5, 50], [0.8, 100]]
    }


def test_fingerprint_is_stable_and_follows_content() -> None:
    card = parse_scorecard(RICH)
    again = parse_scorecard(copy.deepcopy(RICH))
    assert card.fingerprint() == again.fingerprint()
    assert len(card.fingerprint()) == 16
    assert parse_scorecard(card.to_dict()).fingerprint() == card.fingerprint()
    heavier = copy.deepcopy(RICH)
    heavier["groups"][0]["measures"][0]["weight"] = 51
    assert parse_scorecard(heavier).fingerprint() != card.fingerprint()


def test_convenience_views() -> None:
    card = parse_scorecard(RICH)
    assert [m.id for _, m in card.measures] == ["breadth", "tickets", "relationship"]
    assert card.metrics == {"wau", "p1", "exec_rel"}
    assert card.measure("tickets") is card.groups[0].measures[1]
    assert card.measure("nope") is None
    assert card.group("engagement") is card.groups[1]
    assert card.groups[1].title == "engagement"


# --------------------------------------------------------------------------- loading files


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


GOOD_YAML = """\
name: Good
groups:
  - id: adoption
    measures:
      - {id: breadth, metric: wau, map: {linear: [[0.2, 0], [0.8, 100]]}}
"""


def test_load_scorecard_takes_the_id_from_the_file_name(tmp_path: Path) -> None:
    card = load_scorecard(_write(tmp_path, "mid_market.yaml", GOOD_YAML))
    assert (card.id, card.name) == ("mid_market", "Good")


def test_load_scorecard_runs_validation_and_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "weights.yaml", GOOD_YAML.replace("breadth,", "breadth, weight: -1,"))
    with pytest.raises(ScorecardError) as exc:
        load_scorecard(path)
    assert exc.value.source == str(path)
    assert exc.value.problems == [
        Problem(
            "groups[0].measures[0].weight",
            "measure weight -1 is negative; weights must be 0 or more",
        )
    ]


def test_load_scorecard_checks_known_metrics(tmp_path: Path) -> None:
    path = _write(tmp_path, "good.yaml", GOOD_YAML)
    with pytest.raises(ScorecardError) as exc:
        load_scorecard(path, known_metrics={"nps"})
    assert exc.value.problems == [Problem("groups[0].measures[0].metric", "unknown metric 'wau'")]


def test_load_scorecard_on_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScorecardError) as exc:
        load_scorecard(tmp_path / "absent.yaml")
    assert exc.value.problems[0].message.startswith("cannot read ")


def test_load_scorecards_lists_the_bad_files_problems(tmp_path: Path) -> None:
    _write(tmp_path, "good.yaml", GOOD_YAML)
    bad = GOOD_YAML.replace("[[0.2, 0], [0.8, 100]]", "[[0.8, 0], [0.2, 100]]")
    bad = bad.replace("id: adoption", "id: adoption\n    weight: lots")
    _write(tmp_path, "bad.yaml", bad)
    _write(tmp_path, "broken.yaml", "name: [\n")
    with pytest.raises(ScorecardError) as exc:
        load_scorecards(tmp_path)
    assert exc.value.source == str(tmp_path)
    assert [(p.path, p.message) for p in exc.value.problems] == [
        (
            "bad.yaml: groups[0].weight",
            "Input should be a valid number, unable to parse string as a number (got 'lots')",
        ),
        (
            "broken.yaml",
            "not valid YAML (line 2, column 1): while parsing a flow node: expected the node "
            "content, but found '<stream end>'",
        ),
    ]


def test_load_scorecards_reports_semantic_problems_per_file(tmp_path: Path) -> None:
    _write(tmp_path, "good.yaml", GOOD_YAML)
    _write(
        tmp_path, "bad.yaml", GOOD_YAML.replace("[[0.2, 0], [0.8, 100]]", "[[0.8, 0], [0.2, 100]]")
    )
    with pytest.raises(ScorecardError) as exc:
        load_scorecards(tmp_path)
    assert exc.value.problems == [
        Problem(
            "bad.yaml: groups[0].measures[0].map.linear[1]",
            "value 0.2 is below the previous value 0.8; the points must be in strictly "
            "increasing order of value",
        )
    ]


def test_load_scorecards_checks_the_set(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "default.yaml",
        GOOD_YAML
        + "assignment:\n  - {scorecard: smb, when: {attribute: segment, op: '==', value: SMB}}\n",
    )
    _write(tmp_path, "enterprise.yaml", GOOD_YAML)
    with pytest.raises(ScorecardError) as exc:
        load_scorecards(tmp_path)
    assert exc.value.problems == [
        Problem(
            "default: assignment[0].scorecard",
            "assigns to scorecard 'smb', which does not exist (known: 'default', 'enterprise')",
        )
    ]
    _write(tmp_path, "smb.yaml", GOOD_YAML)
    assert sorted(load_scorecards(tmp_path)) == ["default", "enterprise", "smb"]


def test_load_scorecards_flags_an_id_used_twice(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", "id: same\n" + GOOD_YAML)
    _write(tmp_path, "b.yaml", "id: same\n" + GOOD_YAML)
    with pytest.raises(ScorecardError) as exc:
        load_scorecards(tmp_path)
    assert exc.value.problems == [Problem("b.yaml: id", "scorecard id 'same' is used twice")]


def test_load_scorecards_on_an_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(ScorecardError) as exc:
        load_scorecards(tmp_path)
    assert exc.value.problems == [Problem("", f"no *.yaml scorecard in folder {tmp_path}")]
