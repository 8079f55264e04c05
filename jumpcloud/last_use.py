"""Last use and daily usage, computed set-based in SQL from the stored events.

- rollup_last_used / daily_usage: what an event stream's finish step and window end run.
- SsoLastUse: the SSO last uses the assignment stream writes with new rows, kept current while
  the SSO events stream beside it commits pages (note_sso_page), so that on a first sync the
  finish step has few rows to move.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from django.db import connection as db
from django.db import connections, transaction

from integrations import bulk
from integrations.models import Application, Connection
from integrations.services.sync import SyncContext
from jumpcloud.rows import DIRECTORY_APP_ID

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


# ctx.shared key: the span of event times (oldest, newest) of the SSO event pages committed in
# this run since SsoLastUse last looked, kept by the SSO events stream beside the assignments.
SSO_PAGES_SPAN = "jumpcloud.sso_pages_span"
# ctx.shared key: the SSO apps (ids) whose assignment rows this run wrote new with the last uses of
# every SSO event of the run already stored: the SSO stream's finish step has nothing to move there.
SSO_FINAL_APPS = "jumpcloud.sso_final_apps"


def note_sso_page(ctx: SyncContext, oldest: datetime, newest: datetime) -> None:
    """The SSO events stream committed a page whose events lie in [oldest, newest]."""
    with ctx.lock:
        span = ctx.shared.get(SSO_PAGES_SPAN)
        ctx.shared[SSO_PAGES_SPAN] = (
            (oldest, newest) if span is None else (min(span[0], oldest), max(span[1], newest))
        )


class SsoLastUse:
    """Each person's latest successful SSO login per app, from the events stored so far, for the
    assignment rows about to be written: a new row starts with its last use instead of waiting for
    the SSO stream's finish step, which then only moves it forward with the current window's
    events (and still moves the rows that existed before).

    The aggregate is built at the first lookup (or catch_up, while the assignment stream waits
    for the SSO events) and then kept current while the SSO events stream beside this one commits
    its pages: each refresh adds the aggregate of the events in the span of times of the pages
    committed since the last one (note_sso_page), which holds every event of those pages whatever
    their order; the lookup takes each person's latest time, so an overlap is harmless. So each
    app's rows are written with the last uses stored by then, and the finish step moves none of
    some 400,000 values (each move rewrites a row and an entry in each of the table's indexes) in
    the apps written once every SSO event of the run was stored (SSO_FINAL_APPS: on a first sync,
    all of them). Correctness does not rest on this: the finish step still aggregates the whole
    window for any other app. PostgreSQL only (elsewhere the finish step alone sets last use)."""

    TABLE = "torii_sso_last_use"

    def __init__(self, ctx: SyncContext):
        self.ctx = ctx
        self.built = False
        self.complete = False  # current with every SSO event of this run

    def _refresh(self, cursor: Any) -> None:
        ctx = self.ctx
        # Both read before the statements: what they describe is committed, so it is seen.
        complete = ctx.beside_done("events_sso")
        with ctx.lock:
            span = ctx.shared.pop(SSO_PAGES_SPAN, None)
        params = {"c": ctx.connection.pk, "ok": True}
        if not self.built:
            cursor.execute(f"DROP TABLE IF EXISTS {self.TABLE}")
            # Appended to, never updated: a person may have a row per refresh, and the lookup
            # takes the latest. Indexed by app alone, which costs a quarter of a unique
            # (app, actor) key to keep up (400,000 rows: 0.3 s against 1.3 s).
            cursor.execute(f"CREATE TEMPORARY TABLE {self.TABLE} (app text, actor text, ts timestamptz)")
            cursor.execute(f"CREATE INDEX ON {self.TABLE} (app)")
            span = (EPOCH, FAR_FUTURE)
            self.built = True
        if span is not None:
            cursor.execute(
                f"INSERT INTO {self.TABLE} {_SSO_LAST_LOGINS_BETWEEN}",
                {**params, "since": span[0], "until": span[1]},
            )
        self.complete = complete

    def of(self, app_external_id: str) -> dict[str, str]:
        if not bulk.is_postgres():
            return {}
        with db.cursor() as cursor:
            if not self.complete:
                self._refresh(cursor)
            # As text (PostgreSQL's own timestamptz output, which COPY reads back): 400,000 values
            # on a first sync, not worth turning into datetimes only to turn them into text again.
            cursor.execute(
                f"SELECT actor, MAX(ts)::text FROM {self.TABLE} WHERE app = %s GROUP BY actor",
                [app_external_id],
            )
            return dict(cursor.fetchall())

    def catch_up(self) -> None:
        """Take in the SSO event pages committed since the last look (or build the table)."""
        if bulk.is_postgres() and not self.complete:
            with db.cursor() as cursor:
                self._refresh(cursor)

    def close(self) -> None:
        if self.built:
            with db.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {self.TABLE}")
            self.built = False


def rollup_last_used(
    *,
    connection: Connection,
    kind: str,
    since: datetime,
    part: tuple[int, int] = (0, 1),
    skip_apps: Iterable[int] = (),
) -> int:
    """Move last used forward for what events since `since` show; failed attempts never count.

    `part` = (k, n): only SSO apps whose id % n == k, or one n-th of the people for the directory
    (PostgreSQL; lets the statement run in pieces); `skip_apps`: SSO apps (ids) known to be current
    already. Only rows whose value changes are written; returns how many."""
    params: dict[str, Any] = {
        **_directory_params(connection, since),
        "part": part[0],
        "parts": part[1],
        "skip": list(skip_apps),
    }
    with db.cursor() as cursor:
        if bulk.is_postgres():
            # Aggregating a 90-day backfill sorts a million rows; keep the sort in memory.
            cursor.execute("SET LOCAL work_mem = '64MB'")
        if kind == "directory":
            cursor.execute(_LAST_USED_PORTAL if part[1] == 1 else _LAST_USED_PORTAL_PART, params)
            moved = cursor.rowcount
            # A few dozen administrators, whose rows may be any part's: after the parts, whole
            # (two parts updating one row would wait on each other's commit).
            if part[1] == 1:
                cursor.execute(_LAST_USED_ADMIN, params)
                moved += cursor.rowcount
            return moved
        cursor.execute(_LAST_USED_SSO, params)
        return cursor.rowcount


def rollup_admin_last_login(*, connection: Connection, since: datetime) -> int:
    """The administrators' part of rollup_last_used("directory"), for a run of it split in parts."""
    with db.cursor() as cursor:
        cursor.execute(_LAST_USED_ADMIN, _directory_params(connection, since))
        return cursor.rowcount


def _directory_params(connection: Connection, since: datetime) -> dict[str, Any]:
    """The parameters every last-use statement takes: the connection, the directory app, since."""
    directory = (
        Application.objects.filter(connection=connection, external_id=DIRECTORY_APP_ID)
        .values_list("pk", flat=True)
        .first()
    )
    return {"c": connection.pk, "since": since, "app": directory, "ok": True}


def daily_usage(*, connection: Connection, kind: str, since: datetime) -> int:
    """Recompute daily logins and active users per app for the days from `since` on; returns how
    many day rows were written (changed or new)."""
    day0 = since.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    with db.cursor() as cursor:
        if bulk.is_postgres():
            cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute(
            _DAILY_PG if bulk.is_postgres() else _DAILY_SQLITE,
            {"c": connection.pk, "kind": kind, "day0": day0},
        )
        return max(cursor.rowcount, 0)


@contextmanager
def alongside(enabled: bool, fn: Callable[..., Any], **kwargs: Any) -> Iterator[list[Any]]:
    """Run fn(**kwargs) in a thread with its own database connection (committing on its own)
    while the body runs; re-raise its error after the body. Yields a list that holds fn's result
    after the body."""
    result: list[Any] = []
    if not enabled:
        yield result
        return
    failure: list[BaseException] = []

    def work() -> None:
        try:
            with transaction.atomic():
                result.append(fn(**kwargs))
        except BaseException as exc:
            failure.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=work, name="sync-rollup-part", daemon=True)
    thread.start()
    try:
        yield result
    finally:
        thread.join()
    if failure:
        raise failure[0]


