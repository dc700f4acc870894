"""Chart builders: frames in, figures out, with one grade palette and a colour-blind one."""

from __future__ import annotations

from datetime import date, timedelta

import plotly.graph_objects as go
import polars as pl
import pytest

from ui import charts
from ui.charts import NO_GRADE, Palette

ORDER = ["Red", "Yellow", "Green"]


def colors(palette: Palette = Palette.STANDARD) -> dict[str, str]:
    return charts.grade_colors(ORDER, palette=palette)


def test_red_yellow_green_get_named_colours_in_both_palettes() -> None:
    std, cb = colors(), colors(Palette.COLORBLIND)
    assert std["Red"] != std["Green"] and std["Yellow"] not in (std["Red"], std["Green"])
    assert cb == {
        "Red": "#D55E00",
        "Yellow": "#E69F00",
        "Green": "#0072B2",
        NO_GRADE: charts.NO_GRADE_COLOR,
    }
    assert set(cb.values()) <= {*charts.OKABE_ITO, charts.NO_GRADE_COLOR}


def test_band_colours_from_the_scorecard_win_in_the_standard_palette_only() -> None:
    own = ["#111111", None, "#333333"]
    std = charts.grade_colors(ORDER, band_colors=own)
    assert (std["Red"], std["Green"]) == ("#111111", "#333333")
    cb = charts.grade_colors(ORDER, palette=Palette.COLORBLIND, band_colors=own)
    assert cb["Red"] == "#D55E00"


def test_other_schemes_get_a_ramp_from_worst_to_best() -> None:
    letters = ["F", "D", "C", "B", "A"]
    c = charts.grade_colors(letters, palette=Palette.COLORBLIND)
    assert len({c[x] for x in letters}) == 5
    assert c["F"].startswith("rgb") and c["A"].startswith("rgb")


def _scored(n: int = 30) -> pl.DataFrame:
    grades = [ORDER[i % 3] for i in range(n)]
    return pl.DataFrame(
        {
            "account_id": [f"A{i}" for i in range(n)],
            "name": [f"Account {i}" for i in range(n)],
            "arr": [1000.0 * (i + 1) for i in range(n)],
            "segment": ["SMB" if i % 2 else "Enterprise" for i in range(n)],
            "score": [float(10 + 3 * i) for i in range(n)],
            "grade": grades,
            "outcomes_score": [float(5 + 3 * i) for i in range(n)],
            "experience_score": [float(90 - 2 * i) for i in range(n)],
            "deployment": [float(i) for i in range(n)],
            "adoption": [None if i == 0 else float(2 * i) for i in range(n)],
        }
    )


def test_grade_mix_bar_has_a_trace_per_grade_in_order() -> None:
    mix = pl.DataFrame(
        {"grade": ["Green", "Red", None], "accounts": [2, 1, 1], "arr": [10.0, 30.0, 0.0]}
    )
    fig = charts.grade_mix_bar(mix, colors(), ORDER)
    assert isinstance(fig, go.Figure)
    assert [t.name for t in fig.data] == ["Red", "Green", NO_GRADE]
    red = fig.data[0]
    assert list(red.x) == pytest.approx([0.25, 0.75])
    assert red.marker.color == colors()["Red"]


def test_histogram_and_violin() -> None:
    fig = charts.score_histogram(_scored(), colors(), ORDER)
    assert [t.type for t in fig.data] == ["histogram"] * 3
    v = charts.score_violin(
        _scored(), split="segment", score_col="score", split_title="Segment", score_title="Score"
    )
    assert sorted(t.name for t in v.data) == ["Enterprise", "SMB"]
    assert fig.layout.xaxis.title.text == "Score"


def test_grade_mix_by_split_shares_add_to_one() -> None:
    mix = (
        _scored().group_by("segment", "grade").agg(pl.len().alias("accounts"), pl.col("arr").sum())
    )
    fig = charts.grade_mix_by(mix, colors(), ORDER, split="segment", split_title="Segment")
    totals: dict[str, float] = {}
    for t in fig.data:
        for y, x in zip(t.y, t.x, strict=True):
            totals[y] = totals.get(y, 0.0) + x
    assert totals == pytest.approx({"Enterprise": 1.0, "SMB": 1.0})


def test_heatmap_keeps_missing_cells_empty() -> None:
    fig = charts.group_heatmap(
        _scored(3), [("deployment", "Deployment"), ("adoption", "Adoption"), ("roi", "ROI")]
    )
    hm = fig.data[0]
    assert list(hm.x) == ["Deployment", "Adoption"]  # roi is not in the frame
    assert hm.z[0][1] is None
    assert list(hm.y) == ["Account 0", "Account 1", "Account 2"]


