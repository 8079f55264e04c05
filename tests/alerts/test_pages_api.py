"""Alerts pages and API: Admins only, secrets write-only, bad input refused with nothing lost."""

from __future__ import annotations

import pytest
from django.urls import reverse

from alerts.kinds import EventKind
from alerts.models import Channel, Delivery
from alerts.services import alert_emit, channel_create, channel_secret
from integrations.models import ActionRun
from tests.factories import api_token_for

pytestmark = pytest.mark.django_db(transaction=True)

PAGES = ["dashboard:alerts", "dashboard:alert_channel_create", "dashboard:alert_deliveries"]


@pytest.fixture
def channel(receiver):
    made, _ = channel_create(
        actor=None,
        name="Ops hook",
        kind=Channel.Kind.WEBHOOK,
        url=receiver.url,
        event_kinds=[EventKind.RECONNECT],
        secret="whsec-pages-0123456789abcdef",
    )
    return made


@pytest.mark.parametrize("name", PAGES)
def test_viewers_get_403(viewer_client, name):
    assert viewer_client.get(reverse(name)).status_code == 403


def test_viewer_cannot_change_or_test_a_channel(viewer_client, channel, receiver):
    for name in (
        "dashboard:alert_channel_edit",
        "dashboard:alert_channel_test",
        "dashboard:alert_channel_delete",
    ):
        assert viewer_client.post(reverse(name, args=[channel.pk]), {"name": "x"}).status_code == 403
    assert Channel.objects.get().name == "Ops hook" and receiver.received == []


def test_menu_entry_for_admins_only(admin_client, viewer_client):
    assert 'href="/alerts/"' in admin_client.get(reverse("dashboard:home")).content.decode()
    assert 'href="/alerts/"' not in viewer_client.get(reverse("dashboard:home")).content.decode()


def test_admin_creates_a_channel_and_sees_the_secret_once(admin_client, receiver):
    response = admin_client.post(
        reverse("dashboard:alert_channel_create"),
        {
            "name": "Slack",
            "kind": "webhook",
            "url": receiver.url,
            "body_format": "slack",
            "event_kinds": [EventKind.RECONNECT, EventKind.ADMIN_ADDED],
            "active": "on",
        },
    )
    assert response.status_code == 302
    channel = Channel.objects.get()
    assert channel.event_kinds == [EventKind.RECONNECT, EventKind.ADMIN_ADDED]
    secret = channel_secret(channel)
    page = admin_client.get(reverse("dashboard:alerts")).content.decode()
    assert secret in page and "An account needs reconnecting" in page
    assert secret not in admin_client.get(reverse("dashboard:alerts")).content.decode()
    assert (
        secret
        not in admin_client.get(reverse("dashboard:alert_channel_edit", args=[channel.pk])).content.decode()
    )
    assert ActionRun.objects.filter(action="alerts.channel_created", actor_username="alice.admin").exists()