_LATER = "(au.{col} IS NULL OR au.{col} < m.ts)"

_LAST_USED_PORTAL_TEMPLATE = f"""
UPDATE integrations_appuser AS au SET last_used_at = m.ts
FROM (SELECT actor_external_id AS actor, MAX(occurred_at) AS ts FROM integrations_usageevent
      WHERE connection_id = %(c)s AND occurred_at >= %(since)s AND success = %(ok)s
        AND kind IN ('directory', '') AND event_type = 'user_login_attempt' AND actor_external_id <> ''{{part}}
      GROUP BY actor_external_id) AS m
WHERE au.application_id = %(app)s AND au.external_id = m.actor AND {_LATER.format(col="last_used_at")}
"""
_LAST_USED_PORTAL = _LAST_USED_PORTAL_TEMPLATE.format(part="")
# One of %(parts)s pieces, by person (PostgreSQL).
_LAST_USED_PORTAL_PART = _LAST_USED_PORTAL_TEMPLATE.format(
    part="\n        AND (hashtext(actor_external_id) & 2147483647) %% %(parts)s = %(part)s"
)

_LAST_USED_ADMIN = f"""
UPDATE integrations_appuser AS au SET admin_last_login_at = m.ts,
  last_used_at = CASE WHEN au.last_used_at IS NULL OR au.last_used_at < m.ts THEN m.ts ELSE au.last_used_at END
FROM (SELECT actor_external_id AS actor, MAX(occurred_at) AS ts FROM integrations_usageevent
      WHERE connection_id = %(c)s AND occurred_at >= %(since)s AND success = %(ok)s
        AND kind IN ('directory', '') AND event_type = 'admin_login_attempt' AND actor_external_id <> ''
      GROUP BY actor_external_id) AS m
WHERE au.application_id = %(app)s AND au.admin_external_id = m.actor AND {_LATER.format(col="admin_last_login_at")}
"""

