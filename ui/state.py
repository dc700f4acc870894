"""Session-state keys and typed get/set helpers, in one place.

Every key the app reads or writes is named here, so two pieces of code never use two spellings
of one key. Widgets own their keys (a component sets the default once and returns the value);
this module only holds the names and the typed accessors for state shared between pages.

Nothing here decides who the user is: identity and role come from :mod:`ui.auth`, which checks
a server-side signature, so writing these keys cannot grant anyone a role.
"""

from __future__ import annotations

from datetime import date
from typing import Any, TypeVar

import streamlit as st

T = TypeVar("T")

# --- authentication (written by streamlit-authenticator and ui.auth only) -----------------
AUTH_STATUS = "authentication_status"  # streamlit-authenticator's key
AUTH_USERNAME = "username"  # streamlit-authenticator's key
AUTH_SIGNATURE = "vitals_auth_signature"  # ui.auth: HMAC binding username to this session
AUTHENTICATOR = "vitals_authenticator"  # ui.auth: this run's Authenticate object
SET_COOKIE = "vitals_set_cookie"  # ui.auth: set the re-login cookie on the next run

# --- shared across pages ------------------------------------------------------------------
PALETTE = "vitals_palette"  # "standard" | "colorblind"
ACCOUNT = "vitals_account"  # the account open in the Customer 360
AS_OF = "filter_as_of"  # owned by ui.components.filters
SCORECARD_VERSION = "filter_scorecard_version"  # owned by ui.components.filters
FLASH = "vitals_flash"  # a one-shot message shown after a rerun (e.g. "saved")
PENDING_AS_OF = "vitals_pending_as_of"  # an as-of date to select on the next run

# --- filters (owned by ui.components.filters) ---------------------------------------------
FILTER_PREFIX = "filter_"


def get(key: str, default: T) -> T:
    """The value at ``key`` or ``default`` when unset (typed by the default)."""
    value = st.session_state.get(key, default)
    return value if value is not None else default


def put(key: str, value: Any) -> None:
    st.session_state[key] = value


def setdefault(key: str, value: Any) -> Any:
    """Set ``key`` once (a widget's default) and return the current value."""
    if key not in st.session_state:
        st.session_state[key] = value
    return st.session_state[key]


def drop(key: str) -> None:
    st.session_state.pop(key, None)


def get_account() -> str | None:
    value = st.session_state.get(ACCOUNT)
    return value if isinstance(value, str) and value else None


def set_account(account_id: str | None) -> None:
    st.session_state[ACCOUNT] = account_id


def get_as_of() -> date | None:
    value = st.session_state.get(AS_OF)
    return value if isinstance(value, date) else None


def show_as_of_next_run(day: date) -> None:
    """Select ``day`` in the sidebar's as-of box on the next run (the box may already be
    drawn in this run, when its value can no longer change)."""
    st.session_state[PENDING_AS_OF] = day


def get_palette() -> str:
    value = st.session_state.get(PALETTE)
    return value if value in ("standard", "colorblind") else "standard"


def flash(message: str) -> None:
    """Queue a success message for the next run (shown once by :func:`pop_flash`)."""
    st.session_state[FLASH] = message


def pop_flash() -> str | None:
    value = st.session_state.pop(FLASH, None)
    return value if isinstance(value, str) else None
