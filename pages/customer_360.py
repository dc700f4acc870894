"""Customer 360: one account's scorecard, history, why it moved, and what the team knows."""

from datetime import timedelta

import polars as pl
import streamlit as st

from engine.problems import InputError
from ui import cached, charts, state, summaries
from ui import format as fmt
from ui.auth import Role
from ui.components import account_picker, tables
from ui.view import View

view = View.open(Role.VIEWER)
view.header("Customer 360")
if view.portfolio.height == 0:
    view.empty()
    st.stop()

account_id = account_picker.show(view.portfolio, key="c360_select")
if account_id is None:
    st.stop()

account = view.portfolio.filter(pl.col("account_id") == account_id).row(0, named=True)
detail = cached.account_detail(view.src, view.dv, view.as_of, view.choice, account_id)
company = detail.company.row(0, named=True) if detail.company.height else {}
card = view.cards.get(company.get("scorecard") or "", view.card)
hist = cached.account_history(view.src, view.dv, view.choice, account_id)
earlier = (
    summaries.date_before(hist.get_column("as_of").to_list(), view.as_of, weeks=4)
    if hist.height
    else None
)
before = hist.filter(pl.col("as_of") == earlier).get_column("score").first() if earlier else None
score_now = company.get("score")

# ---- who they are and how they are doing ---------------------------------------------------
st.header(fmt.md(account.get("name") or account_id))
facts = [account_id]
for col in ("segment", "region", "lifecycle_stage", "industry"):
    if account.get(col):
        facts.append(str(account[col]))
if account.get("csm"):
    facts.append(f"CSM {account['csm']}")
facts.append(f"ARR {fmt.currency(account.get('arr'))}")
if account.get("renewal_date"):
    facts.append(f"renews {fmt.day(account['renewal_date'])}")
facts.append(f"scorecard {card.name or card.id}")
st.caption(" · ".join(fmt.md(f) for f in facts))

m1, m0, m2, m3, m4 = st.columns(5)
m1.metric(
    "Overall score",
    fmt.score(score_now),
    delta=None if before is None or score_now is None else f"{score_now - before:+.1f} in 4 weeks",
    border=True,
    help="0-100 after overrides.",
)
m0.metric(
    "Grade",
    tables.grade_badge(company.get("grade")),
    border=True,
    help="The band of the score; a score on an edge belongs to the higher band.",
)
m2.metric(
    "Outcomes score",
    fmt.score(company.get("outcomes_score")),
    border=True,
    help="Deployment, Adoption and ROI.",
)
m3.metric(
    "Experience score",
    fmt.score(company.get("experience_score")),
    border=True,
    help="Engagement and surveys.",
)
missing, stale = company.get("missing") or [], company.get("stale") or []
m4.metric(
    "Missing · stale",
    f"{len(missing)} · {len(stale)}",
    border=True,
    help="Measures without a value, and values older than their validity period: "
    + (", ".join([*missing, *stale]) or "none"),
)
if company.get("incomplete"):
    st.warning(
        "Incomplete: under this scorecard's `fixed` policy, missing measures count as "
        "absent weight, so the score is computed from the measures present."
    )
if score_now is None:
    st.info(f"No score on {fmt.day(view.as_of)}: no measure of this account has a value then.")

# Overrides that fired.
fired = company.get("overrides") or []
if fired:
    reasons = summaries.override_reasons(card)
    manual = cached.manual_overrides(view.src, view.dv).filter(pl.col("account_id") == account_id)
    for oid in fired:
        if oid == "manual" and manual.height:
            active = (
                manual.filter(
                    (pl.col("created_on") <= view.as_of)
                    & (pl.col("expires_on").is_null() | (pl.col("expires_on") > view.as_of))
                )
                .sort("created_on")
                .tail(1)
            )
            if active.height:
                r = active.row(0, named=True)
                until = f", until {fmt.day(r['expires_on'])}" if r.get("expires_on") else ""
                st.warning(
                    f"**Manual override** ({fmt.md(r['action'])} {fmt.md(r['value'])}) by "
                    f"{fmt.md(r['author'])} on {fmt.day(r['created_on'])}{until}: "
                    f"{fmt.md(r.get('reason') or 'no reason given')}",
                    icon=":material/front_hand:",
                )
                continue
        st.warning(
            f"**Override fired: {fmt.md(oid)}** — {fmt.md(reasons.get(oid, 'manual override'))}",
            icon=":material/rule:",
        )
        if company.get("raw_score") is not None and score_now is not None:
            st.caption(
                f"Score before overrides {fmt.score(company['raw_score'])}, "
                f"after {fmt.score(score_now)}."
            )

