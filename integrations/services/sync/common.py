"""What the sync services share: their errors, the streams of a run, queueing, and error references."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime
from typing import Any

from celery import current_app
from celery.canvas import Signature
from celery.result import allow_join_result
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from integrations.models import SyncRun
from integrations.providers import Provider, Stream

logger = logging.getLogger("integrations.services.sync")

MAX_TASK_ATTEMPTS = 20  # resumes after a dead worker count too
WAIT_SECONDS = 5.0  # a task whose dependencies have not ended yet looks again after this
DATABASE_RETRY_SECONDS = 60.0
START_TASK = "integrations.tasks.start_sync"
FINISH_TASK = "integrations.tasks.finish_sync"


class SyncAlreadyRunning(Exception):
    def __init__(self, run: SyncRun | None):
        super().__init__("A sync of this connection is already queued or running.")
        self.run = run


class SyncNotAllowed(Exception):
    """The connection cannot sync (disconnected, or its key was rejected)."""


class RetryLater(Exception):
    """A transient upstream failure: the task is retried after `countdown` seconds."""

    def __init__(self, message: str, countdown: float):
        super().__init__(message)
        self.countdown = countdown


def streams_for(provider: Provider, kind: str) -> list[Stream]:
    if kind == SyncRun.Kind.EVENTS:
        return [s for s in provider.streams if s.kind == "events"]
    return list(provider.streams)


def send_task(task: str, *args: Any) -> None:
    """Queue a task by name when the current transaction commits (tasks import this module)."""
    send_on_commit(current_app.signature(task, args=args, immutable=True))


def send_on_commit(signature: Signature) -> None:
    """Send a task or canvas when the current transaction commits. Executed eagerly (tests,
    CELERY_TASK_ALWAYS_EAGER), a chain waits for each step's result in the task that sent it,
    which Celery refuses unless allowed: allowed here, where nothing else waits on it."""

    def send() -> None:
        with allow_join_result():
            signature.apply_async()

    transaction.on_commit(send)


def stale_before() -> datetime:
    return timezone.now() - settings.SYNC_STALE_AFTER


def stop_run(run_id: int, reason: str, message: str) -> None:
    """Stop the whole run: its other tasks end at their next page, and it fails with `message`."""
    SyncRun.objects.filter(pk=run_id, stop_reason="").update(stop_reason=reason, error_message=message[:4000])


def log_internal(exc: BaseException, what: str) -> str:
    """Log an unexpected error with its traceback under a short reference the admin can quote."""
    ref = secrets.token_hex(4)
    logger.error("%s [ref %s]: %s", what, ref, type(exc).__name__, exc_info=exc)
    return ref


def internal_message() -> str:
    return (
        "An unexpected error stopped this stream. Sync again; if it happens again, give the "
        "reference below to whoever runs torii (it marks the error in the worker's log)."
    )


def database_message() -> str:
    return (
        "torii's database refused a write while syncing this stream. Sync again; if it happens "
        "again, give the reference below to whoever runs torii (it marks the error in the worker's log)."
    )
