"""Each event kind fires once, and not again until its condition cleared; sync-based ones arrive
through integrations.signals.sync_run_finished."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone

from alerts.checks import alerts_check_sync_run, alerts_check_usage_staleness
from alerts.kinds import SUBSCRIBABLE, EventKind
from alerts.models import AlertCondition, AlertEvent, Channel
from alerts.services import alert_emit, channel_create
from integrations.models import AppUser, Connection, SyncRun
from integrations.signals import sync_run_finished
from tests.dashboard.builders import add_admin, build_tenant
from tests.factories import SyncRunFactory

pytestmark = pytest.mark.django_db(transaction=True)

OK_STREAMS = {
    key: {"status": "succeeded"}
    for key in (
        "users",
        "applications",
        "administrators",
        "app_assignments",
        "events_sso",
        "events_directory",
    )
}


@pytest.fixture
def inbox():
    channel_create(
        actor=None,
        name="IT",
        kind=Channel.Kind.EMAIL,
        recipients="it@example.com",
        event_kinds=[k.value for k in SUBSCRIBABLE],
    )
    return mail.outbox


def finish_run(conn: Connection, status: str = SyncRun.Status.SUCCEEDED, streams=None, **extra) -> SyncRun:
    run = SyncRunFactory(
        connection=conn,
        status=status,
        finished_at=timezone.now(),
        streams=OK_STREAMS if streams is None else streams,
        error_message="" if status == SyncRun.Status.SUCCEEDED else "JumpCloud answered 500",
        **extra,
    )
    alerts_check_sync_run(run_id=run.pk)
    return run


def kinds() -> list[str]:
    return list(AlertEvent.objects.order_by("id").values_list("kind", flat=True))


def test_reconnect_alerts_once_until_cleared(inbox):
    tenant = build_tenant(people=1, apps=0)
    conn = tenant.connection
    Connection.objects.filter(pk=conn.pk).update(status=Connection.Status.NEEDS_RECONNECT)
    conn.refresh_from_db()
    finish_run(conn, SyncRun.Status.FAILED, streams={})
    finish_run(conn, SyncRun.Status.FAILED, streams={})
    assert kinds().count(EventKind.RECONNECT) == 1
    assert [m.subject for m in inbox if "reconnecting" in m.subject] == [
        f"[torii] {conn.name} needs reconnecting"
    ]
    # Reconnected: the condition clears, and a later rejection alerts again.
    Connection.objects.filter(pk=conn.pk).update(status=Connection.Status.CONNECTED)
    conn.refresh_from_db()
    finish_run(conn)
    assert not AlertCondition.objects.get(kind=EventKind.RECONNECT).active
    Connection.objects.filter(pk=conn.pk).update(status=Connection.Status.NEEDS_RECONNECT)
    conn.refresh_from_db()
    finish_run(conn, SyncRun.Status.FAILED, streams={})
    assert kinds().count(EventKind.RECONNECT) == 2


def test_sync_failed_twice_in_a_row(inbox):
    conn = build_tenant(people=1, apps=0).connection
    finish_run(conn, SyncRun.Status.FAILED, streams={})
    assert EventKind.SYNC_FAILED_TWICE not in kinds()
    finish_run(conn, SyncRun.Status.FAILED, streams={})
    finish_run(conn, SyncRun.Status.FAILED, streams={})
    assert kinds().count(EventKind.SYNC_FAILED_TWICE) == 1
    finish_run(conn)  # a success clears it
    finish_run(conn, SyncRun.Status.FAILED, streams={})
    assert kinds().count(EventKind.SYNC_FAILED_TWICE) == 1
    finish_run(conn, SyncRun.Status.FAILED, streams={})
    assert kinds().count(EventKind.SYNC_FAILED_TWICE) == 2


def test_new_administrator_and_role_change(inbox):
    tenant = build_tenant(people=1, apps=0)
    conn = tenant.connection
    first = add_admin(tenant, role="Administrator", mfa=True)
    finish_run(conn)  # the first sync learns the administrators: nothing to announce
    assert kinds() == []
    second = add_admin(tenant, role="Help Desk", mfa=True)
    finish_run(conn)
    finish_run(conn)
    assert kinds() == [EventKind.ADMIN_ADDED]
    event = AlertEvent.objects.get(kind=EventKind.ADMIN_ADDED)
    assert event.data["admin_id"] == second.admin_external_id and event.data["role"] == "Help Desk"
    AppUser.objects.filter(pk=first.pk).update(role="Administrator With Billing")
    finish_run(conn)
    finish_run(conn)
    assert kinds() == [EventKind.ADMIN_ADDED, EventKind.ADMIN_ROLE_CHANGED]
    changed = AlertEvent.objects.get(kind=EventKind.ADMIN_ROLE_CHANGED)
    assert changed.data["role_before"] == "Administrator"
    assert changed.data["role"] == "Administrator With Billing"
    assert any("role changed from Administrator to Administrator With Billing" in m.body for m in inbox)


def test_admin_changes_wait_for_a_sync_whose_administrators_stream_succeeded(inbox):
    tenant = build_tenant(people=1, apps=0)
    conn = tenant.connection
    add_admin(tenant, role="Administrator", mfa=True)
    finish_run(conn)
    add_admin(tenant, role="Administrator", mfa=True)
    finish_run(conn, SyncRun.Status.PARTIAL, streams={**OK_STREAMS, "administrators": {"status": "failed"}})
    assert EventKind.ADMIN_ADDED not in kinds()
    finish_run(conn)
    assert kinds().count(EventKind.ADMIN_ADDED) == 1


def test_admin_without_mfa_once_until_fixed(inbox):
    tenant = build_tenant(people=1, apps=0)
    conn = tenant.connection
    admin = add_admin(tenant, role="Administrator", mfa=False)
    finish_run(conn)
    finish_run(conn)
    assert kinds() == [EventKind.ADMIN_WITHOUT_MFA]
    AppUser.objects.filter(pk=admin.pk).update(admin_mfa_enabled=True)
    finish_run(conn)
    assert not AlertCondition.objects.get(kind=EventKind.ADMIN_WITHOUT_MFA).active
    AppUser.objects.filter(pk=admin.pk).update(admin_mfa_enabled=False)
    finish_run(conn)
    assert kinds() == [EventKind.ADMIN_WITHOUT_MFA, EventKind.ADMIN_WITHOUT_MFA]


def test_stale_usage_by_beat_check_once_until_fresh(inbox, settings):
    conn = build_tenant(people=1, apps=0).connection
    old = timezone.now() - dt.timedelta(hours=60)
    SyncRunFactory(connection=conn, finished_at=old, streams=OK_STREAMS)
    Connection.objects.filter(pk=conn.pk).update(created_at=old - dt.timedelta(days=1))
    alerts_check_usage_staleness()
    alerts_check_usage_staleness()
    assert kinds() == [EventKind.USAGE_STALE]
    event = AlertEvent.objects.get()
    assert event.data["hours"] == 60
    # A sync whose event streams failed does not make usage fresh.
    finish_run(conn, SyncRun.Status.PARTIAL, streams={**OK_STREAMS, "events_sso": {"status": "failed"}})
    assert AlertCondition.objects.get(kind=EventKind.USAGE_STALE).active
    finish_run(conn)
    assert not AlertCondition.objects.get(kind=EventKind.USAGE_STALE).active
    assert kinds() == [EventKind.USAGE_STALE]
    # No usage events at all (the account cannot read Directory Insights): never "stale".
    Connection.objects.filter(pk=conn.pk).update(capabilities={"usage_events": False})
    SyncRun.objects.all().delete()
    alerts_check_usage_staleness()
    assert kinds() == [EventKind.USAGE_STALE]


def test_sync_run_finished_signal_runs_the_checks(inbox):
    tenant = build_tenant(people=1, apps=0)
    add_admin(tenant, role="Administrator", mfa=False)
    run = SyncRunFactory(connection=tenant.connection, finished_at=timezone.now(), streams=OK_STREAMS)
    sync_run_finished.send(sender=SyncRun, run=run)
    assert kinds() == [EventKind.ADMIN_WITHOUT_MFA]


@pytest.mark.parametrize("kind", [EventKind.POLICY_AWAITING_APPROVAL, EventKind.POLICY_FINISHED])
def test_policy_kinds_through_alert_emit(inbox, kind):
    conn = build_tenant(people=1, apps=0).connection
    alert_emit(
        kind=kind, connection=conn, subject="Policy run 3", body="Would suspend 2.", data={"run_id": 3}
    )
    assert kinds() == [kind]
    assert [m.subject for m in inbox] == ["[torii] Policy run 3"]


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown alert kind"):
        alert_emit(kind="nope", subject="x", body="", data={})


def test_beat_runs_the_staleness_check_by_task_name(inbox, settings):
    from torii.celery import app as celery_app

    entry = settings.CELERY_BEAT_SCHEDULE["alerts-check-usage-staleness"]
    conn = build_tenant(people=1, apps=0).connection
    Connection.objects.filter(pk=conn.pk).update(created_at=timezone.now() - dt.timedelta(days=5))
    celery_app.tasks[entry["task"]].apply()
    assert kinds() == [EventKind.USAGE_STALE]
    assert "never arrived" in AlertEvent.objects.get().body
