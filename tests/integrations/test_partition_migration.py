"""Migration 0006 turns the events table into a partitioned one and every stored event survives."""

from __future__ import annotations

import pytest
from django.db import connection as db
from django.db.migrations.executor import MigrationExecutor

pytestmark = [pytest.mark.django_db(transaction=True)]

BEFORE = [("integrations", "0007_application_licence")]
AFTER = [("integrations", "0009_connection_purge_requested_at")]

INSERT = """
INSERT INTO integrations_usageevent (connection_id, external_id, kind, event_type, occurred_at, success,
  actor_external_id, actor_type, actor_username, actor_email, application_external_id, application_name,
  client_ip, error_message)
SELECT 7, 'ev' || g, 'sso', 'sso_auth', TIMESTAMPTZ '2026-12-01 12:00+00' - g * INTERVAL '1 day', g %% 3 <> 0,
  'u' || (g %% 17), 'user', 'user' || g, '', 'app' || (g %% 5), 'App', '198.51.100.7', ''
FROM generate_series(1, %s) AS g
"""
SNAPSHOT = (
    "SELECT id, connection_id, external_id, occurred_at, success, actor_external_id, application_external_id "
    "FROM integrations_usageevent ORDER BY id"
)


def _migrate(target: list[tuple[str, str]]) -> None:
    executor = MigrationExecutor(db)
    executor.loader.build_graph()
    executor.migrate(target)


def _snapshot() -> list[tuple]:
    with db.cursor() as cursor:
        cursor.execute(SNAPSHOT)
        return cursor.fetchall()


def _partitioned() -> bool:
    with db.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE relname = 'integrations_usageevent'")
        return cursor.fetchone()[0] == "p"


def test_events_survive_the_migration_both_ways_and_stay_exactly_once():
    _migrate(BEFORE)
    try:
        assert not _partitioned()
        with db.cursor() as cursor:
            # Three years of events: months older than the retention period get partitions too.
            cursor.execute(INSERT, [3 * 365])
        stored = _snapshot()
        _migrate(AFTER)
        assert _partitioned()
        assert _snapshot() == stored
        with db.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM integrations_usageevent_default")
            assert cursor.fetchone()[0] == 0, "every migrated event has its month's partition"
            # The unique key still refuses the same event twice; new ids continue after the old.
            cursor.execute(
                "INSERT INTO integrations_usageevent (connection_id, external_id, kind, event_type, "
                "occurred_at, actor_external_id, actor_type, actor_username, actor_email, "
                "application_external_id, application_name, client_ip, error_message) "
                "SELECT connection_id, external_id, kind, event_type, occurred_at, '', '', '', '', '', '', '', '' "
                "FROM integrations_usageevent ON CONFLICT (connection_id, external_id, occurred_at) DO NOTHING"
            )
            assert cursor.rowcount == 0
            cursor.execute(
                "INSERT INTO integrations_usageevent (connection_id, external_id, kind, event_type, "
                "occurred_at, actor_external_id, actor_type, actor_username, actor_email, "
                "application_external_id, application_name, client_ip, error_message) "
                "VALUES (7, 'new', 'sso', 'sso_auth', now(), '', '', '', '', '', '', '', '') RETURNING id"
            )
            assert cursor.fetchone()[0] > max(row[0] for row in stored)
        _migrate(BEFORE)
        assert not _partitioned()
        assert _snapshot()[:-1] == stored
    finally:
        _migrate(AFTER)
        with db.cursor() as cursor:
            cursor.execute("TRUNCATE integrations_usageevent")
