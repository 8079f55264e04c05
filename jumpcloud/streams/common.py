"""What several JumpCloud streams share: the directory application, table names, statistics."""

from __future__ import annotations

from django.db import connection as db

from integrations.models import Application, AppUser, Connection, UsageEvent

DIRECTORY_APP_ID = "directory"  # the external id of the directory itself as an application
APPUSER_TABLE = AppUser._meta.db_table
APPLICATION_TABLE = Application._meta.db_table
EVENT_TABLE = UsageEvent._meta.db_table

# After this many new rows the planner's statistics are stale enough to pick nested loops over
# hundreds of thousands of rows (seconds instead of milliseconds): refresh them first.
BIG_BATCH = 20_000


def directory_app(connection: Connection) -> Application:
    app, _ = Application.objects.get_or_create(
        connection=connection,
        external_id=DIRECTORY_APP_ID,
        defaults={"kind": Application.Kind.DIRECTORY, "name": "jumpcloud", "label": "JumpCloud"},
    )
    return app


def analyze(table: str) -> None:
    with db.cursor() as cursor:
        cursor.execute(f'ANALYZE "{table}"')


def clip(value: str, size: int) -> str:
    return value[:size] if value else ""
