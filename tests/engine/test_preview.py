"""The designer's engine: fast re-scoring (engine.rescore) and the preview (engine.preview).

The fast path must give exactly engine.scoring.score's numbers, so most tests compare the two
on the shipped sample and on a small generated demo, for drafts that change every part of a
scorecard. The preview's frames are checked on tiny hand-made score frames.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from engine import io
from engine.explain import explain_change
from engine.preview import (
    NO_SCORE,
    band_order,
    baseline,
    compare,
    compare_versions,
    describe_condition,
    diff,
    effective_weights,
    labels_of,
    preview_draft,
    reasons,
)
from engine.rescore import (
    LEAN,
    affected_accounts,
    change_windows,
    measure_cache,
    prepare,
    rescore,
    rescore_draft,
    with_draft,
)
from engine.scorecard import Scorecard, load_scorecards, parse_scorecard
from engine.scoring import score, score_detail
from engine.validate import validate

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample"
AS_OF = date(2026, 11, 2)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def cards() -> dict[str, Scorecard]:
    return load_scorecards(ROOT / "data" / "scorecards")


@pytest.fixture(scope="module")
def sample() -> tuple[pl.DataFrame, pl.DataFrame]:
    return io.read_accounts(SAMPLE / "accounts.csv"), io.read_metric_values(
        SAMPLE / "metric_values.csv"
    )


@pytest.fixture(scope="module")
def manual() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "account_id": ["ACC-003", "ACC-010"],
            "action": ["grade", "cap"],
            "value": ["Red", "40"],
            "reason": ["churn signal", "escalation"],
            "author": ["ops", "ops"],
            "created_on": [date(2026, 10, 1), date(2026, 10, 1)],
            "expires_on": [None, None],
        },
        schema_overrides={"expires_on": pl.Date},
    )


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engine import demo, store

    path = tmp_path_factory.mktemp("preview-demo") / "demo.duckdb"
    demo.build(
        path, n_accounts=160, weeks=6, scorecards=ROOT / "data" / "scorecards", backfill=False
    )
    store.close(path)
    return path


@pytest.fixture(scope="module")
def demo_inputs(demo_db: Path) -> dict[str, object]:
    """What the designer reads from a store: accounts, the latest values at the as-of date and
    at each change window, manual overrides and product ARR."""
    from engine import store

    con = store.connect(demo_db)
    from engine.history import scorecard_set

    cset = scorecard_set(con)
    _, as_of = store.metric_date_range(con)
    assert as_of is not None
    windows = sorted(change_windows(cset.cards.values()))
    frames = [store.latest_metric_values(con, as_of)]
    frames += [store.latest_metric_values(con, as_of - timedelta(days=d)) for d in windows]
    out = {
        "cards": cset.cards,
        "as_of": as_of,
        "windows": windows,
        "accounts": store.load_accounts(con, active_on=as_of),
        "metrics": pl.concat(frames, how="diagonal_relaxed"),
        "history": store.load_metric_values(con, end=as_of),
        "products": store.load_products(con),
    }
    store.close(demo_db)
    return out


@pytest.fixture(scope="module")
def demo(demo_inputs):  # type: ignore[no-untyped-def]
    """(prepared values, the active scorecards) of the generated demo."""
    d = demo_inputs
    prepared = prepare(
        d["accounts"],
        d["metrics"],
        d["as_of"],
        d["cards"],
        windows=d["windows"],
        product_arr=d["products"],
    )
    return prepared, d["cards"]


def _with_group_weight(card: Scorecard, group_id: str, weight: float) -> Scorecard:
    groups = tuple(
        g.model_copy(update={"weight": weight}) if g.id == group_id else g for g in card.groups
    )
    return card.model_copy(update={"groups": groups})


def _edit(card: Scorecard, fn) -> Scorecard:  # type: ignore[no-untyped-def]
    """A draft made through the file shape, as the designer makes it."""
    data = card.to_dict()
    fn(data)
    return parse_scorecard(data)


DRAFTS = {
    "group weight": lambda d: d["groups"][2].update(weight=70),
    "measure weight": lambda d: d["groups"][0]["measures"][0].update(weight=5),
    "all weights zero but one": lambda d: [g.update(weight=0) for g in d["groups"][1:]],
    "linear points": lambda d: d["groups"][2]["measures"][0].update(
        map={"linear": [[0.1, 0], [0.4, 60], [0.6, 100]]}
    ),
    "bands": lambda d: d["groups"][0]["measures"][2].update(
        map={"bands": [{"max": 1, "score": 20}, {"max": 3, "score": 80}, {"score": 100}]}
    ),
    "validity": lambda d: d["groups"][1]["measures"][3].update(validity_days=20),
    "grade bands": lambda d: d.update(
        scheme={
            "type": "ryg",
            "bands": [
                {"label": "Red", "below": 60},
                {"label": "Yellow", "below": 80},
                {"label": "Green"},
            ],
        }
    ),
    "letter scheme": lambda d: (
        d.update(scheme={"type": "letter"}),
        [o["then"].update(grade="F") for o in d["overrides"] if "grade" in o["then"]],
    ),
    "numeric scheme": lambda d: (
        d.update(scheme={"type": "numeric", "bands": []}),
        [o.update(then={"cap": 40}) for o in d["overrides"] if "grade" in o["then"]],
    ),
    "missing zero": lambda d: d.update(missing="zero"),
    "missing fixed": lambda d: d.update(missing="fixed"),
    "stale keep": lambda d: d.update(stale="keep"),
    "rollup worst": lambda d: d.update(rollup="worst"),
    "override added": lambda d: d["overrides"].append(
        {
            "id": "low_nps",
            "reason": "NPS below -20",
            "when": {"metric": "nps", "op": "<", "value": -20},
            "then": {"cap": 45},
        }
    ),
    "override on group": lambda d: d["overrides"].append(
        {
            "id": "weak_adoption",
            "when": {
                "all": [
                    {"group": "adoption", "op": "<", "value": 40},
                    {"attribute": "segment", "op": "==", "value": "Mid-Market"},
                ]
            },
            "then": {"grade": "Red"},
        }
    ),
    "override removed": lambda d: d.update(overrides=[]),
    "new change window": lambda d: d["overrides"].append(
        {
            "id": "depth_drop",
            "when": {"change": "feature_depth", "days": 14, "op": "<=", "pct": -20},
            "then": {"grade": "Yellow"},
        }
    ),
    "assignment reordered": lambda d: d.update(assignment=list(reversed(d["assignment"]))),
    "assignment dropped": lambda d: d.update(assignment=d["assignment"][:1]),
}


# --------------------------------------------------------------------------- rescore == score


def test_rescore_equals_score_on_the_sample(cards, sample, manual) -> None:
    accounts, metrics = sample
    prepared = prepare(accounts, metrics, AS_OF, cards, manual_overrides=manual)
    expected = score(accounts, metrics, cards, AS_OF, manual_overrides=manual)
    assert_frame_equal(rescore(prepared, cards).company, expected)


def test_rescore_detail_equals_score_detail(cards, sample, manual) -> None:
    accounts, metrics = sample
    prepared = prepare(accounts, metrics, AS_OF, cards, manual_overrides=manual)
    got = rescore(prepared, cards, detail=True)
    want = score_detail(accounts, metrics, cards, AS_OF, manual_overrides=manual)
    assert_frame_equal(got.company, want.company)
    assert_frame_equal(got.products, want.products)
    assert_frame_equal(got.contributions, want.contributions)


@pytest.mark.parametrize("name", sorted(DRAFTS))
def test_a_draft_rescored_from_prepared_values_equals_a_full_score(
    name, cards, sample, manual
) -> None:
    accounts, metrics = sample
    draft = _edit(cards["default"], DRAFTS[name])
    assert validate(draft) == []
    prepared = prepare(accounts, metrics, AS_OF, cards, manual_overrides=manual)
    base = rescore(prepared, cards).company
    after = with_draft(cards, draft)
    expected = score(accounts, metrics, after, AS_OF, manual_overrides=manual)
    assert_frame_equal(rescore(prepared, after).company, expected)
    assert_frame_equal(rescore_draft(prepared, cards, base, draft), expected)


@pytest.mark.parametrize(
    "name", ["group weight", "linear points", "override added", "missing fixed"]
)
def test_drafts_of_other_scorecards_rescore_only_their_accounts(name, cards, sample) -> None:
    accounts, metrics = sample
    prepared = prepare(accounts, metrics, AS_OF, cards)
    base = rescore(prepared, cards).company
    draft = _edit(cards["enterprise"], DRAFTS[name])
    ids = affected_accounts(cards, base, draft)
    assert ids is not None
    assert set(ids.to_list()) == set(base.filter(pl.col("scorecard") == "enterprise")["account_id"])
    expected = score(accounts, metrics, with_draft(cards, draft), AS_OF)
    assert_frame_equal(rescore_draft(prepared, cards, base, draft), expected)


def test_a_default_draft_with_new_assignment_rules_affects_everybody(cards, sample) -> None:
    accounts, metrics = sample
    base = rescore(prepare(accounts, metrics, AS_OF), cards).company
    same = _edit(cards["default"], DRAFTS["group weight"])
    moved = _edit(cards["default"], DRAFTS["assignment dropped"])
    assert affected_accounts(cards, base, same) is not None
    assert affected_accounts(cards, base, moved) is None


def test_rescore_matches_score_on_a_demo_with_products(cards, demo_inputs) -> None:
    d = demo_inputs
    cset = d["cards"]
    products = d["products"]
    prepared = prepare(
        d["accounts"], d["metrics"], d["as_of"], cset, windows=d["windows"], product_arr=products
    )
    base = rescore(prepared, cset).company
    # The latest values are exactly what scoring the whole history reads.
    full = score(d["accounts"], d["history"], cset, d["as_of"], product_arr=products)
    assert_frame_equal(base, full)
    for name in ("group weight", "rollup worst", "stale keep", "override on group"):
        draft = _edit(cset["default"], DRAFTS[name])
        expected = score(
            d["accounts"], d["history"], with_draft(cset, draft), d["as_of"], product_arr=products
        )
        assert_frame_equal(rescore_draft(prepared, cset, base, draft), expected)


def test_values_prepared_for_some_windows_refuse_a_new_one(cards, demo_inputs) -> None:
    d = demo_inputs
    prepared = prepare(d["accounts"], d["metrics"], d["as_of"], windows=d["windows"])
    draft = _edit(d["cards"]["default"], DRAFTS["new change window"])
    assert prepared.covers(d["cards"].values())
    assert not prepared.covers([draft])
    with pytest.raises(ValueError, match="change windows"):
        rescore(prepared, with_draft(d["cards"], draft))
    # The whole history covers every window.
    full = prepare(d["accounts"], d["history"], d["as_of"])
    assert full.covers([draft])


def test_a_draft_reading_another_metric_is_pivoted_again(cards, sample) -> None:
    accounts, metrics = sample
    prepared = prepare(accounts, metrics, AS_OF, cards)
    draft = _edit(
        cards["default"],
        lambda d: d["overrides"].append(
            {"id": "x", "when": {"metric": "csat", "op": "<", "value": 3.5}, "then": {"set": 10}}
        ),
    )
    draft = _edit(draft, lambda d: d["groups"][1]["measures"].pop(4))  # csat read only by the rule
    expected = score(accounts, metrics, with_draft(cards, draft), AS_OF)
    assert_frame_equal(rescore(prepared, with_draft(cards, draft)).company, expected)


# --------------------------------------------------------------------------- compare


def _scores(rows: list[tuple[str, str, float | None, str | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "account_id": [r[0] for r in rows],
            "scorecard": [r[1] for r in rows],
            "score": [r[2] for r in rows],
            "grade": [r[3] for r in rows],
            "overrides": [[] for _ in rows],
        },
        schema={
            "account_id": pl.Utf8,
            "scorecard": pl.Utf8,
            "score": pl.Float64,
            "grade": pl.Utf8,
            "overrides": pl.List(pl.Utf8),
        },
    )


GRADES = ["Red", "Yellow", "Green"]


def test_compare_counts_distribution_transitions_and_moves() -> None:
    base = _scores(
        [
            ("a", "d", 40, "Red"),
            ("b", "d", 60, "Yellow"),
            ("c", "d", 80, "Green"),
            ("e", "d", None, None),
        ]
    )
    draft = _scores(
        [
            ("a", "d", 55, "Yellow"),
            ("b", "d", 45, "Red"),
            ("c", "d", 81, "Green"),
            ("e", "d", 30, "Red"),
        ]
    )
    accounts = pl.DataFrame(
        {
            "account_id": ["a", "b", "c", "e"],
            "name": ["A", "B", "C", "E"],
            "arr": [100.0, 200.0, 300.0, 50.0],
        }
    )
    pv = compare(base, draft, accounts, grades=GRADES)
    assert pv.grades == ("Red", "Yellow", "Green", NO_SCORE)
    dist = {r["grade"]: r for r in pv.distribution.iter_rows(named=True)}
    assert (dist["Red"]["accounts_before"], dist["Red"]["accounts_after"]) == (1, 2)
    assert (dist["Red"]["arr_before"], dist["Red"]["arr_after"]) == (100.0, 250.0)
    assert (dist[NO_SCORE]["accounts_before"], dist[NO_SCORE]["accounts_after"]) == (1, 0)
    assert pv.transitions.height == 16  # every pair, zeros included
    assert pv.matrix()[0][1] == 1  # Red -> Yellow
    assert pv.matrix("arr")[1][0] == 200.0  # Yellow -> Red
    assert pv.matrix()[2][2] == 1  # Green stays
    ch = {r["account_id"]: r for r in pv.changes.iter_rows(named=True)}
    assert set(ch) == {"a", "b", "e"}
    assert ch["a"]["direction"] == "up" and ch["b"]["direction"] == "down"
    assert ch["e"]["direction"] == "up"  # a first score is news, listed as a move
    assert pv.changes["account_id"].to_list() == ["b", "a", "e"]  # by ARR
    s = pv.summary
    assert (s.changed, s.up, s.down) == (3, 2, 1)
    assert s.arr_changed == 350.0 and s.arr_down == 200.0
    assert s.mean_before == pytest.approx(60.0) and s.mean_after == pytest.approx(
        (55 + 45 + 81 + 30) / 4
    )
    assert s.score_changed == 3  # a, b, c (e had no score before)
    hist = {r["bin"]: r for r in pv.histogram.iter_rows(named=True)}
    assert hist[40]["accounts_before"] == 1 and hist[55]["accounts_after"] == 1
    assert pv.histogram["accounts_before"].sum() == 3


def test_a_score_of_100_lands_in_the_top_bin_and_edges_belong_above() -> None:
    base = _scores([("a", "d", 100.0, "Green"), ("b", "d", 0.0, "Red")])
    pv = compare(base, base, grades=GRADES)
    hist = {r["bin"]: r["accounts_before"] for r in pv.histogram.iter_rows(named=True)}
    assert hist[95] == 1 and hist[0] == 1
    assert pv.changes.height == 0 and pv.summary.changed == 0


def test_unbanded_grades_are_grouped_by_tens() -> None:
    base = _scores([("a", "d", 72.4, "72"), ("b", "d", 79.6, "80")])
    draft = _scores([("a", "d", 68.0, "68"), ("b", "d", 79.9, "80")])
    pv = compare(base, draft, grades=[])
    assert pv.grades == ("60-69", "70-79")
    assert pv.changes["account_id"].to_list() == ["a"]
    assert pv.changes["direction"].to_list() == ["down"]


# --------------------------------------------------------------------------- reasons


def test_reasons_name_the_group_that_moved_and_add_up(demo) -> None:
    prepared, cards = demo
    base = baseline(prepared, cards)
    draft = _with_group_weight(cards["default"], "adoption", 1000)
    pv = preview_draft(base, draft)
    assert pv.summary.changed > 0
    assert pv.reasons.height == pv.changes.height
    joined = pv.changes.join(pv.reasons, on="account_id")
    for row in joined.iter_rows(named=True):
        assert row["explained"] == pytest.approx(row["change"], abs=1e-9)
        assert "(weights" in row["reason"]
    assert any(r.startswith("Adoption ") for r in joined["reason"].to_list())


def test_reasons_are_the_same_with_or_without_a_stored_base_detail(demo) -> None:
    prepared, cards = demo
    draft = _with_group_weight(cards["default"], "roi", 500)
    with_detail = preview_draft(baseline(prepared, cards), draft)
    without = preview_draft(baseline(prepared, cards, detail_up_to=0), draft)
    assert baseline(prepared, cards, detail_up_to=0).detail is None
    assert with_detail.reasons.height > 0
    assert_frame_equal(with_detail.reasons, without.reasons)
    assert_frame_equal(with_detail.changes, without.changes)


def test_reasons_name_an_override_that_starts_to_fire(demo) -> None:
    prepared, cards = demo
    draft = _edit(
        cards["default"],
        lambda d: d["overrides"].append(
            {
                "id": "all_red",
                "reason": "test",
                "when": {"overall": True, "op": ">=", "value": 0},
                "then": {"grade": "Red"},
            }
        ),
    )
    pv = preview_draft(baseline(prepared, cards), draft)
    assert pv.summary.changed > 0 and pv.summary.up == 0
    assert all("all_red (test) now applies" in r for r in pv.reasons["reason"].to_list())
    assert all("overrides −" in r for r in pv.reasons["reason"].to_list())


def test_reasons_say_when_only_the_bands_moved() -> None:
    changes = pl.DataFrame(
        {
            "account_id": ["a"],
            "scorecard_before": ["d"],
            "scorecard_after": ["d"],
            "score_before": [62.0],
            "score_after": [62.0],
            "overrides_before": [[]],
            "overrides_after": [[]],
        },
        schema_overrides={
            "overrides_before": pl.List(pl.Utf8),
            "overrides_after": pl.List(pl.Utf8),
        },
    )
    parts = pl.DataFrame(
        schema={
            "account_id": pl.Utf8,
            "kind": pl.Utf8,
            "product": pl.Utf8,
            "group": pl.Utf8,
            "measure": pl.Utf8,
            "amount": pl.Float64,
        }
    )
    out = reasons(changes, parts)
    assert out["reason"].to_list() == ["grade bands moved (score unchanged)"]


def test_reasons_match_explain_change_of_full_details(demo_inputs, demo) -> None:
    prepared, cards = demo
    d = demo_inputs
    draft = _edit(cards["default"], DRAFTS["linear points"])
    pv = preview_draft(baseline(prepared, cards), draft)
    assert pv.summary.changed > 0
    kw = {"product_arr": d["products"]}
    before = score_detail(d["accounts"], d["history"], cards, d["as_of"], **kw)
    after = score_detail(d["accounts"], d["history"], with_draft(cards, draft), d["as_of"], **kw)
    parts = explain_change(before, after)
    want = reasons(pv.changes, parts, labels_of([draft, *cards.values()]))
    assert_frame_equal(pv.reasons, want)


# --------------------------------------------------------------------------- versions


def test_diff_lists_weights_shares_maps_bands_overrides_and_rules(cards) -> None:
    a = cards["default"]
    b = _edit(a, DRAFTS["group weight"])
    b = _edit(b, DRAFTS["linear points"])
    b = _edit(b, DRAFTS["grade bands"])
    b = _edit(b, DRAFTS["override added"])
    b = _edit(b, DRAFTS["assignment reordered"])
    b = _edit(b, DRAFTS["missing zero"])
    d = diff(a, b)
    rows = {(r["section"], r["item"], r["field"]): r for r in d.iter_rows(named=True)}
    assert rows[("group", "Adoption", "weight")]["change"] == pytest.approx(35.0)
    assert rows[("group", "Adoption", "weight")]["before"] == "35"
    assert ("measure", "Weekly active users", "share %") in rows
    assert (
        rows[("measure", "Weekly active users", "map")]["after"] == "linear 0.1→0, 0.4→60, 0.6→100"
    )
    assert rows[("grading", "Red", "below")]["change"] == pytest.approx(10.0)
    assert rows[("override", "low_nps", "rule")]["before"] == "absent"
    assert "metric nps < -20" in rows[("override", "low_nps", "rule")]["after"]
    assert ("assignment", "rules", "order") in rows
    assert rows[("settings", "scorecard", "missing")]["after"] == "zero"
    assert diff(a, a).height == 0


def test_effective_weights_sum_to_100(cards) -> None:
    eff = effective_weights(cards["default"])
    assert sum(eff.values()) == pytest.approx(100.0)
    assert eff["breadth"] == pytest.approx(100 * 35 / 100 * 40 / 100)


def test_compare_versions_is_the_preview_of_one_against_the_other(demo) -> None:
    prepared, cards = demo
    v1 = cards["default"]
    v2 = _with_group_weight(v1, "adoption", 1000)
    pv = compare_versions(prepared, cards, v1, v2)
    direct = preview_draft(baseline(prepared, cards), v2)
    assert pv.summary.changed > 0
    assert_frame_equal(pv.transitions, direct.transitions)
    assert compare_versions(prepared, cards, v2, v2).summary.changed == 0


def test_conditions_read_as_words(cards) -> None:
    texts = [describe_condition(o.when) for o in cards["default"].overrides]
    assert texts[0] == "metric sponsor_left == 1"
    assert texts[1] == "weekly_active_user_share changed <= -40% in 30 days"
    rule = parse_scorecard(
        {
            **cards["default"].to_dict(),
            "overrides": [
                {
                    "id": "x",
                    "when": {
                        "any": [
                            {"attribute": "segment", "op": "in", "value": ["SMB", "Mid-Market"]},
                            {"not": {"overall": True, "op": ">", "value": 50}},
                        ]
                    },
                    "then": {"set": 10},
                }
            ],
        }
    ).overrides[0]
    assert describe_condition(rule.when) == (
        "(attribute segment in [SMB, Mid-Market] or not (overall score > 50))"
    )


def test_band_order_lists_labels_worst_first(cards) -> None:
    letters = _edit(cards["default"], DRAFTS["letter scheme"])
    assert band_order([letters, cards["default"]]) == [
        "F",
        "D",
        "C",
        "B",
        "A",
        "Red",
        "Yellow",
        "Green",
    ]


# --------------------------------------------------------------------------- measure cache


def _random_draft(card: Scorecard, rng: random.Random, *, weights_only: bool) -> Scorecard:
    """The same scorecard with random weights (some 0, never all 0) and, unless
    ``weights_only``, random measure maps, validity, grade bands and an extra override."""
    data = card.to_dict()
    for g in data["groups"]:
        g["weight"] = float(rng.choice([0, 1, 5, 15, 40]))
        ws = [float(rng.choice([0, 0.5, 1, 3, 7, 20, 35, 60])) for _ in g["measures"]]
        if not any(ws):
            ws[0] = 1.0
        for m, w in zip(g["measures"], ws, strict=True):
            m["weight"] = w
    if not any(g["weight"] for g in data["groups"]):
        data["groups"][0]["weight"] = 10.0
    if weights_only:
        return parse_scorecard(data)
    for g in data["groups"]:
        for m in g["measures"]:
            mp = m["map"]
            if "linear" in mp and rng.random() < 0.4:
                pts = mp["linear"]
                shift = rng.choice([-0.5, 0.8, 1.25])
                mp["linear"] = [[x * shift if shift > 0 else x + shift, y] for x, y in pts]
                if shift < 0:
                    mp["linear"] = [[x + shift, y] for x, y in pts]
            if rng.random() < 0.2:
                m["validity_days"] = rng.choice([3, 10, 60])
    red, yellow = sorted(rng.sample(range(30, 90), 2))
    data["scheme"]["bands"][0]["below"] = red
    data["scheme"]["bands"][1]["below"] = yellow
    data["overrides"].append(
        rng.choice(
            [
                {
                    "id": "extra",
                    "when": {"measure": "breadth", "op": "<", "value": 40},
                    "then": {"cap": 65},
                },
                {
                    "id": "extra",
                    "when": {"group": "roi", "op": ">=", "value": 70},
                    "then": {"grade": "Green"},
                },
                {
                    "id": "extra",
                    "when": {"metric": "nps", "op": "<", "value": 0},
                    "then": {"set": 20},
                },
            ]
        )
    )
    if rng.random() < 0.5:
        data["overrides"] = data["overrides"][1:]  # drop the first rule
    return parse_scorecard(data)


def _lean(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(LEAN).sort("account_id")


BASE_VARIANTS = {
    "as shipped": lambda d: None,
    "rollup worst": DRAFTS["rollup worst"],
    "rollup mean": lambda d: d.update(rollup="mean"),
    "missing zero": DRAFTS["missing zero"],
    "missing fixed": DRAFTS["missing fixed"],
    "stale keep": DRAFTS["stale keep"],
    "score overrides": lambda d: d["overrides"].extend(
        [
            {
                "id": "weak_adoption",
                "when": {
                    "all": [
                        {"group": "adoption", "op": "<", "value": 45},
                        {"attribute": "segment", "op": "!=", "value": "SMB"},
                    ]
                },
                "then": {"grade": "Red"},
            },
            {"id": "floor", "when": {"overall": True, "op": "<", "value": 30}, "then": {"set": 30}},
            {
                "id": "low_depth",
                "when": {"measure": "depth", "op": "<", "value": 20},
                "then": {"cap": 70},
            },
        ]
    ),
}


@pytest.mark.parametrize("weights_only", [True, False], ids=["weights", "any supported edit"])
@pytest.mark.parametrize("variant", sorted(BASE_VARIANTS))
def test_the_measure_cache_equals_a_full_score(variant, weights_only, demo_inputs) -> None:
    d = demo_inputs
    cset = dict(d["cards"])
    cset["default"] = _edit(cset["default"], BASE_VARIANTS[variant])
    manual = pl.DataFrame(
        {
            "account_id": d["accounts"]["account_id"].head(3).to_list(),
            "action": ["grade", "cap", "set"],
            "value": ["Green", "35", "12.5"],
            "reason": ["r"] * 3,
            "author": ["ops"] * 3,
            "created_on": [d["as_of"] - timedelta(days=5)] * 3,
            "expires_on": [None] * 3,
        },
        schema_overrides={"expires_on": pl.Date},
    )
    kw = {"product_arr": d["products"], "manual_overrides": manual}
    prepared = prepare(d["accounts"], d["metrics"], d["as_of"], cset, windows=d["windows"], **kw)
    base = rescore(prepared, cset).company
    cache = measure_cache(prepared, cset, "default")
    assert cache.multi.any()  # some accounts have several products
    rng = random.Random(f"{variant}/{weights_only}")
    for _ in range(5):
        draft = _random_draft(cset["default"], rng, weights_only=weights_only)
        assert cache.supports(draft)
        expected = score(d["accounts"], d["history"], with_draft(cset, draft), d["as_of"], **kw)
        mine = _lean(expected.filter(pl.col("scorecard") == "default"))
        assert_frame_equal(cache.rescore(draft), mine, abs_tol=1e-9, rel_tol=0)
        whole = rescore_draft(prepared, cset, base, draft, cache=cache)
        assert_frame_equal(whole, _lean(expected), abs_tol=1e-9, rel_tol=0)


@pytest.mark.parametrize(
    "name",
    ["missing zero", "stale keep", "rollup worst", "assignment dropped", "new change window"],
)
def test_the_measure_cache_leaves_other_edits_to_the_full_path(name, cards, sample) -> None:
    accounts, metrics = sample
    prepared = prepare(accounts, metrics, AS_OF, cards)
    cache = measure_cache(prepared, cards, "default")
    draft = _edit(cards["default"], DRAFTS[name])
    assert not cache.supports(draft)
    with pytest.raises(ValueError, match="re-score it in full"):
        cache.rescore(draft)
    if name == "new change window":
        return  # needs values the sample frame holds (full history): checked elsewhere
    base = rescore(prepared, cards).company
    full = rescore_draft(prepared, cards, base, draft, cache=cache)
    assert_frame_equal(full, score(accounts, metrics, with_draft(cards, draft), AS_OF))


def test_previews_through_the_cache_match_the_full_path(demo) -> None:
    prepared, cards = demo
    for draft in (
        _with_group_weight(cards["default"], "adoption", 400),
        _edit(cards["default"], DRAFTS["linear points"]),
        _edit(cards["default"], DRAFTS["grade bands"]),
    ):
        fast = preview_draft(baseline(prepared, cards), draft)
        slow = compare(
            rescore(prepared, cards).company,
            rescore(prepared, with_draft(cards, draft)).company,
            prepared.accounts,
            grades=band_order([draft, *cards.values()]),
        )
        assert fast.summary.changed > 0
        assert_frame_equal(fast.changes, slow.changes, abs_tol=1e-9, rel_tol=0)
        assert_frame_equal(fast.transitions, slow.transitions)