def test_outcomes_vs_experience_sizes_by_arr() -> None:
    fig = charts.outcomes_vs_experience(_scored(), colors(), ORDER)
    sizes = [s for t in fig.data for s in t.marker.size]
    assert min(sizes) >= 6 and max(sizes) == pytest.approx(28)
    assert "Outcomes score" in fig.layout.xaxis.title.text


def _history() -> pl.DataFrame:
    days = [date(2026, 1, 4) + timedelta(weeks=w) for w in range(4)]
    rows = []
    for d_i, d in enumerate(days):
        for a in range(3):
            rows.append(
                {
                    "as_of": d,
                    "account_id": f"A{a}",
                    "score": 40.0 + 10 * a + d_i,
                    "grade": ORDER[a],
                    "arr": 100.0,
                    "deployment": 50.0 + d_i,
                }
            )
    return pl.DataFrame(rows)


def test_trend_charts() -> None:
    h = _history()
    mix = h.group_by("as_of", "grade").agg(pl.len().alias("accounts"), pl.col("arr").sum())
    area = charts.grade_mix_area(mix, colors(), ORDER, value="arr")
    assert [t.name for t in area.data] == ORDER and area.data[0].stackgroup == "grades"
    lines = charts.group_trends(
        h.group_by("as_of")
        .agg(pl.col("deployment").mean().alias("score"))
        .with_columns(pl.lit("deployment").alias("group")),
        [("deployment", "Deployment"), ("roi", "ROI")],
    )
    assert [t.name for t in lines.data] == ["Deployment"]
    trend = charts.score_trend(
        h.group_by("as_of").agg(pl.col("score").mean()).sort("as_of"),
        band_edges=[("Red", 0, 50), ("Yellow", 50, 75), ("Green", 75, 100)],
        colors=colors(),
    )
    assert len(trend.layout.shapes) == 3


def test_sankey_links_grades_between_dates() -> None:
    t = pl.DataFrame(
        {
            "from_grade": ["Red", "Red", None],
            "to_grade": ["Red", "Green", "Yellow"],
            "accounts": [2, 1, 1],
            "arr": [1.0, 2.0, 3.0],
        }
    )
    fig = charts.transitions_sankey(t, colors(), ORDER, from_label="Jan", to_label="Apr")
    sk = fig.data[0]
    assert list(sk.node.label) == [
        "Red (Jan)",
        f"{NO_GRADE} (Jan)",
        "Red (Apr)",
        "Yellow (Apr)",
        "Green (Apr)",
    ]
    assert sum(sk.link.value) == 4


def test_account_history_and_waterfall() -> None:
    h = _history().filter(pl.col("account_id") == "A1")
    fig = charts.account_history(
        h,
        [("Red", 0, 50), ("Yellow", 50, 75), ("Green", 75, 100)],
        colors(),
        groups=[("deployment", "Deployment")],
    )
    assert [t.name for t in fig.data] == ["Deployment", "Overall"]
    parts = pl.DataFrame({"label": ["Breadth", "Overrides"], "amount": [-3.0, -10.0]})
    wf = charts.explanation_waterfall(
        parts, start=70.0, end=57.0, start_label="1 Jan", end_label="1 Feb"
    )
    w = wf.data[0]
    assert list(w.measure) == ["absolute", "relative", "relative", "total"]
    assert list(w.y) == [70.0, -3.0, -10.0, 57.0]


def test_movers_and_contributions_and_coverage() -> None:
    movers = pl.DataFrame({"name": ["A", "B"], "change": [-5.0, 4.0]})
    fig = charts.movers_bar(movers)
    assert list(fig.data[0].marker.color) == ["#D55E00", "#0072B2"]
    contrib = pl.DataFrame(
        {
            "label": ["x", "y"],
            "group": ["adoption", "roi"],
            "group_label": ["Adoption", "ROI"],
            "contribution": [10.0, 5.0],
            "score": [80.0, 50.0],
            "weight": [0.125, 0.1],
        }
    )
    assert len(charts.measure_contributions(contrib, charts.GROUP_COLORS).data) == 2
    cov = charts.coverage_bars(
        pl.DataFrame({"metric": ["nps"], "coverage": [0.8], "stale_share": [0.1]})
    )
    assert [t.name for t in cov.data] == ["Accounts with a value", "Stale"]
