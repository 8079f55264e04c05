"""Reliability of syncs on PostgreSQL and Redis: killed workers, rate limits, concurrency, atomic pages.

Each test compares against a clean sync of an identical tenant: a second simulator with the same
seed and the same (fixed, past) anchor serves byte-identical data on another origin.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import OperationalError
from django.db import connection as db
from django.test import override_settings

from integrations.models import (
    Application,
    AppUser,
    Connection,
    DailyUsage,
    SyncCheckpoint,
    SyncRun,
    UsageEvent,
)
from integrations.services.connections import connection_create
from integrations.services.sync import (
    RetryLater,
    SyncAlreadyRunning,
    sync_recover_stale,
    sync_run_execute,
    sync_run_request,
)
from jumpcloud.simulator import FaultConfig, Simulator, SimulatorConfig
from tests.processes import CeleryProcess, child_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

ANCHOR = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
CONFIG = SimulatorConfig(
    seed=11, users=1500, apps=20, days=20, events=60_000, admins=12, groups=16, anchor=ANCHOR
)


@pytest.fixture(scope="module")
def twin_sims():
    """Two simulators serving the same tenant: one to abuse, one for the clean reference sync."""
    a = Simulator(CONFIG).start(host="127.0.0.1", port=0)
    b = Simulator(CONFIG).start(host="127.0.0.1", port=0)
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture
def twins(twin_sims, settings):
    a, b = twin_sims
    a.set_faults(None)
    b.set_faults(None)
    settings.JUMPCLOUD_ALLOWED_BASE_URLS = [a.base_url, b.base_url]
    settings.JUMPCLOUD_EVENT_PAGE_SIZE = 2000
    # These tests commit for real, so the event streams can run beside the inventory as in
    # production; the clean reference sync runs them one after the other.
    settings.SYNC_CONCURRENT_STREAMS = True
    return a, b


def _connect(sim: Simulator, name: str) -> Connection:
    return connection_create(
        name=name, api_key=sim.keys["admin"], permission="read_only", base_url=sim.base_url, start_sync=False
    )


def _snapshot(connection: Connection) -> dict[str, object]:
    users = sorted(
        AppUser.objects.filter(connection=connection).values_list(
            "application__external_id",
            "external_id",
            "kind",
            "status",
            "role",
            "is_admin",
            "assignment",
            "last_used_at",
            "admin_last_login_at",
            "username",
            "removed_at",
        )
    )
    apps = sorted(
        Application.objects.filter(connection=connection).values_list(
            "external_id", "kind", "label", "removed_at"
        )
    )
    event_ids = list(UsageEvent.objects.filter(connection=connection).values_list("external_id", flat=True))
    daily = sorted(
        DailyUsage.objects.filter(connection=connection).values_list(
            "application__external_id", "day", "successes", "failures", "active_users"
        )
    )
    return {
        "users": users,
        "apps": apps,
        "events": sorted(event_ids),
        "event_rows": len(event_ids),
        "daily": daily,
    }


def _clean_reference(sim: Simulator) -> dict[str, object]:
    reference = _connect(sim, "reference")
    run = sync_run_request(connection=reference, kind="full", trigger="manual", enqueue=False)
    with override_settings(SYNC_CONCURRENT_STREAMS=False):
        assert sync_run_execute(run_id=run.pk).status == SyncRun.Status.SUCCEEDED
    return _snapshot(reference)


def _assert_same(actual: dict[str, object], expected: dict[str, object]) -> None:
    assert actual["event_rows"] == len(set(actual["events"])), "duplicate event rows"
    missing = set(expected["events"]) - set(actual["events"])
    extra = set(actual["events"]) - set(expected["events"])
    assert not missing and not extra, f"{len(missing)} missing, {len(extra)} unexpected events"
    assert actual["apps"] == expected["apps"]
    assert actual["users"] == expected["users"]
    assert actual["daily"] == expected["daily"]


def _wait_run(run_id: int, timeout: float, workers: list[CeleryProcess] | None = None) -> SyncRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = SyncRun.objects.get(pk=run_id)
        if not run.is_active:
            return run
        time.sleep(0.3)
    logs = "\n".join(w.log()[-3000:] for w in workers or [])
    raise AssertionError(
        f"sync run {run_id} still {SyncRun.objects.get(pk=run_id).status} after {timeout}s\n{logs}"
    )


def test_sigkill_at_random_points_then_resume_equals_a_clean_sync(twins, tmp_path, celery_not_eager):
    victim_sim, reference_sim = twins
    expected = _clean_reference(reference_sim)
    victim_sim.set_faults(FaultConfig(latency_ms=25, seed=5))  # long enough to be killed mid-way
    connection = _connect(victim_sim, "victim")
    env = child_env(JUMPCLOUD_EVENT_PAGE_SIZE="2000", SYNC_CONCURRENT_STREAMS="true")
    rng = random.Random(2026)
    run = None
    kills = 0
    workers: list[CeleryProcess] = []
    for i in range(10):
        worker = CeleryProcess("worker", log=tmp_path / f"worker{i}.log", env=env)
        workers.append(worker)
        worker.wait_for_log("ready.")
        if run is None:
            run = sync_run_request(connection=connection, kind="full", trigger="manual")
        else:
            sync_recover_stale(stale_after=timedelta(0))
        time.sleep(rng.uniform(0.3, 1.2))
        state = SyncRun.objects.get(pk=run.pk)
        worker.kill()
        if not state.is_active:
            break
        kills += 1
    final = CeleryProcess("worker", log=tmp_path / "final.log", env=env)
    workers.append(final)
    try:
        final.wait_for_log("ready.")
        sync_recover_stale(stale_after=timedelta(0))
        done = _wait_run(run.pk, 240, workers)
    finally:
        final.stop()
    assert kills >= 8, f"only {kills} kills landed mid-sync; the sync is too short for this test"
    assert done.status == SyncRun.Status.SUCCEEDED, done.error_message
    assert done.attempts >= kills
    _assert_same(_snapshot(connection), expected)


def test_rate_limits_and_unavailability_do_not_change_the_result(twins, settings):
    sim, reference_sim = twins
    settings.JUMPCLOUD_EVENT_PAGE_SIZE = 10_000
    expected = _clean_reference(reference_sim)
    sim.set_faults(
        FaultConfig(rate_429=0.3, retry_after_share=0.5, retry_after_seconds=1, rate_503=0.05, seed=3)
    )
    sim.clear_requests()
    connection = _connect_without_faults(sim, "throttled")
    run = sync_run_request(connection=connection, kind="full", trigger="manual", enqueue=False)
    for _ in range(20):  # the task would retry; here we retry by hand until it finishes
        try:
            finished = sync_run_execute(run_id=run.pk)
        except RetryLater as exc:
            SyncRun.objects.filter(pk=run.pk).update(heartbeat_at=None)
            time.sleep(min(exc.countdown, 0.1))
            continue
        if finished is not None:
            break
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_message
    _assert_same(_snapshot(connection), expected)
    records = sim.requests
    throttled = [r for r in records if r.status == 429]
    assert len(throttled) > 20
    # Never earlier than Retry-After: the next request to the same URL came at least that much later.
    checked = 0
    for i, r in enumerate(records):
        retry_after = r.retry_after
        if r.status != 429 or not retry_after:
            continue
        later = next(
            (n for n in records[i + 1 :] if n.path == r.path and n.query == r.query and n.method == r.method),
            None,
        )
        if later is not None:
            assert later.at - r.at >= float(retry_after) - 0.05, (r.path, later.at - r.at)
            checked += 1
    assert checked > 5


def _connect_without_faults(sim: Simulator, name: str) -> Connection:
    faults = sim.faults
    sim.set_faults(None)
    try:
        return _connect(sim, name)
    finally:
        sim.set_faults(faults)


def test_the_same_sync_queued_ten_times_runs_once(twins):
    sim, _ = twins
    connection = _connect(sim, "crowd")
    results: list[object] = []
    barrier = threading.Barrier(10)

    def request() -> None:
        barrier.wait()
        try:
            results.append(
                sync_run_request(connection=connection, kind="full", trigger="manual", enqueue=False)
            )
        except SyncAlreadyRunning as exc:
            results.append(exc)
        finally:
            db.close()

    threads = [threading.Thread(target=request) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    runs = [r for r in results if isinstance(r, SyncRun)]
    assert len(runs) == 1 and sum(isinstance(r, SyncAlreadyRunning) for r in results) == 9

    # Ten deliveries of the one run (broker redelivery, double dispatch): exactly one executes.
    sim.clear_requests()
    executed: list[object] = []
    barrier = threading.Barrier(10)

    def execute() -> None:
        barrier.wait()
        try:
            executed.append(sync_run_execute(run_id=runs[0].pk))
        finally:
            db.close()

    threads = [threading.Thread(target=execute) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in executed) == 1
    org_calls = [r for r in sim.requests if r.path.startswith("/api/organizations/")]
    assert len(org_calls) == 1, "the organization stream ran more than once"
    assert SyncRun.objects.get(pk=runs[0].pk).status == SyncRun.Status.SUCCEEDED


def test_malformed_records_are_counted_and_a_failed_page_is_never_half_committed(twins, monkeypatch):
    sim, reference_sim = twins
    connection = _connect(sim, "fragile")
    sim.set_faults(FaultConfig(malformed_rate=0.01, seed=9))
    from jumpcloud import sync as jc_sync

    # Every event page is written by _Batch.write (whichever bulk path it takes): crash after the
    # third page's rows are in, before its transaction commits.
    real_write = jc_sync._Batch.write
    calls = {"n": 0}

    def write_then_crash(self, *args, **kwargs):
        inserted = real_write(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 3:
            raise OperationalError("server closed the connection unexpectedly")
        return inserted

    monkeypatch.setattr(jc_sync._Batch, "write", write_then_crash)
    run = sync_run_request(connection=connection, kind="full", trigger="manual", enqueue=False)
    with pytest.raises(RetryLater):
        sync_run_execute(run_id=run.pk)
    assert SyncRun.objects.get(pk=run.pk).status == SyncRun.Status.QUEUED  # parked for a retry
    # Two pages committed, the third rolled back with its checkpoint (SSO events are read first).
    committed = UsageEvent.objects.filter(connection=connection).count()
    state = SyncCheckpoint.objects.get(connection=connection, stream="events_sso").state
    assert committed > 0 and state.get("search_after")
    # SSO events are listed newest first (and the checkpoint says so, for the resume): what was
    # committed lies at or after the cursor, the event the second page ended with.
    assert state.get("newest_first") is True
    oldest = UsageEvent.objects.filter(connection=connection).order_by("occurred_at").first()
    assert oldest.occurred_at >= datetime.fromtimestamp(state["search_after"][0] / 1000, UTC) - timedelta(
        seconds=1
    )

    monkeypatch.setattr(jc_sync._Batch, "write", real_write)
    SyncRun.objects.filter(pk=run.pk).update(heartbeat_at=None)  # the retry time has come
    resumed = sync_run_execute(run_id=run.pk)
    assert resumed.status == SyncRun.Status.SUCCEEDED, resumed.error_message
    skipped = sum(s.get("skipped", 0) for s in resumed.streams.values())
    assert skipped > 0, "malformed records were not counted"
    assert (
        UsageEvent.objects.filter(connection=connection).count()
        == UsageEvent.objects.filter(connection=connection).values("external_id").distinct().count()
    )
