"""Celery tasks: each takes ids, calls one service. Retries and time limits live here."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from integrations.health import record_worker_heartbeat
from integrations.services import sync as sync_services

logger = logging.getLogger(__name__)


@shared_task(bind=True, name="integrations.tasks.run_sync", acks_late=True, max_retries=8, ignore_result=True)
def run_sync(self, run_id: int) -> None:  # type: ignore[no-untyped-def]
    """Execute (or resume) one SyncRun. Transient upstream failures retry from the checkpoints."""
    try:
        sync_services.sync_run_execute(run_id=run_id)
    except sync_services.RetryLater as exc:
        logger.warning("sync run %s: retrying in %.0f s", run_id, exc.countdown)
        raise self.retry(countdown=exc.countdown, exc=None) from None
    except SoftTimeLimitExceeded:
        # The run keeps its checkpoints; its heartbeat goes stale and recovery resumes it.
        logger.warning("sync run %s hit the soft time limit; it will be resumed", run_id)


@shared_task(name="integrations.tasks.dispatch_due_syncs", ignore_result=True)
def dispatch_due_syncs() -> None:
    sync_services.sync_dispatch_due()


@shared_task(name="integrations.tasks.recover_stale_syncs", ignore_result=True)
def recover_stale_syncs() -> None:
    sync_services.sync_recover_stale()


@shared_task(name="integrations.tasks.prune_sync_history", ignore_result=True)
def prune_sync_history() -> None:
    sync_services.sync_prune_history()


@shared_task(name="integrations.tasks.close_abandoned_actions", ignore_result=True)
def close_abandoned_actions() -> None:
    from integrations.services.actions import action_runs_close_abandoned

    action_runs_close_abandoned()


@shared_task(name="integrations.tasks.worker_heartbeat", ignore_result=True)
def worker_heartbeat() -> None:
    record_worker_heartbeat()
