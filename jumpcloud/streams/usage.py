"""The rollups of the usage events, set-based in SQL: last use and daily usage.

- fold_last_use: each person's latest successful login per app within a time range, merged into
  LastUse (kept for ever; it only ever moves forward). Every slice of an event stream folds its own
  range once its events are stored, so slices need not wait for each other.
- daily_usage: logins and distinct active people per app and UTC day, recomputed for whole days.
- The finish steps (apply_*) copy what moved in LastUse onto the rows the dashboard reads: the
  SSO assignments, the directory's users and administrators, and each application's last use by
  anyone. Folds take no lock on those rows, so a slice never holds up the assignments' writes.

Failed attempts never count; an sso_auth with sso_token_success false and no error message (an MFA
step) has success NULL and counts as neither (jumpcloud.parsing, docs/directory-insights.md).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection as db

from integrations.models import Application, Connection
from jumpcloud.streams.common import DIRECTORY_APP_ID

# What counts as a use of what: the directory (User Portal logins for users, Admin Console logins
# for administrators, whose actor is the administrator's own id) and the SSO apps.
USE_EVENTS = {"sso": ("sso_auth",), "directory": ("user_login_attempt", "admin_login_attempt")}

_FOLD = """
WITH moved AS (
  INSERT INTO integrations_lastuse AS lu (connection_id, application_id, person_external_id, last_used_at)
  SELECT %(c)s, a.id, m.actor, m.ts
  FROM (SELECT application_external_id AS app, actor_external_id AS actor, MAX(occurred_at) AS ts
        FROM integrations_usageevent
        WHERE connection_id = %(c)s AND kind = %(kind)s AND occurred_at >= %(start)s AND occurred_at <= %(end)s
          AND event_type = ANY(%(types)s) AND success AND application_external_id <> '' AND actor_external_id <> ''
        GROUP BY 1, 2) AS m
  JOIN integrations_application a ON a.connection_id = %(c)s AND a.external_id = m.app
  ORDER BY a.id, m.actor
  ON CONFLICT (application_id, person_external_id) DO UPDATE SET last_used_at = EXCLUDED.last_used_at
  WHERE lu.last_used_at < EXCLUDED.last_used_at
  RETURNING 1
)
SELECT COUNT(*) FROM moved
"""

_DAILY = """
INSERT INTO integrations_dailyusage AS d (connection_id, application_id, day, successes, failures, active_users)
SELECT %(c)s, a.id, agg.day, agg.successes, agg.failures, agg.active_users
FROM (SELECT application_external_id AS app, (occurred_at AT TIME ZONE 'UTC')::date AS day,
             COUNT(*) FILTER (WHERE success) AS successes, COUNT(*) FILTER (WHERE success = false) AS failures,
             COUNT(DISTINCT actor_external_id) FILTER (WHERE success) AS active_users
      FROM integrations_usageevent
      WHERE connection_id = %(c)s AND kind = %(kind)s AND occurred_at >= %(day0)s AND occurred_at < %(day1)s
        AND application_external_id <> ''
      GROUP BY 1, 2) AS agg
JOIN integrations_application a ON a.connection_id = %(c)s AND a.external_id = agg.app
ON CONFLICT (application_id, day) DO UPDATE SET successes = EXCLUDED.successes, failures = EXCLUDED.failures,
  active_users = EXCLUDED.active_users
WHERE (d.successes, d.failures, d.active_users)
  IS DISTINCT FROM (EXCLUDED.successes, EXCLUDED.failures, EXCLUDED.active_users)
"""

_APPLY_DIRECTORY = """
UPDATE integrations_appuser AS au SET last_used_at = lu.last_used_at
FROM integrations_lastuse lu
WHERE lu.application_id = %(app)s AND au.application_id = %(app)s AND au.external_id = lu.person_external_id
  -- What moved in the window; and people whose row came after their logins (a user created later)
  AND (lu.last_used_at >= %(since)s OR au.last_used_at IS NULL)
  AND (au.last_used_at IS NULL OR au.last_used_at < lu.last_used_at)
