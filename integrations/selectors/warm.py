"""Warm the dashboard's cached aggregates after a sync, so the first page view does not pay.

The applications page, insights and the integrations page read per-application and per-connection
aggregates over every AppUser row and every event (30–100 ms on a 50k-people / 1M-event tenant).
They are cached under each connection's sync markers (selectors.common.cached), so a finished sync
invalidates them; calling `dashboard_cache_warm()` at the end of a sync (in the worker) recomputes
them off the request path. A sync that wrote nothing changes those markers but not the data, so
it carries the cached aggregates forward to the new key instead (keeping their expiry), and only
recomputes the sync-history gaps, which a successful run can close without writing a row.
"""

from __future__ import annotations

from integrations.models import Connection
from integrations.selectors.applications import application_stats
from integrations.selectors.common import (
    CONNECTION_SUMMARY_FIELDS,
    cache_seconds,
    carry_forward,
    data_version,
)
from integrations.selectors.connections import connection_counts, connection_gaps
from integrations.selectors.usage import INACTIVE_WINDOWS, inactive_people_count

# The cached aggregates computed from synced rows alone (their names and extras in selectors).
DATA_AGGREGATES = (
    ("app-stats", ""),
    ("connection-counts", ""),
    *(("inactive-count", str(d)) for d in INACTIVE_WINDOWS),
)


def _connections() -> list[Connection]:
    return list(Connection.objects.only(*CONNECTION_SUMMARY_FIELDS).order_by("name", "id"))


def dashboard_version() -> str | None:
    """The cache's data version now (None without a cache); pass it to dashboard_cache_warm()
    after a sync that wrote nothing."""
    return data_version(_connections()) if cache_seconds() > 0 else None


def dashboard_cache_warm(*, unchanged_since: str | None = None) -> None:
    """Recompute the cached aggregates, or, given the data version from before a sync that wrote
    nothing (`unchanged_since`), carry them forward from it when they are all there."""
    if cache_seconds() <= 0:
        return
    connections = _connections()
    if not connections:
        return
    if unchanged_since is not None and carry_forward(
        DATA_AGGREGATES, unchanged_since, data_version(connections)
    ):
        connection_gaps(connections, refresh=True)
        return
    application_stats(connections, refresh=True)
    connection_counts(connections, refresh=True)
    connection_gaps(connections, refresh=True)
    for days in INACTIVE_WINDOWS:
        inactive_people_count(connections=connections, days=days, refresh=True)
