"""People and roles, and API tokens, in a real browser (strict CSP: forms only, no script)."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import Page, expect

from accounts.roles import role_of
from tests.browser.conftest import login
from tests.factories import ViewerFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("TORII_SCREENSHOTS")


def test_an_admin_gives_a_role_and_makes_a_token(page: Page, live, browser_admin):
    person = ViewerFactory(username="promoted.pat")
    login(page, live, "ada.admin")
    page.get_by_role("link", name="People").click()
    expect(page.get_by_role("heading", name="People and roles")).to_be_visible()
    page.get_by_label("Role of promoted.pat").select_option("Admin")
    page.locator("tr", has_text="promoted.pat").get_by_role("button", name="Save role").click()
    expect(page.get_by_text("promoted.pat: Admin.")).to_be_visible()
    person.refresh_from_db()
    assert role_of(person) == "Admin"
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/people.png", full_page=True)

    page.get_by_role("link", name="Account").click()
    page.get_by_label("Name").fill("offboarding script")
    page.get_by_role("button", name="Make token").click()
    token = page.locator("#new-token").inner_text()
    assert token.startswith("torii_")
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/tokens.png", full_page=True)
    page.reload()  # posts the form again
    expect(page.get_by_text("already sent")).to_be_visible()
    assert token not in page.content(), "shown once"
    expect(page.get_by_role("cell", name="offboarding script")).to_have_count(1)
