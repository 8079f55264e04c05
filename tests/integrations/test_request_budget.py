"""The per-account request budget (integrations.sync.budget), held in PostgreSQL across processes."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from contextlib import nullcontext

import pytest
import responses
from django.db import connection as db

from integrations.exceptions import RateLimited
from integrations.models import RequestBudget as BudgetRow
from integrations.sync import budget
from integrations.sync.budget import RequestBudget
from jumpcloud.client import JumpCloudClient

pytestmark = [pytest.mark.django_db(transaction=True)]


def _hold(key: str, limit: int, count: int, ready, release) -> None:  # runs in a child process
    budget._session = None  # the child's own database session, as a worker process has
    gate = RequestBudget(key, limit=limit)
    held = [gate._try(limit) for _ in range(count)]
    ready.send(held)
    release.recv()


@pytest.fixture
def child_holding():
    """child_holding(key, limit, count) -> (the slots a second process took and holds, it)."""
    started = []

    def start(key: str, limit: int, count: int) -> tuple[list[int | None], multiprocessing.Process]:
        db.close()  # not shared with the fork
        ready_r, ready_w = multiprocessing.Pipe(duplex=False)
        release_r, release_w = multiprocessing.Pipe(duplex=False)
        proc = multiprocessing.get_context("fork").Process(
            target=_hold, args=(key, limit, count, ready_w, release_r), daemon=True
        )
        proc.start()
        started.append((proc, release_w))
        return ready_r.recv(), proc

    yield start
    for proc, release in started:
        if proc.is_alive():
            release.send(True)
            proc.join(10)


def test_at_most_limit_requests_at_once_across_processes_and_a_dead_one_frees_its_slots(child_holding):
    key = "test:shared"
    assert child_holding(key, 4, 2)[0] == [0, 1]  # another worker process holds two of four slots
    gate = RequestBudget(key, limit=4)
    mine = gate._try(4)
    assert mine == 2
    assert gate._try(4) is None, "the top slot is background work's"
    with budget.lane(background=True):
        assert gate._try(4) == 3
        assert gate._try(4) is None, "a fifth request at once"
    gate._release(mine)
    assert gate._try(4) == 2


def test_slots_of_a_killed_worker_are_free_at_once(child_holding):
    key = "test:killed"
    held, proc = child_holding(key, 2, 2)
    assert held == [0, None], "of two slots, the critical path has one (the other is background work's)"
    gate = RequestBudget(key, limit=2)
    assert gate._try(2) is None
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(10)
    # PostgreSQL ends the dead process's session, and its advisory locks with it (as soon as it
    # notices the closed socket: looked at until then, for at most a minute).
    slot = None
    for _ in range(600):
        if (slot := gate._try(2)) is not None:
            break
        threading.Event().wait(0.1)
    assert slot is not None


def test_threads_of_one_process_never_share_a_slot():
    gate = RequestBudget("test:threads", limit=4)
    taken: list[int | None] = []
    lock = threading.Lock()

    def take() -> None:
        slot = gate._try(4)
        with lock:
            taken.append(slot)

    threads = [threading.Thread(target=take) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = [s for s in taken if s is not None]
    assert sorted(got) == [0, 1, 2] and taken.count(None) == 3, "the top slot is background work's"
    # Each slot taken is one lock held, and a try that found none took none.
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = %s AND classid::bigint = %s",
            [budget._db().raw.info.backend_pid, gate.lock_id % 2**32],
        )
        assert cursor.fetchone()[0] == 3
    gate._release(2)
    assert gate._try(4) == 2, "the freed slot is taken again"


def test_background_work_takes_only_the_upper_half_of_the_slots():
    gate = RequestBudget("test:lanes", limit=8)
    with budget.lane(background=True):
        taken = [gate._try(8) for _ in range(5)]
    assert taken == [4, 5, 6, 7, None], "the lower half stays free for the critical path"
    assert [gate._try(8) for _ in range(5)] == [0, 1, 2, 3, None]
    alone = RequestBudget("test:lanes-cut", limit=8)
    with budget.lane(background=True):
        assert alone._try(1) == 0, "with the limit cut to one slot, background work still runs"


def test_the_top_slot_is_background_work_s_alone():
    gate = RequestBudget("test:top", limit=8)
    assert [gate._try(8) for _ in range(8)] == [0, 1, 2, 3, 4, 5, 6, None]
    with budget.lane(background=True):
        assert gate._try(8) == 7, "a backfill's slice never waits behind the critical path"
    alone = RequestBudget("test:top-cut", limit=8)
    assert alone._try(1) == 0, "with the limit cut to one slot, the critical path still runs"


def _mark_waiting_elsewhere(gate: RequestBudget, lane: int) -> None:
    """Another process waits for a slot of `lane` (the test's own database session holds the mark)."""
    with db.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock_shared(%s, %s)", [gate.lock_id, lane])


def _unmark_waiting_elsewhere(gate: RequestBudget, lane: int) -> None:
    with db.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock_shared(%s, %s)", [gate.lock_id, lane])


def test_a_process_holding_half_the_limit_takes_no_more_while_another_process_waits():
    gate = RequestBudget("test:fair", limit=8)
    assert [gate._try(8) for _ in range(4)] == [0, 1, 2, 3]
    _mark_waiting_elsewhere(gate, budget.WAITING_BACKGROUND)
    assert gate._try(8) == 4, "background work waiting does not hold the critical path back"
    gate._release(4)
    _mark_waiting_elsewhere(gate, budget.WAITING)
    assert gate._try(8) is None, "half the limit held, and another stream of the run waits"
    _unmark_waiting_elsewhere(gate, budget.WAITING)
    assert gate._try(8) == 4, "nobody else waits: the free slots are this process's to take"


def test_a_thread_waiting_for_a_slot_shows_its_process_waiting_until_it_has_one():
    gate = RequestBudget("test:mark", limit=2)
    assert gate._try(2) == 0  # the one slot of the critical path
    pid = budget._db().raw.info.backend_pid

    def marks() -> int:
        with db.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = %s "
                "AND classid::bigint = %s AND objid::bigint = %s AND mode = 'ShareLock' AND granted",
                [pid, gate.lock_id % 2**32, budget.WAITING % 2**32],
            )
            return cursor.fetchone()[0]

    got: list[int] = []
    waiter = threading.Thread(target=lambda: got.append(gate._acquire()))
    waiter.start()
    for _ in range(100):
        if marks():
            break
        threading.Event().wait(0.05)
    assert marks() == 1 and not got, "waiting, and marked so"
    gate._release(0)
    waiter.join(10)
    assert got == [0] and marks() == 0, "it took the slot and its mark is gone"
    gate._release(0)


