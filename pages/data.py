"""Data: bring your own data (checked before anything is written), how good the data is, and
what every metric means."""

import hashlib

import polars as pl
import streamlit as st

from engine.problems import InputError
from ui import cached, charts, state
from ui import format as fmt
from ui.auth import Role
from ui.view import View

UPLOADS = {
    "accounts": "Accounts",
    "metric_values": "Metric values",
    "renewals": "Renewals",
    "activities": "Activities",
    "products": "Products (ARR per account and product)",
}
CHECKED = "data_upload_checked"  # (fingerprint of the files, UploadCheck)

view = View.open(Role.VIEWER)
view.header("Data")

tab_import, tab_quality, tab_metrics, tab_db = st.tabs(
    ["Import", "Data quality", "Metric definitions", "Database"]
)

with tab_import:
    st.markdown(
        "Upload CSV or Parquet files in the shape of the data contract (`docs/contracts.md`). "
        "Every file is checked first, and every problem is listed with the file, column, rows and "
        "rule; nothing is written until you import, and an import is all or nothing."
    )
    if not view.user.can(Role.EDITOR):
        st.info("Only editors (CS ops) and admins can import data.", icon=":material/lock:")
    elif cached.is_sample(view.src):
        st.info(
            "The built-in sample is read-only. Generate the demo database (Database tab) "
            "or point VITALS_DB at your own, then import.",
            icon=":material/info:",
        )
    else:
        files: dict[str, tuple[str, bytes]] = {}
        cols = st.columns(len(UPLOADS))
        for col, (table, label) in zip(cols, UPLOADS.items(), strict=True):
            up = col.file_uploader(label, type=["csv", "parquet"], key=f"data_upload_{table}")
            if up is not None:
                files[table] = (up.name, up.getvalue())
        fingerprint = hashlib.sha256(
            b"".join(
                t.encode() + n.encode() + hashlib.sha256(d).digest()
                for t, (n, d) in sorted(files.items())
            )
        ).hexdigest()
        checked = st.session_state.get(CHECKED)
        if checked is not None and checked[0] != fingerprint:
            checked = None
        if st.button(
            "Check files", key="data_check", disabled=not files, icon=":material/fact_check:"
        ):
            with st.spinner("Checking every file…"):
                checked = (fingerprint, cached.check_upload(view.src, files))
            st.session_state[CHECKED] = checked
        if checked is not None:
            report = checked[1]
            if report.ok:
                st.success(
                    "Every file passed. Rows to write: "
                    + ", ".join(
                        f"{UPLOADS.get(t, t)} {fmt.number(n)}" for t, n in report.rows.items()
                    )
                )
                if st.button(
                    "Import now", key="data_import", type="primary", icon=":material/upload:"
                ):
                    try:
                        with st.spinner("Importing in one transaction…"):
                            rows = cached.import_upload(view.src, files)
                    except InputError as exc:
                        st.error(f"Nothing was imported:\n\n{fmt.md(exc)}")
                    else:
                        st.session_state.pop(CHECKED, None)
                        state.flash(
                            "Imported: "
                            + ", ".join(f"{t} {fmt.number(n)}" for t, n in rows.items())
                        )
                        st.rerun()
            else:
                st.error(
                    f"{fmt.plural(len(report.problems), 'problem')} found; nothing was written. "
                    "Fix them and check again."
                )
                st.dataframe(
                    pl.DataFrame({"problem": report.problems}),
                    hide_index=True,
                    key="data_problems",
                    column_config={
                        "problem": st.column_config.TextColumn("Problem", width="large")
                    },
                )

