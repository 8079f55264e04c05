"""Health check for the Celery worker on the embedded filesystem broker (no control channel)."""

from __future__ import annotations

import dataclasses
import time

from django.core.cache import cache
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable

HEARTBEAT_KEY = "torii:worker-heartbeat"
HEARTBEAT_MAX_AGE = 180


def record_worker_heartbeat() -> None:
    cache.set(HEARTBEAT_KEY, time.time(), timeout=HEARTBEAT_MAX_AGE * 10)


@dataclasses.dataclass
class WorkerHeartbeat(HealthCheck):
    """The worker runs a heartbeat task every minute; older than three minutes means no worker."""

    def run(self) -> None:
        last = cache.get(HEARTBEAT_KEY)
        if last is None:
            raise ServiceUnavailable("No Celery worker heartbeat yet")
        if time.time() - float(last) > HEARTBEAT_MAX_AGE:
            raise ServiceUnavailable(f"Last Celery worker heartbeat {int(time.time() - float(last))} s ago")