def test_a_429_halves_the_limit_once_per_burst_pauses_everyone_and_the_limit_grows_back():
    gate = RequestBudget("test:aimd", limit=8)
    assert gate.current() == (8, 0.0)
    gate.throttled(retry_after=2)
    gate.throttled(retry_after=1)  # the same burst: no second cut, the longer pause stays
    other = RequestBudget("test:aimd", limit=8)  # another worker reads the same state
    limit, paused = other.current()
    assert limit == 4
    assert 1.0 < paused <= 2.0
    # Time passes (the cut and the pause lie in the past): one slot back per GROW_SECONDS.
    assert BudgetRow.objects.get(key="test:aimd").allowed == 4
    with db.cursor() as cursor:
        cursor.execute(
            "UPDATE integrations_requestbudget SET cut_at = now() - make_interval(secs => %s), "
            "paused_until = now() - interval '1 second' WHERE key = %s",
            [2 * budget.GROW_SECONDS + 1, "test:aimd"],
        )
    assert RequestBudget("test:aimd", limit=8).current() == (6, 0.0)
    with db.cursor() as cursor:
        cursor.execute(
            "UPDATE integrations_requestbudget SET cut_at = now() - interval '1 hour' WHERE key = %s",
            ["test:aimd"],
        )
    assert RequestBudget("test:aimd", limit=8).current()[0] == 8, "never above the configured limit"
    with db.cursor() as cursor:  # the next burst, a minute later, halves what the limit is by then
        cursor.execute(
            "UPDATE integrations_requestbudget SET cut_at = now() - interval '1 minute' WHERE key = %s",
            ["test:aimd"],
        )
    RequestBudget("test:aimd", limit=8).throttled(retry_after=None)
    assert RequestBudget("test:aimd", limit=8).current()[0] == 4


def test_a_long_pause_hands_the_task_back_instead_of_holding_a_worker():
    gate = RequestBudget("test:long", limit=2)
    gate.throttled(retry_after=600)
    with pytest.raises(RateLimited) as caught, gate.slot():
        pass
    assert 590 < caught.value.retry_after <= 600


def test_the_client_takes_a_slot_for_every_request_and_reports_each_429():
    events: list[str] = []

    class Gate:
        def slot(self):
            events.append("slot")
            return nullcontext()

        def throttled(self, retry_after=None):
            events.append(f"429:{retry_after}")

    with responses.RequestsMock() as mocked:
        url = "https://console.jumpcloud.com/api/systemusers"
        mocked.get(url, status=429, headers={"Retry-After": "0"})
        mocked.get(url, json={"totalCount": 1, "results": [{"_id": "u1", "username": "a"}]})
        with JumpCloudClient("k" * 40, gate=Gate(), backoff_factor=0) as client:
            assert [u.id for u in client.iter_system_users()] == ["u1"]
    # urllib3 retries the 429 inside the one slot; the budget hears of it.
    assert events == ["slot", "429:0.0"]
