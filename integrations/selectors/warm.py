"""Warm the dashboard's cached aggregates after a sync, so the first page view does not pay.

The applications page, insights and the integrations page read per-application and per-connection
aggregates over every AppUser row and every event (30–100 ms on a 50k-people / 1M-event tenant).
They are cached under each connection's sync markers (selectors.common.cached), so a finished sync
invalidates them; calling `dashboard_cache_warm()` at the end of a sync (in the worker) recomputes
them off the request path.
"""

from __future__ import annotations

from integrations.models import Connection
from integrations.selectors.applications import application_stats
from integrations.selectors.common import CONNECTION_SUMMARY_FIELDS, cache_seconds
from integrations.selectors.connections import connection_counts, connection_gaps
from integrations.selectors.usage import INACTIVE_WINDOWS, inactive_people_count


def dashboard_cache_warm() -> None:
    if cache_seconds() <= 0:
        return
    connections = list(Connection.objects.only(*CONNECTION_SUMMARY_FIELDS).order_by("name", "id"))
    if not connections:
        return
    application_stats(connections, refresh=True)
    connection_counts(connections, refresh=True)
    connection_gaps(connections, refresh=True)
    for days in INACTIVE_WINDOWS:
        inactive_people_count(connections=connections, days=days, refresh=True)
