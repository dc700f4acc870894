"""Every role signs in and visits every page it may open: no exception, charts drawn, a
screenshot of each; and a direct URL without signing in shows only the login."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import ROOT, USERS, login, open_page, screenshot, wait_for_app
from ui.auth import Role
from ui.router import PAGES

pytestmark = pytest.mark.e2e

ROLE = {"viewer": Role.VIEWER, "editor": Role.EDITOR, "admin": Role.ADMIN}
# Pages that always draw charts on the demo (the others draw them when the data allows).
CHART_PAGES = {"Overview", "DEAR distributions", "Trends", "Scorecard designer"}
LISTED = [(path, title, role) for _, path, title, _, role in PAGES if (ROOT / path).is_file()]


def allowed(user: str) -> list[str]:
    role = ROLE[USERS[user]]
    return [title for _, title, lowest in LISTED if role >= lowest]


@pytest.mark.parametrize("user", list(USERS))
def test_each_role_visits_every_page(page: Page, app_url: str, user: str) -> None:
    login(page, app_url, user)
    nav = page.get_by_test_id("stSidebarNav")
    shown = [t.strip().splitlines()[-1] for t in nav.get_by_role("link").all_inner_texts()]
    assert sorted(shown) == sorted(allowed(user)), shown
    for title in allowed(user):
        open_page(page, title)
        expect(page.get_by_test_id("stException")).to_have_count(0)
        expect(page.get_by_test_id("stHeading").first).to_be_visible()
        charts = page.get_by_test_id("stPlotlyChart")
        if title in CHART_PAGES:
            expect(charts.filter(visible=True).first).to_be_visible()
        for i in range(charts.count()):  # every chart is drawn, not an empty frame
            expect(charts.nth(i).locator("svg.main-svg").first).to_be_attached()
        screenshot(page, f"{user}-{title}")


@pytest.mark.parametrize("path", [p for p, _, _ in LISTED], ids=lambda p: Path(p).stem)
def test_a_direct_url_without_signing_in_shows_only_the_login(
    page: Page, app_url: str, path: str
) -> None:
    page.goto(f"{app_url}/{Path(path).stem}")
    wait_for_app(page)
    expect(page.get_by_role("textbox", name="Username")).to_be_visible()
    expect(page.get_by_role("textbox", name="Password")).to_be_visible()
    expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    expect(page.get_by_test_id("stPlotlyChart")).to_have_count(0)
    expect(page.get_by_test_id("stMetric")).to_have_count(0)
    expect(page.get_by_test_id("stDataFrame")).to_have_count(0)
    if Path(path).stem == "designer":
        screenshot(page, "anonymous-direct-url-designer")
