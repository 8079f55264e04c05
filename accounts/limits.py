"""Atomic rate counters and concurrency slots, kept in the database.

Both must hold under concurrent requests on every backend torii runs on. A cache read-modify-write
is not atomic on the file cache of development (40 concurrent connect attempts once let 27 through
a limit of 10), so the counting happens in one SQL statement each: an upsert that returns the new
count, and an upsert that takes a slot only when it is free or expired, which PostgreSQL runs
atomically.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import ConcurrencySlot, RateCounter


def rate_counter_hit(*, key: str, window_seconds: int) -> int:
    """Count one hit of `key` in the current fixed window and return the hits so far, this one
    included. Concurrent callers each get a distinct count."""
    now = timezone.now()
    window = int(now.timestamp()) // window_seconds
    full_key = f"{key}:{window}"[:200]
    expires_at = now + timedelta(seconds=window_seconds)
    table = RateCounter._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (key, count, expires_at) VALUES (%s, 1, %s) "  # noqa: S608 - table name from the model
            f"ON CONFLICT (key) DO UPDATE SET count = {table}.count + 1 RETURNING count",
            [full_key, expires_at],
        )
        count = int(cursor.fetchone()[0])
        if count == 1:
            # A new window: drop the expired counters of earlier windows (a few rows at most).
            RateCounter.objects.filter(expires_at__lt=now).delete()
    return count


@dataclass(frozen=True)
class Slot:
    scope: str
    slot: int
    holder: str

    def release(self) -> None:
        ConcurrencySlot.objects.filter(scope=self.scope, slot=self.slot, holder=self.holder).delete()


def concurrency_slot_acquire(*, scope: str, limit: int, lease_seconds: int) -> Slot | None:
    """Take one of `limit` slots of `scope`, or None when all are held. A slot whose lease ran out
    (its holder died) is taken over."""
    now = timezone.now()
    holder = secrets.token_hex(16)
    table = ConcurrencySlot._meta.db_table
    with connection.cursor() as cursor:
        for number in range(max(limit, 0)):
            with transaction.atomic():
                cursor.execute(
                    f"INSERT INTO {table} (scope, slot, holder, expires_at) VALUES (%s, %s, %s, %s) "  # noqa: S608 - table name from the model
                    f"ON CONFLICT (scope, slot) DO UPDATE SET holder = EXCLUDED.holder, "
                    f"expires_at = EXCLUDED.expires_at WHERE {table}.expires_at < %s RETURNING holder",
                    [scope, number, holder, now + timedelta(seconds=lease_seconds), now],
                )
                row = cursor.fetchone()
            if row is not None and row[0] == holder:
                return Slot(scope=scope, slot=number, holder=holder)
    return None
