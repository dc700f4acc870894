"""Admin: who can do what, and what everyone did."""

import polars as pl
import streamlit as st

from ui import auth, cached, router
from ui import format as fmt
from ui.auth import Role

user = router.page(Role.ADMIN)
src = cached.source()
dv = cached.data_version(src)

st.title("Admin")
st.caption(f"Signed in as {user.username} · credentials from {auth.config().source}")

st.subheader("Users and roles")
st.caption(
    "viewer: read and export · editor: also scorecards, subjective scores, manual "
    "overrides and imports · admin: also this page. Users and roles are managed in the "
    "credentials (.streamlit/secrets.toml or VITALS_AUTH_FILE), never in the app."
)
people = auth.users()
st.dataframe(
    pl.DataFrame(
        {
            "username": [u.username for u in people],
            "name": [u.name for u in people],
            "email": [u.email or "" for u in people],
            "role": [u.role.label for u in people],
        }
    ),
    hide_index=True,
    key="admin_users",
    column_config={"username": "Username", "name": "Name", "email": "Email", "role": "Role"},
)
if auth.is_demo():
    st.info(
        "Demo mode: these users are generated when the process starts; configure real "
        "credentials before sharing the app.",
        icon=":material/key:",
    )

st.subheader("Audit log")
log = cached.audit_log(src, dv, limit=1000)
if log.height == 0:
    st.info("Nothing recorded yet.")
else:
    a1, a2 = st.columns(2)
    actors = a1.multiselect(
        "By",
        sorted(log.get_column("actor").unique().to_list()),
        key="admin_actor",
        placeholder="Everyone",
    )
    actions = a2.multiselect(
        "Action",
        sorted(log.get_column("action").unique().to_list()),
        key="admin_action",
        placeholder="All actions",
    )
    shown = log
    if actors:
        shown = shown.filter(pl.col("actor").is_in(actors))
    if actions:
        shown = shown.filter(pl.col("action").is_in(actions))
    st.caption(f"{fmt.plural(shown.height, 'entry', 'entries')}, newest first (the last 1,000).")
    st.dataframe(
        shown.with_columns(pl.col("detail").cast(pl.Utf8)),
        hide_index=True,
        key="admin_audit",
        column_config={
            "id": st.column_config.NumberColumn("#", format="%d"),
            "at": st.column_config.DatetimeColumn("When", format="D MMM YYYY, HH:mm"),
            "actor": "By",
            "action": "Action",
            "entity": "On",
            "detail": st.column_config.TextColumn("Detail", width="large"),
        },
    )
