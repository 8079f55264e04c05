"""/health/ names what is down: 503 with "status": "degraded" and the failing components, never a
500; 200 with "status": "ok" when everything answers. (With Redis and a real worker:
tests/test_celery_processes.py.)"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import async_to_sync
from django.core.cache import cache
from django.test import RequestFactory

from integrations.health import HEARTBEAT_KEY, HEARTBEAT_MAX_AGE
from torii.health import ToriiHealthView

# The embedded-broker set (no Redis): the worker is known by its heartbeat.
CHECKS = ["health_check.checks.Database", "health_check.checks.Cache", "integrations.health.WorkerHeartbeat"]


def health():
    view = ToriiHealthView.as_view(checks=CHECKS)
    request = RequestFactory().get("/health/", HTTP_ACCEPT="text/html")
    # A fresh thread: the browser tests may have left an event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: async_to_sync(view)(request)).result()


@pytest.mark.django_db(transaction=True)
def test_a_missing_worker_heartbeat_is_a_degraded_503_naming_the_worker():
    import json

    cache.delete(HEARTBEAT_KEY)
    response = health()
    body = json.loads(response.content)
    assert response.status_code == 503
    assert body["status"] == "degraded" and body["degraded"] == ["worker"]
    assert body["components"]["database"] == "ok" and body["components"]["cache"] == "ok"
    assert "heartbeat" in body["components"]["worker"].lower()


@pytest.mark.django_db(transaction=True)
def test_a_stale_heartbeat_is_degraded_and_a_fresh_one_is_ok():
    import json

    cache.set(HEARTBEAT_KEY, time.time() - HEARTBEAT_MAX_AGE - 60)
    stale = health()
    assert stale.status_code == 503 and json.loads(stale.content)["degraded"] == ["worker"]
    cache.set(HEARTBEAT_KEY, time.time())
    fresh = health()
    assert fresh.status_code == 200
    assert json.loads(fresh.content) == {
        "status": "ok",
        "degraded": [],
        "components": {"database": "ok", "cache": "ok", "worker": "ok"},
    }
