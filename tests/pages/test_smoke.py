"""Every page, for every role: it opens without an exception when the role may open it, and
is not even in the navigation when it may not."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.pages.helpers import ROOT, errors, login, new_app, open_page, titles

ROLES = {"leader": 1, "ops": 2, "admin": 3}  # demo users: viewer, editor, admin
# The lowest role per page (the product's rule); any other page is for viewers.
LOWEST = {"pages/designer.py": 2, "pages/admin.py": 3}
OURS = {
    "pages/overview.py",
    "pages/distributions.py",
    "pages/trends.py",
    "pages/customer_360.py",
    "pages/data.py",
    "pages/admin.py",
}
PAGES = sorted(
    f"pages/{p.name}"
    for p in (ROOT / "pages").glob("*.py")
    if p.name not in ("login.py", "__init__.py")
)


def test_the_page_list_is_discovered() -> None:
    assert {"pages/overview.py", "pages/customer_360.py", "pages/admin.py"} <= set(PAGES)


@pytest.mark.usefixtures("app_env")
@pytest.mark.parametrize("user", list(ROLES))
@pytest.mark.parametrize("page", PAGES)
def test_every_page_for_every_role(page: str, user: str) -> None:
    at = login(user)
    allowed = ROLES[user] >= LOWEST.get(page, 1)
    if not allowed:
        with pytest.raises(ValueError, match="navigation page"):
            at.switch_page(page)
        return
    open_page(at, page)
    assert not at.exception, [e.value for e in at.exception]
    assert not [e for e in errors(at) if "needs the" in e or "sign in" in e.lower()], errors(at)
    assert titles(at), f"{page} shows no title"


@pytest.mark.usefixtures("app_env")
def test_only_the_login_page_before_signing_in() -> None:
    at = new_app().run()
    assert not at.exception
    assert [w.label for w in at.text_input] == ["Username", "Password"]
    assert any("vitals-demo" in i for i in (x.value for x in at.info)), "demo password not shown"
    for page in PAGES:  # every page's address serves the login page, not the page
        with pytest.raises(ValueError, match=r"login\.py"):
            at.switch_page(page)


@pytest.mark.usefixtures("app_env")
@pytest.mark.parametrize("page", [p for p in PAGES if p in OURS])
def test_a_page_run_on_its_own_shows_nothing_without_a_login(page: str) -> None:
    at = AppTest.from_file(str(ROOT / page), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Please sign in to continue." in errors(at)
    assert not at.metric and not at.dataframe and not at.get("plotly_chart")


@pytest.mark.usefixtures("app_env")
def test_a_wrong_password_is_refused() -> None:
    at = login("ops", "wrong")
    assert "Username or password is incorrect." in errors(at)
    assert titles(at) == ["🩺 Vitals"]


@pytest.mark.usefixtures("app_env")
def test_sign_out() -> None:
    at = login("ops")
    assert titles(at) == ["Portfolio overview"]
    next(b for b in at.button if b.key == "vitals_logout").click()
    at.run()
    assert not at.exception
    at.run()
    assert [w.label for w in at.text_input] == ["Username", "Password"]


def test_sample_mode_without_a_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VITALS_DB", str(tmp_path / "missing.duckdb"))
    at = login("leader")
    assert not at.exception, [e.value for e in at.exception]
    assert titles(at) == ["Portfolio overview"]
    assert any("40-account sample" in i.value for i in at.info)
    assert not (tmp_path / "missing.duckdb").exists(), "the sample must not create the database"
