"""The read models: what Applications, Insights, the Overview and the users table show, kept in
tables instead of computed from every person and event on each request (docs/read-models.md).

- ApplicationStats (one row per application): people assigned to the app and how many of them
  used it in the last 7/30/60/90 days;
- AppUser.apps_count / last_used_any on the directory's rows: the person's SSO apps and their
  latest use of JumpCloud or any app;
- ConnectionStats: per connection, people, apps, events, active and inactive people, admins.

`read_models_refresh()` recomputes one connection's read models in a few set-based statements. A
sync's finish step calls it (with the number of events the run stored, so the event count moves
without a recount), an action that changes a person calls it after commit through a task, and beat
refreshes every connection once a day, because "active in the last 30 days" moves with the clock.
Rows that did not change are not written (IS DISTINCT FROM), so a refresh after a sync that wrote
nothing writes nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import connection as db
from django.db import transaction
from django.db.models import Count, Min
from django.utils import timezone

from integrations.models import Connection, ConnectionStats, UsageEvent

logger = logging.getLogger(__name__)

ACTIVE_WINDOWS = (7, 30, 60, 90)
REFRESH_TASK = "integrations.tasks.refresh_read_models"

# The rows are found through their applications (the (application, external_id) unique index):
# AppUser has no index leading with the connection for SSO rows.
# Per application: live assignments and how many of them were used in each window, upserted into
# ApplicationStats; apps with no live assignment get zeros (the LEFT JOIN), so a removed assignment
# lowers the count. Unchanged rows are not written.
_APP_STATS_SQL = """
INSERT INTO integrations_applicationstats
    (application_id, connection_id, assigned_count, active_7, active_30, active_60, active_90)
SELECT a.id, a.connection_id, COALESCE(s.assigned, 0), COALESCE(s.a7, 0), COALESCE(s.a30, 0),
       COALESCE(s.a60, 0), COALESCE(s.a90, 0)
FROM integrations_application AS a
LEFT JOIN (
    SELECT application_id, COUNT(*) AS assigned,
           COUNT(*) FILTER (WHERE last_used_at >= %(c7)s) AS a7,
           COUNT(*) FILTER (WHERE last_used_at >= %(c30)s) AS a30,
           COUNT(*) FILTER (WHERE last_used_at >= %(c60)s) AS a60,
           COUNT(*) FILTER (WHERE last_used_at >= %(c90)s) AS a90
    FROM integrations_appuser
    WHERE application_id IN (SELECT id FROM integrations_application WHERE connection_id = %(conn)s)
      AND removed_at IS NULL
    GROUP BY application_id
) AS s ON s.application_id = a.id
WHERE a.connection_id = %(conn)s
ON CONFLICT (application_id) DO UPDATE SET
    assigned_count = EXCLUDED.assigned_count, active_7 = EXCLUDED.active_7,
    active_30 = EXCLUDED.active_30, active_60 = EXCLUDED.active_60, active_90 = EXCLUDED.active_90
WHERE (integrations_applicationstats.assigned_count, integrations_applicationstats.active_7,
       integrations_applicationstats.active_30, integrations_applicationstats.active_60,
       integrations_applicationstats.active_90)
      IS DISTINCT FROM (EXCLUDED.assigned_count, EXCLUDED.active_7, EXCLUDED.active_30,
                        EXCLUDED.active_60, EXCLUDED.active_90)
"""

# An app's last use (by anyone, from LastUse, set by the sync) never trails an assigned person's;
# written only where an assigned person's use is later, which only a sync's new data makes so.
_APP_LAST_USE_SQL = """
UPDATE integrations_application AS a SET last_used_at = s.last
FROM (
    SELECT application_id, MAX(last_used_at) AS last
    FROM integrations_appuser
    WHERE application_id IN (SELECT id FROM integrations_application WHERE connection_id = %(conn)s)
      AND removed_at IS NULL AND last_used_at IS NOT NULL
    GROUP BY application_id
) AS s
WHERE a.id = s.application_id AND (a.last_used_at IS NULL OR a.last_used_at < s.last)
"""

# Per directory row: live SSO memberships and the latest use of anything (GREATEST skips NULLs).
_PEOPLE_SQL = """
UPDATE integrations_appuser AS p
SET apps_count = COALESCE(m.n, 0), last_used_any = GREATEST(p.last_used_at, m.last)
FROM integrations_appuser AS p2
LEFT JOIN (
    SELECT directory_user_id, COUNT(*) FILTER (WHERE removed_at IS NULL) AS n, MAX(last_used_at) AS last
    FROM integrations_appuser
    WHERE application_id IN (SELECT id FROM integrations_application WHERE connection_id = %(conn)s)
      AND directory_user_id IS NOT NULL
    GROUP BY directory_user_id
) AS m ON m.directory_user_id = p2.id
WHERE p.id = p2.id AND p2.connection_id = %(conn)s AND p2.directory_user_id IS NULL
  AND (p.apps_count, p.last_used_any) IS DISTINCT FROM (COALESCE(m.n, 0), GREATEST(p.last_used_at, m.last))
