"""Helpers shared by the selectors: the directory-application ids and a data-versioned cache."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from integrations.models import Application, Connection

T = TypeVar("T")

# Aggregates over every AppUser row or event (hundreds of thousands, a million) take 50–120 ms;
# their inputs only change when a sync writes, so they are cached under a key made of each
# connection's sync markers: a finished sync changes the key, so nothing stale outlives it. The
# expiry bounds how far "active in the last N days" windows drift between syncs. It outlasts the
# hourly usage sync, which re-warms the cache when it finishes (integrations.services.sync), so
# the pages are served from the cache, not computed on the request.
DEFAULT_CACHE_SECONDS = 2 * 3600


def cache_seconds() -> int:
    return int(getattr(settings, "TORII_DASHBOARD_CACHE_SECONDS", DEFAULT_CACHE_SECONDS))


def data_version(connections: Iterable[Connection]) -> str:
    """A fingerprint that changes whenever a sync may have written data for these connections."""
    parts = [
        f"{c.pk}:{c.status}:{_ts(c.last_sync_at)}:{_ts(c.last_success_at)}:{_ts(c.updated_at)}"
        for c in sorted(connections, key=lambda c: c.pk)
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def _ts(value: datetime | None) -> str:
    return value.isoformat() if value else "-"


def cached(
    name: str,
    connections: Iterable[Connection],
    compute: Callable[[], T],
    *,
    extra: str = "",
    refresh: bool = False,
) -> T:
    """Return compute(), cached per data version (no cache when the TTL is 0). refresh=True
    recomputes and stores (to warm the cache after a sync)."""
    ttl = cache_seconds()
    if ttl <= 0:
        return compute()
    key = f"torii:dash:{name}:{data_version(connections)}:{extra}"
    value = None if refresh else cache.get(key)
    if value is None:
        value = compute()
        cache.set(key, value, timeout=ttl)
    return value


def directory_app_ids() -> list[int]:
    """Ids of the directory applications (one per connection).

    Filtering AppUser rows by an explicit id list instead of a join on Application.kind lets
    PostgreSQL use its per-value statistics: the join estimated ~3k rows for 50k and chose poor plans.
    """
    return list(Application.objects.filter(kind=Application.Kind.DIRECTORY).values_list("id", flat=True))


def usage_connection_ids(connections: Iterable[Connection]) -> list[int]:
    """Connections whose usage events are available: only they may say "never used" or "inactive"."""
    return [c.pk for c in connections if usage_available(c)]


def usage_available(connection: Connection) -> bool:
    return bool((connection.capabilities or {}).get("usage_events"))


def days_ago(days: int) -> datetime:
    return timezone.now() - timedelta(days=days)


# What lists of connections load: enough for labels, statuses, usage availability and
# data_version() — a deferred field read later would cost one query per connection.
CONNECTION_SUMMARY_FIELDS = (
    "id",
    "provider",
    "name",
    "org_name",
    "status",
    "permission",
    "capabilities",
    "last_sync_at",
    "last_success_at",
    "updated_at",
)


__all__ = [
    "cache_seconds",
    "cached",
    "data_version",
    "days_ago",
    "directory_app_ids",
    "CONNECTION_SUMMARY_FIELDS",
    "usage_available",
    "usage_connection_ids",
]
