"""SQL metric definitions: the file, hand-computed metrics over tiny source tables, and broken
queries reported by metric id with DuckDB's message and nothing written."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from engine import metrics, store
from engine.metrics import MetricQueryError, load_definitions, parse_definitions
from engine.problems import InputError
from engine.scorecard import load_scorecards

ROOT = Path(__file__).resolve().parents[2]
D = date(2024, 6, 30)

CONTRACT_METRICS = {
    "licence_activation",
    "onboarding_milestones",
    "integrations_live",
    "weekly_active_user_share",
    "feature_depth",
    "sticky_feature_usage",
    "exec_sponsor_meetings_90d",
    "stakeholders_engaged_90d",
    "days_since_last_ebr",
    "nps",
    "csat",
    "executive_relationship",
    "success_plan_outcomes_verified",
    "open_escalations",
    "p1_tickets_90d",
    "sponsor_left",
}


def test_the_file_defines_every_metric_of_the_contract_and_the_scorecards() -> None:
    defs = load_definitions()
    assert set(defs) == CONTRACT_METRICS
    assert all(d.sql for d in defs.values())
    used = set().union(*(c.metrics for c in load_scorecards(ROOT / "data" / "scorecards").values()))
    assert used <= set(defs)
    assert defs["executive_relationship"].levels == ("Strong", "Neutral", "Weak")
    assert defs["nps"].range == (-100, 100)
    assert metrics.known_metrics() == set(defs)


def test_parse_reports_every_problem_at_once() -> None:
    data = {
        "metrics": [
            {"id": "ok", "sql": "SELECT 1"},
            {"id": "ok", "level": "galaxy"},
            {"id": "bad id"},
            {"id": "r", "range": [5, 1], "colour": "red"},
            "nope",
        ]
    }
    with pytest.raises(InputError) as err:
        parse_definitions(data, source="m.yaml")
    text = str(err.value)
    for part in (
        "defined twice",
        "must be product or company",
        "a metric id must be a name",
        "must be [min, max]",
        "unknown keys ['colour']",
        "a metric must be a mapping",
    ):
        assert part in text, part


@pytest.fixture
def tiny(tmp_path: Path):
    """One account with hand-made sources, customer since 2023-01-01."""
    path = tmp_path / "m.duckdb"
    con = store.cursor(path)
    acc = pl.DataFrame(
        {
            "account_id": ["a", "b"],
            "name": ["A", "B"],
            "arr": [1.0, 1.0],
            "customer_since": [date(2023, 1, 1), date(2024, 7, 1)],
        }
    )
    ent = pl.DataFrame(
        {
            "account_id": ["a", "a"],
            "product": ["Core", "Analytics"],
            "start_date": [date(2023, 1, 1), date(2024, 6, 1)],
            "licences": [10, 4],
            "core_features": [12, 12],
        }
    )
    usage = pl.DataFrame(
        {
            "account_id": ["a", "a", "a"],
            "product": ["Core", "Core", "Analytics"],
            "week_ending": [D - timedelta(days=7), D, D - timedelta(days=2)],
            "activated_users": [6, 8, 4],
            "active_users": [3, 5, 0],
            "sticky_users": [1, 2, 0],
            "features_used_30d": [3, 6, 1],
        }
    )
    tp = pl.DataFrame(
        {
            "account_id": ["a"] * 5,
            "date": [
                D - timedelta(days=90),
                D - timedelta(days=89),
                D,
                D - timedelta(days=200),
                D - timedelta(days=10),
            ],
            "type": ["call", "ebr", "call", "ebr", "training"],
            "persona": ["executive", "executive", "champion", "executive", "end_user"],
            "contact_id": ["c1", "c1", "c2", "c9", "c3"],
            "csm": ["x"] * 5,
        }
    )
    tickets = pl.DataFrame(
        {
            "ticket_id": ["t1", "t2", "t3", "t4"],
            "account_id": ["a"] * 4,
            "product": ["Core"] * 4,
            "opened_on": [
                D - timedelta(days=5),
                D - timedelta(days=40),
                D - timedelta(days=91),
                D - timedelta(days=3),
            ],
            "closed_on": [None, D, D - timedelta(days=80), D - timedelta(days=1)],
            "priority": ["P1", "P2", "P1", "P1"],
            "escalated": [True, True, False, True],
        }
    )
    surveys = pl.DataFrame(
        {
            "account_id": ["a"] * 6,
            "contact_id": ["c1", "c2", "c3", "c4", "c1", "c2"],
            "responded_on": [D - timedelta(days=20)] * 4
            + [D - timedelta(days=5), D - timedelta(days=95)],
            "kind": ["nps", "nps", "nps", "nps", "csat", "csat"],
            "score": [10, 9, 7, 3, 4, 1],
        }
    )
    plans = pl.DataFrame(
        {
            "account_id": ["a"] * 4,
            "plan_id": ["p"] * 4,
            "outcome": ["o1", "o2", "o3", "o4"],
            "created_on": [date(2024, 1, 1)] * 3 + [D + timedelta(days=1)],
            "due_on": [date(2024, 12, 1)] * 4,
            "verified_on": [date(2024, 3, 1), D, None, None],
        }
    )
    ratings = pl.DataFrame(
        {
            "account_id": ["a"],
            "rated_on": [D - timedelta(days=30)],
            "dimension": ["executive_relationship"],
            "rating": ["Strong"],
            "comment": ["great"],
            "csm": ["x"],
        }
    )
    sponsors = pl.DataFrame(
        {
            "account_id": ["a"],
            "changed_on": [D - timedelta(days=3)],
            "change": ["left"],
            "contact_id": ["c1"],
        }
    )
    miles = pl.DataFrame(
        {
            "account_id": ["a"] * 3,
            "product": ["Core"] * 3,
            "milestone": ["m1", "m2", "m3"],
            "completed_on": [date(2023, 2, 1), D, None],
        }
    )
    ints = pl.DataFrame(
        {
            "account_id": ["a"] * 3,
            "product": ["Core"] * 3,
            "integration": ["x", "y", "z"],
            "live_on": [date(2023, 5, 1), date(2023, 6, 1), D + timedelta(days=1)],
            "retired_on": [None, D, None],
        }
    )
    with store.transaction(con):
        for name, frame in (
            ("accounts", acc),
            ("entitlements", ent),
            ("usage_weekly", usage),
            ("touchpoints", tp),
            ("tickets", tickets),
            ("surveys", surveys),
            ("success_plan_outcomes", plans),
            ("csm_ratings", ratings),
            ("sponsor_changes", sponsors),
            ("onboarding_milestones", miles),
            ("integrations", ints),
        ):
            store.append(con, name, frame)
    yield con
    store.close(path)


def _value(frame: pl.DataFrame, metric: str, product: str | None = None, as_of: date = D):
    rows = frame.filter((pl.col("metric") == metric) & (pl.col("as_of") == as_of))
    rows = rows.filter(
        pl.col("product").is_null() if product is None else pl.col("product") == product
    )
    assert rows.height == 1, (metric, rows)
    return rows.row(0, named=True)


def test_hand_computed_metrics(tiny) -> None:
    got = metrics.compute_metrics(tiny, [D])
    assert set(got.get_column("account_id")) == {"a"}  # b is not a customer yet
    v = lambda m, p=None: _value(got, m, p)["value"]  # noqa: E731
    assert v("licence_activation", "Core") == 0.8  # 8 of 10 licences, latest week
    assert v("licence_activation", "Analytics") == 1.0  # 4 of 4 (week ending 2 days before)
    assert v("weekly_active_user_share", "Core") == 0.5
    assert v("feature_depth", "Core") == 0.5
    assert v("sticky_feature_usage", "Core") == 0.4
    assert _value(got, "sticky_feature_usage", "Core")["source"] == "sql"
    assert got.filter(
        (pl.col("metric") == "sticky_feature_usage") & (pl.col("product") == "Analytics")
    ).is_empty()
    assert v("onboarding_milestones", "Core") == pytest.approx(2 / 3)  # completed on D counts
    assert v("integrations_live", "Core") == 1.0  # y retired on D, z not live yet
    assert v("integrations_live", "Analytics") == 0.0
    # 90-day window is (D - 90, D]: the call exactly 90 days before is out
    assert v("exec_sponsor_meetings_90d") == 1.0
    assert v("stakeholders_engaged_90d") == 3.0  # c1, c2, c3
    assert v("days_since_last_ebr") == 89.0
    assert v("open_escalations") == 1.0  # t1 open; t2 closed on D; t4 closed
    assert v("p1_tickets_90d") == 2.0  # t1, t4 (t3 opened 91 days before)
    assert v("csat") == 4.0  # the answer 95 days before is out of the window
    assert v("success_plan_outcomes_verified") == pytest.approx(2 / 3)  # o4 created after D
    nps = _value(got, "nps", as_of=D - timedelta(days=20))
    assert nps["value"] == 25.0  # 2 promoters, 1 passive, 1 detractor of 4
    rel = _value(got, "executive_relationship", as_of=D - timedelta(days=30))
    assert (rel["level"], rel["value"], rel["comment"], rel["author"]) == (
        "Strong",
        None,
        "great",
        "x",
    )
    assert _value(got, "sponsor_left", as_of=D - timedelta(days=3))["value"] == 1.0


def test_days_since_ebr_counts_from_customer_since_without_one(tiny) -> None:
    got = metrics.compute_metrics(tiny, [date(2023, 3, 1)], metric_ids=["days_since_last_ebr"])
    assert got.get_column("value").to_list() == [59.0]


def test_derive_writes_and_is_idempotent(tiny) -> None:
    dates = [D - timedelta(days=7), D]
    counts = metrics.derive_metrics(tiny, dates)
    assert counts["licence_activation"] == 3
    n = store.row_count(tiny, "metric_values")
    assert n == sum(counts.values())
    metrics.derive_metrics(tiny, dates)
    assert store.row_count(tiny, "metric_values") == n
    assert (
        store.row_count(tiny, "metric_values")
        == store.load_metric_values(tiny)
        .unique(["account_id", "metric", "product", "as_of"])
        .height
    )


def _defs(**sql: str) -> dict[str, metrics.MetricDefinition]:
    base = load_definitions()
    out = dict(base)
    for mid, text in sql.items():
        d = base.get(mid) or metrics.MetricDefinition(mid, mid, "", "", None, metrics.Level.COMPANY)
        out[mid] = metrics.MetricDefinition(
            d.id, d.label, d.unit, d.description, d.group, d.level, text
        )
    return out


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT account_id, as_of, value FROM no_such_table", "no_such_table"),
        ("SELEC account_id", "syntax error"),
        ("SELECT account_id, as_of FROM account_dates", "must return columns value (or level)"),
        ("SELECT account_id, 1.0 AS value FROM accounts", "must return columns as_of"),
        (
            "SELECT account_id, as_of, CAST('x' || account_id AS INTEGER) AS value"
            " FROM account_dates",
            "Could not convert",
        ),
        ("SELECT account_id, as_of, 1.0 AS value FROM account_dates, range(2)", "duplicated"),
    ],
)
def test_a_broken_query_names_the_metric_and_writes_nothing(tiny, sql: str, expected: str) -> None:
    before = store.table_checksums(tiny)
    with pytest.raises(MetricQueryError) as err:
        metrics.derive_metrics(tiny, [D], definitions=_defs(nps=sql))
    text = str(err.value)
    assert "metric nps" in text and expected in text, text
    assert store.table_checksums(tiny) == before


def test_every_broken_query_is_reported_at_once(tiny) -> None:
    defs = _defs(
        nps="SELECT * FROM nope1",
        csat="SELECT * FROM nope2",
        licence_activation="SELECT account_id, as_of, 1.0 AS value FROM account_dates",
    )
    with pytest.raises(MetricQueryError) as err:
        metrics.derive_metrics(tiny, [D], definitions=defs)
    text = str(err.value)
    assert "metric nps" in text and "metric csat" in text and "nope2" in text
    assert "metric licence_activation: query must return columns product" in text


def test_compute_writes_nothing_and_unknown_metric_is_refused(tiny) -> None:
    before = store.table_checksums(tiny)
    metrics.compute_metrics(tiny, [D])
    assert store.table_checksums(tiny) == before
    with pytest.raises(InputError, match="unknown metric"):
        metrics.compute_metrics(tiny, [D], metric_ids=["nope"])


def test_long_ranges_are_derived_in_chunks(tiny, monkeypatch) -> None:
    monkeypatch.setattr(metrics, "CHUNK_ACCOUNT_DATES", 2)  # one date per chunk
    dates = [D - timedelta(days=7 * i) for i in range(4)]
    chunked = metrics.compute_metrics(tiny, dates)
    monkeypatch.setattr(metrics, "CHUNK_ACCOUNT_DATES", 10_000)
    whole = metrics.compute_metrics(tiny, dates)
    keys = ["metric", "account_id", "product", "as_of"]
    assert chunked.unique(keys).sort(keys).equals(whole.sort(keys))
