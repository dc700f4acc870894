"""The scorecard designer in a browser: a weight change moves the live preview."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import login, open_page, screenshot, wait_for_app

pytestmark = pytest.mark.e2e


def _metric(page: Page, label: str):  # type: ignore[no-untyped-def]
    card = page.get_by_test_id("stMetric").filter(has_text=label)
    return card.get_by_test_id("stMetricValue")


def test_a_weight_change_moves_the_preview(page: Page, app_url: str) -> None:
    login(page, app_url, "ops")
    open_page(page, "Scorecard designer")
    expect(page.get_by_test_id("stException")).to_have_count(0)
    changing = _metric(page, "Accounts changing grade")
    expect(changing).to_have_text("0")
    screenshot(page, "designer-before-edit")

    weight = page.get_by_role("spinbutton", name="Adoption weight", exact=True)
    weight.fill("400")
    weight.press("Enter")
    wait_for_app(page)
    expect(changing).not_to_have_text("0")
    expect(_metric(page, "ARR changing grade")).not_to_have_text("$0")
    expect(page.get_by_text("unsaved changes")).to_be_visible()
    expect(page.get_by_text("Grade transitions")).to_be_visible()
    # the accounts that change grade, each with the reason
    expect(page.get_by_text("Accounts that change grade")).to_be_visible()
    table = page.get_by_test_id("stDataFrame").filter(has_text="Account")
    expect(table).to_be_visible()
    expect(page.get_by_test_id("stException")).to_have_count(0)
    screenshot(page, "designer-after-weight-change")

    # every editor tab opens without an error (only the open one is drawn), edits are kept
    for tab in ("Measure maps", "Grading", "Overrides", "Assignment", "Policies"):
        page.get_by_role("tab", name=tab).click()
        wait_for_app(page)
        expect(page.get_by_test_id("stException")).to_have_count(0)
        screenshot(page, f"designer-tab-{tab}")
        if tab == "Measure maps":
            expect(page.get_by_text("Score by metric value")).to_be_visible()
    page.get_by_role("tab", name="Weights").click()
    wait_for_app(page)
    expect(page.get_by_role("spinbutton", name="Adoption weight", exact=True)).to_have_value("400")

    # an invalid draft: problems instead of a preview, and no save
    for group in ("Deployment", "Engagement", "Adoption", "ROI"):
        box = page.get_by_role("spinbutton", name=f"{group} weight", exact=True)
        box.fill("0")
        box.press("Enter")
        wait_for_app(page)
    expect(page.get_by_text("every group weight is 0")).to_be_visible()
    expect(page.get_by_role("button", name="Save as new version")).to_be_disabled()
    screenshot(page, "designer-invalid-draft")
