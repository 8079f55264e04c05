"""One request budget per upstream account, shared by every worker on every machine.

A provider's API limits requests per account (JumpCloud: per organization). Each sync task reads
its pages itself (and reads a few ahead), and several tasks of one run, or runs of several
connections to one account, run at once on any number of workers. So every request first takes a
slot of its account's budget: at most `limit` requests are in flight at once, all workers
together. A 429 halves the limit (once per burst) and pauses everyone until its Retry-After; the
limit then grows back by one slot every GROW_SECONDS. More workers therefore never mean more 429s.

The slots are PostgreSQL advisory locks (one per slot, keyed by the account) held on one database
session of the process: a worker that dies loses its session, and PostgreSQL frees its slots at
once. The limit's state is a RequestBudget row.

Sharing: the slices of a backfill (background work, `lane`) take the upper half of the slots, and
the top slot is theirs alone; the streams the run waits for take the others. A process holding
half the limit takes no more while another process waits for a slot of the same lane (it holds
that lane's waiting mark, a shared advisory lock), so two streams read side by side get a share
each: without that, a slot freed by a process's own thread would always go to its own waiters.
"""

from __future__ import annotations

import os
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import connections

from integrations.exceptions import RateLimited

GROW_SECONDS = 10.0  # one more slot this often after a cut, up to the configured limit
CUT_GAP_SECONDS = 1.0  # 429s closer together than this are one burst: one cut
STATE_TTL_SECONDS = 0.5  # how long a process trusts the limit it read
POLL_SECONDS = (0.005, 0.1)  # waiting for a slot another process holds: first and longest look
LONGEST_WAIT_SECONDS = 30.0  # a longer pause is waited out by retrying the task later


class _Session:
    """This process's own database session for the budget (never a request's or a task's: a
    slot is held across their transactions, and by read-ahead threads too)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()
        wrapper = connections["default"]
        self.raw = wrapper.get_new_connection(wrapper.get_connection_params())
        self.raw.autocommit = True
        # Slots this session holds, by account. Advisory locks stack within one session, so the
        # threads of this process must skip these, or two of them would share one slot.
        self.held: dict[int, set[int]] = {}
        # Threads of this process waiting for a slot, by (account, lane): see _mark_waiting.
        self.waiting: dict[tuple[int, int], int] = {}

    def query(self, sql: str, params: list[Any] | dict[str, Any]) -> Any:
        with self.lock:
            return self.query_locked(sql, params)

    def query_locked(self, sql: str, params: list[Any] | dict[str, Any]) -> Any:
        """`query` for a caller that holds `lock` already."""
        cursor = self.raw.cursor()
        try:
            cursor.execute(sql, params)
            return cursor.fetchone() if cursor.description else None
        finally:
            cursor.close()


_session: _Session | None = None
_session_lock = threading.Lock()
# The waiting marks' second key (the slots' are 0 and up).
WAITING, WAITING_BACKGROUND = -1, -2
_freed = threading.Condition()  # notified when a thread of this process gives its slot back
_background = False  # this process's task is background work (see `lane`)


@contextmanager
def lane(*, background: bool) -> Iterator[None]:
    """Run the block's requests (this process's, its read-ahead threads' too: a worker process
    runs one task at a time) as background work or not. Background work (the slices of a
    backfill) takes only the upper half of an account's slots, the top one its own; the others
    stay for the streams the rest of the run waits for, which take the lowest slots free."""
    global _background
    before, _background = _background, background
    try:
        yield
    finally:
        _background = before


def _waiting_mark() -> int:
    """The second key of this process's lane's waiting mark."""
    return WAITING_BACKGROUND if _background else WAITING


def close() -> None:
    """Close this process's budget session (its slots go with it): before its database goes."""
    global _session
    with _session_lock:
        if _session is not None and _session.pid == os.getpid():
            _session.raw.close()
        _session = None


def _db() -> _Session:
    global _session
    with _session_lock:
        # A forked worker child must not share its parent's socket.
        if _session is None or _session.pid != os.getpid():
            _session = _Session()
        return _session


