"""The shared sidebar: who is signed in, the data source, the filters, the colour palette and
the sign-out button. The router renders it once per run for a signed-in user."""

from __future__ import annotations

import streamlit as st

from ui import auth, cached, state
from ui.auth import User
from ui.components import filters
from ui.components.filters import Filters
from ui.view import filter_options


def show(user: User) -> Filters | None:
    """Render the sidebar; None when the user has just signed out (then nothing else is
    drawn and the router shows the login page in the same run)."""
    sb = st.sidebar
    sb.markdown("### 🩺 Vitals")
    sb.caption(f"Signed in as **{user.name}** · {user.role.label}")
    body = sb.container()  # filled below, drawn above the sign-out button
    auth.logout_button()
    if auth.current_user() is None:
        return None
    with body:
        src = cached.source()
        dv = cached.data_version(src)
        if cached.is_sample(src):
            st.caption("Data: the built-in sample (no database yet)")
        result = filters.show(filter_options(src, dv))
        st.toggle(
            "Colour-blind-safe colours",
            key="vitals_palette_toggle",
            value=state.get_palette() == "colorblind",
            on_change=_toggle_palette,
            help="Okabe-Ito colours, distinguishable with every common colour vision deficiency.",
        )
    return result


def _toggle_palette() -> None:
    on = bool(st.session_state.get("vitals_palette_toggle"))
    state.put(state.PALETTE, "colorblind" if on else "standard")
