"""Helpers shared by the selectors: the directory-application ids, usage availability, labels."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TypeVar

from django.utils import timezone

from integrations.models import Application, Connection

T = TypeVar("T")


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


# What lists of connections load: enough for labels, statuses and usage availability — a deferred
# field read later would cost one query per connection.
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
    "days_ago",
    "directory_app_ids",
    "CONNECTION_SUMMARY_FIELDS",
    "usage_available",
    "usage_connection_ids",
]
