"""Delivering alerts: signed webhooks against a real local receiver, retries with backoff, e-mail
content through Django's test outbox, and no secret in any payload."""

from __future__ import annotations

import json

import pytest
from django.core import mail

from alerts.kinds import EventKind
from alerts.models import AlertEvent, Channel, Delivery, DeliveryAttempt
from alerts.services import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    RetryDelivery,
    alert_delivery_attempt,
    alert_emit,
    channel_create,
    channel_secret,
    signature_valid,
)
from tests.factories import TEST_API_KEY, ConnectionFactory

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "whsec-test-0123456789abcdef"


def make_webhook(receiver, *, kinds=None, body_format=Channel.BodyFormat.JSON, actor=None):
    channel, _ = channel_create(
        actor=actor,
        name="Ops hook",
        kind=Channel.Kind.WEBHOOK,
        url=receiver.url,
        body_format=body_format,
        event_kinds=kinds or [EventKind.POLICY_FINISHED],
        secret=SECRET,
    )
    return channel


def test_webhook_is_signed_over_timestamp_and_body(receiver):
    channel = make_webhook(receiver)
    conn = ConnectionFactory(name="Acme")
    event = alert_emit(
        kind=EventKind.POLICY_FINISHED,
        connection=conn,
        subject="Policy 'Inactive 90 d' finished",
        body="3 people suspended.",
        data={"policy_id": 7, "suspended": 3},
    )
    assert len(receiver.received) == 1
    got = receiver.received[0]
    headers = {k.lower(): v for k, v in got.headers.items()}
    timestamp = headers[TIMESTAMP_HEADER.lower()]
    signature = headers[SIGNATURE_HEADER.lower()]
    assert signature.startswith("sha256=")
    assert signature_valid(secret=SECRET, timestamp=timestamp, body=got.body, signature=signature)
    # A tampered body or another timestamp does not verify.
    assert not signature_valid(secret=SECRET, timestamp=timestamp, body=got.body + b" ", signature=signature)
    assert not signature_valid(
        secret=SECRET, timestamp=str(int(timestamp) + 1), body=got.body, signature=signature
    )
    assert not signature_valid(
        secret="another-secret-000000", timestamp=timestamp, body=got.body, signature=signature
    )
    payload = json.loads(got.body)
    assert payload["kind"] == "policy.finished"
    assert payload["subject"] == "Policy 'Inactive 90 d' finished"
    assert payload["connection"] == {"id": conn.pk, "name": "Acme"}
    assert payload["data"] == {"policy_id": 7, "suspended": 3}
    delivery = Delivery.objects.get(event=event, channel=channel)
    assert headers[DELIVERY_HEADER.lower()] == str(delivery.pk)
    assert delivery.status == Delivery.Status.DELIVERED
    assert list(delivery.attempt_rows.values_list("number", "succeeded", "status_code")) == [(1, True, 200)]


def test_slack_body(receiver):
    make_webhook(receiver, body_format=Channel.BodyFormat.SLACK)
    alert_emit(kind=EventKind.POLICY_FINISHED, subject="Done", body="2 suspended", data={})
    assert json.loads(receiver.received[0].body) == {"text": "*Done*\n2 suspended"}


def _emit_without_sending(channel):
    """An event with its delivery row, its Celery task not run (the test makes the attempts)."""
    from django.db import transaction

    with transaction.atomic():
        event = alert_emit(kind=EventKind.POLICY_FINISHED, subject="Done", body="", data={})
        delivery = Delivery.objects.get(event=event, channel=channel)
        # Claimed as failed for the duration, so the on-commit task finds nothing to do.
        Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.FAILED)
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.PENDING)
    return delivery


def test_failed_attempts_ask_for_a_retry_with_exponential_backoff(receiver):
    receiver.statuses = [500, 503, 200]
    channel = make_webhook(receiver)
    delivery = _emit_without_sending(channel)
    waits = []
    for _ in range(5):
        try:
            alert_delivery_attempt(delivery_id=delivery.pk)
            break
        except RetryDelivery as exc:
            waits.append(exc.countdown)
    # ALERTS_RETRY_BASE_SECONDS=2: the waits double.
    assert waits == [2.0, 4.0]
    attempts = list(DeliveryAttempt.objects.filter(delivery=delivery).order_by("number"))
    assert [(a.number, a.succeeded, a.status_code, a.retry_in_seconds) for a in attempts] == [
        (1, False, 500, 2.0),
        (2, False, 503, 4.0),
        (3, True, 200, None),
    ]
    assert len(receiver.received) == 3
    # Every attempt is signed afresh; the same delivery id lets the receiver deduplicate.
    ids = {{k.lower(): v for k, v in r.headers.items()}[DELIVERY_HEADER.lower()] for r in receiver.received}
    assert ids == {str(delivery.pk)}
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.DELIVERED and delivery.attempts == 3
    # A delivered delivery is never sent again (a duplicated task message).
    alert_delivery_attempt(delivery_id=delivery.pk)
    assert len(receiver.received) == 3


def test_delivery_gives_up_after_the_last_attempt(receiver):
    receiver.statuses = [500] * 10
    channel = make_webhook(receiver)
    delivery = _emit_without_sending(channel)
    for _ in range(10):
        try:
            alert_delivery_attempt(delivery_id=delivery.pk)
            break
        except RetryDelivery:
            continue
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED
    assert delivery.attempts == 4  # ALERTS_MAX_ATTEMPTS
    assert list(delivery.attempt_rows.values_list("retry_in_seconds", flat=True)) == [2.0, 4.0, 8.0, None]
    assert delivery.last_error == "HTTP 500"
    assert len(receiver.received) == 4


