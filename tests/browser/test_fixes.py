"""Each defect of the dashboard review, in a real browser against a seeded demo (one seed for the
module): truthful statuses and capabilities, errors said once with what to do, the Overview, the
users table at 1440 px, the column chooser, the audit log, the user page, applications and
insights. Each test fails on the page as it was before the fix."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db]


@pytest.fixture(scope="module", autouse=True)
def _site(demo_site, desktop, phone):
    """Seed and sign in before any test opens its database transaction."""


@pytest.fixture
def page(desktop):
    page = desktop.new_page()
    yield page
    page.close()


def go(page, demo_site, path: str) -> None:
    page.goto(demo_site[0].url + path)
    page.wait_for_load_state("networkidle")


# --- truth first ------------------------------------------------------------------------------
def test_capabilities_follow_the_latest_runs(page, demo_site):
    go(page, demo_site, "/integrations/")
    page.get_by_role("button", name="Integration capabilities").click()
    table = page.get_by_role("dialog").get_by_role("table")
    acme = table.get_by_role("columnheader").filter(has_text="Acme (simulator)")
    expect(acme).to_be_visible()
    sso = table.get_by_role("row", name=re.compile("^Usage: SSO events"))
    # The SSO events stream failed in the latest usage sync: not "Available".
    expect(sso).to_contain_text("Failing")
    expect(sso).to_contain_text("Reference: e7c41d9a")
    expect(table.get_by_role("row", name=re.compile("^Last used date"))).to_contain_text("Partly failing")
    expect(table.get_by_role("row", name=re.compile("^Usage: directory events"))).to_contain_text("Available")
    # Initech has no Directory Insights: not available, and why.
    expect(sso).to_contain_text("No Directory Insights for this organization")


def test_a_partial_run_is_not_shown_as_a_success(page, demo_site):
    live, demo, _ = demo_site
    go(page, demo_site, f"/integrations/{demo.acme.pk}/")
    head = page.locator(".page-head")
    expect(head).to_contain_text("Partial: 1 stream failing")
    facts = page.locator("#connection-live .facts")
    expect(facts).to_contain_text("Latest sync Partial")
    # "Last complete sync" is the full sync that succeeded, not the partial one 5 minutes ago.
    expect(facts.get_by_text("Last complete sync")).to_be_visible()
    go(page, demo_site, "/")
    row = page.get_by_role("row").filter(has_text="Acme (simulator)")
    expect(row).to_contain_text("Partial: 1 stream failing")


def test_an_error_says_the_cause_and_what_to_do_once(page, demo_site):
    live, demo, _ = demo_site
    go(page, demo_site, f"/integrations/{demo.acme.pk}/")
    text = page.locator("main").inner_text()
    assert ".;" not in text and "worker log" not in text
    assert text.count("torii hit an unexpected error while syncing this data") == 1
    problem = page.locator(".problem").first
    expect(problem).to_contain_text("Usage: SSO events: failed")
    expect(problem).to_contain_text("the next sync tries again")
    expect(problem).to_contain_text("Reference: e7c41d9a")


# --- the Overview -------------------------------------------------------------------------------
def test_the_overview_answers_what_needs_me(page, demo_site):
    go(page, demo_site, "/")
    kpis = page.locator(".kpis")
    for label in ("People", "Active in 30 days", "Inactive licences", "Admins without MFA", "Last sync"):
        expect(kpis.get_by_text(label, exact=True)).to_be_visible()
    needs = page.locator("section", has=page.get_by_role("heading", name="Needs you"))
    expect(needs).to_contain_text("Usage: SSO events: failed")
    expect(needs).to_contain_text("without MFA")
    accounts = page.get_by_role("table").filter(has_text="Inactive licences")
    expect(accounts.get_by_role("row").filter(has_text="Initech")).to_contain_text("not measured")
    # Every number leads to the list behind it.
    admins = int(
        kpis.get_by_role("link").filter(has_text="Admins without MFA").locator(".kpi-value").inner_text()
    )
    kpis.get_by_role("link").filter(has_text="Admins without MFA").click()
    expect(page).to_have_url(re.compile(r"/users/\?role=admin&admin_mfa=off"))
    count = f"{admins} user{'' if admins == 1 else 's'} match{'es' if admins == 1 else ''} the filters"
    expect(page.locator("#users-count")).to_have_text(count)
    go(page, demo_site, "/")
    page.locator(".kpis").get_by_role("link").filter(has_text="Inactive licences").click()
    expect(page).to_have_url(re.compile(r"/insights/\?inactive_days=30#inactive"))


# --- the users table ------------------------------------------------------------------------------
def test_the_users_table_fits_1440_px_with_its_actions(page, demo_site):
    go(page, demo_site, "/users/")
    table = page.locator("#users-results table")
    header = table.locator("thead")
    for name in ("Name", "Account", "Status", "Role", "Apps", "Last used", "Last JumpCloud login", "Actions"):
        cell = header.get_by_role("columnheader", name=re.compile(f"^{name}"))
        expect(cell).to_be_in_viewport()
        assert cell.bounding_box()["x"] + cell.bounding_box()["width"] <= 1440
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1440
    first_actions = (
        table.locator("tbody tr").filter(has=page.get_by_role("button", name=re.compile("^Suspend"))).first
    )
    expect(first_actions.get_by_role("button", name=re.compile("^Delete"))).to_be_in_viewport()
    # The caption says the sort in words; the search field's hint is not cut off.
    expect(table.locator("caption")).to_have_text("Users, sorted by Name, A to Z")
    search = page.get_by_label("Search")
    assert search.evaluate("e => e.scrollWidth <= e.clientWidth")
    # Filters apply as you type: no button to press, and counts read right.
    expect(page.get_by_role("button", name="Apply filters")).to_be_hidden()
    search.fill("aaron")
    expect(page.locator("#users-count")).to_have_text(
        re.compile(r"^1 user matches the filters$|^\d+ users match the filters$")
    )
    # The application filter names each app's account (every account has a JumpCloud).
    options = page.locator("#id_app option").all_inner_texts()
    assert "JumpCloud — Acme (simulator)" in options and "JumpCloud — Initech" in options


def test_the_header_stays_while_scrolling(page, demo_site):
    go(page, demo_site, "/users/?per_page=100")
    page.mouse.wheel(0, 2500)
    page.wait_for_function("() => window.scrollY > 2000")
    top = page.locator("#users-results thead th").first.bounding_box()["y"]
    assert -1 <= top <= 2, top


def test_the_column_chooser_is_remembered_per_user(page, demo_site, browser, django_db_blocker):
    go(page, demo_site, "/users/")
    header = page.locator("#users-results thead")
    expect(header.get_by_role("columnheader", name=re.compile("^Email"))).to_have_count(0)
    page.get_by_role("button", name="Columns").click()
    page.get_by_role("checkbox", name="Email").check()
    expect(header.get_by_role("columnheader", name=re.compile("^Email"))).to_have_count(1)
    expect(page.get_by_role("checkbox", name="Role")).to_be_visible()  # the chooser stays open
    page.get_by_role("checkbox", name="Role").uncheck()
    expect(header.get_by_role("columnheader", name=re.compile("^Role"))).to_have_count(0)
    # Kept on the server for this user: another browser (no shared storage) sees the same columns.
    other = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        from tests.browser.conftest import login

        second = other.new_page()
        with django_db_blocker.unblock():
            login(second, demo_site[0], "ada.admin")
            second.wait_for_url(demo_site[0].url + "/")
        second.goto(demo_site[0].url + "/users/")
        head = second.locator("#users-results thead")
        expect(head.get_by_role("columnheader", name=re.compile("^Email"))).to_have_count(1)
        expect(head.get_by_role("columnheader", name=re.compile("^Role"))).to_have_count(0)
    finally:
        other.close()
    page.get_by_role("checkbox", name="Email").uncheck()
    expect(header.get_by_role("columnheader", name=re.compile("^Email"))).to_have_count(0)
    page.get_by_role("checkbox", name="Role").check()
    expect(header.get_by_role("columnheader", name=re.compile("^Role"))).to_have_count(1)


# --- the audit log --------------------------------------------------------------------------------
def test_the_audit_log_reads_like_a_log(page, demo_site):
    go(page, demo_site, "/audit/")
    filters = page.locator("form.filters")
    assert "---------" not in filters.inner_text()
    expect(page.locator("#id_connection option").first).to_have_text("All accounts")
    expect(page.locator("#id_action option").first).to_have_text("Any action")
    table = page.locator("table.audit-table")
    when = table.locator("tbody tr").first.locator("time")
    expect(when).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d UTC$"))
    assert when.evaluate("e => e.getClientRects().length") == 1  # on one line
    connected = (
        table.get_by_role("row").filter(has_text="Account connected").filter(has_text="Acme (simulator)")
    )
    expect(connected).to_contain_text("Permission: Read and take action")
    expect(connected).to_contain_text("Region: Custom endpoint")
    expect(connected).not_to_contain_text("read_write")
    failed = table.get_by_role("row").filter(has_text="Connect attempt failed")
    expect(failed).to_contain_text("Typo")
    expect(failed).to_contain_text("Why: the key was rejected")


# --- one user -------------------------------------------------------------------------------------
def test_the_user_page_has_the_details_an_admin_looks_for(page, demo_site):
    live, demo, sim = demo_site
    person = demo.person
    raw = sim.tenant("primary").user(person.external_id)
    go(page, demo_site, f"/users/{person.pk}/")
    facts = page.locator(".facts").first
    expect(facts).to_contain_text(re.compile(rf"Department\s*{re.escape(raw['department'])}"))
    expect(facts).to_contain_text(re.compile(rf"Job title\s*{re.escape(raw['jobTitle'])}"))
    expect(facts.get_by_text("Last JumpCloud login")).to_be_visible()
    link = page.get_by_role("button", name="Open in JumpCloud")
    expect(link).to_have_attribute("href", re.compile(rf"/#/users/{person.external_id}/details$"))
    live_details = page.locator("#user-live")
    expect(live_details).to_contain_text("Groups")
    expect(live_details.locator(".chips li").first).to_be_visible()
    expect(live_details).to_contain_text("MFA methods")
    expect(live_details).to_contain_text("Manager")
    activity = page.locator("#activity")
    assert "sso_auth" not in activity.inner_text() and "user_login_attempt" not in activity.inner_text()
    expect(activity.locator(".timeline li")).to_have_count(25)
    activity.get_by_role("link", name="Older").click()
    expect(page).to_have_url(re.compile(r"activity_page=2"))
    expect(page.locator("#activity .timeline li").first).to_be_visible()


# --- applications and insights -----------------------------------------------------------------------
def test_applications_read_on_one_line_with_icons(page, demo_site):
    live, demo, _ = demo_site
    go(page, demo_site, "/applications/")
    util = page.locator(".util").first
    assert util.evaluate("e => e.getClientRects().length") == 1
    assert util.bounding_box()["height"] < 32
    expect(page.locator(".app-avatar").first).to_be_visible()
    go(page, demo_site, f"/applications/{demo.app.pk}/")
    url = page.locator(".url-cell")
    if url.count():
        assert url.first.bounding_box()["height"] < 32  # one line, cut with an ellipsis
    expect(page.locator("figcaption")).to_contain_text("last 30 days")
    expect(page.locator("canvas[data-rendered=true]")).to_have_count(1)
    assert page.evaluate("() => window.Chart.defaults.font.size") >= 12


def test_insights_fits_a_few_screens(page, demo_site):
    go(page, demo_site, "/insights/")
    expect(page.locator("canvas[data-rendered=true]")).to_have_count(2)
    height = page.evaluate("() => document.documentElement.scrollHeight")
    assert height < 4000, height
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1440
