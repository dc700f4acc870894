"""The router: which pages a user may reach, the login gate and the shared sidebar.

``app.py`` calls :func:`main` on every run. Until someone signs in, the only page is the login
page (any URL shows it). Pages are listed by the lowest role that may open them; a page file
that is missing is skipped, so the app works while colleagues' pages are being written. Every
page also checks the role itself (:func:`page`), so a page never relies on this list alone.

Why pages call :func:`page` first: the project keeps its pages in ``pages/``, and Streamlit
runs a ``pages/`` script *directly*, without the entry point, when it is asked for one before
any ``st.navigation`` call in the process (the first request of a fresh server, and every run
of ``AppTest``). :func:`ensure` notices that case and does the router's work from inside the
page: the same gate, sidebar and menu, and the right page when this one is not allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st
from streamlit.navigation.page import StreamlitPage
from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner import get_script_run_ctx

from ui import auth
from ui.auth import Role, User

ROOT = Path(__file__).resolve().parent.parent
LOGIN = "pages/login.py"

# (section, file, title, icon, lowest role)
PAGES: list[tuple[str, str, str, str, Role]] = [
    ("Portfolio", "pages/overview.py", "Overview", ":material/dashboard:", Role.VIEWER),
    (
        "Portfolio",
        "pages/distributions.py",
        "DEAR distributions",
        ":material/bar_chart:",
        Role.VIEWER,
    ),
    ("Portfolio", "pages/trends.py", "Trends", ":material/trending_up:", Role.VIEWER),
    ("Accounts", "pages/customer_360.py", "Customer 360", ":material/person_search:", Role.VIEWER),
    ("Scorecards", "pages/designer.py", "Scorecard designer", ":material/tune:", Role.EDITOR),
    ("Scorecards", "pages/backtest.py", "Backtest", ":material/fact_check:", Role.VIEWER),
    ("Scorecards", "pages/drivers.py", "Drivers", ":material/insights:", Role.VIEWER),
    ("Scorecards", "pages/optimizer.py", "Optimizer", ":material/auto_fix_high:", Role.VIEWER),
    ("Settings", "pages/data.py", "Data", ":material/database:", Role.VIEWER),
    ("Settings", "pages/admin.py", "Admin", ":material/admin_panel_settings:", Role.ADMIN),
]


def lowest_role(path: str) -> Role | None:
    """The lowest role that may open a page file (None: not a listed page)."""
    return next((role for _, p, _, _, role in PAGES if p == path), None)


def pages_for(user: User) -> dict[str, list[tuple[str, str, str]]]:
    """``{section: [(file, title, icon)]}`` the user may open (files that exist only)."""
    out: dict[str, list[tuple[str, str, str]]] = {}
    for section, path, title, icon, role in PAGES:
        if user.can(role) and (ROOT / path).is_file():
            out.setdefault(section, []).append((path, title, icon))
    return out


def _login_pages() -> list[StreamlitPage]:
    """The login page, also at the address of every other page: a link to a page shows the
    login (and, once signed in, that page) rather than "page not found"."""
    login = str(ROOT / LOGIN)
    pages = [st.Page(login, title="Sign in", icon=":material/login:", default=True)]
    for _, path, title, _, _ in PAGES:
        pages.append(st.Page(login, title=f"Sign in · {title}", url_path=Path(path).stem))
    return pages


def _navigation() -> StreamlitPage:
    """Sign-in gate, sidebar and menu; returns the page to show."""
    from ui.components import sidebar  # imports ui.cached: only once someone is signed in

    auth.init()
    user = auth.current_user()
    if user is not None and sidebar.show(user) is None:
        user = None  # signed out in this run
    if user is None:
        return st.navigation(_login_pages(), position="hidden")
    sections: dict[str, list[StreamlitPage]] = {
        name: [st.Page(str(ROOT / path), title=title, icon=icon) for path, title, icon in items]
        for name, items in pages_for(user).items()
    }
    # The address of a page this user may not open says why, instead of "page not found".
    for section, path, title, _, role in PAGES:
        if not user.can(role) and (ROOT / path).is_file():
            sections.setdefault(section, []).append(
                st.Page(
                    _refusal(title, role),
                    title=title,
                    url_path=Path(path).stem,
                    visibility="hidden",
                )
            )
    return st.navigation(sections)


def _refusal(title: str, role: Role) -> Callable[[], None]:
    def page() -> None:
        st.title(title)
        auth.require_role(role)  # shows why, and stops

    page.__name__ = f"refused_{Path(title).stem}"
    return page


def main() -> None:
    """The entry point's whole job (app.py)."""
    st.set_page_config(page_title="Vitals", page_icon="🩺", layout="wide")
    _navigation().run()


def ensure() -> None:
    """Make sure the router ran in this script run (see the module docstring). When the page
    was run directly and is not the page the router picks (not signed in, or not allowed),
    run the router's page instead and stop this one."""
    if PagesManager.uses_pages_directory is not True:
        return  # st.navigation ran: app.py is in charge
    st.set_page_config(page_title="Vitals", page_icon="🩺", layout="wide")
    ctx = get_script_run_ctx()
    if ctx is None:
        return
    # Render the router's part as app.py would (widget ids include the active page hash, so
    # the sidebar's widgets keep their state whichever way the run started); st.navigation
    # also switches the active hash, and leaving the block puts this page's hash back.
    running = ctx.page_script_hash  # st.navigation below moves it to the page it picks
    pages: dict[str, Any] = dict(ctx.pages_manager.get_pages())
    running_file = pages.get(running, {}).get("script_path")
    with ctx.run_with_active_hash(ctx.pages_manager.main_script_hash):
        chosen = _navigation()
    same_file = (
        running_file is not None
        and Path(str(running_file)).resolve() == Path(str(chosen._page)).resolve()
    )
    if chosen._script_hash != running or not same_file:
        chosen.run()
        st.stop()


def page(role: Role) -> User:
    """First line of every page: the router, then the server-side role check."""
    ensure()
    return auth.require_role(role)
