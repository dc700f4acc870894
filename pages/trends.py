"""Trends: how the grade mix and the DEAR groups moved, who changed grade, and why."""

import polars as pl
import streamlit as st

from ui import cached, charts, summaries
from ui import format as fmt
from ui.auth import Role
from ui.components import tables
from ui.view import View

view = View.open(Role.VIEWER)
view.header("Trends")
if view.empty():
    st.stop()

history = view.history
dates = summaries.history_dates(history)
if len(dates) < 2:
    st.info(
        "Trends need at least two stored weekly snapshots for this scorecard. Store them with "
        "`python -m engine backfill` (or pick the active scorecards in the sidebar).",
        icon=":material/history:",
    )
    st.stop()

st.subheader("Grade mix over time")
by = (
    st.segmented_control(
        "Measure",
        ["accounts", "arr"],
        key="trend_value",
        default="accounts",
        format_func=lambda v: "ARR" if v == "arr" else "Accounts",
    )
    or "accounts"
)
st.plotly_chart(
    charts.grade_mix_area(
        summaries.grade_mix_over_time(history), view.colors, view.order, value=by
    ),
    key="trend_mix",
)

st.subheader("Average score per DEAR group")
st.plotly_chart(
    charts.group_trends(summaries.group_trends(history, view.groups), view.groups),
    key="trend_groups",
)


@st.fragment
def transitions_and_movers() -> None:
    """Only this part reruns when the dates change."""
    st.subheader("Grade transitions")
    default_start = summaries.date_before(dates, dates[-1], weeks=13) or dates[0]
    start, end = st.select_slider(
        "Between",
        options=dates,
        value=(default_start, dates[-1]),
        format_func=fmt.day,
        key="trend_dates",
    )
    if start == end:
        st.info("Pick two different dates.")
        return
    left, right = st.columns([3, 2])
    trans = summaries.transitions(history, start=start, end=end)
    with left:
        st.plotly_chart(
            charts.transitions_sankey(
                trans,
                view.colors,
                view.order,
                from_label=fmt.day(start),
                to_label=fmt.day(end),
                value=by,
            ),
            key="trend_sankey",
        )
    with right:
        matrix = (
            trans.with_columns(
                pl.col("from_grade").fill_null(charts.NO_GRADE),
                pl.col("to_grade").fill_null(charts.NO_GRADE),
            )
            .pivot(on="to_grade", index="from_grade", values="accounts", aggregate_function="sum")
            .fill_null(0)
            .rename({"from_grade": f"{fmt.day(start)} → {fmt.day(end)}"})
        )
        st.caption("Accounts from each grade (rows) to each grade (columns).")
        st.dataframe(matrix, hide_index=True, key="trend_matrix")

    st.subheader("Movers and why")
    movers = summaries.movers(history, view.scored, start=start, end=end, n=6)
    if movers.height == 0:
        st.info("No score moved between these dates.")
        return
    labels = summaries.measure_labels(view.cards)
    reasons = []
    with st.spinner("Explaining each move…"):
        for account_id in movers.get_column("account_id").to_list():
            parts = cached.explanation(view.src, view.dv, view.choice, account_id, start, end)
            steps = summaries.explanation_parts(parts, labels, top=3)
            reasons.append(
                ", ".join(
                    f"{r['label']} {fmt.signed(r['amount'])}"
                    for r in steps.iter_rows(named=True)
                    if r["kind"] != "other"
                )
            )
    movers = movers.with_columns(pl.Series("why", reasons, dtype=pl.Utf8))
    st.caption(
        "Why: the largest parts of each change (points of the overall score; they add "
        "up with the rest to the change). Open an account for the full explanation."
    )
    tables.movers(movers, key="trend_movers", why="why")


transitions_and_movers()
