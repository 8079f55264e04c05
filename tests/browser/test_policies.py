"""Policies in a real browser against the JumpCloud simulator over HTTP: an Admin creates a policy,
sees its dry run (htmx, before saving), a scheduled run waits for approval, the Admin approves it,
then undoes it."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from jumpcloud.simulator import Simulator
from policies.models import Policy, PolicyRun
from policies.services import policies_run_due
from tests.policies.conftest import CONFIG, connect_and_sync

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture
def sim():
    simulator = Simulator(CONFIG).start(host="127.0.0.1", port=0)
    yield simulator
    simulator.stop()


def test_create_dry_run_approve_undo(admin_page, live, sim, settings):
    connection = connect_and_sync(sim, settings)
    page = admin_page
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Policies").click()
    expect(page).to_have_url(f"{live.url}/policies/")
    page.get_by_role("button", name="New policy").click()

    page.get_by_label("Name", exact=True).fill("Dormant people")
    page.get_by_label(str(connection)).check()
    page.get_by_label("No successful use for (days)").fill("3")
    page.get_by_label("What to do").select_option("suspend")
    page.get_by_label("When").select_option("daily")
    page.get_by_label("Dry run only", exact=False).uncheck()
    page.get_by_label("At most this many people per run").fill("100")
    page.get_by_label("At most this share", exact=False).fill("100")

    # The dry run before saving: who and why, with nothing saved and nothing sent.
    page.get_by_role("button", name="Dry run").click()
    expect(page.get_by_test_id("dry-run-count")).to_contain_text("people")
    table = page.locator("#dry-run table")
    expect(table).to_contain_text("No successful use of JumpCloud")
    shown = table.locator("tbody tr").count()
    assert shown > 0
    assert not Policy.objects.exists()
    assert not [r for r in sim.requests if r.method == "PUT"]

    page.get_by_role("button", name="Save policy").click()
    expect(page).to_have_url(re.compile(r"/policies/\d+/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Dormant people")
    policy = Policy.objects.get()
    assert not policy.dry_run and policy.schedule == "daily"

    # Beat's turn comes: the run finds people nobody approved yet, so it waits.
    Policy.objects.filter(pk=policy.pk).update(next_run_at=timezone.now() - timedelta(minutes=1))
    [run] = policies_run_due()
    assert run.status == PolicyRun.Status.AWAITING_APPROVAL
    page.goto(f"{live.url}/policies/")
    page.get_by_role("link", name=re.compile(r"Dormant people: \d+ people")).click()
    expect(page.get_by_test_id("run-status")).to_contain_text("Waiting for approval")
    assert not [r for r in sim.requests if r.method == "PUT"]

    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_test_id("run-status")).to_contain_text("Succeeded")
    items = page.get_by_test_id("run-items")
    expect(items.locator("tbody tr")).to_have_count(shown)
    expect(items.locator("tbody tr").filter(has_text="Suspended")).to_have_count(shown)
    suspended = [r for r in sim.requests if r.method == "PUT"]
    assert len(suspended) == shown
    for record in suspended:
        assert sim.tenant().user(record.path.rsplit("/", 1)[-1])["state"] == "SUSPENDED"

    page.get_by_role("button", name=re.compile("Undo this run")).click()
    expect(page.get_by_text("Undo done")).to_be_visible()
    expect(items.locator("tbody tr").filter(has_text="Unsuspended")).to_have_count(shown)
    expect(page.get_by_role("button", name=re.compile("Undo this run"))).to_have_count(0)
    for record in suspended:
        assert sim.tenant().user(record.path.rsplit("/", 1)[-1])["state"] == "ACTIVATED"