"""

# After an events-only sync a person's latest use can only have moved forward, and only to a use
# inside the windows the run fetched: the memberships used since the windows' start (an index range
# of dash_appuser_member_last_used) and the people's own logins since then are all there is to
# fold in, instead of regrouping every assignment of the connection.
_PEOPLE_SINCE_SQL = """
UPDATE integrations_appuser AS p SET last_used_any = GREATEST(p.last_used_any, p.last_used_at, m.last)
FROM (
    SELECT directory_user_id, MAX(last_used_at) AS last
    FROM integrations_appuser
    WHERE directory_user_id IS NOT NULL AND last_used_at IS NOT NULL AND last_used_at >= %(since)s
      AND application_id IN (SELECT id FROM integrations_application WHERE connection_id = %(conn)s)
    GROUP BY directory_user_id
) AS m
WHERE p.id = m.directory_user_id AND (p.last_used_any IS NULL OR p.last_used_any < m.last)
"""
_PEOPLE_OWN_SINCE_SQL = """
UPDATE integrations_appuser AS p SET last_used_any = p.last_used_at
WHERE p.connection_id = %(conn)s AND p.directory_user_id IS NULL AND p.last_used_at >= %(since)s
  AND (p.last_used_any IS NULL OR p.last_used_any < p.last_used_at)
"""

# Per connection, from the directory rows just refreshed (one scan of the connection's people).
_PEOPLE_COUNTS_SQL = """
SELECT
    COUNT(*) FILTER (WHERE p.kind = 'user') AS users,
    COUNT(*) FILTER (WHERE p.kind = 'admin') AS admins_only,
    COUNT(*) FILTER (WHERE p.status <> 'removed'),
    COUNT(*) FILTER (WHERE p.status = 'active'),
    COUNT(*) FILTER (WHERE p.kind = 'user' AND p.status <> 'removed' AND p.last_used_any >= %(c30)s),
    COUNT(*) FILTER (WHERE p.status = 'active' AND (p.last_used_any IS NULL OR p.last_used_any < %(c30)s)),
    COUNT(*) FILTER (WHERE p.status = 'active' AND (p.last_used_any IS NULL OR p.last_used_any < %(c60)s)),
    COUNT(*) FILTER (WHERE p.status = 'active' AND (p.last_used_any IS NULL OR p.last_used_any < %(c90)s)),
    COUNT(*) FILTER (WHERE p.is_admin),
    COUNT(*) FILTER (WHERE p.is_admin AND p.admin_mfa_enabled IS FALSE),
    COUNT(*) FILTER (WHERE p.is_admin AND p.admin_mfa_enabled IS NULL)
FROM integrations_appuser AS p
JOIN integrations_application AS a ON a.id = p.application_id AND a.kind = 'directory'
WHERE p.connection_id = %(conn)s AND p.directory_user_id IS NULL AND p.removed_at IS NULL
"""


def _cutoffs() -> dict[str, Any]:
    now = timezone.now()
    return {f"c{d}": now - timedelta(days=d) for d in ACTIVE_WINDOWS}


def read_models_refresh(
    *, connection: Connection, events_added: int | None = None, uses_since: datetime | None = None
) -> ConnectionStats:
    """Recompute one connection's read models. `events_added`: events stored since the last
    refresh (a sync's count), which moves the event count without counting every event; None
    recounts them. `uses_since`: after an events-only sync, the start of the windows it fetched
    (nothing but last use changed, and only through uses since then); None recomputes everyone."""
    params: dict[str, Any] = {"conn": connection.pk, "since": uses_since, **_cutoffs()}
    with transaction.atomic(), db.cursor() as cursor:
        cursor.execute(_APP_STATS_SQL, params)
        cursor.execute(_APP_LAST_USE_SQL, params)
        if uses_since is None:
            cursor.execute(_PEOPLE_SQL, params)
        else:
            cursor.execute(_PEOPLE_SINCE_SQL, params)
            cursor.execute(_PEOPLE_OWN_SINCE_SQL, params)
        cursor.execute(_PEOPLE_COUNTS_SQL, params)
        row = cursor.fetchone()
        (
            users,
            admins_only,
            listed,
            listed_active,
            active_30,
            in30,
            in60,
            in90,
            admins,
            no_mfa,
            mfa_unknown,
        ) = (int(v or 0) for v in row)
        stats = ConnectionStats.objects.select_for_update().filter(connection=connection).first()
        if stats is None:
            stats = ConnectionStats(connection=connection)
            events_added = None
        if events_added is None or stats.oldest_event_at is None:
            agg = UsageEvent.objects.filter(connection=connection).aggregate(
                n=Count("connection_id"), oldest=Min("occurred_at")
            )
            stats.events, stats.oldest_event_at = int(agg["n"] or 0), agg["oldest"]
        else:
            stats.events += max(0, events_added)
        stats.users, stats.admins_only = users, admins_only
        stats.listed, stats.listed_active = listed, listed_active
        stats.apps = connection.applications.filter(kind="sso", removed_at__isnull=True).count()
        stats.people_active_30 = active_30
        stats.inactive_30, stats.inactive_60, stats.inactive_90 = in30, in60, in90
        stats.admins, stats.admins_without_mfa, stats.admins_mfa_unknown = admins, no_mfa, mfa_unknown
        stats.refreshed_at = timezone.now()
        stats.save()
    return stats


def read_models_refresh_all() -> int:
    """Every connection's read models, recounting events (beat, daily); returns how many."""
    done = 0
    for connection in Connection.objects.order_by("pk"):
        try:
            read_models_refresh(connection=connection)
            done += 1
        except Exception:  # one connection's trouble must not keep the others stale
            logger.exception("refreshing the read models of connection %s failed", connection.pk)
    return done


def read_models_refresh_soon(*, connection_id: int) -> None:
    """Refresh one connection's read models in a worker once the current transaction commits
    (after an action changed a person's status, say)."""
    from integrations.services.sync.common import send_task

    send_task(REFRESH_TASK, connection_id)


def read_models_refresh_by_id(*, connection_id: int) -> None:
    """After an action: people changed, events did not (so they are not counted again)."""
    connection = Connection.objects.filter(pk=connection_id).first()
    if connection is not None:
        read_models_refresh(connection=connection, events_added=0)