# Each person's latest successful SSO login per app (by external ids), from events since %(since)s.
_SSO_LAST_LOGINS_TEMPLATE = """
SELECT application_external_id AS app, actor_external_id AS actor, MAX(occurred_at) AS ts
FROM integrations_usageevent
WHERE connection_id = %(c)s AND kind = 'sso' AND occurred_at >= %(since)s{until} AND event_type = 'sso_auth'
  AND success = %(ok)s AND application_external_id <> '' AND actor_external_id <> ''
GROUP BY application_external_id, actor_external_id
"""
_SSO_LAST_LOGINS = _SSO_LAST_LOGINS_TEMPLATE.format(until="")
_SSO_LAST_LOGINS_BETWEEN = _SSO_LAST_LOGINS_TEMPLATE.format(until=" AND occurred_at <= %(until)s")

_LAST_USED_SSO = f"""
UPDATE integrations_appuser AS au SET last_used_at = m.ts
FROM (SELECT a.id AS app_id, agg.actor, agg.ts
      FROM ({_SSO_LAST_LOGINS}) AS agg
      JOIN integrations_application a ON a.connection_id = %(c)s AND a.external_id = agg.app
      WHERE a.id %% %(parts)s = %(part)s AND NOT (a.id = ANY(%(skip)s::bigint[]))
      -- In the unique index's order: the probes then walk it (and the heap, written app by app
      -- in external-id order) front to back instead of at random: 5.3 s -> 3.3 s for 220,000
      -- probes of a 1.4-million-row table larger than shared_buffers.
      ORDER BY a.id, agg.actor) AS m
WHERE au.application_id = m.app_id AND au.external_id = m.actor AND {_LATER.format(col="last_used_at")}
"""

_DAILY_PG = """
INSERT INTO integrations_dailyusage AS d (connection_id, application_id, day, successes, failures, active_users)
SELECT %(c)s, a.id, agg.day, agg.successes, agg.failures, agg.active_users
FROM (SELECT application_external_id AS app, (occurred_at AT TIME ZONE 'UTC')::date AS day,
             COUNT(*) FILTER (WHERE success) AS successes, COUNT(*) FILTER (WHERE success = false) AS failures,
             COUNT(DISTINCT actor_external_id) FILTER (WHERE success) AS active_users
      FROM integrations_usageevent
      WHERE connection_id = %(c)s AND kind = %(kind)s AND occurred_at >= %(day0)s AND application_external_id <> ''
      GROUP BY 1, 2) AS agg
JOIN integrations_application a ON a.connection_id = %(c)s AND a.external_id = agg.app
ON CONFLICT (application_id, day) DO UPDATE SET successes = EXCLUDED.successes, failures = EXCLUDED.failures,
  active_users = EXCLUDED.active_users
WHERE (d.successes, d.failures, d.active_users) IS DISTINCT FROM (EXCLUDED.successes, EXCLUDED.failures, EXCLUDED.active_users)
"""

_DAILY_SQLITE = """
INSERT INTO integrations_dailyusage (connection_id, application_id, day, successes, failures, active_users)
SELECT %(c)s, a.id, date(e.occurred_at),
       SUM(CASE WHEN e.success = 1 THEN 1 ELSE 0 END), SUM(CASE WHEN e.success = 0 THEN 1 ELSE 0 END),
       COUNT(DISTINCT CASE WHEN e.success = 1 THEN e.actor_external_id END)
FROM integrations_usageevent e
JOIN integrations_application a ON a.connection_id = e.connection_id AND a.external_id = e.application_external_id
WHERE e.connection_id = %(c)s AND e.kind = %(kind)s AND e.occurred_at >= %(day0)s AND e.application_external_id <> ''
GROUP BY a.id, date(e.occurred_at)
ON CONFLICT (application_id, day) DO UPDATE SET successes = excluded.successes, failures = excluded.failures,
  active_users = excluded.active_users
WHERE integrations_dailyusage.successes IS NOT excluded.successes OR integrations_dailyusage.failures IS NOT excluded.failures
  OR integrations_dailyusage.active_users IS NOT excluded.active_users
"""
