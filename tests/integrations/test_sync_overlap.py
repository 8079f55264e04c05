"""What a full sync overlaps to save time, and that the overlap changes no result.

Against the simulator over real HTTP, on the test database, with SYNC_CONCURRENT_STREAMS on:
app assignments are read beside the users stream; users already stored as listed are not written
again; the last-used statements can run in two pieces; after a backfill the daily rollup runs
beside the next stream.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from django.db import OperationalError

from integrations.models import Application, AppUser, Connection, DailyUsage, SyncCheckpoint, SyncRun
from integrations.services.sync import RetryLater, SyncContext, sync_run_execute, sync_run_request
from jumpcloud.last_use import daily_usage, rollup_admin_last_login, rollup_last_used
from jumpcloud.parsing import parse_system_user
from jumpcloud.simulator.config import FaultConfig
from jumpcloud.sync import (
    DIRECTORY_APP_ID,
    _changed_users,
    _stored_user_states,
    directory_app,
)

pytestmark = [pytest.mark.django_db(transaction=True)]

ACTOR = {"_id": "f" * 24, "email": "ops@example.test"}


@pytest.fixture(autouse=True)
def _concurrent_streams(settings, sim):
    settings.SYNC_CONCURRENT_STREAMS = True
    sim.set_faults(None)
    yield
    sim.set_faults(None)


def run_sync(connection: Connection) -> SyncRun:
    run = sync_run_request(connection=connection, kind="full", trigger="manual", enqueue=False)
    return sync_run_execute(run_id=run.pk)


def _assignments(connection: Connection) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for app_ext, user_ext in AppUser.objects.filter(
        connection=connection, application__kind="sso", removed_at__isnull=True
    ).values_list("application__external_id", "external_id"):
        found.setdefault(app_ext, set()).add(user_ext)
    return found


def _expected_assignments(sim) -> dict[str, set[str]]:
    tenant = sim.tenant("primary")
    return {
        a["_id"]: set(tenant.app_user_ids(a["_id"])) for a in tenant.apps if tenant.app_user_ids(a["_id"])
    }


def test_assignments_are_read_while_the_users_stream_runs(connect, sim):
    connection = connect()
    # Slow user pages stand in for a big directory: the reader (a process of its own, which takes
    # a moment to start) must read while they are still being listed.
    sim.set_faults(FaultConfig(latency_ms=300, path_prefixes=("/api/systemusers",)))
    sim.clear_requests()
    run = run_sync(connection)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_message
    requests = sim.requests
    user_pages = [r.at for r in requests if r.path == "/api/systemusers"]
    association_reads = [r.at for r in requests if r.path.startswith("/api/v2/applications/")]
    assert len(user_pages) >= 3 and association_reads
    # The reader started as soon as the applications were stored, before the users were done.
    assert min(association_reads) < max(user_pages)
    assert _assignments(connection) == _expected_assignments(sim)


def test_an_error_met_while_reading_ahead_parks_the_run_and_the_retry_completes(connect, sim):
    connection = connect()
    # Every association read is throttled for an hour: the reader meets it first.
    sim.set_faults(
        FaultConfig(
            rate_429=1.0,
            retry_after_share=1.0,
            retry_after_seconds=3600,
            path_prefixes=("/api/v2/applications/",),
        )
    )
    run = sync_run_request(connection=connection, kind="full", trigger="manual", enqueue=False)
    with pytest.raises(RetryLater) as parked:
        sync_run_execute(run_id=run.pk)
    assert parked.value.countdown >= 60
    run.refresh_from_db()
    assert run.streams["users"]["status"] == "succeeded"
    assert run.streams["app_assignments"]["status"] == "pending"
    assert (
        "rate" in run.streams["app_assignments"]["error"].lower()
        or "wait" in run.streams["app_assignments"]["error"].lower()
    )
    assert not AppUser.objects.filter(connection=connection, application__kind="sso").exists()

    sim.set_faults(None)
    SyncRun.objects.filter(pk=run.pk).update(heartbeat_at=None)
    finished = sync_run_execute(run_id=run.pk)
    assert finished is not None and finished.status == SyncRun.Status.SUCCEEDED, (
        finished and finished.error_message
    )
    assert _assignments(connection) == _expected_assignments(sim)


def test_users_stored_as_listed_are_not_written_again_and_a_change_is(connect, sim):
    connection = connect()
    assert run_sync(connection).status == SyncRun.Status.SUCCEEDED
    app = directory_app(connection)
    tenant = sim.tenant("primary")
    listed = [parse_system_user(u) for u in tenant.users]
    stored = _stored_user_states(app)
    assert len(stored) == len(listed)
    assert _changed_users(listed, stored) == []

    target = tenant.users[3]
    tenant.update_user(
        target["_id"],
        {"firstname": "Renamed", "department": "Skunkworks"},
        actor=ACTOR,
        now_ms=int(datetime.now(UTC).timestamp() * 1000),
    )
    listed = [parse_system_user(u) for u in tenant.users]
    assert [u.id for u in _changed_users(listed, stored)] == [target["_id"]]

    second = run_sync(connection)
    assert second.streams["users"]["updated"] == 1 and second.streams["users"]["created"] == 0
    row = AppUser.objects.get(application=app, external_id=target["_id"])
    assert row.first_name == "Renamed" and row.extra.get("department") == "Skunkworks"


def test_sso_last_used_in_two_pieces_equals_one_statement(connect, sim):
    connection = connect()
    assert run_sync(connection).status == SyncRun.Status.SUCCEEDED
    sso = AppUser.objects.filter(connection=connection, application__kind="sso")
    expected = dict(sso.values_list("pk", "last_used_at"))
    assert sum(1 for v in expected.values() if v is not None) > 10
    sso.update(last_used_at=None)
    since = datetime.now(UTC) - timedelta(days=400)

    rollup_last_used(connection=connection, kind="sso", since=since, part=(0, 2))
    half = dict(sso.values_list("pk", "last_used_at"))
    apps = dict(sso.values_list("pk", "application_id"))
    for pk, value in half.items():
        assert value == (expected[pk] if apps[pk] % 2 == 0 else None), pk
    assert any(v is not None for v in half.values())

    rollup_last_used(connection=connection, kind="sso", since=since, part=(1, 2))
    assert dict(sso.values_list("pk", "last_used_at")) == expected
    assert Application.objects.filter(connection=connection, kind="sso").count() >= 2


def test_directory_last_used_in_two_pieces_equals_one_statement(connect, sim):
    connection = connect()
    assert run_sync(connection).status == SyncRun.Status.SUCCEEDED
    rows = AppUser.objects.filter(application=directory_app(connection))
    expected = dict(rows.values_list("pk", "last_used_at"))
    admins = dict(rows.values_list("pk", "admin_last_login_at"))
    assert sum(1 for v in expected.values() if v is not None) > 10
    assert any(v is not None for v in admins.values())
    rows.update(last_used_at=None, admin_last_login_at=None)
    since = datetime.now(UTC) - timedelta(days=400)

    # Each part moves its share of the people; the administrators' logins come after the parts.
    first = rollup_last_used(connection=connection, kind="directory", since=since, part=(0, 2))
    half = dict(rows.values_list("pk", "last_used_at"))
    assert (
        0 < first == sum(1 for v in half.values() if v is not None) < sum(1 for v in expected.values() if v)
    )
    assert all(v == expected[pk] for pk, v in half.items() if v is not None and admins[pk] is None)
    assert not any(rows.values_list("admin_last_login_at", flat=True))
    second = rollup_last_used(connection=connection, kind="directory", since=since, part=(1, 2))
    assert second > 0
    admin_moved = rollup_admin_last_login(connection=connection, since=since)
    assert admin_moved == sum(1 for v in admins.values() if v is not None)
    assert dict(rows.values_list("pk", "last_used_at")) == expected
    assert dict(rows.values_list("pk", "admin_last_login_at")) == admins


def test_new_assignment_rows_start_with_their_last_use_from_every_stored_event(connect, sim):
    connection = connect()
    assert run_sync(connection).status == SyncRun.Status.SUCCEEDED
    used = AppUser.objects.filter(connection=connection, application__kind="sso", last_used_at__isnull=False)
    app = used.values_list("application_id", flat=True).first()
    expected = dict(AppUser.objects.filter(application_id=app).values_list("external_id", "last_used_at"))
    assert sum(1 for v in expected.values() if v is not None) >= 1
    # The app's rows are lost locally: the next full sync writes them again, as new rows. The SSO
    # events window of that sync is only its last half hour; last use must come from all events.
    AppUser.objects.filter(application_id=app).delete()
    Application.objects.filter(pk=app).update(assignments_digest="")
    second = run_sync(connection)
    assert second.status == SyncRun.Status.SUCCEEDED, second.error_message
    assert second.streams["app_assignments"]["created"] == len(expected)
    assert (
        dict(AppUser.objects.filter(application_id=app).values_list("external_id", "last_used_at"))
        == expected
    )


@contextmanager
def _assignment_stream(connection: Connection, sim, progress) -> Iterator[SyncContext]:
    """A SyncContext for running the assignment stream alone, with `progress` standing for the
    concurrent streams beside it (the SSO events); the run row is removed afterwards."""
    from integrations.services.sync import _BESIDE
    from jumpcloud.client import JumpCloudClient

    run = SyncRun.objects.create(
        connection=connection,
        kind=SyncRun.Kind.FULL,
        trigger=SyncRun.Trigger.MANUAL,
        status=SyncRun.Status.RUNNING,
        streams={"app_assignments": {}},
        lease="x",
    )
    with JumpCloudClient(sim.keys["admin"], base_url=sim.base_url) as client:
        ctx = SyncContext(
            run=run,
            connection=connection,
            provider=None,
            client=client,  # type: ignore[arg-type]
            lease="x",
            stream_key="app_assignments",
        )
        ctx.shared[_BESIDE] = progress
        yield ctx
    run.delete()


def test_while_sso_events_are_still_coming_apps_wait_for_them_then_two_connections_write_them(
    connect, sim, monkeypatch
):
    """A row written before its person's latest SSO login is stored is rewritten later; so while
    the SSO events stream is still running beside, the assignment stream reads every app, waits
    for the SSO events, then writes the apps biggest first on two connections, each row with its
    final last use. Otherwise it writes them as it reads them, in primary-key order, on its own
    connection. Either way every app gets its rows."""
    from integrations.services.sync import _Progress
    from jumpcloud import sync as jc_sync
    from jumpcloud.last_use import SSO_FINAL_APPS, SsoLastUse

    connection = connect()
    assert run_sync(connection).status == SyncRun.Status.SUCCEEDED
    expected = _assignments(connection)
    sso_rows = AppUser.objects.filter(connection=connection, application__kind="sso")
    last_uses = {
        (a, e): t for a, e, t in sso_rows.values_list("application_id", "external_id", "last_used_at")
    }
    assert sum(1 for t in last_uses.values() if t is not None) > 0
    sso_apps = Application.objects.filter(connection=connection, kind="sso")
    prepared: list[tuple[int, int]] = []  # (people, app) in the order the stream prepared them
    written: list[tuple[int, str, float]] = []  # (app, thread, when) as they were stored
    prepare, store = jc_sync._AssignmentStream.prepare, jc_sync._AssignmentStream.store
    catch_up = SsoLastUse.catch_up
    caught_up: list[bool] = []

    def counting(self):
        caught_up.append(self.complete)
        return catch_up(self)

    monkeypatch.setattr(SsoLastUse, "catch_up", counting)

    def spy_prepare(self, app, answer):
        prepared.append((self.size(answer), app[0]))
        return prepare(self, app, answer)

    def spy_store(self, rows):
        written.append((rows.app_pk, threading.current_thread().name, time.monotonic()))
        return store(self, rows)

    monkeypatch.setattr(jc_sync._AssignmentStream, "prepare", spy_prepare)
    monkeypatch.setattr(jc_sync._AssignmentStream, "store", spy_store)

    def assignments_again(sso_running: bool) -> tuple[float, set[int]]:
        AppUser.objects.filter(connection=connection, application__kind="sso").delete()
        sso_apps.update(assignments_digest="")
        sso_done_at = [0.0]
        progress = _Progress({"events_sso"})
        timer = None
        if sso_running:

            def sso_done() -> None:
                sso_done_at[0] = time.monotonic()
                progress.done("events_sso")

            timer = threading.Timer(1.5, sso_done)
            timer.start()
        else:
            progress.done("events_sso")
        prepared.clear()
        written.clear()
        with _assignment_stream(connection, sim, progress) as ctx:
            try:
                jc_sync.sync_app_assignments(ctx)
            finally:
                if timer is not None:
                    timer.cancel()
            final = set(ctx.shared.get(SSO_FINAL_APPS, ()))
        return sso_done_at[0], final

    sso_done_at, final = assignments_again(sso_running=True)
    sizes = [size for size, _ in prepared]
    assert len(set(sizes)) > 1 and sizes == sorted(sizes, reverse=True)
    assert min(at for _, _, at in written) >= sso_done_at > 0
    assert len({thread for _, thread, _ in written} - {threading.current_thread().name}) == 2
    assert final == {pk for pk, _, _ in written} == set(sso_apps.values_list("pk", flat=True))
    assert _assignments(connection) == expected
    # The last-use table took in the stored events while the stream waited; the writers got them.
    assert caught_up and not any(caught_up)
    assert {
        (a, e): t for a, e, t in sso_rows.values_list("application_id", "external_id", "last_used_at")
    } == last_uses

    assignments_again(sso_running=False)
    pks = [pk for _, pk in prepared]
    assert pks == sorted(pks) and pks != [pk for _, pk in sorted(prepared)]
    assert [pk for pk, _, _ in written] == pks
    assert {thread for _, thread, _ in written} == {threading.current_thread().name}
    assert _assignments(connection) == expected


def test_a_writer_that_fails_fails_the_assignment_stream_and_the_other_writes_no_further_app(
    connect, sim, monkeypatch
):
    from integrations.services.sync import _Progress
    from jumpcloud import sync as jc_sync

    connection = connect()
    assert run_sync(connection).status == SyncRun.Status.SUCCEEDED
    AppUser.objects.filter(connection=connection, application__kind="sso").delete()
    Application.objects.filter(connection=connection, kind="sso").update(assignments_digest="")
    store = jc_sync._AssignmentStream.store
    calls: list[int] = []

    def failing(self, rows):
        calls.append(rows.app_pk)
        if len(calls) == 2:
            raise OperationalError("the database went away")
        return store(self, rows)

    monkeypatch.setattr(jc_sync._AssignmentStream, "store", failing)
    progress = _Progress({"events_sso"})
    with _assignment_stream(connection, sim, progress) as ctx:
        threading.Timer(0.2, progress.done, args=("events_sso",)).start()
        with pytest.raises(OperationalError, match="went away"):
            jc_sync.sync_app_assignments(ctx)
    apps = Application.objects.filter(connection=connection, kind="sso").count()
    # The failing app, the one the other writer was storing, and at most one it took up before it
    # saw the error: the stream stopped preparing, and the writers skip what was still queued.
    assert 2 <= len(calls) <= 3 < apps
    written = set(
        AppUser.objects.filter(connection=connection, application__kind="sso").values_list(
            "application_id", flat=True
        )
    )
    assert written <= set(calls) and len(written) <= len(calls) - 1


def _daily_rows(connection: Connection) -> list[tuple[object, ...]]:
    return sorted(
        DailyUsage.objects.filter(connection=connection).values_list(
            "application__external_id", "day", "successes", "failures", "active_users"
        )
    )


def _recomputed_daily_rows(connection: Connection) -> list[tuple[object, ...]]:
    DailyUsage.objects.filter(connection=connection).delete()
    for kind in ("sso", "directory"):
        daily_usage(connection=connection, kind=kind, since=datetime.now(UTC) - timedelta(days=400))
    return _daily_rows(connection)


def _assert_event_checkpoints_done(connection: Connection) -> None:
    for key in ("events_sso", "events_directory"):
        state = SyncCheckpoint.objects.get(connection=connection, stream=key).state
        assert "until" in state and "daily_from" not in state and "rollup_from" not in state, (key, state)


def _backfilled(connect) -> tuple[Connection, SyncRun]:
    """A first sync that succeeded and closed both event windows (rollups done)."""
    connection = connect()
    run = run_sync(connection)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_message
    _assert_event_checkpoints_done(connection)
    return connection, run


@pytest.fixture
def every_window_a_backfill(monkeypatch):
    from jumpcloud import sync as jc_sync

    monkeypatch.setattr(jc_sync, "BIG_BATCH", 1)
    return jc_sync


def test_after_a_backfill_the_daily_rollup_runs_beside_and_equals_the_inline_one(
    connect, sim, monkeypatch, every_window_a_backfill
):
    jc_sync = every_window_a_backfill
    started: list[str] = []
    real_init = jc_sync._DailyBeside.__init__

    def spy(self, ctx, service):
        started.append(service)
        real_init(self, ctx, service)

    monkeypatch.setattr(jc_sync._DailyBeside, "__init__", spy)
    connection, run = _backfilled(connect)
    assert sorted(started) == ["directory", "sso"]
    beside = _daily_rows(connection)
    sso_days = sum(1 for row in beside if row[0] != DIRECTORY_APP_ID)
    assert sso_days > 0 and len(beside) > sso_days
    # Counted on their streams, with the last uses the finish steps moved.
    assert run.streams["events_sso"]["updated"] >= sso_days
    assert run.streams["events_directory"]["updated"] >= len(beside) - sso_days
    assert beside == _recomputed_daily_rows(connection)


def test_a_daily_rollup_that_failed_beside_is_done_by_the_finish_step(
    connect, sim, monkeypatch, every_window_a_backfill
):
    jc_sync = every_window_a_backfill
    real_daily = jc_sync.daily_usage
    failed: list[str] = []

    def flaky(**kwargs):
        if "-daily-" in threading.current_thread().name:
            failed.append(kwargs["kind"])
            raise OperationalError("server closed the connection unexpectedly")
        return real_daily(**kwargs)

    monkeypatch.setattr(jc_sync, "daily_usage", flaky)
    connection, _ = _backfilled(connect)
    assert sorted(failed) == ["directory", "sso"]
    done = _daily_rows(connection)
    assert done and done == _recomputed_daily_rows(connection)
