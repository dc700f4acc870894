"""Overview: how healthy is the book of business, what is at risk, and who moved."""

import streamlit as st

from ui import charts, state, summaries
from ui import format as fmt
from ui.auth import Role
from ui.components import tables
from ui.view import View

view = View.open(Role.VIEWER)
view.header("Portfolio overview")
if view.empty():
    st.stop()

scored = view.scored
history = view.history
risk_grade = summaries.lowest_grade(view.cards)
kpi = summaries.kpis(scored, as_of=view.as_of, risk_grade=risk_grade)
trend = summaries.average_trend(history, end=view.as_of, weeks=13)
change_13w = summaries.change_over(trend)

c1, c2, c3, c4 = st.columns(4)
c1.metric(
    "Accounts",
    fmt.number(kpi.accounts),
    border=True,
    help=f"{fmt.number(kpi.scored)} with a score at this date.",
)
c2.metric("ARR", fmt.currency(kpi.arr), border=True)
c3.metric(
    "Average score",
    fmt.score(kpi.average_score),
    delta=None if change_13w is None else f"{change_13w:+.1f} in 13 weeks",
    border=True,
    chart_data=trend.get_column("score").drop_nulls().to_list() if trend.height > 1 else None,
    help="Mean overall score (0-100) of the accounts shown; the delta compares with 13 weeks ago.",
)
c4.metric(
    "At-risk ARR",
    fmt.currency(kpi.at_risk_arr),
    delta=fmt.plural(kpi.at_risk_accounts, "account"),
    delta_color="off",
    delta_arrow="off",
    border=True,
    help=f"ARR of accounts graded {risk_grade} whose renewal date falls in the next two quarters.",
)

left, right = st.columns([3, 2])
with left:
    st.subheader("Grade mix")
    st.caption("Share of accounts and of ARR in each grade.")
    st.plotly_chart(
        charts.grade_mix_bar(summaries.grade_mix(scored), view.colors, view.order),
        key="overview_grade_mix",
    )
with right:
    st.subheader("Average score, last 13 weeks")
    if trend.height > 1:
        st.plotly_chart(
            charts.score_trend(
                trend, band_edges=summaries.band_edges(view.card), colors=view.colors
            ),
            key="overview_trend",
        )
    else:
        st.info(
            "No score history yet: the trend appears once weekly snapshots are stored "
            "(`python -m engine backfill`).",
            icon=":material/history:",
        )

st.subheader(f"At risk: {fmt.md(risk_grade)} and renewing in the next two quarters")
risky = summaries.at_risk(scored, as_of=view.as_of, risk_grade=risk_grade)
if risky.height == 0:
    st.success(
        "No account in the lowest grade renews in the next two quarters.",
        icon=":material/verified:",
    )
else:
    tables.accounts(risky.head(25), key="overview_at_risk", colors=view.colors)

st.subheader("Top movers, last 4 weeks")
dates = summaries.history_dates(history)
start = summaries.date_before(dates, view.as_of, weeks=4) if dates else None
end = max((d for d in dates if d <= view.as_of), default=None)
if start is None or end is None or start == end:
    st.info(
        "Movers need two stored snapshots; none yet for this scorecard.", icon=":material/history:"
    )
else:
    movers = summaries.movers(history, scored, start=start, end=end, n=8)
    st.caption(f"Change of the overall score from {fmt.day(start)} to {fmt.day(end)}.")
    if movers.height == 0:
        st.info("Nobody's score moved.")
    else:
        st.plotly_chart(charts.movers_bar(movers), key="overview_movers")
        tables.movers(movers, key="overview_movers_table")

state.setdefault(state.ACCOUNT, None)