with tab_quality:
    try:
        report = cached.data_quality(view.src, view.dv, view.as_of)
    except InputError as exc:
        st.info(str(exc))
    else:
        st.caption(
            f"At {fmt.day(report.as_of)} over {fmt.plural(report.accounts, 'customer')}: "
            "how many accounts have each metric, how many of those values are stale, "
            "and values out of range or far from the rest."
        )
        metrics = report.metrics
        q1, q2, q3 = st.columns(3)
        q1.metric(
            "Accounts without any metric",
            fmt.number(report.accounts_without_metrics.height),
            border=True,
        )
        q2.metric(
            "Lowest coverage",
            fmt.percent(metrics.get_column("coverage").min()) if metrics.height else "—",
            border=True,
        )
        outliers = (
            int(metrics.get_column("outliers").sum() or 0) if "outliers" in metrics.columns else 0
        )
        q3.metric("Outlying values", fmt.number(outliers), border=True)
        if metrics.height:
            chart = metrics.with_columns(
                pl.coalesce("label", "metric").alias("name"), pl.col("stale_share").fill_null(0.0)
            )
            st.plotly_chart(charts.coverage_bars(chart, label="name"), key="data_coverage")
            st.dataframe(
                metrics,
                hide_index=True,
                key="data_quality_table",
                column_config={
                    "metric": "Metric",
                    "label": "Label",
                    "group": "Group",
                    "accounts_with_value": st.column_config.NumberColumn("Accounts with a value"),
                    "coverage": st.column_config.ProgressColumn(
                        "Coverage", min_value=0, max_value=1, format="percent"
                    ),
                    "stale": st.column_config.NumberColumn("Stale"),
                    "stale_share": st.column_config.NumberColumn("Stale share", format="percent"),
                    "validity_days": st.column_config.NumberColumn("Validity (days)"),
                    "latest_as_of": st.column_config.DateColumn(
                        "Latest value", format="D MMM YYYY"
                    ),
                    "out_of_range": st.column_config.NumberColumn("Out of range"),
                    "outliers": st.column_config.NumberColumn("Outliers"),
                },
            )
        if report.accounts_without_metrics.height:
            with st.expander(
                f"Accounts without any metric ({report.accounts_without_metrics.height})"
            ):
                st.dataframe(
                    report.accounts_without_metrics, hide_index=True, key="data_no_metrics"
                )

with tab_metrics:
    defs = cached.metric_definitions()
    if defs.height == 0:
        st.info("No metric definitions found (data/metrics.yaml).")
    else:
        st.caption(
            "Every metric the scorecards can read. Derived metrics are computed from the raw "
            "source tables by SQL; the others arrive through imports."
        )
        st.dataframe(
            defs,
            hide_index=True,
            key="data_metric_defs",
            column_config={
                "id": "Metric",
                "label": "Label",
                "unit": "Unit",
                "group": "DEAR group",
                "level": "Level",
                "derived": st.column_config.CheckboxColumn("Derived by SQL"),
                "description": st.column_config.TextColumn("Description", width="large"),
            },
        )

with tab_db:
    if cached.is_sample(view.src):
        st.markdown(f"No database at `{cached.db_path()}`: the app shows the built-in sample.")
        if view.user.can(Role.EDITOR):
            st.markdown(
                "Generate the demo portfolio (2,000 accounts, two years of weekly history; "
                "about a minute)."
            )
            if st.button(
                "Generate the demo database", key="data_demo", icon=":material/auto_awesome:"
            ):
                with st.status("Generating the demo portfolio…", expanded=True) as status:
                    summary = cached.generate_demo(lambda msg: status.write(msg))
                    status.update(label="Demo portfolio ready", state="complete")
                state.flash(f"Demo generated: {fmt.number(summary.get('accounts'))} accounts.")
                st.rerun()
    else:
        st.markdown(f"Database: `{view.src.removeprefix('db:')}`")
    counts = cached.table_counts(view.src, view.dv)
    st.dataframe(
        pl.DataFrame({"table": list(counts), "rows": list(counts.values())}).filter(
            pl.col("rows") > 0
        ),
        hide_index=True,
        key="data_counts",
        column_config={
            "table": "Table",
            "rows": st.column_config.NumberColumn("Rows", format="localized"),
        },
    )
