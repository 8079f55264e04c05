"""Property 1, through a real Celery worker on Redis: task messages, retries, results and the
worker's own log never carry the API key (tasks take ids only)."""

from __future__ import annotations

import time

import pytest
from django.conf import settings

from integrations import crypto
from integrations.models import Connection, RequestBudget, SyncRun, SyncTask
from integrations.services.connections import connection_create
from integrations.services.sync import sync_run_request
from jumpcloud.simulator.api import error_response
from tests.processes import CeleryProcess, child_env
from tests.security.support import SecretScan, redis_dump

pytestmark = [pytest.mark.integration]


def wait_for(predicate, timeout: float, what: str, worker: CeleryProcess) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout}s:\n{worker.log()[-3000:]}")


def run_status(run_id: int) -> str:
    return SyncRun.objects.get(pk=run_id).status


@pytest.mark.django_db(transaction=True)
def test_celery_messages_retries_and_worker_logs_never_carry_the_key(
    allow_sim, canary, celery_not_eager, tmp_path, monkeypatch
):
    if not settings.REDIS_URL:
        pytest.fail("This test needs Redis (REDIS_URL).")
    import redis

    redis.Redis.from_url(settings.REDIS_URL).flushdb()  # this suite's own database (REDIS_URL)
    sim = allow_sim
    scan = SecretScan(canary)
    worker = CeleryProcess("worker", log=tmp_path / "worker.log", env=child_env(LOG_LEVEL="DEBUG"))
    try:
        worker.wait_for_log("ready.")
        # Connect: the first sync is queued on commit and runs in the worker.
        connection = connection_create(
            provider_key="jumpcloud",
            name="Acme",
            credentials={"api_key": canary},
            permission="read_write",
            base_url=sim.base_url,
            start_sync=True,
        )
        first = connection.sync_runs.get()
        wait_for(lambda: run_status(first.pk) == SyncRun.Status.SUCCEEDED, 60, "the first sync", worker)
        for key, value in redis_dump():
            scan.check(f"redis {key} (after a sync)", key + value)

        # JumpCloud asks for a long wait: the task is re-queued with a countdown and parked in Redis.
        def rate_limited(req, malform=None):
            return error_response(429, "Too Many Requests", headers={"Retry-After": "600"})

        monkeypatch.setattr(sim._api, "handle", rate_limited)
        parked = sync_run_request(connection=connection, kind="events", trigger="manual")
        wait_for(
            lambda: (
                SyncTask.objects.filter(run=parked, error__icontains="retrying in").exists()
                or "Retry in" in worker.log()
            ),
            60,
            "the retry",
            worker,
        )
        # The retry message is published after the run is parked: wait until it is in Redis.
        wait_for(
            lambda: any(f"[{parked.pk}," in value.replace(" ", "") for _, value in redis_dump()),
            60,
            "the parked retry message (its args: the run id, stream and part) in Redis",
            worker,
        )
        dumped = redis_dump()
        for key, value in dumped:
            scan.check(f"redis {key} (retry parked)", key + value)
        SyncRun.objects.filter(pk=parked.pk).update(status=SyncRun.Status.CANCELLED)
        RequestBudget.objects.all().delete()  # the 600 s JumpCloud asked every request to wait are over

        # An upstream that echoes the key in its 401, then a revoked stored key.
        def echo_key(req, malform=None):
            return error_response(401, f"Unauthorized: unknown key {req.header('x-api-key')}")

        monkeypatch.setattr(sim._api, "handle", echo_key)
        echoed = sync_run_request(connection=connection, kind="full", trigger="manual")
        wait_for(lambda: run_status(echoed.pk) == SyncRun.Status.FAILED, 60, "the echoed-key failure", worker)
        monkeypatch.undo()
        settings.JUMPCLOUD_ALLOWED_BASE_URLS = [sim.base_url]
        Connection.objects.filter(pk=connection.pk).update(
            credentials=crypto.encrypt_json({"api_key": "f" * 40}), status=Connection.Status.CONNECTED
        )
        revoked = sync_run_request(connection=connection, kind="full", trigger="manual")
        wait_for(lambda: run_status(revoked.pk) == SyncRun.Status.FAILED, 60, "the 401 failure", worker)
        for key, value in redis_dump():
            scan.check(f"redis {key} (after failures)", key + value)
    finally:
        worker.stop()
    log = worker.log()
    assert "run_stream" in log and "succeeded" in log.lower(), log[-3000:]
    scan.check("worker log", log)
    for run in SyncRun.objects.all():
        scan.check(f"sync run {run.pk}", f"{run.error_message} {run.streams}")
    scan.assert_clean(minimum_places=8)
