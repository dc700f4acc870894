"""Optimizer: weights that predict renewal better, validated on newer renewals, side by side
with the current ones. A suggestion becomes a draft version, never the active scorecard."""

import polars as pl
import streamlit as st

from engine.problems import InputError, ScorecardError
from ui import analytics_cached as ac
from ui import analytics_charts as ach
from ui import auth, cached, state
from ui import format as fmt
from ui.auth import Role
from ui.view import View

view = View.open(Role.VIEWER)
view.header("Optimizer", "Better weights from past renewals")

cards = view.cards
left, right = st.columns([3, 1])
target = left.selectbox(
    "Scorecard to tune",
    list(cards),
    format_func=ac.labels(cards).__getitem__,
    key="optimizer_target",
    help="Fitted on the renewals of the accounts this scorecard scores.",
)
horizon = right.number_input(
    "Days before renewal", min_value=0, max_value=730, value=90, step=15, key="optimizer_horizon"
)
key = view.choice
cache_key = (view.src, view.dv, key, int(horizon), ac.filter_key(view.filters))

result = ac.cached_optimize(cache_key, target)
if result is None:
    st.write(
        "The optimizer fits non-negative weights on older renewals, tests them on newer ones "
        "and refits on bootstrap samples to show how stable each weight is. It takes a few "
        "seconds."
    )
    if not st.button("Suggest weights", type="primary", key="optimizer_run"):
        st.stop()
    bar = st.progress(0.0, text="Scoring every past renewal…")
    try:
        data = ac.scored(
            view.src, view.dv, key, int(horizon), ac.scorecard_arg(view.src, view.dv, view.choice)
        )
        obs = ac.filtered(data, view.filters, cached.products(view.src, view.dv))
        result = ac.optimize(
            data,
            cache_key,
            obs,
            target=target,
            progress=lambda f, text: bar.progress(min(1.0, f), text=text),
        )
    except InputError as exc:
        bar.empty()
        st.warning(str(exc), icon=":material/warning:")
        st.stop()
    bar.empty()

st.caption(
    f"{fmt.plural(result.renewals, 'renewal')}, {fmt.number(result.churned)} churned · "
    f"validation: {result.cv}"
)
c1, c2, c3 = st.columns(3)
c1.metric(
    "Current scorecard",
    fmt.score(result.current_cv_auc, digits=3),
    border=True,
    help="Mean AUC on renewals the weights were not fitted on (cross-validated).",
)
delta = (
    None
    if result.suggested_cv_auc is None or result.current_cv_auc is None
    else f"{result.suggested_cv_auc - result.current_cv_auc:+.3f}"
)
c2.metric(
    "Suggested weights", fmt.score(result.suggested_cv_auc, digits=3), delta=delta, border=True
)
c3.metric(
    "Unconstrained logistic",
    fmt.score(result.logistic_cv_auc, digits=3),
    border=True,
    help="A logistic regression on the same measure scores with any sign and no rounding: "
    "the reference the readable weights are measured against.",
)
for message in result.messages:
    st.caption(f"ℹ️ {message}")

st.subheader("Group weights")
st.plotly_chart(ach.weights_compare(result.weights, level="group"), key="optimizer_groups")
with st.expander("Measure weights within each group"):
    st.plotly_chart(ach.weights_compare(result.weights, level="measure"), key="optimizer_measures")

st.subheader("Stability")
st.caption(
    "How much each suggested weight moves when the renewals are resampled (bootstrap, "
    "5th to 95th percentile). An unstable weight is a direction, not a number."
)
st.dataframe(
    result.weights.select(
        pl.col("level"),
        pl.col("label"),
        pl.col("current"),
        pl.col("suggested"),
        pl.col("boot_low"),
        pl.col("boot_high"),
        pl.col("share_positive"),
        pl.col("stable"),
    ),
    hide_index=True,
    column_config={
        "level": "Level",
        "label": "Weight",
        "current": st.column_config.NumberColumn("Current (of 100)", format="%.0f"),
        "suggested": st.column_config.NumberColumn("Suggested", format="%.0f"),
        "boot_low": st.column_config.NumberColumn("5%", format="%.0f"),
        "boot_high": st.column_config.NumberColumn("95%", format="%.0f"),
        "share_positive": st.column_config.NumberColumn("Above 0 in", format="percent"),
        "stable": "Stability",
    },
    key="optimizer_stability",
)

left, right = st.columns(2)
with left:
    st.subheader("Out-of-sample AUC per fold")
    st.plotly_chart(ach.cv_folds(result.folds), key="optimizer_folds")
with right:
    st.subheader("Grade bands that split renewal rates")
    if result.bands.height:
        st.caption(
            "Edges at multiples of 5 on the suggested score, each band holding at least 5% "
            "of renewals."
        )
        st.dataframe(
            result.bands,
            hide_index=True,
            key="optimizer_bands",
            column_config={
                "renewal_rate": st.column_config.NumberColumn("Renewal rate", format="percent")
            },
        )
    else:
        st.info("No band split for this scheme (numeric scores, or too few renewals).")

st.subheader("Use the suggestion")
yaml_text = result.to_yaml()
st.session_state[ac.OPTIMIZER_YAML] = yaml_text
b1, b2, b3 = st.columns(3)
b1.download_button(
    "Download YAML",
    yaml_text,
    file_name=f"{result.scorecard}_suggested.yaml",
    mime="text/yaml",
    key="optimizer_download",
)
if b2.button("Backtest the suggestion", key="optimizer_backtest"):
    st.session_state["backtest_source"] = "optimizer"
    st.switch_page("pages/backtest.py")
editor = auth.can(Role.EDITOR)
if b3.button(
    "Create draft",
    key="optimizer_create_draft",
    disabled=not editor,
    help=None if editor else "Editors create drafts; ask an editor or admin.",
):
    try:
        version = ac.save_draft(
            view.src,
            yaml_text,
            comment=f"optimizer suggestion: CV AUC {fmt.score(result.suggested_cv_auc, digits=3)} "
            f"vs {fmt.score(result.current_cv_auc, digits=3)}",
        )
    except (InputError, ScorecardError) as exc:
        st.error(str(exc))
    else:
        state.flash(f"Saved draft version {version}: review it in the designer before activating.")
        st.rerun()
with st.expander("Suggested scorecard (YAML)"):
    st.code(yaml_text, language="yaml")
