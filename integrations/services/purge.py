"""Disconnect-and-delete of a connection of any size: hidden at once, its data removed in steps.

`connection_disconnect(delete_data=True)` only marks the connection (`purge_requested_at`, a
few milliseconds whatever its size) and queues `purge_connection`. That task deletes the data in
statements of at most CONNECTION_PURGE_BATCH rows, each its own transaction, and hands over to a
new task after CONNECTION_PURGE_TASK_SECONDS, so no statement, lock or task grows with the
tenant. What people see goes first (people and assignments, apps, rollups), the raw events
partition by partition, and the connection's row (with its runs and checkpoints) last. Beat's
`resume_connection_purges` queues the purge again for any connection a lost worker left half-done.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection as db
from django.db import transaction
from django.utils import timezone

from integrations.models import Connection
from integrations.services.partitions import DEFAULT_PARTITION, usage_partitions

logger = logging.getLogger(__name__)

PURGE_TASK = "integrations.tasks.purge_connection"
# A purge no task has finished within this long is queued again by beat.
RESUME_AFTER = timedelta(minutes=10)

# One batch per statement: the ids of at most %(n)s rows of the connection, then their deletion.
_BATCHES = (
    (
        "people and assignments",
        "DELETE FROM integrations_appuser WHERE id IN (SELECT u.id FROM integrations_appuser u "
        "JOIN integrations_application a ON a.id = u.application_id WHERE a.connection_id = %(c)s LIMIT %(n)s)",
    ),
    (
        "people without an application",  # rows whose application is gone already
        "DELETE FROM integrations_appuser WHERE id IN (SELECT id FROM integrations_appuser "
        "WHERE connection_id = %(c)s LIMIT %(n)s)",
    ),
    (
        "last uses",
        "DELETE FROM integrations_lastuse WHERE id IN (SELECT id FROM integrations_lastuse "
        "WHERE connection_id = %(c)s LIMIT %(n)s)",
    ),
    (
        "daily usage",
        "DELETE FROM integrations_dailyusage WHERE id IN (SELECT id FROM integrations_dailyusage "
        "WHERE connection_id = %(c)s LIMIT %(n)s)",
    ),
    (
        "applications' read models",
        "DELETE FROM integrations_applicationstats WHERE application_id IN (SELECT application_id "
        "FROM integrations_applicationstats WHERE connection_id = %(c)s LIMIT %(n)s)",
    ),
    (
        "licences",
        "DELETE FROM integrations_applicationlicence WHERE id IN (SELECT l.id FROM integrations_applicationlicence l "
        "JOIN integrations_application a ON a.id = l.application_id WHERE a.connection_id = %(c)s LIMIT %(n)s)",
    ),
    (
        "applications",
        "DELETE FROM integrations_application WHERE id IN (SELECT id FROM integrations_application "
        "WHERE connection_id = %(c)s LIMIT %(n)s)",
    ),
)


def _event_batches() -> list[tuple[str, str]]:
    """One statement per partition: ctid is only meaningful within one table."""
    names = [p.name for p in usage_partitions()] + [DEFAULT_PARTITION]
    return [
        (
            f"events ({name})",
            f'DELETE FROM "{name}" WHERE ctid = ANY(ARRAY(SELECT ctid FROM "{name}" '
            "WHERE connection_id = %(c)s LIMIT %(n)s))",
        )
        for name in names
    ]


def connection_purge_request(*, connection: Connection) -> None:
    """Hide the connection and queue the deletion of its data (inside the disconnect's transaction)."""
    from integrations.services.sync.common import send_task

    Connection.all_objects.filter(pk=connection.pk).update(purge_requested_at=timezone.now())
    send_task(PURGE_TASK, connection.pk)


def connection_purge(*, connection_id: int, seconds: float | None = None, batch: int | None = None) -> bool:
    """Delete this connection's data for up to `seconds`; True once all of it and the connection's
    row are gone (or were already). Safe to run twice at once or again after a crash: every step
    deletes whatever is left."""
    seconds = settings.CONNECTION_PURGE_TASK_SECONDS if seconds is None else seconds
    batch = batch or settings.CONNECTION_PURGE_BATCH
    connection = Connection.all_objects.filter(pk=connection_id, purge_requested_at__isnull=False).first()
    if connection is None:
        return True
    # The mark doubles as the purge's heartbeat: beat resumes only a purge nothing has moved.
    Connection.all_objects.filter(pk=connection_id).update(purge_requested_at=timezone.now())
    deadline = time.monotonic() + seconds
    for label, sql in (*_BATCHES, *_event_batches()):
        while True:
            with transaction.atomic(), db.cursor() as cursor:
                cursor.execute(sql, {"c": connection_id, "n": batch})
                deleted = cursor.rowcount
            if deleted:
                logger.info("purge of connection %s: %s %s deleted", connection_id, deleted, label)
            if deleted < batch:
                break
            if time.monotonic() >= deadline:
                return False
    # Only small tables are left (runs and their tasks, checkpoints): the ORM's cascade.
    with transaction.atomic():
        Connection.all_objects.filter(pk=connection_id).delete()
    logger.info("purge of connection %s done", connection_id)
    return True


def connection_purges_resume() -> list[int]:
    """Queue the purge again for connections a lost worker left half-deleted (no step for
    RESUME_AFTER)."""
    from integrations.services.sync.common import send_task

    cutoff = timezone.now() - RESUME_AFTER
    ids = list(Connection.all_objects.filter(purge_requested_at__lt=cutoff).values_list("pk", flat=True))
    with transaction.atomic():
        for pk in ids:
            send_task(PURGE_TASK, pk)
    return ids
