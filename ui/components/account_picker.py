"""Pick an account: a searchable select box (type to search) for portfolios of a few thousand
accounts, a text search with the first matches beyond that. The choice is kept in
``state.ACCOUNT`` so other pages can open an account here."""

from __future__ import annotations

import polars as pl
import streamlit as st

from ui import state

SELECTBOX_LIMIT = 5000
MATCHES = 50


def _label(row: dict[str, object]) -> str:
    parts = [str(row.get("name") or row["account_id"]), str(row["account_id"])]
    if row.get("segment"):
        parts.append(str(row["segment"]))
    return " · ".join(parts)


def show(accounts: pl.DataFrame, *, key: str) -> str | None:
    """The chosen account id (None when there is nothing to choose)."""
    if accounts.height == 0:
        return None
    current = state.get_account()
    frame = accounts.select([c for c in ("account_id", "name", "segment") if c in accounts.columns])
    if accounts.height > SELECTBOX_LIMIT:
        query = st.text_input(
            "Search accounts",
            key=f"{key}_query",
            placeholder="Name or ID",
            help="Shows the first 50 matches.",
        )
        if query:
            q = query.strip().lower()
            frame = frame.filter(
                pl.col("name").str.to_lowercase().str.contains(q, literal=True)
                | pl.col("account_id").str.to_lowercase().str.contains(q, literal=True)
            )
        frame = frame.sort("name").head(MATCHES)
        if current is not None and current not in frame.get_column("account_id").to_list():
            frame = pl.concat(
                [accounts.filter(pl.col("account_id") == current).select(frame.columns), frame]
            )
    else:
        frame = frame.sort("name")
    ids = frame.get_column("account_id").to_list()
    if not ids:
        st.info("No account matches the search.")
        return None
    labels = {r["account_id"]: _label(r) for r in frame.iter_rows(named=True)}
    if st.session_state.get(key) not in ids or (
        current in ids and st.session_state.get(key) != current
    ):
        st.session_state[key] = current if current in ids else ids[0]
    chosen = st.selectbox(
        "Account",
        ids,
        key=key,
        format_func=lambda i: labels.get(i, i),
        on_change=lambda: state.set_account(st.session_state.get(key)),
    )
    state.set_account(chosen)
    return chosen
