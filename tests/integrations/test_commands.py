"""Command-line connect and sync, as automation and the demo use them."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from integrations.models import Connection, SyncRun, SyncTask
from integrations.services.sync import (
    RetryLater,
    sync_dispatch_due,
    sync_recover_stale,
    sync_run_start,
    sync_task_execute,
)

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_connect_reads_the_key_from_the_environment_and_prints_the_id(allow_sim, sim, monkeypatch):
    monkeypatch.setenv("JUMPCLOUD_API_KEY", sim.keys["admin"])
    out = io.StringIO()
    call_command(
        "jumpcloud_connect",
        "--base-url",
        sim.base_url,
        "--name",
        "CLI",
        "--no-sync",
        stdout=out,
        stderr=io.StringIO(),
    )
    connection = Connection.objects.get(pk=int(out.getvalue().strip()))
    assert connection.name == "CLI" and connection.permission == "read_only"
    assert sim.keys["admin"] not in out.getvalue()


def test_connect_reads_the_key_from_a_file(allow_sim, sim, tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(sim.keys["admin"] + "\n")
    out = io.StringIO()
    call_command(
        "jumpcloud_connect",
        "--base-url",
        sim.base_url,
        "--api-key-file",
        str(key_file),
        "--permission",
        "read_write",
        "--no-sync",
        stdout=out,
        stderr=io.StringIO(),
    )
    assert Connection.objects.get(pk=int(out.getvalue())).permission == "read_write"


def test_connect_fails_clearly(allow_sim, sim, monkeypatch, tmp_path):
    monkeypatch.delenv("JUMPCLOUD_API_KEY", raising=False)
    with pytest.raises(CommandError, match="never taken from the command line"):
        call_command("jumpcloud_connect", "--base-url", sim.base_url)
    with pytest.raises(CommandError, match="Cannot read the API key file"):
        call_command(
            "jumpcloud_connect", "--base-url", sim.base_url, "--api-key-file", str(tmp_path / "missing")
        )
    monkeypatch.setenv("JUMPCLOUD_API_KEY", sim.keys["multi_tenant"])
    with pytest.raises(CommandError, match="organizations"):
        call_command("jumpcloud_connect", "--base-url", sim.base_url)
    with pytest.raises(CommandError, match="unrecognized arguments"):  # there is no --api-key option at all
        call_command("jumpcloud_connect", "--api-key", "abc")
    assert Connection.objects.count() == 0


def test_sync_wait_runs_in_the_foreground_and_prints_a_summary(connect, sim):
    connection = connect()
    out = io.StringIO()
    call_command(
        "integrations_sync", "--connection", str(connection.pk), "--wait", stdout=out, stderr=io.StringIO()
    )
    text = out.getvalue()
    assert "Succeeded" in text and "Users" in text and "Usage: SSO events" in text
    assert SyncRun.objects.get(connection=connection).status == SyncRun.Status.SUCCEEDED


def test_sync_without_wait_queues_and_refuses_a_second_one(connect, sim, celery_not_eager):
    connection = connect()
    out = io.StringIO()
    call_command("integrations_sync", "--connection", str(connection.pk), stdout=out)
    assert "queued sync run" in out.getvalue()
    with pytest.raises(CommandError, match="did not succeed"):
        call_command(
            "integrations_sync",
            "--connection",
            str(connection.pk),
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )
    SyncRun.objects.update(status=SyncRun.Status.CANCELLED)


def test_sync_wait_runs_a_queued_sync_that_no_worker_started(connect, sim, celery_not_eager):
    """As the README goes with no worker running: connecting queues the first sync, and
    `integrations_sync --wait` runs that very run here instead of refusing it."""
    connection = connect(start_sync=True)  # its start message waits in Redis for a worker
    queued = connection.sync_runs.get()
    assert queued.status == SyncRun.Status.QUEUED
    out = io.StringIO()
    call_command(
        "integrations_sync", "--connection", str(connection.pk), "--wait", stdout=out, stderr=io.StringIO()
    )
    queued.refresh_from_db()
    assert queued.status == SyncRun.Status.SUCCEEDED, queued.error_message
    assert connection.sync_runs.count() == 1
    assert "Succeeded" in out.getvalue()


def test_beat_dispatches_due_syncs_by_kind(connect, sim, celery_not_eager):
    first = connect(name="due full")
    second = connect("multi_tenant", org_id=sim.org_ids["secondary"], name="due events")
    now = timezone.now()
    Connection.objects.filter(pk=second.pk).update(
        next_full_sync_at=now + timedelta(hours=5), next_events_sync_at=now - timedelta(minutes=1)
    )
    third = connect("no_di", name="not due")
    Connection.objects.filter(pk=third.pk).update(
        next_full_sync_at=now + timedelta(hours=5), next_events_sync_at=now + timedelta(minutes=30)
    )
    queued = sync_dispatch_due(now=now)
    runs = {r.connection_id: r for r in SyncRun.objects.filter(pk__in=queued)}
    assert set(runs) == {first.pk, second.pk}
    assert runs[first.pk].kind == "full" and runs[second.pk].kind == "events"
    assert sync_dispatch_due(now=now) == []  # already queued: no second run
    SyncRun.objects.update(status=SyncRun.Status.CANCELLED)


def _running_run(connection: Connection, heartbeat_at: datetime, **fields: object) -> SyncRun:
    """A full run a worker was running, last heard of at `heartbeat_at`."""
    return SyncRun.objects.create(
        connection=connection,
        kind="full",
        trigger="manual",
        status=SyncRun.Status.RUNNING,
        heartbeat_at=heartbeat_at,
        **{"started_at": timezone.now(), **fields},
    )


def test_a_stale_run_is_resumed_from_its_checkpoints(connect, sim):
    connection = connect()
    run = _running_run(connection, timezone.now() - timedelta(hours=1))
    # Its worker died after the users stream: that task is done, the others never ran.
    SyncTask.objects.create(run=run, stream="users", status="succeeded", counters={"fetched": 1})
    assert sync_recover_stale() == [run.pk]  # Celery is eager here: the recovered run executes now
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED and run.attempts == 1
    assert run.streams["users"]["fetched"] == 1, "a finished stream is not run again on resume"
    assert run.streams["applications"]["status"] == "succeeded"


def test_a_recovered_run_resumes_though_a_task_left_in_the_queue_touched_it_since(connect, sim):
    """The recovery found the run stale; before its start message ran, a message of the lost
    canvas (left in the queue by the dead worker) ran its one task and touched the run. The start
    still resumes the run, or the rest of that canvas, lost with the worker, would never run."""
    connection = connect()
    run = _running_run(connection, timezone.now() - timedelta(hours=1), attempts=3)
    SyncTask.objects.create(run=run, stream="users", status="succeeded", counters={"fetched": 1})
    SyncRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now())  # the leftover task
    assert sync_run_start(run_id=run.pk) is None, "by its heartbeat alone the run looks alive"
    assert sync_run_start(run_id=run.pk, recovered_attempt=2) is None, "another attempt's recovery"
    sync_run_start(run_id=run.pk, recovered_attempt=3)  # Celery is eager here: the run executes now
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED and run.attempts == 4
    assert run.streams["users"]["fetched"] == 1
    assert run.streams["applications"]["status"] == "succeeded"


def test_tasks_waiting_for_a_task_whose_worker_died_do_not_keep_the_run_alive(connect, sim):
    """Administrators wait for users, whose worker died mid-way. Their waiting must not pass for
    the run's heartbeat, or the run would never look stale and users would never be resumed."""
    connection = connect()
    long_ago = timezone.now() - timedelta(hours=1)
    run = _running_run(connection, long_ago, started_at=long_ago, attempts=1)
    for stream in ("organization", "applications"):
        SyncTask.objects.create(run=run, stream=stream, status="succeeded")
    SyncTask.objects.create(run=run, stream="users", status="running", lease="dead", heartbeat_at=long_ago)
    SyncTask.objects.create(run=run, stream="administrators", status="pending")
    with pytest.raises(RetryLater):
        sync_task_execute(run_id=run.pk, stream_key="administrators")
    parked = SyncTask.objects.get(run=run, stream="administrators")
    assert parked.status == SyncTask.Status.PENDING and parked.error.startswith("Waiting for")
    run.refresh_from_db()
    assert run.heartbeat_at == long_ago
    assert sync_recover_stale() == [run.pk]  # Celery is eager here: the recovered run executes now
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_message
    assert run.streams["users"]["status"] == run.streams["administrators"]["status"] == "succeeded"
