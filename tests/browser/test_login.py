"""The login flow in a real browser (Debian's chromium through Playwright)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import login

pytestmark = [pytest.mark.browser]


def test_login_with_a_wrong_password_shows_an_error(page, live, browser_admin):
    login(page, live, browser_admin.username, "not the password")
    expect(page.get_by_role("alert")).to_contain_text("correct username and password")
    expect(page).to_have_url(re.compile(r"/login/"))


def test_admin_logs_in_sees_navigation_and_logs_out(page, live, browser_admin):
    page.goto(f"{live.url}/users/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/users/"))
    page.get_by_label("Username").fill(browser_admin.username)
    page.get_by_label("Password").fill("correct horse battery staple")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{live.url}/users/")
    nav = page.get_by_role("navigation", name="Main")
    for item in ("Integrations", "Users", "Applications", "Insights", "Audit log"):
        expect(nav.get_by_role("link", name=item)).to_be_visible()
    expect(page.get_by_text("ada.admin · Admin")).to_be_visible()
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login/"))
    page.goto(f"{live.url}/")
    expect(page).to_have_url(re.compile(r"/login/"))
