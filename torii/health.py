"""Which health checks /health/ runs: only those that work offline.

Database and cache always; with Redis configured, the broker (Redis ping) and the Celery workers
(control ping). On the embedded filesystem broker there is no control channel, so the worker check
reads the heartbeat the worker writes instead.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.conf import settings


def health_checks() -> list[Any]:
    checks: list[Any] = ["health_check.checks.Database", "health_check.checks.Cache"]
    if settings.REDIS_URL:
        checks.append(("health_check.contrib.redis.Redis", {"client_factory": _redis_client}))
        checks.append(("health_check.contrib.celery.Ping", {"timeout": datetime.timedelta(seconds=2)}))
    else:
        checks.append("integrations.health.WorkerHeartbeat")
    return checks


def _redis_client() -> Any:
    from redis.asyncio import Redis

    return Redis.from_url(settings.REDIS_URL)
