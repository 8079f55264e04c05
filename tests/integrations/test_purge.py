"""Disconnect-and-delete: the connection is gone at once, its data deleted in bounded steps."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from integrations import bulk
from integrations.models import (
    ActionRun,
    Application,
    AppUser,
    Connection,
    DailyUsage,
    LastUse,
    SyncCheckpoint,
    SyncRun,
    UsageEvent,
)
from integrations.services.connections import connection_disconnect
from integrations.services.purge import PURGE_TASK, connection_purge, connection_purges_resume
from jumpcloud.streams.events import EVENT_COLUMNS, EVENT_KEY
from tests.factories import (
    ApplicationFactory,
    AppUserFactory,
    ConnectionFactory,
    DailyUsageFactory,
    DirectoryAppFactory,
    SyncRunFactory,
)
from tests.integrations.test_bulk import _row

pytestmark = pytest.mark.django_db


def _tenant(*, people: int = 6, months: int = 4) -> Connection:
    """A connection with data in every table a purge empties, events spread over several months."""
    connection = ConnectionFactory()
    directory = DirectoryAppFactory(connection=connection)
    apps = [ApplicationFactory(connection=connection) for _ in range(2)]
    now = timezone.now().replace(microsecond=0)
    for i in range(people):
        person = AppUserFactory(application=directory)
        for app in apps:
            AppUserFactory(application=app, external_id=person.external_id, directory_user=person)
            LastUse.objects.create(
                connection=connection,
                application=app,
                person_external_id=person.external_id,
                last_used_at=now,
            )
        rows = [
            _row(
                connection.pk,
                f"e{i}-{m}",
                occurred_at=now - timedelta(days=31 * m),
                actor_external_id=person.external_id,
            )
            for m in range(months)
        ]
        with transaction.atomic():
            bulk.insert_ignore(
                table="integrations_usageevent", columns=EVENT_COLUMNS, rows=rows, conflict=EVENT_KEY
            )
    for app in apps:
        DailyUsageFactory(application=app)
    SyncRunFactory(connection=connection)
    SyncCheckpoint.objects.create(connection=connection, stream="users", state={})
    return connection


def _counts(connection_id: int) -> dict[str, int]:
    return {
        "people": AppUser.objects.filter(connection_id=connection_id).count(),
        "apps": Application.objects.filter(connection_id=connection_id).count(),
        "last_uses": LastUse.objects.filter(connection_id=connection_id).count(),
        "daily": DailyUsage.objects.filter(connection_id=connection_id).count(),
        "events": UsageEvent.objects.filter(connection_id=connection_id).count(),
        "runs": SyncRun.objects.filter(connection_id=connection_id).count(),
    }


def test_disconnect_and_delete_hides_the_connection_at_once_and_queues_the_purge(
    admin_user, django_capture_on_commit_callbacks
):
    connection = _tenant()
    kept = _counts(connection.pk)
    with django_capture_on_commit_callbacks() as callbacks:
        connection_disconnect(connection=connection, actor=admin_user, delete_data=True)
    assert len(callbacks) == 1, "exactly one purge task queued"
    assert not Connection.objects.filter(pk=connection.pk).exists()
    row = Connection.all_objects.get(pk=connection.pk)
    assert row.purge_requested_at is not None and row.credentials == "" and row.status == "disconnected"
    assert _counts(connection.pk) == kept, "the request deleted nothing itself: the worker does"
    assert ActionRun.objects.filter(action="connection.disconnected").exists()
    # Nothing more may be written for it: a sync transaction finds it gone.
    with transaction.atomic():
        assert not bulk.hold_connection(connection.pk)


def test_the_purge_removes_everything_in_bounded_steps_and_leaves_other_connections_alone(admin_user):
    connection = _tenant(people=6, months=4)
    other = _tenant(people=3, months=2)
    other_before = _counts(other.pk)
    connection_disconnect(connection=connection, actor=admin_user, delete_data=True)
    steps = 0
    # Batches of 5 rows and no time to spare: each step deletes one batch, then hands over.
    while not connection_purge(connection_id=connection.pk, seconds=0, batch=5):
        steps += 1
        assert steps < 100
        assert Connection.all_objects.filter(pk=connection.pk).exists(), "the row goes last"
    assert steps > 5, "the data went in several steps"
    assert _counts(connection.pk) == dict.fromkeys(other_before, 0)
    assert not Connection.all_objects.filter(pk=connection.pk).exists()
    assert not SyncCheckpoint.objects.filter(connection_id=connection.pk).exists()
    assert _counts(other.pk) == other_before
    # Run again (a redelivered task): nothing left to do.
    assert connection_purge(connection_id=connection.pk)


def test_a_purge_no_worker_finished_is_resumed_by_beat(admin_user):
    connection = _tenant(people=1, months=1)
    fresh = _tenant(people=1, months=1)
    connection_disconnect(connection=connection, actor=admin_user, delete_data=True)
    connection_disconnect(connection=fresh, actor=admin_user, delete_data=True)
    Connection.all_objects.filter(pk=connection.pk).update(
        purge_requested_at=timezone.now() - timedelta(hours=1)
    )
    assert connection_purges_resume() == [connection.pk]  # the fresh one is still being worked on
    assert PURGE_TASK == "integrations.tasks.purge_connection"


def test_the_disconnect_page_answers_and_the_connection_is_gone_from_the_list(admin_client):
    connection = _tenant(people=2, months=2)
    response = admin_client.post(
        reverse("dashboard:connection_disconnect", args=[connection.pk]), {"synced_data": "delete"}
    )
    assert response.status_code == 302
    body = admin_client.get(reverse("dashboard:integrations")).content.decode()
    assert "its synced data is being deleted" in body  # the message, once
    assert body.count(connection.name) == 1, "listed nowhere but in the message"
    assert (
        admin_client.get(reverse("dashboard:connection_disconnect", args=[connection.pk])).status_code == 404
    )


def test_the_purge_task_hands_over_to_a_new_task_until_the_connection_is_gone(
    admin_user, settings, django_capture_on_commit_callbacks
):
    """Celery runs the tasks here (eagerly): each step is a task that queues the next one."""
    settings.CONNECTION_PURGE_BATCH = 5
    settings.CONNECTION_PURGE_TASK_SECONDS = 0
    connection = _tenant(people=4, months=3)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        connection_disconnect(connection=connection, actor=admin_user, delete_data=True)
    assert len(callbacks) >= 3, "one task per bounded step"
    assert not Connection.all_objects.filter(pk=connection.pk).exists()
    assert set(_counts(connection.pk).values()) == {0}
