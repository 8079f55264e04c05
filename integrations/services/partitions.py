"""The usage events' monthly partitions: kept ahead of time, dropped once past retention.

`integrations_usageevent` is partitioned by range of `occurred_at`, one partition per UTC month
(`integrations_usageevent_p2026_12`), plus a default partition that catches an event whose month
has no partition yet, so that none is ever refused (docs/data-retention.md). Beat runs
`usage_partitions_maintain` daily: every month from the retention cutoff to
`EVENT_PARTITIONS_AHEAD` months ahead gets its partition, and whole partitions that ended before the
cutoff are dropped (a catalog change, not a delete of millions of rows). The rollups (`LastUse`,
`DailyUsage`) are separate tables and are never touched here.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import connection as db
from django.db import transaction
from django.utils import timezone

from integrations.models import UsageEvent

logger = logging.getLogger(__name__)

PARENT = UsageEvent._meta.db_table
DEFAULT_PARTITION = f"{PARENT}_default"
_NAME = re.compile(rf"^{PARENT}_p(\d{{4}})_(\d{{2}})$")
# A drop waits at most this long for the readers of the events table; beat tries again next time.
LOCK_TIMEOUT = "5s"


@dataclass(frozen=True)
class Partition:
    name: str
    month: date  # the first day of its month

    @property
    def start(self) -> datetime:
        return datetime(self.month.year, self.month.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return _next_month(self.start)


def _next_month(value: datetime) -> datetime:
    return (value.replace(day=1) + timedelta(days=32)).replace(day=1)


def month_of(value: datetime) -> date:
    return value.astimezone(UTC).date().replace(day=1)


def partition_name(month: date) -> str:
    return f"{PARENT}_p{month:%Y_%m}"


def retention_cutoff(*, now: datetime | None = None) -> datetime:
    """Events older than this are past retention."""
    return (now or timezone.now()) - timedelta(days=settings.EVENT_RETENTION_DAYS)


def usage_partitions() -> list[Partition]:
    """The monthly partitions that exist, oldest first (the default partition is not one)."""
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [PARENT],
        )
        names = [row[0] for row in cursor.fetchall()]
    found = []
    for name in names:
        match = _NAME.match(name)
        if match:
            found.append(Partition(name, date(int(match[1]), int(match[2]), 1)))
    return sorted(found, key=lambda p: p.month)


def usage_partition_create(*, month: date) -> bool:
    """Create the partition of this month (False if it exists). Events of that month that landed in
    the default partition meanwhile are moved into it in the same transaction: PostgreSQL refuses a
    new partition whose rows sit in the default one, and no event may be lost on the way."""
    name = partition_name(month)
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    end = _next_month(start)
    with transaction.atomic(), db.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        if cursor.fetchone()[0]:
            return False
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        cursor.execute(
            f'CREATE TEMP TABLE usage_moved ON COMMIT DROP AS WITH moved AS (DELETE FROM "{DEFAULT_PARTITION}" '
            "WHERE occurred_at >= %s AND occurred_at < %s RETURNING *) SELECT * FROM moved",
            [start, end],
        )
        cursor.execute(
            f'CREATE TABLE "{name}" PARTITION OF "{PARENT}" FOR VALUES FROM (%s) TO (%s)', [start, end]
        )
        cursor.execute(f'INSERT INTO "{PARENT}" OVERRIDING SYSTEM VALUE SELECT * FROM usage_moved')
        if cursor.rowcount:
            logger.info("moved %s events from the default partition into %s", cursor.rowcount, name)
        cursor.execute("DROP TABLE usage_moved")  # now: a caller's outer transaction may create more
    return True


def usage_partitions_ensure(*, now: datetime | None = None) -> list[str]:
    """Every month from the retention cutoff to EVENT_PARTITIONS_AHEAD months ahead has its
    partition (a first sync backfills months before the install). Returns the names created."""
    now = now or timezone.now()
    month = month_of(retention_cutoff(now=now))
    last = month_of(now)
    for _ in range(settings.EVENT_PARTITIONS_AHEAD):
        last = month_of(_next_month(datetime(last.year, last.month, 1, tzinfo=UTC)))
    created = []
    while month <= last:
        if usage_partition_create(month=month):
            created.append(partition_name(month))
        month = month_of(_next_month(datetime(month.year, month.month, 1, tzinfo=UTC)))
    return created


def usage_partitions_drop_expired(*, now: datetime | None = None) -> list[str]:
    """Drop every monthly partition wholly older than the retention cutoff; returns their names.

    Dropping a table frees its space at once and costs the same for a thousand rows or ten
    million. The few events of the default partition older than the cutoff (strays with no month
    of their own) are deleted as rows: that partition stays small by construction."""
    cutoff = retention_cutoff(now=now)
    dropped = []
    for partition in usage_partitions():
        if partition.end > cutoff:
            continue
        with transaction.atomic(), db.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            cursor.execute(f'DROP TABLE "{partition.name}"')
        dropped.append(partition.name)
    with transaction.atomic(), db.cursor() as cursor:
        cursor.execute(f'DELETE FROM "{DEFAULT_PARTITION}" WHERE occurred_at < %s', [cutoff])
        strays = cursor.rowcount
    if dropped or strays:
        logger.info("retention: dropped %s, %s stray events deleted", ", ".join(dropped) or "nothing", strays)
    return dropped


def usage_partitions_maintain(*, now: datetime | None = None) -> dict[str, list[str]]:
    """Beat's daily step: partitions ahead first (an insert must never wait for one), then retention.
    After a drop, the read models count the events again (their number and oldest moved)."""
    from integrations.services.read_models import read_models_refresh_all

    created = usage_partitions_ensure(now=now)
    dropped = usage_partitions_drop_expired(now=now)
    if dropped:
        read_models_refresh_all()
    return {"created": created, "dropped": dropped}
