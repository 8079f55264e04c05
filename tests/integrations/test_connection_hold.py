"""AppUser and UsageEvent carry no foreign-key constraints (a check per row costs seconds on a
backfill); a sync's write transaction locks its connection's row instead (bulk.hold_connection).
These tests race a write against a disconnect that deletes the data, on real PostgreSQL
connections: no row may outlive its connection."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection as db
from django.db import connections, transaction

from integrations import bulk
from integrations.models import Application, AppUser, Connection, SyncRun, SyncTask, UsageEvent
from integrations.services.connections import connection_disconnect
from integrations.services.purge import connection_purge
from integrations.sync.context import StopRequested, StreamContext
from jumpcloud.client import JumpCloudClient
from jumpcloud.provider import JumpCloudProvider
from jumpcloud.streams.assignments import _AssignmentWriter
from jumpcloud.streams.events import EVENT_COLUMNS, EVENT_KEY
from tests.factories import ConnectionFactory
from tests.integrations.test_bulk import _row

pytestmark = [pytest.mark.django_db(transaction=True)]


def _blocked_on_a_lock(cursor) -> bool:
    """Whether another session of this database is waiting for a lock right now."""
    cursor.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
    )
    return cursor.fetchone()[0] > 0


def test_a_disconnect_waits_for_a_writing_transaction_and_deletes_its_rows_too():
    connection = ConnectionFactory()
    held, release = threading.Event(), threading.Event()
    saw_disconnect_waiting: list[bool] = []
    failures: list[BaseException] = []

    def write() -> None:
        try:
            with transaction.atomic():
                assert bulk.hold_connection(connection.pk)
                bulk.insert_ignore(
                    table="integrations_usageevent",
                    columns=EVENT_COLUMNS,
                    rows=[_row(connection.pk, "e1"), _row(connection.pk, "e2")],
                    conflict=EVENT_KEY,
                )
                held.set()
                release.wait(60)
                # Commit only once PostgreSQL shows the disconnect blocked behind this transaction:
                # proof that it waits, observed instead of assumed after a pause.
                deadline = time.monotonic() + 60
                with db.cursor() as cursor:
                    while not _blocked_on_a_lock(cursor) and time.monotonic() < deadline:
                        time.sleep(0.05)
                    saw_disconnect_waiting.append(_blocked_on_a_lock(cursor))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)
        finally:
            connections.close_all()

    writer = threading.Thread(target=write)
    writer.start()
    assert held.wait(60)
    release.set()
    connection_disconnect(connection=connection, delete_data=True)
    writer.join(120)
    assert not failures, failures
    assert saw_disconnect_waiting == [True], "the disconnect did not wait for the write"
    assert not Connection.objects.filter(pk=connection.pk).exists()
    # The data goes on a worker (the disconnect answers at once): what that task does.
    assert connection_purge(connection_id=connection.pk)
    assert not Connection.all_objects.filter(pk=connection.pk).exists()
    assert not UsageEvent.objects.filter(connection_id=connection.pk).exists(), (
        "events outlived their connection"
    )


def test_a_write_after_the_connection_was_deleted_stops_the_run_without_writing():
    connection = ConnectionFactory()
    run = SyncRun.objects.create(
        connection=connection,
        kind=SyncRun.Kind.FULL,
        trigger=SyncRun.Trigger.MANUAL,
        status=SyncRun.Status.RUNNING,
        streams={},
    )
    ctx = StreamContext(
        run=run, connection=connection, stream=JumpCloudProvider().stream("users"), client=None
    )
    with transaction.atomic():
        ctx.hold_connection()  # present: no error
    Connection.objects.filter(pk=connection.pk).delete()
    assert not bulk.hold_connection(connection.pk)
    with pytest.raises(StopRequested), transaction.atomic():
        ctx.hold_connection()


def test_an_app_deleted_while_its_assignments_are_written_gets_no_rows(sim):
    """The assignment write takes its application's row lock first and skips an app that is gone."""
    tenant_app = sim.tenant("primary").apps[0]["_id"]
    members = {"u1", "u2"}

    def writer_for(connection: Connection) -> _AssignmentWriter:
        run = SyncRun.objects.create(
            connection=connection,
            kind=SyncRun.Kind.FULL,
            trigger=SyncRun.Trigger.MANUAL,
            status=SyncRun.Status.RUNNING,
            streams={"app_assignments": {}},
        )
        task = SyncTask.objects.create(run=run, stream="app_assignments", status="running", lease="x")
        client = JumpCloudClient(sim.keys["admin"], base_url=sim.base_url)
        stream = JumpCloudProvider().stream("app_assignments")
        ctx = StreamContext(run=run, connection=connection, stream=stream, client=client, task=task)
        return _AssignmentWriter(ctx, people={}, apps=[])

    kept = Application.objects.create(
        connection=ConnectionFactory(), external_id=tenant_app, kind="sso", name="kept"
    )
    writer_for(kept.connection).write(kept.pk, "", members, {})
    assert set(AppUser.objects.filter(application=kept).values_list("external_id", flat=True)) == members

    gone = Application.objects.create(
        connection=ConnectionFactory(), external_id=tenant_app, kind="sso", name="gone"
    )
    writer = writer_for(gone.connection)
    Application.objects.filter(pk=gone.pk).delete()
    writer.write(gone.pk, "", members, {})
    assert not AppUser.objects.filter(application_id=gone.pk).exists()
