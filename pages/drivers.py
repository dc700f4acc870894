"""Drivers: which DEAR groups go with renewal and expansion, and which CSM activities go with
higher group scores. Coefficients with 95% intervals, read out in sentences."""

import polars as pl
import streamlit as st

from engine.problems import InputError
from ui import analytics_cached as ac
from ui import analytics_charts as ach
from ui import cached, charts
from ui import format as fmt
from ui.auth import Role
from ui.view import View

view = View.open(Role.VIEWER)
view.header("Drivers", "What goes with renewal?")

horizon = st.number_input(
    "Days before renewal",
    min_value=0,
    max_value=730,
    value=90,
    step=15,
    key="drivers_horizon",
    help="Group scores are read this many days before each renewal.",
)
key = view.choice
try:
    with st.spinner("Scoring every past renewal and fitting the models…"):
        data = ac.scored(
            view.src, view.dv, key, int(horizon), ac.scorecard_arg(view.src, view.dv, view.choice)
        )
        obs = ac.filtered(data, view.filters, cached.products(view.src, view.dv))
        result = ac.drivers(
            data, (view.src, view.dv, key, int(horizon), ac.filter_key(view.filters)), obs
        )
except InputError as exc:
    st.warning(str(exc), icon=":material/warning:")
    st.stop()

st.caption(
    f"{data.label} · {fmt.plural(result.renewals, 'renewal')} · segment held equal · "
    "associations in past data, not proof of cause"
)
for message in result.messages:
    st.caption(f"ℹ️ {message}")

st.subheader("In plain words")
for sentence in result.sentences[:1] + [
    s for s in result.sentences[1:] if "not significant" not in s
]:
    st.markdown(f"- {sentence}")
with st.expander("Every finding, including those that are not significant"):
    for sentence in result.sentences:
        st.markdown(f"- {sentence}")

groups = result.renewal.filter(~pl.col("term").str.starts_with("segment:"))
colors = [charts.group_color(t, i) for i, t in enumerate(groups.get_column("term"))]
left, right = st.columns(2)
with left:
    st.subheader("Renewal")
    st.caption(
        "Change in renewal probability per 10 points of each group (percentage points, "
        "average marginal effect, 95% interval)."
    )
    st.plotly_chart(
        ach.coefficient_plot(
            groups,
            value="ame_pp",
            low="ame_low",
            high="ame_high",
            x_title="pp of renewal probability per 10 points",
            colors=colors,
        ),
        key="drivers_renewal",
    )
with right:
    st.subheader("ARR change at renewal")
    st.caption("Change in ARR at renewal (percent; a churn is -100%) per 10 points of each group.")
    arr = (
        result.arr_change.filter(~pl.col("term").str.starts_with("segment:"))
        if result.arr_change.height
        else result.arr_change
    )
    st.plotly_chart(
        ach.coefficient_plot(
            arr,
            value="coef",
            low="ci_low",
            high="ci_high",
            x_title="% ARR change per 10 points",
            colors=colors,
        ),
        key="drivers_arr",
    )

st.subheader("CSM activities")
if result.activities.height == 0:
    st.info(
        "No CSM activities were recorded in the quarters before the renewals.",
        icon=":material/event_busy:",
    )
else:
    st.caption(
        "Points of each group score per activity in the quarter before the score date "
        "(95% interval), segment held equal."
    )
    labels = dict(result.activities.select("group", "group_label").unique().iter_rows())
    tabs = st.tabs([labels[g] for g in labels])
    for tab, gid in zip(tabs, labels, strict=True):
        with tab:
            part = result.activities.filter(pl.col("group") == gid).rename(
                {"activity_label": "label"}
            )
            st.plotly_chart(
                ach.coefficient_plot(
                    part,
                    value="coef",
                    low="ci_low",
                    high="ci_high",
                    x_title=f"points of {labels[gid]} per activity",
                ),
                key=f"drivers_act_{gid}",
            )