# ---- group scores ---------------------------------------------------------------------------
groups = [(g.id, g.title, g.help) for g in card.groups]
cols = st.columns(len(groups) or 1)
for col, (gid, label, help_text) in zip(cols, groups, strict=False):
    value = company.get(gid)
    col.metric(label, fmt.score(value), help=help_text or None, border=True)
    col.progress(min(max(int(value or 0), 0), 100))

# ---- the scorecard --------------------------------------------------------------------------
st.subheader("Scorecard")
table = summaries.measure_table(detail.contributions, card, as_of=view.as_of)
if table.height == 0:
    st.info("No measure values for this account at this date.")
else:
    st.caption(
        "Every measure: its value and date, its 0-100 score and grade colour, its weight in "
        "the overall score and the points it adds. Stale values are older than the measure's "
        "validity period; hover a column title for its meaning."
    )
    shown = table.with_columns(
        pl.col("grade").map_elements(tables.grade_badge, return_dtype=pl.Utf8, skip_nulls=False)
    ).select(
        "group_label",
        "label",
        "product",
        "value",
        "value_as_of",
        "age_days",
        "score",
        "grade",
        "weight",
        "contribution",
        "stale",
        "missing",
        "help",
    )
    st.dataframe(
        shown,
        hide_index=True,
        key="c360_measures",
        column_config={
            "group_label": "Group",
            "label": st.column_config.TextColumn("Measure", width="medium"),
            "product": "Product",
            "value": "Value",
            "value_as_of": st.column_config.DateColumn("As of", format="D MMM YYYY"),
            "age_days": st.column_config.NumberColumn("Age (days)", format="%d"),
            "score": tables.score_column("Score", "The measure's 0-100 score from its map."),
            "grade": st.column_config.TextColumn("Colour", help="The band of the measure score."),
            "weight": st.column_config.NumberColumn(
                "Weight",
                format="percent",
                help="Effective share of the overall score (group weight × measure weight, "
                "rescaled over the measures present).",
            ),
            "contribution": st.column_config.NumberColumn(
                "Points",
                format="%.1f",
                help="Weight × score: what the measure adds to the overall.",
            ),
            "stale": st.column_config.CheckboxColumn("Stale"),
            "missing": st.column_config.CheckboxColumn("Missing"),
            "help": st.column_config.TextColumn("What it means", width="large"),
        },
    )
    contrib = table.group_by("group", "group_label", "measure", "label", maintain_order=True).agg(
        pl.col("contribution").sum(), pl.col("score").mean(), pl.col("weight").sum()
    )
    with st.expander("Points per measure"):
        st.plotly_chart(
            charts.measure_contributions(contrib, charts.GROUP_COLORS), key="c360_contrib"
        )

# ---- history and explanation ----------------------------------------------------------------
st.subheader("History")
if hist.height == 0:
    st.info("No history for this account yet.")
else:
    st.plotly_chart(
        charts.account_history(
            hist,
            summaries.band_edges(card),
            view.colors,
            groups=[(g, label) for g, label, _ in groups],
        ),
        key="c360_history",
    )


@st.fragment
def explanation() -> None:
    """Why did the score move? Reruns on its own when the dates change."""
    st.subheader("Why did the score move?")
    dates = (
        sorted(set(hist.get_column("as_of").to_list()) | {view.as_of})
        if hist.height
        else [view.as_of]
    )
    if len(dates) < 2:
        st.info("An explanation needs two dates with a score.")
        return
    default_start = summaries.date_before(dates, view.as_of, weeks=4) or dates[0]
    end_default = view.as_of if view.as_of in dates else dates[-1]
    start, end = st.select_slider(
        "Between",
        options=dates,
        value=(default_start, end_default),
        format_func=fmt.day,
        key="c360_explain_dates",
    )
    if start == end:
        st.info("Pick two different dates.")
        return
    parts = cached.explanation(view.src, view.dv, view.choice, account_id, start, end)
    d0 = cached.account_detail(view.src, view.dv, start, view.choice, account_id).company
    d1 = cached.account_detail(view.src, view.dv, end, view.choice, account_id).company
    s0 = d0.get_column("score").first() if d0.height else None
    s1 = d1.get_column("score").first() if d1.height else None
    if s0 is None or s1 is None:
        st.info("The account has no score at one of these dates, so there is no change to split.")
        return
    steps = summaries.explanation_parts(parts, summaries.measure_labels(view.cards), top=10)
    st.caption(
        f"From {fmt.score(s0)} on {fmt.day(start)} to {fmt.score(s1)} on {fmt.day(end)} "
        f"({fmt.signed(s1 - s0)} points). Each bar is a measure's share of the change: its "
        "score moving, its weight moving (other measures missing or back), or an override."
    )
    if steps.height == 0:
        st.success("The score did not move.")
        return
    st.plotly_chart(
        charts.explanation_waterfall(
            steps, start=s0, end=s1, start_label=fmt.day(start), end_label=fmt.day(end)
        ),
        key="c360_waterfall",
    )


