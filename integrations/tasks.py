"""Celery tasks: each takes ids, calls one service. Retries and time limits live here."""

from __future__ import annotations

from celery import shared_task

from integrations.health import record_worker_heartbeat


@shared_task(name="integrations.tasks.worker_heartbeat", ignore_result=True)
def worker_heartbeat() -> None:
    record_worker_heartbeat()
