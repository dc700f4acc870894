"""DEAR distributions: how the scores spread, by segment, region, CSM, product or stage."""

import streamlit as st

from ui import cached, charts, summaries
from ui import format as fmt
from ui.auth import Role
from ui.components import tables
from ui.view import View

SPLITS = {
    "segment": "Segment",
    "region": "Region",
    "csm": "CSM",
    "product": "Product",
    "lifecycle_stage": "Lifecycle stage",
}

view = View.open(Role.VIEWER)
view.header("DEAR distributions")
if view.empty():
    st.stop()

scored = view.scored
available = {k: v for k, v in SPLITS.items() if k in scored.columns or k == "product"}
c1, c2, c3 = st.columns([3, 2, 2])
split = (
    c1.segmented_control(
        "Split by", list(available), format_func=available.get, key="dist_split", default="segment"
    )
    or "segment"
)
kind = (
    c2.segmented_control(
        "Distribution as",
        ["violin", "histogram"],
        key="dist_kind",
        default="violin",
        format_func=str.capitalize,
    )
    or "violin"
)
measure = (
    c3.segmented_control(
        "Grade mix by",
        ["accounts", "arr"],
        key="dist_value",
        default="accounts",
        format_func=lambda v: "ARR" if v == "arr" else "Accounts",
    )
    or "accounts"
)

# One row per account, or per (account, product) when split by product.
frame = scored
if split == "product":
    holdings = cached.products(view.src, view.dv).select("account_id", "product")
    if holdings.height == 0:
        st.info("These accounts have no products on record, so there is nothing to split by.")
        st.stop()
    frame = scored.join(holdings, on="account_id", how="inner")
    st.caption(
        "An account holding several products appears once per product, with its company score."
    )

if frame.height > summaries.CHART_SAMPLE:
    st.caption(
        f"Distributions are drawn from a random sample of {summaries.CHART_SAMPLE:,} of "
        f"{frame.height:,} rows; grade mixes count everyone."
    )
tab_names = ["Overall", *[label for _, label in view.groups]]
tabs = st.tabs(tab_names)
for tab, (col, label) in zip(tabs, [("score", "Overall"), *view.groups], strict=True):
    with tab:
        if col not in frame.columns or frame.get_column(col).is_null().all():
            st.info(f"No {fmt.md(label)} scores for these accounts.")
            continue
        with_grade = frame
        if col != "score":
            # A group's grade: its score in the default scorecard's bands.
            with_grade = frame.with_columns(summaries.grade_expr(col, view.card).alias("grade"))
        left, right = st.columns([3, 2])
        with left:
            st.markdown(f"**{fmt.md(label)} score by {available[split].lower()}**")
            if kind == "violin":
                fig = charts.score_violin(
                    summaries.sample(with_grade),
                    split=split,
                    score_col=col,
                    split_title=available[split],
                    score_title=f"{label} score",
                    color=charts.group_color(col) if col != "score" else "#1f2937",
                )
            else:
                fig = charts.score_histogram(
                    summaries.sample(with_grade),
                    view.colors,
                    view.order,
                    score_col=col,
                    x_title=f"{label} score",
                )
            st.plotly_chart(fig, key=f"dist_{col}_{kind}")
        with right:
            st.markdown(f"**{fmt.md(label)} grade mix by {available[split].lower()}**")
            mix = summaries.grade_mix_by(with_grade, split)
            st.plotly_chart(
                charts.grade_mix_by(
                    mix,
                    view.colors,
                    view.order,
                    split=split,
                    split_title=available[split],
                    value=measure,
                ),
                key=f"dist_mix_{col}",
            )

st.subheader("Accounts × DEAR groups")
g1, g2, g3 = st.columns([2, 1, 1])
sort_options = {"score": "Overall score", **{g: label for g, label in view.groups}, "arr": "ARR"}
sort_by = g1.selectbox(
    "Sort by", list(sort_options), format_func=sort_options.get, key="dist_heat_sort"
)
worst_first = g2.toggle("Lowest first", value=True, key="dist_heat_order")
limit = g3.number_input(
    "Accounts shown", min_value=5, max_value=200, value=40, step=5, key="dist_heat_n"
)
ordered = scored.sort(sort_by, descending=not worst_first, nulls_last=True).head(int(limit))
st.plotly_chart(
    charts.group_heatmap(ordered, view.groups, palette=view.palette), key="dist_heatmap"
)
with st.expander("The same accounts as a table"):
    tables.accounts(
        ordered,
        key="dist_heat_table",
        colors=view.colors,
        extra={g: tables.score_column(label) for g, label in view.groups},
    )

st.subheader("Outcomes against experience")
st.caption(
    "Outcomes: Deployment, Adoption, ROI. Experience: Engagement and surveys. Bubble size is ARR."
)
st.plotly_chart(
    charts.outcomes_vs_experience(summaries.sample(scored), view.colors, view.order),
    key="dist_quadrant",
)