def test_internal_url_is_refused_and_the_form_keeps_what_was_typed(admin_client, settings):
    settings.TORII_OUTBOUND_ALLOW_LOOPBACK = False
    response = admin_client.post(
        reverse("dashboard:alert_channel_create"),
        {"name": "Internal", "kind": "webhook", "url": "http://10.1.2.3/hook", "body_format": "json"},
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "internal or reserved address" in body and 'value="Internal"' in body
    assert not Channel.objects.exists()


def test_edit_subscriptions_and_keep_the_secret(admin_client, channel):
    old_secret = channel_secret(channel)
    response = admin_client.post(
        reverse("dashboard:alert_channel_edit", args=[channel.pk]),
        {
            "name": "Ops hook 2",
            "url": channel.url,
            "body_format": "json",
            "event_kinds": [EventKind.SYNC_FAILED_TWICE],
            "active": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    channel.refresh_from_db()
    assert channel.name == "Ops hook 2" and channel.event_kinds == [EventKind.SYNC_FAILED_TWICE]
    assert channel.kind == "webhook" and channel_secret(channel) == old_secret


def test_test_send_and_the_delivery_log(admin_client, channel, receiver):
    response = admin_client.post(reverse("dashboard:alert_channel_test", args=[channel.pk]))
    assert response.status_code == 302
    assert len(receiver.received) == 1
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.DELIVERED and delivery.event.kind == "test"
    page = admin_client.get(reverse("dashboard:alert_deliveries")).content.decode()
    assert "Test message for Ops hook" in page and "(HTTP 200)" in page
    filtered = admin_client.get(reverse("dashboard:alert_deliveries"), {"status": "failed"}).content.decode()
    assert "Test message for Ops hook" not in filtered


def test_api_admin_only_and_secret_write_only(client, admin_user, viewer_user, receiver):
    viewer = {"HTTP_AUTHORIZATION": f"Token {api_token_for(viewer_user)}"}
    admin = {"HTTP_AUTHORIZATION": f"Token {api_token_for(admin_user)}"}
    url = "/api/v1/alert-channels/"
    assert client.get(url, **viewer).status_code == 403
    assert client.get("/api/v1/alert-deliveries/", **viewer).status_code == 403
    payload = {
        "name": "Hook",
        "kind": "webhook",
        "url": receiver.url,
        "event_kinds": [EventKind.POLICY_FINISHED],
        "secret": "given-secret-0123456789",
    }
    assert client.post(url, payload, content_type="application/json", **viewer).status_code == 403
    created = client.post(url, payload, content_type="application/json", **admin)
    assert created.status_code == 201, created.json()
    assert "given-secret-0123456789" not in created.content.decode()
    assert created.json()["secret_hint"] == "••••6789"
    listed = client.get(url, **admin)
    assert "given-secret" not in listed.content.decode()
    assert listed.json()["results"][0]["event_kinds"] == [EventKind.POLICY_FINISHED]
    # Generated secrets come back once, in the creating response.
    generated = client.post(url, {**payload, "secret": ""}, content_type="application/json", **admin).json()
    assert len(generated["signing_secret"]) >= 32
    assert generated["signing_secret"] not in client.get(url, **admin).content.decode()
    # Bad input: a clear error per field, nothing saved.
    bad = client.post(
        url,
        {**payload, "url": "http://169.254.169.254/", "name": "Meta"},
        content_type="application/json",
        **admin,
    )
    assert bad.status_code == 400 and "url" in bad.json()
    assert not Channel.objects.filter(name="Meta").exists()
    changed = client.patch(
        f"{url}{created.json()['id']}/", {"kind": "email"}, content_type="application/json", **admin
    )
    assert changed.status_code == 400 and "kind" in changed.json()
    alert_emit(kind=EventKind.POLICY_FINISHED, subject="Done", body="", data={})
    deliveries = client.get("/api/v1/alert-deliveries/", **admin).json()["results"]
    assert {d["status"] for d in deliveries} == {"delivered"}
    assert deliveries[0]["attempt_log"][0]["status_code"] == 200


def test_subscriptions_page_sets_every_channel_at_once(admin_client, viewer_client, channel):
    other, _ = channel_create(
        actor=None, name="Mail", kind=Channel.Kind.EMAIL, recipients="it@example.com", event_kinds=[]
    )
    url = reverse("dashboard:alert_subscriptions")
    assert viewer_client.get(url).status_code == 403
    assert viewer_client.post(url, {f"channel-{other.pk}": [EventKind.RECONNECT]}).status_code == 403
    page = admin_client.get(url).content.decode()
    assert "An administrator has no MFA" in page and "Ops hook" in page and "Mail" in page
    response = admin_client.post(
        url,
        {
            f"channel-{channel.pk}": [EventKind.ADMIN_WITHOUT_MFA],
            f"channel-{other.pk}": [EventKind.RECONNECT, EventKind.USAGE_STALE],
        },
    )
    assert response.status_code == 302
    channel.refresh_from_db()
    other.refresh_from_db()
    assert channel.event_kinds == [EventKind.ADMIN_WITHOUT_MFA]
    assert other.event_kinds == [EventKind.RECONNECT, EventKind.USAGE_STALE]
    bad = admin_client.post(url, {f"channel-{other.pk}": ["made.up"]})
    assert bad.status_code == 400 and "made.up" in bad.content.decode()
    other.refresh_from_db()
    assert other.event_kinds == [EventKind.RECONNECT, EventKind.USAGE_STALE]


def test_delivery_log_reads_a_fixed_number_of_queries(admin_client, channel, django_assert_max_num_queries):
    from django.utils import timezone

    from alerts.models import AlertEvent, DeliveryAttempt

    def add(n: int) -> None:
        event = AlertEvent.objects.create(kind=EventKind.RECONNECT, subject=f"Alert {n}")
        delivery = Delivery.objects.create(event=event, channel=channel, status="delivered", attempts=2)
        DeliveryAttempt.objects.create(
            delivery=delivery, number=1, started_at=timezone.now(), status_code=500, error="HTTP 500"
        )
        DeliveryAttempt.objects.create(
            delivery=delivery, number=2, started_at=timezone.now(), status_code=200, succeeded=True
        )

    for n in range(3):
        add(n)
    admin_client.get(reverse("dashboard:alert_deliveries"))  # warm the session and role caches
    with django_assert_max_num_queries(12) as first:
        admin_client.get(reverse("dashboard:alert_deliveries"))
    for n in range(3, 12):
        add(n)
    with django_assert_max_num_queries(len(first.captured_queries)):
        page = admin_client.get(reverse("dashboard:alert_deliveries")).content.decode()
    assert "Alert 11" in page and "(HTTP 500)" in page and "(HTTP 200)" in page
