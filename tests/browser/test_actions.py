"""User actions in a real browser: an Admin suspends a user from the users table and finds the audit
record; a Viewer sees no action buttons. Against the JumpCloud simulator over HTTP."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from integrations.models import ActionRun, AppUser
from tests.api.support import directory_users, mirror_tenant, running_simulator, simulator_connection, writes

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture
def sim():
    with running_simulator(users=8, apps=2, days=1) as s:
        yield s


@pytest.fixture
def target(sim, live, settings):
    settings.JUMPCLOUD_ALLOWED_BASE_URLS = [sim.base_url]
    connection = simulator_connection(sim)
    mirror_tenant(sim, connection)
    sim.clear_requests()
    return directory_users(connection)[0]


def test_an_admin_suspends_a_user_from_the_users_table_and_finds_the_audit_record(
    admin_page, live, sim, target
):
    page = admin_page
    page.goto(f"{live.url}/users/?q={target.username}")
    row = page.get_by_role("row").filter(has_text=target.username)
    # Delete is styled as destructive (red), in the row, without scrolling sideways.
    delete = row.get_by_role("button", name=f"Delete {target.username}")
    expect(delete).to_be_in_viewport()
    assert "rgb(161, 26, 26)" in delete.evaluate(
        "e => getComputedStyle(e).color + getComputedStyle(e).borderColor"
    )
    row.get_by_role("button", name=f"Suspend {target.username}").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(f"Suspend user: {target.username}")
    confirm = page.get_by_role("button", name=f"Suspend {target.username}")
    assert confirm.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(161, 26, 26)"
    expect(page.get_by_text("lose access to every SSO application and to device logins")).to_be_visible()
    assert sim.requests == []
    page.get_by_role("button", name=f"Suspend {target.username}").click()

    expect(page).to_have_url(re.compile(r"/actions/runs/\d+/$"))
    expect(page.locator("#run-status")).to_contain_text("Succeeded")
    expect(page.locator("#run-status")).to_contain_text(f"Suspended “{target.username}”")
    # The result links to the user.
    expect(page.locator(".result-card").get_by_role("link", name=target.username)).to_have_attribute(
        "href", f"/users/{target.pk}/"
    )
    assert [r.json_body for r in writes(sim)] == [{"state": "SUSPENDED", "suspended": True}]
    assert AppUser.objects.get(pk=target.pk).status == AppUser.Status.SUSPENDED

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit log").click()
    expect(page).to_have_url(f"{live.url}/audit/")
    record = page.get_by_role("row").filter(has_text=target.username)
    expect(record).to_contain_text("Suspend user")
    expect(record).to_contain_text("Succeeded")
    expect(record).to_contain_text("ada.admin")
    run = ActionRun.objects.get()
    expect(record).to_contain_text(run.request_id)

    # Back on the users table, the user now offers Unsuspend instead.
    page.goto(f"{live.url}/users/?q={target.username}")
    row = page.get_by_role("row").filter(has_text=target.username)
    expect(row.get_by_role("button", name=f"Unsuspend {target.username}")).to_be_visible()


def test_a_viewer_sees_no_action_buttons(viewer_page, live, sim, target):
    page = viewer_page
    page.goto(f"{live.url}/users/?q={target.username}")
    row = page.get_by_role("row").filter(has_text=target.username)
    expect(row).to_be_visible()
    for role in ("link", "button"):
        expect(page.get_by_role(role, name=re.compile(r"^(Suspend|Unsuspend|Delete)\b"))).to_have_count(0)
    page.goto(f"{live.url}/actions/users/{target.pk}/suspend/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    expect(page.get_by_text("Only torii Admins can do this.")).to_be_visible()
    assert sim.requests == []


def test_an_admin_creates_a_user_with_the_live_username_preview(admin_page, live, sim, target):
    page = admin_page
    # Create user is one click from the users page.
    page.goto(f"{live.url}/users/")
    page.get_by_role("button", name="Create user").click()
    expect(page).to_have_url(f"{live.url}/actions/users/new/")
    page.get_by_label("First name").fill("Jane")
    page.get_by_label("Last name").fill("Doe")
    page.get_by_label("Email").fill("jane.doe@newhire.example")
    preview = page.locator("#username-preview")
    # No username typed yet: one is suggested from the name, and one click puts it in.
    expect(preview).to_contain_text("Suggested username: jane.doe")
    preview.get_by_role("button", name="Use jane.doe").click()
    expect(page.get_by_label("Username", exact=True)).to_have_value("jane.doe")
    expect(preview).to_contain_text("JumpCloud should accept this username and email")
    # The organization default is explained where it is offered.
    expect(
        page.get_by_text("The organization default is the state JumpCloud gives new users")
    ).to_be_visible()
    page.get_by_label("Username", exact=True).fill("Jane Doe")
    expect(preview).to_contain_text("Spaces become dots: JumpCloud will receive “Jane.Doe”")
    assert preview.inner_text().count("Jane.Doe") == 1  # said once
    page.get_by_label("Username", exact=True).fill("9 lives")
    expect(preview).to_contain_text("It must start with a letter.")
    page.get_by_label("Username", exact=True).fill(target.username)
    expect(preview).to_contain_text("already exists")
    assert sim.requests == []  # previews never call JumpCloud

    page.get_by_label("Username", exact=True).fill("Jane Doe")
    page.get_by_role("button", name="Create user in JumpCloud").click()
    expect(page.locator("#run-status")).to_contain_text("Succeeded")
    expect(page.locator("#run-status")).to_contain_text("Created “Jane.Doe”")
    # The result page is a summary in words with the way to the new user, not raw fields.
    summary = page.locator(".result-card")
    expect(summary).to_contain_text(re.compile(r"Outcome\s*Done"))
    expect(summary).not_to_contain_text("app_user_id")
    expect(summary).not_to_contain_text("Outcome: applied")
    assert writes(sim)[0].json_body["username"] == "Jane.Doe"
    page.goto(f"{live.url}/users/?q=Jane.Doe")
    expect(page.get_by_role("row").filter(has_text="jane.doe@newhire.example")).to_be_visible()
