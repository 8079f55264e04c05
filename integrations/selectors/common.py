"""Helpers shared by the selectors: the directory-application ids and a data-versioned cache."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

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
# An aggregate about to expire is recomputed rather than carried forward (carry_forward).
MIN_CARRY_SECONDS = 60


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


@dataclass(frozen=True)
class _Entry:
    """A cached aggregate and when it was computed (a carried-forward entry keeps its expiry)."""

    computed_at: float
    value: Any


def _key(name: str, version: str, extra: str) -> str:
    return f"torii:dash:{name}:{version}:{extra}"


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
    key = _key(name, data_version(connections), extra)
    entry = None if refresh else cache.get(key)
    if not isinstance(entry, _Entry):
        entry = _Entry(time.time(), compute())
        cache.set(key, entry, timeout=ttl)
    return cast(T, entry.value)


def carry_forward(names: Iterable[tuple[str, str]], old_version: str, new_version: str) -> bool:
    """Serve the aggregates cached under `old_version` under `new_version` too, until they would
    have expired anyway: for a sync that wrote nothing, whose new markers change the key but not
    the data. `names`: (name, extra) pairs. False (nothing carried) unless every one is cached
    with a useful time left."""
    ttl = cache_seconds()
    if ttl <= 0:
        return False
    now = time.time()
    entries = {pair: cache.get(_key(pair[0], old_version, pair[1])) for pair in names}
    if not all(
        isinstance(e, _Entry) and ttl - (now - e.computed_at) >= MIN_CARRY_SECONDS for e in entries.values()
    ):
        return False
    cache.set_many(
        {_key(name, new_version, extra): e for (name, extra), e in entries.items()},
        timeout=min(ttl - (now - e.computed_at) for e in entries.values()),
    )
    return True


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
    "carry_forward",
    "data_version",
    "days_ago",
    "directory_app_ids",
    "CONNECTION_SUMMARY_FIELDS",
    "usage_available",
    "usage_connection_ids",
]