explanation()

# ---- products, activities, renewals ---------------------------------------------------------
left, right = st.columns(2)
with left:
    st.subheader("Products")
    prods = (
        detail.products.filter(pl.col("product").is_not_null())
        if detail.products.height
        else detail.products
    )
    if prods.height == 0:
        st.caption("Scored at company level (no product-level values).")
    else:
        arr = cached.products(view.src, view.dv).filter(pl.col("account_id") == account_id)
        prods = prods.join(arr.select("product", "arr"), on="product", how="left")
        st.dataframe(
            tables.badge_column(
                prods.select(
                    "product",
                    "arr",
                    "score",
                    "grade",
                    *[g for g, _, _ in groups if g in prods.columns],
                ),
                "grade",
            ),
            hide_index=True,
            key="c360_products",
            column_config={
                "product": "Product",
                "arr": st.column_config.NumberColumn("ARR", format="dollar"),
                "score": tables.score_column("Score"),
                "grade": "Grade",
                **{
                    g: st.column_config.NumberColumn(label, format="%.0f") for g, label, _ in groups
                },
            },
        )
    st.subheader("Renewals")
    ren = cached.account_rows(cached.renewals(view.src, view.dv), account_id)
    if ren.height == 0:
        st.caption("No renewal on record.")
    else:
        ren = ren.with_columns(
            pl.when(pl.col("arr_after") == 0)
            .then(pl.lit("churned"))
            .when(pl.col("arr_after") > pl.col("arr_before"))
            .then(pl.lit("expanded"))
            .when(pl.col("arr_after") < pl.col("arr_before"))
            .then(pl.lit("downsold"))
            .otherwise(pl.lit("flat"))
            .alias("outcome")
        ).sort("renewal_date", descending=True)
        st.dataframe(
            ren.drop("account_id"),
            hide_index=True,
            key="c360_renewals",
            column_config={
                "renewal_date": st.column_config.DateColumn("Date", format="D MMM YYYY"),
                "arr_before": st.column_config.NumberColumn("ARR before", format="dollar"),
                "arr_after": st.column_config.NumberColumn("ARR after", format="dollar"),
                "product": "Product",
                "outcome": "Outcome",
            },
        )
with right:
    st.subheader("Activities")
    act = cached.account_rows(cached.activities(view.src, view.dv), account_id)
    if act.height == 0:
        st.caption("No CSM activity on record.")
    else:
        act = act.filter(pl.col("date") <= view.as_of).sort("date", descending=True)
        recent = act.filter(pl.col("date") > view.as_of - timedelta(days=90))
        counts = recent.group_by("type").len().sort("len", descending=True)
        st.caption(
            "Last 90 days: "
            + (
                ", ".join(f"{r['type']} × {r['len']}" for r in counts.iter_rows(named=True))
                or "none"
            )
        )
        st.dataframe(
            act.head(50).drop("account_id"),
            hide_index=True,
            key="c360_activities",
            column_config={
                "date": st.column_config.DateColumn("Date", format="D MMM YYYY"),
                "type": "Activity",
                "csm": "CSM",
            },
        )

# ---- what the team knows: subjective scores and manual overrides ----------------------------
st.subheader("Subjective scores and manual overrides")
subjective = summaries.subjective_measures(card)
entry_day = cached.entry_date(view.src, view.dv)
if subjective:
    entries = cached.subjective_entries(
        view.src, view.dv, account_id, tuple(m for m, _, _ in subjective)
    )
    if entries.height:
        st.dataframe(
            entries.select("as_of", "metric", "level", "author", "comment", "source"),
            hide_index=True,
            key="c360_subjective_log",
            column_config={
                "as_of": st.column_config.DateColumn("Date", format="D MMM YYYY"),
                "metric": "Measure",
                "level": "Level",
                "author": "By",
                "comment": st.column_config.TextColumn("Comment", width="large"),
                "source": "Source",
            },
        )
