"""/health/: which checks run (only those that work offline) and how the answer reads.

Database and cache always; with Redis configured, the broker (Redis ping) and the Celery workers
(control ping). On the embedded filesystem broker there is no control channel, so the worker check
reads the heartbeat the worker writes instead.

The answer is JSON naming each component: 200 with "status": "ok" when all pass, else 503 with
"status": "degraded" and the failing components listed under "degraded" (a missing worker is a
degraded torii, not a server error).
"""

from __future__ import annotations

import datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from health_check.views import HealthCheckView

# Component names by check class, as the answer shows them.
COMPONENTS = {
    "Database": "database",
    "Cache": "cache",
    "Redis": "broker",
    "Ping": "worker",
    "WorkerHeartbeat": "worker",
}


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


class ToriiHealthView(HealthCheckView):
    async def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        import asyncio

        with self.get_executor() as executor:
            results = await asyncio.gather(*(check.get_result(executor) for check in self.get_checks()))
        components: dict[str, str] = {}
        degraded: list[str] = []
        for result in results:
            name = COMPONENTS.get(type(result.check).__name__, type(result.check).__name__.lower())
            if result.error:
                components[name] = str(result.error)[:300]
                if name not in degraded:
                    degraded.append(name)
            else:
                components.setdefault(name, "ok")
        body = {"status": "degraded" if degraded else "ok", "degraded": degraded, "components": components}
        return JsonResponse(body, status=503 if degraded else 200)
