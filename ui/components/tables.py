"""Account tables with sensible formats (currency, scores as bars, dates) and a way from a row
to the account's Customer 360."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl
import streamlit as st

from ui import format as fmt
from ui import state

CUSTOMER_360 = "pages/customer_360.py"
_EMOJI = {"red": "🔴", "yellow": "🟡", "green": "🟢"}


def grade_badge(grade: str | None) -> str:
    """``🔴 Red`` for red/yellow/green grades (the label always stays readable as text)."""
    if grade is None:
        return "—"
    mark = _EMOJI.get(grade.strip().lower())
    return f"{mark} {grade}" if mark else grade


def badge_column(frame: pl.DataFrame, *cols: str) -> pl.DataFrame:
    """Grade columns as badges (see :func:`grade_badge`)."""
    out = frame
    for col in cols:
        if col in out.columns:
            out = out.with_columns(
                pl.col(col).map_elements(grade_badge, return_dtype=pl.Utf8, skip_nulls=False)
            )
    return out


def score_column(label: str, help: str | None = None) -> object:
    return st.column_config.ProgressColumn(
        label, min_value=0, max_value=100, format="%.1f", help=help
    )


def open_customer_360(account_id: str) -> None:
    state.set_account(account_id)
    st.switch_page(CUSTOMER_360)


def _open_button(frame: pl.DataFrame, selection: object, key: str) -> None:
    rows = getattr(getattr(selection, "selection", None), "rows", None) or []
    if not rows:
        st.caption("Select a row to open the account's Customer 360.")
        return
    row = frame.row(rows[0], named=True)
    if st.button(
        f"Open {fmt.md(row.get('name') or row['account_id'])} in Customer 360",
        key=f"{key}_open",
        icon=":material/person_search:",
    ):
        open_customer_360(str(row["account_id"]))


def accounts(
    frame: pl.DataFrame,
    *,
    key: str,
    colors: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """A table of accounts (name, ARR, segment, CSM, renewal date, score, grade, groups)."""
    cols: list[str] = [
        c
        for c in (
            "account_id",
            "name",
            "arr",
            "segment",
            "region",
            "csm",
            "lifecycle_stage",
            "renewal_date",
            "score",
            "grade",
        )
        if c in frame.columns
    ]
    cols += [c for c in (extra or {}) if c in frame.columns and c not in cols]
    shown = badge_column(frame.select(cols), "grade")
    config: dict[str, Any] = {
        "account_id": st.column_config.TextColumn("ID", width="small"),
        "name": st.column_config.TextColumn("Account", width="medium"),
        "arr": st.column_config.NumberColumn("ARR", format="dollar"),
        "segment": "Segment",
        "region": "Region",
        "csm": "CSM",
        "lifecycle_stage": "Stage",
        "renewal_date": st.column_config.DateColumn("Renewal", format="D MMM YYYY"),
        "score": score_column("Score", "Overall score 0-100 after overrides."),
        "grade": "Grade",
        **(extra or {}),
    }
    selection = st.dataframe(
        shown,
        key=key,
        hide_index=True,
        column_config=config,
        on_select="rerun",
        selection_mode="single-row",
    )
    _open_button(frame, selection, key)


def movers(frame: pl.DataFrame, *, key: str, why: str | None = None) -> None:
    """Movers: before, after, change and grades (and a 'why' column when given)."""
    cols = [
        "account_id",
        "name",
        "arr",
        "score_before",
        "score_after",
        "change",
        "grade_before",
        "grade_after",
    ]
    if why and why in frame.columns:
        cols.append(why)
    shown = badge_column(
        frame.select([c for c in cols if c in frame.columns]), "grade_before", "grade_after"
    )
    selection = st.dataframe(
        shown,
        key=key,
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        column_config={
            "account_id": st.column_config.TextColumn("ID", width="small"),
            "name": st.column_config.TextColumn("Account", width="medium"),
            "arr": st.column_config.NumberColumn("ARR", format="dollar"),
            "score_before": st.column_config.NumberColumn("Before", format="%.1f"),
            "score_after": st.column_config.NumberColumn("After", format="%.1f"),
            "change": st.column_config.NumberColumn("Change", format="%+.1f"),
            "grade_before": "Grade before",
            "grade_after": "Grade after",
            **(
                {why: st.column_config.TextColumn("Why (largest parts)", width="large")}
                if why
                else {}
            ),
        },
    )
    _open_button(frame, selection, key)