manual_all = cached.manual_overrides(view.src, view.dv).filter(pl.col("account_id") == account_id)
if manual_all.height:
    st.dataframe(
        manual_all.drop("account_id"),
        hide_index=True,
        key="c360_manual_log",
        column_config={
            "id": "ID",
            "action": "Action",
            "value": "Value",
            "reason": "Reason",
            "author": "By",
            "created_on": st.column_config.DateColumn("From", format="D MMM YYYY"),
            "expires_on": st.column_config.DateColumn("Until (exclusive)", format="D MMM YYYY"),
        },
    )

if not view.user.can(Role.EDITOR):
    st.caption("Editors (CS ops) can record subjective scores and manual overrides here.")
    st.stop()

form_left, form_right = st.columns(2)
with form_left:
    if not subjective:
        st.caption("This scorecard has no subjective measure (a measure with levels).")
    else:
        with st.form("c360_subjective_form", clear_on_submit=True):
            st.markdown("**Record a subjective score**")
            options = {m: label for m, label, _ in subjective}
            metric = st.selectbox(
                "Measure", list(options), format_func=options.get, key="c360_subj_metric"
            )
            levels = next(lv for m, _, lv in subjective if m == metric)
            level = st.radio(
                "Level",
                [lv for lv, _ in levels],
                key="c360_subj_level",
                captions=[h for _, h in levels],
            )
            comment = st.text_area("Comment (why)", key="c360_subj_comment", max_chars=1000)
            if st.form_submit_button("Save subjective score", icon=":material/save:"):
                try:
                    cached.record_subjective_score(
                        view.src,
                        account_id=account_id,
                        metric=metric,
                        level=level,
                        comment=comment,
                        on=entry_day,
                    )
                except InputError as exc:
                    st.error(str(exc))
                else:
                    state.flash(
                        f"Saved: {fmt.md(options[metric])} = {fmt.md(level)} for "
                        f"{fmt.md(account.get('name'))}, as of {fmt.day(entry_day)}."
                    )
                    state.show_as_of_next_run(entry_day)
                    st.rerun()
with form_right:
    with st.form("c360_override_form", clear_on_submit=True):
        st.markdown("**Set a manual override**")
        grade_options = [b.label for b in card.scheme.bands]
        grade = st.selectbox(
            "Grade",
            grade_options,
            key="c360_ovr_grade",
            help="The score moves into this band (the raw score is kept).",
        )
        reason = st.text_area("Reason", key="c360_ovr_reason", max_chars=500)
        no_expiry = st.checkbox("No expiry", key="c360_ovr_forever")
        expires = st.date_input(
            "Expires on",
            value=entry_day + timedelta(days=30),
            min_value=entry_day + timedelta(days=1),
            key="c360_ovr_expires",
            help="The override stops counting on this date.",
        )
        if st.form_submit_button("Save override", icon=":material/front_hand:"):
            try:
                cached.record_manual_override(
                    view.src,
                    account_id=account_id,
                    action="grade",
                    value=grade,
                    reason=reason,
                    on=entry_day,
                    expires_on=None if no_expiry else expires,
                )
            except InputError as exc:
                st.error(str(exc))
            else:
                state.flash(
                    f"Override saved: {fmt.md(account.get('name'))} is {fmt.md(grade)} "
                    f"from {fmt.day(entry_day)}."
                )
                state.show_as_of_next_run(entry_day)
                st.rerun()
    active_ids = (
        manual_all.filter(pl.col("expires_on").is_null() | (pl.col("expires_on") > entry_day))
        .get_column("id")
        .to_list()
        if manual_all.height
        else []
    )
    if active_ids:
        remove = st.selectbox(
            "Remove an override", active_ids, key="c360_ovr_remove", format_func=lambda i: f"#{i}"
        )
        if st.button("Remove", key="c360_ovr_remove_btn", icon=":material/delete:"):
            cached.remove_manual_override(view.src, int(remove))
            state.flash(f"Override #{remove} removed.")
            st.rerun()