def test_only_subscribed_active_channels_receive(receiver):
    subscribed = make_webhook(receiver, kinds=[EventKind.POLICY_FINISHED])
    make_webhook(receiver, kinds=[EventKind.RECONNECT])
    paused = make_webhook(receiver, kinds=[EventKind.POLICY_FINISHED])
    Channel.objects.filter(pk=paused.pk).update(active=False)
    event = alert_emit(kind=EventKind.POLICY_FINISHED, subject="Done", body="", data={})
    assert list(event.deliveries.values_list("channel_id", flat=True)) == [subscribed.pk]
    assert len(receiver.received) == 1


def test_email_content_and_signature(settings):
    channel, secret = channel_create(
        actor=None,
        name="IT team",
        kind=Channel.Kind.EMAIL,
        recipients="it@example.com; sec@example.com",
        event_kinds=[EventKind.POLICY_AWAITING_APPROVAL],
    )
    assert len(secret) >= 32 and channel.recipients == "it@example.com, sec@example.com"
    conn = ConnectionFactory(name="Acme")
    alert_emit(
        kind=EventKind.POLICY_AWAITING_APPROVAL,
        connection=conn,
        subject="Policy run 12 waits for approval",
        body="It would suspend 4 people.",
        data={"run_id": 12, "people": 4},
    )
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.subject == "[torii] Policy run 12 waits for approval"
    assert message.to == ["it@example.com", "sec@example.com"]
    assert "It would suspend 4 people." in message.body
    assert "Account: Acme" in message.body
    assert "run_id: 12" in message.body
    # The signature covers the timestamp and the text as sent.
    assert signature_valid(
        secret=secret,
        timestamp=message.extra_headers[TIMESTAMP_HEADER],
        body=message.body.encode(),
        signature=message.extra_headers[SIGNATURE_HEADER],
    )
    delivery = Delivery.objects.get(channel=channel)
    assert delivery.status == Delivery.Status.DELIVERED


def test_no_secret_in_payloads_or_rows(receiver):
    channel = make_webhook(receiver, kinds=[EventKind.POLICY_FINISHED])
    conn = ConnectionFactory(name="Acme")
    alert_emit(
        kind=EventKind.POLICY_FINISHED,
        connection=conn,
        subject="Done",
        body="ok",
        data={"api_key": TEST_API_KEY, "nested": {"secret": "s3cr3t-value", "token": "tok-value"}, "n": 1},
    )
    body = receiver.received[0].body.decode()
    for secret in (TEST_API_KEY, "s3cr3t-value", "tok-value", SECRET):
        assert secret not in body
    assert json.loads(body)["data"] == {"nested": {}, "n": 1}
    stored = json.dumps(list(AlertEvent.objects.values("data", "body", "subject")))
    assert TEST_API_KEY not in stored and "s3cr3t-value" not in stored
    # The channel's secret is stored encrypted, and only its decryption gives it back.
    channel.refresh_from_db()
    assert SECRET not in channel.secret and channel_secret(channel) == SECRET
    assert channel.secret_hint == "••••" + SECRET[-4:]


def test_rotating_keys_keeps_the_secret_readable(receiver, settings):
    from cryptography.fernet import Fernet
    from django.core.management import call_command

    channel = make_webhook(receiver)
    old_token = Channel.objects.get(pk=channel.pk).secret
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *settings.FIELD_ENCRYPTION_KEYS]
    call_command("alerts_rotate_secrets")
    channel.refresh_from_db()
    assert channel.secret != old_token
    settings.FIELD_ENCRYPTION_KEYS = settings.FIELD_ENCRYPTION_KEYS[:1]  # the old key removed
    assert channel_secret(channel) == SECRET


def test_redirects_are_not_followed_and_unreachable_urls_are_recorded(receiver):
    receiver.statuses = [302]
    channel = make_webhook(receiver)
    delivery = _emit_without_sending(channel)
    with pytest.raises(RetryDelivery):
        alert_delivery_attempt(delivery_id=delivery.pk)
    assert len(receiver.received) == 1
    assert list(delivery.attempt_rows.values_list("status_code", "error")) == [(302, "HTTP 302")]
    # Nothing listens on port 9 of loopback: the attempt fails with the reason, and no traceback.
    Channel.objects.filter(pk=channel.pk).update(url="http://127.0.0.1:9/hook")
    with pytest.raises(RetryDelivery):
        alert_delivery_attempt(delivery_id=delivery.pk)
    second = delivery.attempt_rows.get(number=2)
    assert second.status_code is None and "could not reach the URL" in second.error


def test_lost_deliveries_are_queued_again_by_beat(receiver, settings):
    import datetime as dt

    from django.utils import timezone

    from alerts.services import alert_deliveries_resume
    from torii.celery import app as celery_app

    channel = make_webhook(receiver)
    lost = _emit_without_sending(channel)  # pending, its task never ran
    recent = _emit_without_sending(channel)
    Delivery.objects.filter(pk=lost.pk).update(created_at=timezone.now() - dt.timedelta(minutes=10))
    assert alert_deliveries_resume() == [lost.pk]
    lost.refresh_from_db()
    assert lost.status == Delivery.Status.DELIVERED and len(receiver.received) == 1
    assert Delivery.objects.get(pk=recent.pk).status == Delivery.Status.PENDING
    # Beat runs the same sweep by task name; nothing is overdue now.
    entry = settings.CELERY_BEAT_SCHEDULE["alerts-resume-deliveries"]
    celery_app.tasks[entry["task"]].apply()
    assert len(receiver.received) == 1
