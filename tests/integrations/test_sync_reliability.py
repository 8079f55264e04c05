"""Reliability of syncs on PostgreSQL and Redis with real Celery workers: killed workers, two
workers sharing a run, rate limits, duplicate deliveries, atomic pages.

Each test compares against a clean sync of an identical tenant: a second simulator with the same
seed and the same (fixed, past) anchor serves byte-identical data on another origin.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.db import connection as db

from integrations.models import (
    Application,
    AppUser,
    Connection,
    DailyUsage,
    LastUse,
    SyncCheckpoint,
    SyncRun,
    SyncTask,
    UsageEvent,
)
from integrations.services.connections import connection_create
from integrations.services.sync import (
    RetryLater,
    SyncAlreadyRunning,
    sync_recover_stale,
    sync_run_execute,
    sync_run_request,
    sync_task_execute,
)
from jumpcloud.simulator import FaultConfig, Simulator, SimulatorConfig
from jumpcloud.streams import events
from tests.processes import CeleryProcess, child_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

CONFIG = SimulatorConfig(seed=11, users=1500, apps=20, days=20, events=60_000, admins=12, groups=16)


@pytest.fixture(scope="module")
def twin_sims():
    """Two simulators serving the same tenant: one to abuse, one for the clean reference sync.
    The anchor (where the history ends) is fixed and in the past, so both serve the same events."""
    from datetime import UTC, datetime

    anchor = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
    config = SimulatorConfig(**{**CONFIG.__dict__, "anchor": anchor})
    a = Simulator(config).start(host="127.0.0.1", port=0)
    b = Simulator(config).start(host="127.0.0.1", port=0)
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
    return a, b


def _connect(sim: Simulator, name: str) -> Connection:
    faults = sim.faults
    sim.set_faults(None)
    try:
        return connection_create(
            provider_key="jumpcloud",
            name=name,
            credentials={"api_key": sim.keys["admin"]},
            permission="read_only",
            base_url=sim.base_url,
            start_sync=False,
        )
    finally:
        sim.set_faults(faults)


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
            "external_id", "kind", "label", "removed_at", "last_used_at"
        )
    )
    event_ids = list(UsageEvent.objects.filter(connection=connection).values_list("external_id", flat=True))
    daily = sorted(
        DailyUsage.objects.filter(connection=connection).values_list(
            "application__external_id", "day", "successes", "failures", "active_users"
        )
    )
    last_uses = sorted(
        LastUse.objects.filter(connection=connection).values_list(
            "application__external_id", "person_external_id", "last_used_at"
        )
    )
    return {
        "users": users,
        "apps": apps,
        "events": sorted(event_ids),
        "event_rows": len(event_ids),
        "daily": daily,
        "last_uses": last_uses,
    }


def _clean_reference(sim: Simulator) -> dict[str, object]:
    reference = _connect(sim, "reference")
    run = sync_run_request(connection=reference, kind="full", trigger="manual", enqueue=False)
    assert sync_run_execute(run_id=run.pk).status == SyncRun.Status.SUCCEEDED
    return _snapshot(reference)


def _assert_same(actual: dict[str, object], expected: dict[str, object]) -> None:
    assert actual["event_rows"] == len(set(actual["events"])), "duplicate event rows"
    missing = set(expected["events"]) - set(actual["events"])
    extra = set(actual["events"]) - set(expected["events"])
    assert not missing and not extra, f"{len(missing)} missing, {len(extra)} unexpected events"
    for key in ("apps", "users", "daily", "last_uses"):
        assert actual[key] == expected[key], key


def _wait_run(run_id: int, timeout: float, workers: list[CeleryProcess] | None = None) -> SyncRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = SyncRun.objects.get(pk=run_id)
        if not run.is_active:
            return run
        time.sleep(0.3)
    logs = "\n".join(w.log()[-3000:] for w in workers or [])
    run = SyncRun.objects.get(pk=run_id)
    tasks = SyncTask.objects.filter(run_id=run_id).order_by("pk")
    rows = "\n".join(
        str(t)
        for t in tasks.values_list("stream", "part", "status", "attempts", "lease", "heartbeat_at", "worker")
    )
    raise AssertionError(
        f"sync run {run_id} still {run.status} after {timeout}s (attempt {run.attempts}, lease "
        f"{run.lease!r}, heartbeat {run.heartbeat_at})\n{rows}\n{logs}"
    )


def _no_task_left_running(run: SyncRun) -> None:
    open_tasks = SyncTask.objects.filter(run=run, status__in=["pending", "running"])
    assert not open_tasks.exists(), list(open_tasks.values_list("stream", "part", "status"))
    assert all(s["status"] not in ("pending", "running") for s in run.streams.values()), run.streams


def _progress(run_id: int) -> int:
    """How far a run has got, in steps of about one page: rows stored (events come 2,000 to a
    page, people and assignments about 100) plus tasks that ended. A task's counters reach the
    database at most once a second, dozens of pages at once; the rows grow page by page."""
    run = SyncRun.objects.only("connection_id").get(pk=run_id)
    events = UsageEvent.objects.filter(connection_id=run.connection_id).count()
    people = AppUser.objects.filter(connection_id=run.connection_id).count()
    ended = SyncTask.objects.filter(run_id=run_id, status__in=SyncTask.DONE).count()
    return events // 2000 + people // 100 + ended


def _wait_progress(run_id: int, target: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while _progress(run_id) < target and time.monotonic() < deadline:
        if not SyncRun.objects.get(pk=run_id).is_active:
            return
        time.sleep(0.02)


def test_sigkill_at_random_points_then_resume_equals_a_clean_sync(twins, tmp_path, celery_not_eager):
    victim_sim, reference_sim = twins
    expected = _clean_reference(reference_sim)
    victim_sim.set_faults(FaultConfig(latency_ms=25, seed=5))  # long enough to be killed mid-way
    connection = _connect(victim_sim, "victim")
    env = child_env(JUMPCLOUD_EVENT_PAGE_SIZE="2000")
    rng = random.Random(2026)
    run = None
    kills = 0
    workers: list[CeleryProcess] = []
    for i in range(10):
        worker = CeleryProcess("worker", log=tmp_path / f"worker{i}.log", env=env, concurrency=2)
        workers.append(worker)
        worker.wait_for_log("ready.")
        if run is None:
            run = sync_run_request(connection=connection, kind="full", trigger="manual")
        else:
            sync_recover_stale(stale_after=timedelta(0))
        # A random point of the sync's own progress, not of the clock: one or two more pages
        # stored or tasks ended, so every kill lands mid-sync however busy the machine is.
        _wait_progress(run.pk, _progress(run.pk) + rng.randint(1, 2))
        state = SyncRun.objects.get(pk=run.pk)
        worker.kill()
        if not state.is_active:
            break
        kills += 1
    final = CeleryProcess("worker", log=tmp_path / "final.log", env=env, concurrency=2)
    workers.append(final)
    try:
        final.wait_for_log("ready.")
        sync_recover_stale(stale_after=timedelta(0))
        done = _wait_run(run.pk, 240, workers)
    finally:
        final.stop()
    assert kills >= 8, f"only {kills} kills landed mid-sync; the sync is too short for this test"
    assert done.status == SyncRun.Status.SUCCEEDED, done.error_message
    # The run was resumed, and tasks whose worker died were taken up again (from checkpoints).
    assert done.attempts > 1
    assert SyncTask.objects.filter(run=run, attempts__gt=1).exists()
    _no_task_left_running(done)
    _assert_same(_snapshot(connection), expected)


def test_two_workers_share_a_run_and_one_dying_leaves_the_other_to_finish(twins, tmp_path, celery_not_eager):
    """Two workers with different node names (as two machines would be) both run tasks of one
    run; the first is SIGKILLed while it runs one, and the second finishes with the same tables."""
    sim, reference_sim = twins
    expected = _clean_reference(reference_sim)
    sim.set_faults(FaultConfig(latency_ms=20, seed=6))
    connection = _connect(sim, "shared")
    env = child_env(JUMPCLOUD_EVENT_PAGE_SIZE="2000")
    first = CeleryProcess("worker", log=tmp_path / "first.log", env=env, name="machine-a")
    second = CeleryProcess("worker", log=tmp_path / "second.log", env=env, name="machine-b")
    workers = [first, second]
    try:
        first.wait_for_log("ready.")
        second.wait_for_log("ready.")
        run = sync_run_request(connection=connection, kind="full", trigger="manual")
        tasks = SyncTask.objects.filter(run=run)
        deadline = time.monotonic() + 120
        # Both machines take tasks of the run; then the first dies in the middle of one. It is
        # frozen first, so that the task it runs cannot end between the look and the kill (a
        # statement it sent just before lands meanwhile).
        killed_in: list[tuple[str, str]] = []
        while time.monotonic() < deadline:
            seen = set(tasks.exclude(worker="").values_list("worker", flat=True))
            if second.name in seen and tasks.filter(worker=first.name, status="running").exists():
                first.pause(True)
                time.sleep(0.3)
                killed_in = list(
                    tasks.filter(worker=first.name, status="running").values_list("stream", "part")
                )
                if killed_in:
                    break
                first.pause(False)
            time.sleep(0.05)
        else:
            raise AssertionError(f"the two workers did not both run tasks: {seen}\n{first.log()[-2000:]}")
        first.kill()
        # Beat's recovery, with nothing left of the first machine: its tasks go to the second.
        deadline = time.monotonic() + 240
        while SyncRun.objects.get(pk=run.pk).is_active and time.monotonic() < deadline:
            sync_recover_stale(stale_after=timedelta(seconds=3))
            time.sleep(1)
        done = _wait_run(run.pk, 5, workers)
    finally:
        second.stop()
        first.stop()
    assert done.status == SyncRun.Status.SUCCEEDED, done.error_message
    for stream, part in killed_in:
        assert tasks.get(stream=stream, part=part).worker == second.name, (stream, part)
    _no_task_left_running(done)
    _assert_same(_snapshot(connection), expected)


def test_rate_limits_and_unavailability_do_not_change_the_result(twins, tmp_path, celery_not_eager):
    """30 % of requests answered 429 (half with Retry-After) and 5 % 503, with two workers: the same
    tables as a clean sync, and no request repeated before the Retry-After JumpCloud asked for."""
    sim, reference_sim = twins
    expected = _clean_reference(reference_sim)
    sim.set_faults(
        FaultConfig(rate_429=0.3, retry_after_share=0.5, retry_after_seconds=1, rate_503=0.05, seed=3)
    )
    connection = _connect(sim, "throttled")
    sim.clear_requests()
    env = child_env(JUMPCLOUD_EVENT_PAGE_SIZE="2000")
    workers = [
        CeleryProcess("worker", log=tmp_path / f"w{i}.log", env=env, name=f"throttled-{i}") for i in range(2)
    ]
    try:
        for worker in workers:
            worker.wait_for_log("ready.")
        run = sync_run_request(connection=connection, kind="full", trigger="manual")
        done = _wait_run(run.pk, 300, workers)
    finally:
        for worker in workers:
            worker.stop()
    assert done.status == SyncRun.Status.SUCCEEDED, done.error_message
    _assert_same(_snapshot(connection), expected)
    records = sim.requests
    assert sum(r.status == 429 for r in records) > 20
    # Never earlier than Retry-After: the refused request was not sent again before that time was up.
    checked = 0
    for i, r in enumerate(records):
        if r.status != 429 or not r.retry_after:
            continue
        same = (r.method, r.path, r.query, r.json_body)
        later = next((n for n in records[i + 1 :] if (n.method, n.path, n.query, n.json_body) == same), None)
        if later is not None:
            assert later.at - r.at >= float(r.retry_after) - 0.05, (r.path, later.at - r.at)
            checked += 1
    assert checked > 5


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

    # Ten deliveries of the one run (broker redelivery, double dispatch): exactly one executes it,
    # and each stream runs once.
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


def test_ten_deliveries_of_one_task_run_it_once(twins):
    sim, _ = twins
    connection = _connect(sim, "duplicates")
    run = sync_run_request(connection=connection, kind="full", trigger="manual", enqueue=False)
    from integrations.services.sync import sync_run_start

    assert sync_run_start(run_id=run.pk, dispatch=False) is not None
    sim.clear_requests()
    barrier = threading.Barrier(10)

    def deliver() -> None:
        barrier.wait()
        try:
            sync_task_execute(run_id=run.pk, stream_key="organization", dispatch=False)
        finally:
            db.close()

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len([r for r in sim.requests if r.path.startswith("/api/organizations/")]) == 1
    task = SyncTask.objects.get(run=run, stream="organization")
    assert task.status == SyncTask.Status.SUCCEEDED and task.attempts == 1


def test_malformed_records_are_counted_and_a_failed_page_is_never_half_committed(twins, monkeypatch):
    sim, _ = twins
    connection = _connect(sim, "fragile")
    sim.set_faults(FaultConfig(malformed_rate=0.01, seed=9))
    # Crash after the third event page's rows are in, before its transaction commits.
    real_write = events._write_page
    calls = {"n": 0}

    def write_then_crash(*args, **kwargs):
        inserted = real_write(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 3:
            raise OperationalError("server closed the connection unexpectedly")
        return inserted

    monkeypatch.setattr(events, "_write_page", write_then_crash)
    run = sync_run_request(connection=connection, kind="events", trigger="manual", enqueue=False)
    with pytest.raises(RetryLater):
        sync_run_execute(run_id=run.pk)
    # Two pages committed, each with the cursor past it; the third rolled back with its cursor.
    crashed = SyncTask.objects.get(run=run, status="pending", not_before__isnull=False)
    state = SyncCheckpoint.objects.get(connection=connection, stream=f"{crashed.stream}@{crashed.part}").state
    assert state.get("search_after") and not state.get("done")
    assert crashed.counters["pages"] == 2
    assert UsageEvent.objects.filter(connection=connection).count() == crashed.counters["created"] > 0

    monkeypatch.setattr(events, "_write_page", real_write)
    resumed = sync_run_execute(run_id=run.pk)
    assert resumed.status == SyncRun.Status.SUCCEEDED, resumed.error_message
    assert sum(s.get("skipped", 0) for s in resumed.streams.values()) > 0, (
        "malformed records were not counted"
    )
    assert (
        UsageEvent.objects.filter(connection=connection).count()
        == UsageEvent.objects.filter(connection=connection).values("external_id").distinct().count()
    )
    _no_task_left_running(resumed)
