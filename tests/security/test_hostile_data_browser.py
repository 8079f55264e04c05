"""Property 5 in a real browser: with hostile records synced, no page fires a dialog, no
Content-Security-Policy violation is reported (nothing even tried to run inline), charts render,
and the payloads show as plain text."""

from __future__ import annotations

import os
import re
import uuid

import pytest
from playwright.sync_api import Page, expect

# Playwright's sync API runs an event loop in the test thread; the ORM calls here are synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from integrations.models import ActionRun, Application, AppUser, Connection  # noqa: E402
from integrations.services.actions import app_user_act  # noqa: E402
from tests.factories import AdminFactory  # noqa: E402
from tests.security import hostile  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.integration]

PASSWORD = "correct horse battery staple"
WATCH = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sample || ""}`);
});
"""


@pytest.fixture
def watched(page: Page, live_server, transactional_db, settings, hostile_sim):
    settings.JUMPCLOUD_ALLOWED_BASE_URLS = [hostile_sim.base_url]
    admin = AdminFactory(username="ada.admin")
    dialogs: list[str] = []

    def on_dialog(dialog) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.add_init_script(WATCH)
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill(admin.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/")
    return page, dialogs, admin


def assert_quiet(page: Page, dialogs: list[str], where: str) -> None:
    page.wait_for_load_state("networkidle")
    assert dialogs == [], f"{where}: a dialog fired: {dialogs}"
    violations = page.evaluate("window.__cspViolations || []")
    assert violations == [], f"{where}: CSP violations (something tried to run): {violations}"


def test_no_page_runs_hostile_data(watched, live_server, hostile_sim):
    page, dialogs, admin = watched
    base = live_server.url

    # Connect through the form: the success toast names the (hostile) organization.
    page.goto(f"{base}/integrations/connect/jumpcloud/")
    page.get_by_label("API key").fill(hostile_sim.keys["admin"])
    page.get_by_label("API endpoint").select_option(hostile_sim.base_url)
    page.get_by_text("Read and take action").first.click()
    page.get_by_role("button", name=re.compile("Connect", re.I)).click()
    page.wait_for_url(re.compile(r"/integrations/\d+/"), timeout=60_000)
    assert_quiet(page, dialogs, "after connecting")
    expect(page.locator("#toasts")).to_contain_text(hostile.ORG)

    connection = Connection.objects.get()
    xss_user = AppUser.objects.get(
        connection=connection, application__kind="directory", username=hostile.SCRIPT
    )
    app_user_act(action="suspend_user", app_user=xss_user, actor=admin, idempotency_key=str(uuid.uuid4()))
    run = ActionRun.objects.filter(category="user_action").latest("pk")
    xss_app = Application.objects.get(connection=connection, external_id=hostile.XSS_APP_ID)

    pages = [
        "/",
        "/integrations/",
        f"/integrations/{connection.pk}/",
        "/integrations/capabilities/",
        "/users/",
        "/users/?q=script",
        f"/users/{xss_user.pk}/",
        "/applications/",
        f"/applications/{xss_app.pk}/",
        f"/applications/{xss_app.pk}/?days=30",
        "/insights/",
        "/insights/?days=90",
        "/audit/",
        f"/actions/runs/{run.pk}/",
        f"/actions/users/{xss_user.pk}/delete/",
        f"/actions/users/{xss_user.pk}/unsuspend/",
        f"/actions/users/bulk-suspend/?app_user_ids={xss_user.pk}",
    ] + [f"/applications/{a.pk}/" for a in Application.objects.exclude(pk=xss_app.pk)]
    for path in pages:
        page.goto(base + path)
        assert_quiet(page, dialogs, path)
        for canvas in page.locator("canvas[data-chart]").all():
            expect(canvas).to_have_attribute("data-rendered", "true")
        # Let htmx-loaded parts (progress, dialogs) arrive, and hover over every row: the
        # payloads include onmouseover attributes that must be text, not handlers.
        for row in [r for r in page.locator("tbody tr").all()[:60] if r.is_visible()][:25]:
            row.hover(timeout=2000)
        assert_quiet(page, dialogs, f"{path} (after hovering)")

    # The payloads are visible as text.
    page.goto(f"{base}/users/?q=script")
    expect(page.get_by_text(hostile.SCRIPT).first).to_be_visible()
    page.goto(f"{base}/applications/{xss_app.pk}/")
    expect(page.get_by_text(hostile.IMG).first).to_be_visible()
    assert page.locator("a[href^='javascript:' i]").count() == 0
    assert page.evaluate("document.querySelectorAll('img[src=x], svg[onload]').length") == 0

    # The capabilities dialog and the users table filter, loaded through htmx.
    page.goto(f"{base}/integrations/")
    opener = page.locator("[data-open-dialog]").first
    if opener.count():
        opener.click()
        page.wait_for_load_state("networkidle")
    page.goto(f"{base}/users/")
    search = page.get_by_label(re.compile("Search", re.I)).first
    if search.count():
        search.fill("<script>")
        search.press("Enter")
        page.wait_for_load_state("networkidle")
    assert_quiet(page, dialogs, "htmx interactions")
