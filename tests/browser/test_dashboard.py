"""The dashboard in a real browser: connect against the simulator, live progress, capabilities
dialog, users table filters, pages checked with axe-core, under the real Content-Security-Policy."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from integrations.models import Connection, SyncRun
from jumpcloud.simulator import Simulator, SimulatorConfig
from tests.dashboard.builders import add_admin, add_daily, add_events, build_tenant
from tests.factories import SyncRunFactory

pytestmark = [pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="module")
def sim():
    simulator = Simulator(SimulatorConfig(seed=5, users=40, apps=3, days=5, events=400, admins=3, groups=3))
    simulator.start(host="127.0.0.1", port=0)
    yield simulator
    simulator.stop()


@pytest.fixture
def csp_errors(page: Page) -> list[str]:
    """Console errors about the Content-Security-Policy: there must be none."""
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    return errors


def run_axe(page: Page) -> list[dict]:
    """Run axe-core and return serious/critical violations.

    The page's CSP forbids inline scripts, and add_script_tag(path=...) injects inline content; so
    axe is served from the page's own origin through a route instead, and the CSP stays on.
    """
    origin = re.match(r"^(https?://[^/]+)", page.url).group(1)
    page.route(
        f"{origin}/__axe.min.js",
        lambda route: route.fulfill(
            status=200, content_type="application/javascript", body=AXE.read_text(encoding="utf-8")
        ),
    )
    page.add_script_tag(url=f"{origin}/__axe.min.js")
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def assert_accessible(page: Page) -> None:
    violations = run_axe(page)
    assert violations == [], violations


def test_connect_through_the_form_and_see_connected(admin_page: Page, live, sim, settings, csp_errors):
    settings.JUMPCLOUD_ALLOWED_BASE_URLS = [sim.base_url]
    page = admin_page
    page.goto(f"{live.url}/integrations/")
    expect(page.get_by_text("No account connected yet")).to_be_visible()
    page.get_by_role("button", name="Connect JumpCloud").first.click()
    expect(page.get_by_role("heading", name="Connect JumpCloud")).to_be_visible()
    assert_accessible(page)
    # A wrong key first: the error sits next to the key, the key is not sent back.
    page.get_by_label("API key").fill("0" * 40)
    page.get_by_label("API endpoint").select_option(sim.base_url)
    page.get_by_role("button", name="Connect").click()
    expect(page.locator("#id_api_key_error")).to_be_visible()
    expect(page.get_by_label("API key")).to_have_value("")
    # Then the real one, with actions enabled.
    page.get_by_label("Read and take action").check()
    page.get_by_label("API key").fill(sim.keys["admin"])
    page.get_by_label("Name in torii").fill("Acme (simulator)")
    page.get_by_label("API endpoint").select_option(sim.base_url)
    page.get_by_role("button", name="Connect").click()
    # The first sync ran (Celery is eager in tests): its progress and the green check are shown.
    expect(page.get_by_role("heading", name="Acme (simulator)", level=1)).to_be_visible()
    progress = page.locator(".sync-progress")
    expect(progress.get_by_role("row", name=re.compile("Users"))).to_contain_text("Succeeded")
    expect(page.locator(".page-head .status-ok")).to_have_text(re.compile("Connected"))
    expect(page.get_by_role("heading", name="Sync history")).to_be_visible()
    assert_accessible(page)
    conn = Connection.objects.get(name="Acme (simulator)")
    assert conn.status == "connected"
    # The integrations page card says the same.
    page.goto(f"{live.url}/integrations/")
    card = page.locator(f"#connection-{conn.pk}")
    expect(card.locator(".card-head .status-ok")).to_have_text(re.compile("Connected"))
    expect(card).to_contain_text("Read and take action")
    assert_accessible(page)
    # A key for several organizations: a question, not an error; Acme is marked as connected;
    # choosing another organization needs no second paste of the key (which is never echoed).
    page.goto(f"{live.url}/integrations/connect/jumpcloud/")
    page.get_by_label("API key").fill(sim.keys["multi_tenant"])
    page.get_by_label("API endpoint").select_option(sim.base_url)
    page.get_by_role("button", name="Connect").click()
    picker = page.locator(".org-picker")
    expect(picker).to_contain_text("This key manages 3 organizations. Choose the one to connect.")
    expect(page.get_by_role("alert")).to_have_count(0)
    expect(page.locator("#id_org_id")).not_to_have_attribute("aria-invalid", "true")
    acme = page.locator("#id_org_id option").filter(has_text="already connected as “Acme (simulator)”")
    expect(acme).to_be_disabled()
    names = [t.split(" (")[0] for t in page.locator("#id_org_id option").all_inner_texts()[1:]]
    assert names == sorted(names, key=str.casefold)
    assert sim.keys["multi_tenant"] not in page.content()
    expect(page.get_by_label("API key")).to_have_value("")
    page.locator("#id_org_id").select_option(sim.org_ids["secondary"])
    page.get_by_role("button", name="Connect").click()
    expect(page.get_by_role("heading", name="Globex", level=1)).to_be_visible()
    assert_accessible(page)
    assert csp_errors == []


def test_the_whole_connection_page_follows_a_run_without_reload(admin_page: Page, live):
    """Header, facts, progress and history all change when the worker finishes: no "Connecting…",
    "never", "Users 0" or "Queued" row left over until a reload."""
    t = build_tenant(people=2, apps=1, name="Polling Inc")
    Connection.objects.filter(pk=t.connection.pk).update(status="pending")
    run = SyncRunFactory(
        connection=t.connection,
        status=SyncRun.Status.RUNNING,
        current_stream="users",
        streams={"users": {"label": "Users", "status": "running", "fetched": 10, "pages": 1}},
    )
    page = admin_page
    page.goto(f"{live.url}/integrations/{t.connection.pk}/")
    region = page.locator("#connection-live")
    expect(region).to_have_attribute("hx-trigger", "every 2s")
    expect(region.locator(".page-head")).to_contain_text("Connecting…")
    expect(region.get_by_role("heading", name="Sync in progress")).to_be_visible()
    history = region.get_by_role("table").filter(has_text="Trigger")
    expect(history.locator("tbody tr").first).to_contain_text("Running")
    expect(region.locator(".facts")).to_contain_text(re.compile(r"Last complete sync\s*never"))
    # The worker finishes; the next poll redraws the whole page body and polling stops.
    now = timezone.now()
    SyncRun.objects.filter(pk=run.pk).update(
        status=SyncRun.Status.SUCCEEDED,
        finished_at=now,
        streams={
            "users": {"label": "Users", "status": "succeeded", "fetched": 240, "created": 240, "pages": 3}
        },
    )
    Connection.objects.filter(pk=t.connection.pk).update(
        status="connected", last_success_at=now, last_sync_at=now
    )
    expect(region.locator(".page-head .status-ok")).to_have_text(re.compile("Connected"))
    expect(region.get_by_role("heading", name="Latest sync")).to_be_visible()
    expect(history.locator("tbody tr").first).to_contain_text("Succeeded")
    expect(history.locator("tbody tr").first).to_contain_text("240")
    expect(region.locator(".facts")).not_to_contain_text(re.compile(r"Last complete sync\s*never"))
    expect(region).not_to_have_attribute("hx-trigger", "every 2s")
    assert "Connecting…" not in region.inner_text()


def test_capabilities_dialog(admin_page: Page, live, csp_errors):
    build_tenant(people=1, apps=0, usage=False, name="No Insights Co")
    page = admin_page
    page.goto(f"{live.url}/integrations/")
    page.get_by_role("button", name="Integration capabilities").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    table = dialog.get_by_role("table")
    expect(table.get_by_role("columnheader", name="No Insights Co")).to_be_visible()
    expect(table.get_by_role("row", name=re.compile("Usage: SSO events"))).to_contain_text(
        "No Directory Insights"
    )
    assert_accessible(page)
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()
    assert csp_errors == []


def test_filter_the_users_table_and_open_a_user(admin_page: Page, live, csp_errors):
    t = build_tenant(people=30, apps=2, name="Filter Corp")
    add_events(t, t.people[12], count=3, app=t.apps[0])
    add_admin(t, role="Help Desk", mfa=False)
    page = admin_page
    page.goto(f"{live.url}/users/")
    results = page.locator("#users-results")
    expect(results).to_contain_text("31 users")
    assert_accessible(page)
    page.get_by_label("Search").fill("person12")
    expect(results).to_contain_text("1 user matches the filters")
    expect(page).to_have_url(re.compile(r"q=person12"))
    page.get_by_label("Search").fill("")
    page.locator("#id_role").select_option("admin")
    expect(results).to_contain_text("1 user matches the filters")
    page.locator("#id_role").select_option("")
    page.get_by_label("No use in").select_option("30")
    expect(results).to_contain_text("1 user matches the filters")  # person0 never used anything
    page.get_by_role("button", name="Clear filters").click()
    page.get_by_role("link", name=re.compile("Last used")).click()
    expect(page).to_have_url(re.compile(r"ordering=-last_used"))
    # The sort link is a full page load: let htmx bind the new form before typing into it.
    page.wait_for_load_state("load")
    page.wait_for_function("() => window.htmx !== undefined && document.readyState === 'complete'")
    page.get_by_label("Search").fill("person12")
    expect(results).to_contain_text("1 user matches the filters")
    results.get_by_role("link", name="Pat Person12").click()
    expect(page.get_by_role("heading", name="Pat Person12", level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="Activity")).to_be_visible()
    expect(page.locator(".timeline li")).to_have_count(3)
    assert_accessible(page)
    assert csp_errors == []


def test_applications_and_insights_render_charts_under_csp(admin_page: Page, live, csp_errors):
    t = build_tenant(people=12, apps=3, name="Charts Ltd")
    add_daily(t, days=10)
    add_admin(t, role="Administrator With Billing", mfa=False, last_login_days=200)
    page = admin_page
    page.goto(f"{live.url}/applications/")
    expect(page.get_by_role("heading", name=re.compile("Charts Ltd"))).to_be_visible()
    assert_accessible(page)
    page.get_by_role("link", name="App 1").click()
    expect(page.locator("canvas[data-rendered=true]")).to_have_count(1)
    page.get_by_text("Show the numbers as a table").click()
    expect(page.locator(".chart-table table")).to_be_visible()
    assert_accessible(page)
    page.goto(f"{live.url}/insights/")
    expect(page.locator("canvas[data-rendered=true]")).to_have_count(2)
    expect(page.get_by_role("heading", name="Inactive users")).to_be_visible()
    # The reclaim list: select all, then the bulk suspend confirmation (owned by the actions page).
    page.get_by_label("Select all listed users").check()
    expect(page.locator("input[name=app_user_ids]:checked")).not_to_have_count(0)
    assert_accessible(page)
    assert csp_errors == []


def test_viewer_sees_pages_without_change_controls(viewer_page: Page, live):
    build_tenant(people=3, apps=1, name="Read Only Co")
    page = viewer_page
    page.goto(f"{live.url}/integrations/")
    expect(page.get_by_role("heading", name="Read Only Co")).to_be_visible()
    expect(page.get_by_role("button", name="Sync now")).to_have_count(0)
    expect(page.get_by_role("button", name="Connect JumpCloud")).to_have_count(0)
    assert_accessible(page)


def test_the_axe_check_does_find_violations(admin_page: Page, live):
    """Guard against a vacuous accessibility check: a page with an unlabeled image must fail."""
    page = admin_page
    page.goto(f"{live.url}/users/")
    page.evaluate(
        "() => { const i = document.createElement('img'); i.src = '/static/none.png'; document.querySelector('main').append(i); }"
    )
    assert any(v["id"] == "image-alt" for v in run_axe(page))
