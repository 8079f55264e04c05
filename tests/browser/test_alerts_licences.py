"""Alerts and licences in a real browser: an Admin adds a webhook channel, sends a test that a local
receiver gets signed, reads the delivery log; then enters an app's seats and price and sees what
unused seats cost."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

from alerts.models import Channel
from alerts.services import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_valid
from integrations.models import ActionRun, ApplicationLicence, AppUser
from tests.alerts.conftest import receiver  # noqa: F401 - the local HTTP receiver fixture
from tests.browser.conftest import login
from tests.dashboard.builders import ago, build_tenant
from tests.read_models import refresh

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_adds_a_webhook_and_sends_a_signed_test(page: Page, live, browser_admin, receiver, settings):  # noqa: F811
    settings.TORII_OUTBOUND_ALLOW_LOOPBACK = True
    login(page, live, "ada.admin")
    page.get_by_role("link", name="Alerts").click()
    page.get_by_role("button", name="Add a channel").click()
    page.get_by_label("Name").fill("Ops webhook")
    page.get_by_label("Sends by").select_option("webhook")
    page.get_by_label("Webhook URL").fill(receiver.url)
    page.get_by_label("An account needs reconnecting").check()
    page.get_by_role("button", name="Save").click()
    secret = page.locator("#new-secret").inner_text()
    assert len(secret) >= 32
    page.reload()
    assert secret not in page.content(), "shown once"
    row = page.locator("tr", has_text="Ops webhook")
    row.get_by_role("button", name="Send test").click()
    expect(page.get_by_role("heading", name="Delivery log")).to_be_visible()
    expect(page.get_by_text("Test message for Ops webhook")).to_be_visible()
    expect(page.get_by_text("(HTTP 200)")).to_be_visible()
    assert len(receiver.received) == 1
    got = receiver.received[0]
    headers = {k.lower(): v for k, v in got.headers.items()}
    assert signature_valid(
        secret=secret,
        timestamp=headers[TIMESTAMP_HEADER.lower()],
        body=got.body,
        signature=headers[SIGNATURE_HEADER.lower()],
    )
    assert json.loads(got.body)["kind"] == "test"
    assert Channel.objects.get().event_kinds == ["connection.needs_reconnect"]


def test_admin_refused_an_internal_webhook_url(page: Page, live, browser_admin, settings):
    settings.TORII_OUTBOUND_ALLOW_LOOPBACK = False
    login(page, live, "ada.admin")
    page.goto(f"{live.url}/alerts/channels/new/")
    page.get_by_label("Name").fill("Metadata")
    page.get_by_label("Webhook URL").fill("http://169.254.169.254/latest/meta-data/")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("internal or reserved address")).to_be_visible()
    expect(page.get_by_label("Name")).to_have_value("Metadata")
    assert not Channel.objects.exists()


def test_admin_enters_seats_and_price_and_sees_the_saving(page: Page, live, browser_admin):
    tenant = build_tenant(people=4, apps=1, name="Acme")
    app = tenant.apps[0]
    # Two of the four assigned people have not used the app for 100 days.
    for person in tenant.people[2:]:
        AppUser.objects.filter(application=app, directory_user=person).update(last_used_at=ago(100))
    refresh(tenant.connection)  # as a sync's finish step would, after rows changed by hand
    login(page, live, "ada.admin")
    page.goto(f"{live.url}/applications/{app.pk}/")
    page.get_by_label("Seats bought").fill("10")
    page.get_by_label("Price per seat per month").fill("7.50")
    page.get_by_role("button", name="Save licences").click()
    # 6 bought and unassigned + 1 never used + 2 unused for 100 days = 9 seats × 7.50.
    expect(page.locator("#app-licence-monthly")).to_have_text("67.50 USD")
    licence = ApplicationLicence.objects.get(application=app)
    assert licence.seats_purchased == 10
    assert ActionRun.objects.filter(action="licence.changed", actor_username="ada.admin").count() == 1
    page.get_by_role("link", name="Insights").click()
    expect(page.locator("#licence-yearly")).to_have_text("810.00 USD")