class RequestBudget:
    """The budget of one account; `slot()` around every request, `throttled()` on every 429."""

    def __init__(self, key: str, *, limit: int | None = None) -> None:
        self.key = key
        self.max_limit = max(1, int(limit or settings.SYNC_MAX_REQUESTS_PER_ACCOUNT))
        # The advisory lock space of this account: (classid, slot).
        self.lock_id = zlib.crc32(f"torii-budget:{key}".encode()) - 2**31
        self._state: tuple[float, int, float] = (0.0, self.max_limit, 0.0)  # read at, limit, paused for

    # --- the limit ------------------------------------------------------------------------------
    def current(self) -> tuple[int, float]:
        """(requests allowed at once now, seconds everyone must still wait)."""
        read_at, limit, paused = self._state
        now = time.monotonic()
        if now - read_at > STATE_TTL_SECONDS:
            row = _db().query(
                "SELECT LEAST(%s, FLOOR(b.allowed + CASE WHEN b.cut_at IS NULL THEN %s "
                "  ELSE EXTRACT(EPOCH FROM now() - b.cut_at) / %s END))::int, "
                "  GREATEST(EXTRACT(EPOCH FROM b.paused_until - now()), 0)::float "
                "FROM integrations_requestbudget b WHERE b.key = %s",
                [self.max_limit, self.max_limit, GROW_SECONDS, self.key],
            )
            limit, paused = (max(1, int(row[0])), float(row[1] or 0)) if row else (self.max_limit, 0.0)
            self._state = (now, limit, paused)
            read_at = now
        return limit, max(0.0, paused - (now - read_at))

    def throttled(self, retry_after: float | None = None) -> None:
        """A 429: halve the limit (once per burst) and pause everyone until Retry-After."""
        _db().query(
            "INSERT INTO integrations_requestbudget AS b (key, allowed, cut_at, paused_until) "
            "VALUES (%(key)s, GREATEST(1, %(max)s / 2.0), now(), now() + make_interval(secs => %(wait)s)) "
            "ON CONFLICT (key) DO UPDATE SET "
            "  allowed = CASE WHEN b.cut_at > now() - make_interval(secs => %(gap)s) THEN b.allowed ELSE GREATEST(1, "
            "    LEAST(%(max)s, b.allowed + COALESCE(EXTRACT(EPOCH FROM now() - b.cut_at) / %(grow)s, %(max)s)) / 2.0) END, "
            "  cut_at = CASE WHEN b.cut_at > now() - make_interval(secs => %(gap)s) THEN b.cut_at ELSE now() END, "
            "  paused_until = GREATEST(b.paused_until, now() + make_interval(secs => %(wait)s))",
            {
                "key": self.key,
                "max": self.max_limit,
                "wait": float(retry_after or 0),
                "gap": CUT_GAP_SECONDS,
                "grow": GROW_SECONDS,
            },
        )
        self._state = (0.0, self.max_limit, 0.0)  # read it again before the next request

    # --- slots ----------------------------------------------------------------------------------
    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the account's slots for the length of the block."""
        slot = self._acquire()
        try:
            yield
        finally:
            self._release(slot)

    def _acquire(self) -> int:
        pause = POLL_SECONDS[0]
        waiting = False
        try:
            while True:
                limit, wait = self.current()
                if wait > LONGEST_WAIT_SECONDS:
                    # Not worth holding a worker for: the task is retried once the pause is over.
                    raise RateLimited(
                        f"The provider asked every request of this account to wait {wait:.0f} s more.",
                        retry_after=wait,
                    )
                if wait > 0:
                    time.sleep(min(wait, 1.0))
                    continue
                slot = self._try(limit)
                if slot is not None:
                    return slot
                if not waiting:
                    self._mark_waiting(+1)
                    waiting = True
                # A slot this process frees wakes one waiter at once; one freed by another process
                # is seen at the next look, at most POLL_SECONDS[1] later.
                with _freed:
                    _freed.wait(pause)
                pause = min(pause * 2, POLL_SECONDS[1])
        finally:
            if waiting:
                self._mark_waiting(-1)

    def _mark_waiting(self, delta: int) -> None:
        """While a thread of this process waits for a slot of its lane, the process holds the
        lane's waiting mark: a shared advisory lock that other processes see in pg_locks."""
        session = _db()
        lane = _waiting_mark()
        with session.lock:
            key = (self.lock_id, lane)
            count = session.waiting.get(key, 0)
            session.waiting[key] = count + delta
            if count + delta == 1 and delta > 0:
                session.query_locked("SELECT pg_advisory_lock_shared(%s, %s)", [self.lock_id, lane])
            elif count + delta == 0:
                session.query_locked("SELECT pg_advisory_unlock_shared(%s, %s)", [self.lock_id, lane])

    def _try(self, limit: int) -> int | None:
        """Take the lowest free slot of this lane below `limit` (one query), or None. A process
        that holds its fair share (half the limit) takes no more while another process waits for
        a slot of the same lane: a slot its own threads free would otherwise always go to them
        (they are woken at once, another process looks again later)."""
        session = _db()
        with session.lock:
            held = session.held.setdefault(self.lock_id, set())
            first = limit // 2 if _background else 0
            # The top slot is the background's: a backfill's slices never wait for a slot.
            last = limit if _background or limit < 2 else limit - 1
            candidates = [slot for slot in range(first, last) if slot not in held]
            if not candidates:
                return None
            # Rows are tried in order and LIMIT stops at the first lock taken: no other slot is
            # locked on the way (the candidates are not sorted or otherwise read whole).
            row = session.query_locked(
                "SELECT s FROM unnest(%(slots)s::int[]) AS s "
                "WHERE (NOT %(share_taken)s OR NOT EXISTS ("
                "  SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = (%(key)s)::int4::oid"
                "  AND objid = (%(lane)s)::int4::oid AND objsubid = 2 AND granted AND pid <> pg_backend_pid()"
                ")) AND pg_try_advisory_lock(%(key)s, s) LIMIT 1",
                {
                    "slots": candidates,
                    "share_taken": len(held) >= max(1, limit // 2),
                    "key": self.lock_id,
                    "lane": _waiting_mark(),
                },
            )
            if row is None:
                return None
            held.add(row[0])
            return int(row[0])

    def _release(self, slot: int) -> None:
        session = _db()
        session.query("SELECT pg_advisory_unlock(%s, %s)", [self.lock_id, slot])
        with session.lock:
            session.held.get(self.lock_id, set()).discard(slot)
        with _freed:
            _freed.notify()
