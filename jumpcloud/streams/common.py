"""What several JumpCloud streams share: the directory application, table names, statistics."""

from __future__ import annotations

from datetime import datetime

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


def analyze(table: str, *, unless_since: datetime | None = None) -> None:
    """Refresh the planner's statistics of `table` (unless it was analyzed after `unless_since`,
    e.g. by another stream's finish step of the same run)."""
    with db.cursor() as cursor:
        if unless_since is not None:
            cursor.execute(
                "SELECT GREATEST(last_analyze, last_autoanalyze) >= %s FROM pg_stat_user_tables WHERE relname = %s",
                [unless_since, table],
            )
            row = cursor.fetchone()
            if row and row[0]:
                return
        cursor.execute(f'ANALYZE "{table}"')


def clip(value: str, size: int) -> str:
    return value[:size] if value else ""
