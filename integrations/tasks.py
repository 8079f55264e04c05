"""Celery tasks: each takes ids, calls one service. Retries and time limits live here.

A sync run is `start_sync` → the run's canvas of `run_stream` tasks → `finish_sync`
(integrations.services.sync, docs/sync.md).
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from integrations.health import record_worker_heartbeat
from integrations.services import read_models
from integrations.services import sync as sync_services
from integrations.services.actions import action_runs_close_abandoned
from integrations.services.partitions import usage_partitions_maintain
from integrations.services.purge import PURGE_TASK, connection_purge, connection_purges_resume
from integrations.services.sync.common import send_task

logger = logging.getLogger(__name__)


@shared_task(name="integrations.tasks.start_sync", acks_late=True, ignore_result=True)
def start_sync(run_id: int, recovered_attempt: int | None = None) -> None:
    """Write the run's tasks and send its canvas (or the rest of it, for a resumed run;
    `recovered_attempt` from sync_recover_stale, which found it stale at that attempt)."""
    sync_services.sync_run_start(run_id=run_id, recovered_attempt=recovered_attempt)


@shared_task(
    bind=True, name="integrations.tasks.run_stream", acks_late=True, max_retries=None, ignore_result=True
)
def run_stream(self, run_id: int, stream: str, part: str = "") -> None:  # type: ignore[no-untyped-def]
    """One stream (or one part of it) of a run. Upstream trouble retries it, never before the
    time JumpCloud asked for; the rest of the canvas follows once it has ended."""
    try:
        sync_services.sync_task_execute(run_id=run_id, stream_key=stream, part=part)
    except sync_services.RetryLater as exc:
        logger.warning("sync run %s, %s %s: retrying in %.0f s", run_id, stream, part, exc.countdown)
        raise self.retry(countdown=exc.countdown, exc=None) from None
    except SoftTimeLimitExceeded:
        # The task keeps its checkpoints; its heartbeat goes stale and recovery resumes it.
        logger.warning("sync run %s, %s %s hit the soft time limit; it will be resumed", run_id, stream, part)


@shared_task(name="integrations.tasks.finish_sync", acks_late=True, ignore_result=True)
def finish_sync(run_id: int) -> None:
    """The run's callback: rollups, the run's and connection's status, the dashboard cache."""
    sync_services.sync_run_finish(run_id=run_id)


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
    action_runs_close_abandoned()


@shared_task(name="integrations.tasks.refresh_read_models", ignore_result=True)
def refresh_read_models(connection_id: int | None = None) -> None:
    """One connection's read models (after an action), or every connection's (beat, daily)."""
    if connection_id is None:
        read_models.read_models_refresh_all()
    else:
        read_models.read_models_refresh_by_id(connection_id=connection_id)


@shared_task(name="integrations.tasks.worker_heartbeat", ignore_result=True)
def worker_heartbeat() -> None:
    record_worker_heartbeat()


@shared_task(name="integrations.tasks.maintain_event_partitions", ignore_result=True)
def maintain_event_partitions() -> None:
    """The usage events' partitions ahead, and retention (docs/data-retention.md)."""
    usage_partitions_maintain()


@shared_task(name=PURGE_TASK, acks_late=True, ignore_result=True)
def purge_connection(connection_id: int) -> None:
    """A bounded step of a disconnect-and-delete; the next step is a new task."""
    if not connection_purge(connection_id=connection_id):
        send_task(PURGE_TASK, connection_id)


@shared_task(name="integrations.tasks.resume_connection_purges", ignore_result=True)
def resume_connection_purges() -> None:
    connection_purges_resume()
