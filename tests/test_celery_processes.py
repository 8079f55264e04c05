"""A real Celery worker and beat start against Redis and do their jobs."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.core.cache import cache
from django.urls import reverse

from integrations.health import HEARTBEAT_KEY
from tests.processes import CeleryProcess
from torii.celery import app as celery_app

pytestmark = [pytest.mark.integration]


def get_health(client):
    """/health/ is an async view; Playwright may have left an event loop running in this thread
    (browser tests run earlier in the session), so make the request from a fresh thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(client.get, reverse("health"), HTTP_ACCEPT="application/json").result()


@pytest.fixture
def redis_required():
    if not settings.REDIS_URL:
        pytest.fail("These tests need Redis (REDIS_URL); `make test` sets it when Redis is reachable.")


@pytest.mark.django_db(transaction=True)
def test_worker_runs_a_task_and_health_reports_it(redis_required, tmp_path, client, celery_not_eager):
    cache.delete(HEARTBEAT_KEY)
    worker = CeleryProcess("worker", log=tmp_path / "worker.log")
    try:
        worker.wait_for_log("ready.")
        celery_app.send_task("integrations.tasks.worker_heartbeat")
        deadline = time.monotonic() + 30
        while cache.get(HEARTBEAT_KEY) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert cache.get(HEARTBEAT_KEY) is not None, worker.log()[-3000:]
        response = get_health(client)
        body = response.json()
        assert response.status_code == 200, body
        assert body["status"] == "ok" and body["components"]["worker"] == "ok", body
    finally:
        worker.stop()


@pytest.mark.django_db(transaction=True)
def test_health_reports_a_missing_worker(redis_required, client):
    response = get_health(client)
    body = response.json()
    assert response.status_code == 503, body
    assert body["status"] == "degraded" and body["degraded"] == ["worker"], body
    assert body["components"]["database"] == "ok" and body["components"]["broker"] == "ok", body


def test_beat_starts_and_sends_the_schedule(redis_required, tmp_path):
    from tests.processes import child_env

    env = child_env(TORII_VAR_DIR=str(tmp_path / "var"))
    beat = CeleryProcess(
        "beat", "--schedule", str(tmp_path / "beat-schedule"), log=tmp_path / "beat.log", env=env
    )
    try:
        beat.wait_for_log("beat: Starting", timeout=60)
        beat.wait_for_log("Sending due task", timeout=90)
    finally:
        beat.stop()
