"""Backtest: do green accounts really renew more? The score N days before every past renewal
against what the customer did, for the sidebar's scorecard or a draft."""

import polars as pl
import streamlit as st

from engine.problems import InputError, ScorecardError
from engine.scorecard import parse_scorecard_yaml
from ui import analytics_cached as ac
from ui import analytics_charts as ach
from ui import cached
from ui import format as fmt
from ui.auth import Role
from ui.designer import DRAFT_YAML
from ui.view import View

view = View.open(Role.VIEWER)
view.header("Backtest", "Does the score predict renewals?")

# ---- which scorecard, which horizon
sources = {"sidebar": f"Scorecard in the sidebar ({view.choice})"}
drafts = {
    "designer": st.session_state.get(DRAFT_YAML),
    "optimizer": st.session_state.get(ac.OPTIMIZER_YAML),
}
if drafts["designer"]:
    sources["designer"] = "Draft from the scorecard designer"
if drafts["optimizer"]:
    sources["optimizer"] = "Suggestion from the optimizer"
left, right = st.columns([3, 1])
picked = left.radio(
    "Scorecard",
    list(sources),
    format_func=sources.__getitem__,
    horizontal=True,
    key="backtest_source",
    index=1 if drafts["designer"] else 0,
)
horizon = right.number_input(
    "Days before renewal",
    min_value=0,
    max_value=730,
    value=90,
    step=15,
    key="backtest_horizon",
    help="Each renewal is compared with the score of the latest weekly "
    "snapshot on or before this many days before it.",
)

if picked == "sidebar":
    key, arg = view.choice, ac.scorecard_arg(view.src, view.dv, view.choice)
else:
    try:
        draft = parse_scorecard_yaml(drafts[picked] or "")
    except ScorecardError as exc:
        st.error(f"The draft cannot be read: {exc}")
        st.stop()
    key, arg = f"draft:{draft.fingerprint()}", draft

try:
    with st.spinner("Scoring every past renewal at the horizon…"):
        data = ac.scored(view.src, view.dv, key, int(horizon), arg)
except InputError as exc:
    st.warning(str(exc), icon=":material/warning:")
    st.stop()

obs = ac.filtered(data, view.filters, cached.products(view.src, view.dv))
cache_key = (view.src, view.dv, key, int(horizon), ac.filter_key(view.filters))
try:
    result = ac.backtest(data, cache_key, obs, int(horizon))
except InputError as exc:
    st.info(f"{exc} (filters: {view.filters.describe()}).", icon=":material/filter_alt:")
    st.stop()

st.caption(
    f"{data.label} · {fmt.plural(result.renewals, 'renewal')} from {fmt.day(result.first_renewal)} "
    f"to {fmt.day(result.last_renewal)} · scores {horizon} days before each"
    + (" · read from stored weekly history" if data.from_history else " · scored on the fly")
)

# ---- headline figures
c1, c2, c3, c4 = st.columns(4)
c1.metric(
    "AUC",
    fmt.score(result.auc, digits=3),
    border=True,
    help="The chance that a renewed account scored higher than a churned one: 0.5 is a "
    "coin flip, 1.0 a perfect ranking.",
)
c2.metric(
    "95% interval",
    f"{fmt.score(result.auc_low, digits=3)} – {fmt.score(result.auc_high, digits=3)}",
    border=True,
    help=f"Bootstrap percentile interval ({result.bootstrap} resamples).",
)
c3.metric(
    "Renewal rate",
    fmt.percent(result.renewed / result.renewals),
    border=True,
    help="Share of renewals with ARR after the renewal above 0.",
)
c4.metric(
    "Churned",
    fmt.number(result.churned),
    border=True,
    help=f"{fmt.number(result.unscored)} renewal(s) had no score at the horizon and are left out.",
)
for message in result.messages:
    st.caption(f"ℹ️ {message}")

# ---- bands
st.subheader("Renewal rate and GRR by grade")
st.caption(
    "Do green accounts really renew more? Renewal rate = renewed / renewals; GRR = ARR kept "
    "(without expansion) / ARR up for renewal."
)
st.plotly_chart(ach.bands_bars(result.bands, view.colors), key="backtest_bands")
st.dataframe(
    result.bands.select("grade", "accounts", "renewed", "renewal_rate", "grr", "nrr", "arr_before"),
    hide_index=True,
    column_config={
        "grade": "Grade",
        "accounts": "Renewals",
        "renewed": "Renewed",
        "renewal_rate": st.column_config.NumberColumn("Renewal rate", format="percent"),
        "grr": st.column_config.NumberColumn("GRR", format="percent"),
        "nrr": st.column_config.NumberColumn("NRR", format="percent"),
        "arr_before": st.column_config.NumberColumn("ARR up for renewal", format="dollar"),
    },
    key="backtest_bands_table",
)

left, right = st.columns(2)
with left:
    st.subheader("Calibration")
    st.caption(
        "Predicted renewal probability (a logistic curve on the score) against the actual "
        "rate, in ten equal groups of renewals."
    )
    st.plotly_chart(ach.calibration_plot(result.calibration), key="backtest_calibration")
with right:
    st.subheader("Lift by score decile")
    st.caption("How concentrated churn is in the lowest scores: decile 1 holds the lowest tenth.")
    st.plotly_chart(ach.lift_chart(result.lift), key="backtest_lift")

# ---- per group
st.subheader("Per DEAR group")
st.caption(
    "The same question for each group score, banded like the overall grade: do "
    "green-Adoption accounts renew more?"
)
groups = (
    pl.DataFrame([g.to_dict() for g in result.groups]).select(
        "group", "label", "auc", "auc_low", "auc_high"
    )
    if result.groups
    else pl.DataFrame()
)
if groups.height:
    st.plotly_chart(ach.group_auc_bars(groups, result.auc), key="backtest_group_auc")
    labels = {g.group: g.label for g in result.groups}
    gid = st.selectbox("Group", list(labels), format_func=labels.__getitem__, key="backtest_group")
    chosen = next(g for g in result.groups if g.group == gid)
    st.plotly_chart(
        ach.bands_bars(chosen.bands, view.colors, title=f"{chosen.label} bands"),
        key="backtest_group_bands",
    )
else:
    st.info("This scorecard has no group scores to compare.")
