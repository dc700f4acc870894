"""Scorecard designer (editors and admins): edit a draft of a scorecard and see, as you type,
what it would change; then save it as a version, activate it, compare and revert versions."""

import streamlit as st

from ui import designer
from ui.auth import Role
from ui.view import View

view = View.open(Role.EDITOR)  # viewers are refused here, on the server
ctx = designer.Context.of(view.user, view.src, view.dv, view.as_of, view.palette)
designer.header(ctx)  # not view.header: that scores the whole portfolio just for a count

ids = ctx.card_ids()
if st.session_state.get(designer.CARD) not in ids:
    st.session_state[designer.CARD] = ids[0]
card_id = st.selectbox(
    "Scorecard",
    ids,
    key=designer.CARD,
    help="Each scorecard has its own draft; the default one also holds the assignment rules.",
)
designer.start_section(ctx, card_id)


@st.fragment
def workbench() -> None:
    """The editor and its live preview: an edit reruns only this part of the page."""
    status = st.empty()  # filled after the edits of this run are in the draft
    editor, preview = st.columns([1, 1], gap="large")
    with editor:
        edited = designer.edit(ctx, card_id)
    status.markdown(designer.draft_status(ctx, card_id))
    with preview:
        st.subheader("Preview")
        designer.preview_section(ctx, edited)
    designer.save_section(ctx, edited, card_id)


workbench()

st.subheader("Versions")
designer.versions_section(ctx, card_id)
with st.expander("Score history", icon=":material/history:"):
    designer.history_section(ctx)