"""

# Administrators log in to the Admin Console as themselves (their own id, not their user's).
_APPLY_ADMIN = """
UPDATE integrations_appuser AS au SET admin_last_login_at = lu.last_used_at,
  last_used_at = GREATEST(au.last_used_at, lu.last_used_at)
FROM integrations_lastuse lu
WHERE lu.application_id = %(app)s AND au.application_id = %(app)s AND au.admin_external_id = lu.person_external_id
  AND (lu.last_used_at >= %(since)s OR au.admin_last_login_at IS NULL)
  AND (au.admin_last_login_at IS NULL OR au.admin_last_login_at < lu.last_used_at)
"""

# SSO assignment rows: what moved in the window (rows written before a slice folded its logins;
# a row written after it took its last use from LastUse then).
_APPLY_SSO = """
UPDATE integrations_appuser AS au SET last_used_at = lu.last_used_at
FROM integrations_lastuse lu
JOIN integrations_application a ON a.id = lu.application_id AND a.kind = 'sso'
WHERE lu.connection_id = %(c)s AND lu.last_used_at >= %(since)s
  AND au.application_id = lu.application_id AND au.external_id = lu.person_external_id
  AND (au.last_used_at IS NULL OR au.last_used_at < lu.last_used_at)
"""

_APPLY_APPS = """
UPDATE integrations_application AS a SET last_used_at = m.ts
FROM (SELECT application_id, MAX(last_used_at) AS ts FROM integrations_lastuse
      WHERE connection_id = %(c)s GROUP BY application_id) AS m
WHERE a.id = m.application_id AND a.last_used_at IS DISTINCT FROM m.ts
"""


def fold_last_use(*, connection: Connection, kind: str, start: datetime, end: datetime) -> int:
    """Merge the latest successful logins of [start, end] into LastUse; returns rows written.
    It takes no lock on the rows other tasks write: the finish step copies what moved onto them."""
    params: dict[str, Any] = {
        "c": connection.pk,
        "kind": kind,
        "start": start,
        "end": end,
        "types": list(USE_EVENTS[kind]),
    }
    with db.cursor() as cursor:
        # Aggregating a backfill's slice sorts hundreds of thousands of rows: keep it in memory.
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute(_FOLD, params)
        return int(cursor.fetchone()[0])


def daily_usage(*, connection: Connection, kind: str, start: datetime, end: datetime) -> int:
    """Recompute daily logins and active people per app for every UTC day that [start, end)
    touches; returns how many day rows were written (changed or new)."""
    day0 = _midnight(start)
    day1 = _midnight(end - timedelta(microseconds=1)) + timedelta(days=1)
    with db.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute(_DAILY, {"c": connection.pk, "kind": kind, "day0": day0, "day1": day1})
        return max(cursor.rowcount, 0)


def apply_sso_last_use(*, connection: Connection, since: datetime) -> tuple[int, int]:
    """Move the assignment rows' last use forward to what LastUse gained since `since`, and the
    apps' last use (by anyone); returns (rows moved, apps moved)."""
    with db.cursor() as cursor:
        cursor.execute(_APPLY_SSO, {"c": connection.pk, "since": since})
        moved = cursor.rowcount
        cursor.execute(_APPLY_APPS, {"c": connection.pk})
        return moved, cursor.rowcount


def apply_directory_last_use(*, connection: Connection, since: datetime) -> tuple[int, int]:
    """Move the directory rows' last use (and administrators' last console login) forward;
    returns (rows moved, apps moved)."""
    app = (
        Application.objects.filter(connection=connection, external_id=DIRECTORY_APP_ID)
        .values_list("pk", flat=True)
        .first()
    )
    if app is None:
        return 0, 0
    moved = 0
    with db.cursor() as cursor:
        for statement in (_APPLY_DIRECTORY, _APPLY_ADMIN):
            cursor.execute(statement, {"app": app, "since": since})
            moved += cursor.rowcount
        cursor.execute(_APPLY_APPS, {"c": connection.pk})
        return moved, cursor.rowcount


def _midnight(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
