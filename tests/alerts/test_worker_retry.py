"""A real Celery worker retries a failing webhook with exponential backoff until it is taken."""

from __future__ import annotations

import time

import pytest
from django.conf import settings

from alerts.kinds import EventKind
from alerts.models import Channel, Delivery
from alerts.services import SIGNATURE_HEADER, TIMESTAMP_HEADER, alert_emit, channel_create, signature_valid
from tests.processes import CeleryProcess, child_env

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SECRET = "whsec-worker-0123456789abcdef"


def test_worker_retries_with_backoff_until_delivered(receiver, tmp_path, celery_not_eager):
    if not settings.REDIS_URL:
        pytest.fail("This test needs Redis (REDIS_URL).")
    receiver.statuses = [500, 502]
    channel, _ = channel_create(
        actor=None,
        name="Ops",
        kind=Channel.Kind.WEBHOOK,
        url=receiver.url,
        event_kinds=[EventKind.POLICY_FINISHED],
        secret=SECRET,
    )
    env = child_env(
        TORII_OUTBOUND_ALLOW_LOOPBACK="true", ALERTS_RETRY_BASE_SECONDS="0.5", ALERTS_MAX_ATTEMPTS="5"
    )
    worker = CeleryProcess("worker", log=tmp_path / "worker.log", env=env)
    try:
        worker.wait_for_log("ready.")
        event = alert_emit(kind=EventKind.POLICY_FINISHED, subject="Done", body="", data={})
        delivery = Delivery.objects.get(event=event, channel=channel)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            delivery.refresh_from_db()
            if delivery.status == Delivery.Status.DELIVERED:
                break
            time.sleep(0.2)
        assert delivery.status == Delivery.Status.DELIVERED, worker.log()[-3000:]
    finally:
        worker.stop()
    rows = list(delivery.attempt_rows.values_list("number", "status_code", "retry_in_seconds"))
    assert rows == [(1, 500, 0.5), (2, 502, 1.0), (3, 200, None)]
    assert len(receiver.received) == 3
    for got in receiver.received:
        headers = {k.lower(): v for k, v in got.headers.items()}
        assert signature_valid(
            secret=SECRET,
            timestamp=headers[TIMESTAMP_HEADER.lower()],
            body=got.body,
            signature=headers[SIGNATURE_HEADER.lower()],
        )
