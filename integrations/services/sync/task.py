"""One task of a run: take its lease, check what it depends on, run the stream function with
its StreamContext, and apply the error policy (docs/sync.md, "Tasks, leases and recovery")."""

from __future__ import annotations

import gc
import os
import socket
import uuid
from datetime import timedelta

from celery import current_app
from django.db import DatabaseError, InterfaceError, OperationalError, transaction
from django.db import connection as db
from django.db.models import F, Q
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from integrations.exceptions import (
    CredentialsRejected,
    FeatureUnavailable,
    ProviderError,
    RateLimited,
    UpstreamUnavailable,
)
from integrations.models import SyncRun, SyncTask
from integrations.providers import Stream, registry
from integrations.services.sync.common import (
    DATABASE_RETRY_SECONDS,
    MAX_TASK_ATTEMPTS,
    WAIT_SECONDS,
    RetryLater,
    database_message,
    internal_message,
    log_internal,
    logger,
    stale_before,
    stop_run,
    streams_for,
)
from integrations.services.sync.finish import claim_finish
from integrations.services.sync.joins import send_ready_joins
from integrations.sync import budget
from integrations.sync.context import LeaseLost, StopRequested, StreamContext, refresh_summary


# --- one task --------------------------------------------------------------------------------
def _claim_task(run_id: int, stream_key: str, part: str) -> SyncTask | None:
    now = timezone.now()
    lease = uuid.uuid4().hex
    taken = (
        SyncTask.objects.filter(run_id=run_id, stream=stream_key, part=part)
        .filter(
            Q(status=SyncTask.Status.PENDING) & (Q(not_before__isnull=True) | Q(not_before__lte=now))
            | Q(status=SyncTask.Status.RUNNING, heartbeat_at__lt=stale_before())
        )
        .update(
            status=SyncTask.Status.RUNNING,
            lease=lease,
            heartbeat_at=now,
            attempts=F("attempts") + 1,
            started_at=Coalesce(F("started_at"), now),
            worker=_worker_name(),
        )
    )
    if not taken:
        return None
    return SyncTask.objects.get(run_id=run_id, stream=stream_key, part=part)


def _worker_name() -> str:
    """The Celery worker's node name inside a task, else host:pid (the foreground)."""
    task = current_app.current_worker_task
    hostname = getattr(getattr(task, "request", None), "hostname", None)
    return str(hostname or f"{socket.gethostname()}:{os.getpid()}")[:255]


def _end_task(task: SyncTask, status: str, error: str = "", error_ref: str = "") -> None:
    """Record how a task ended (if it still holds its lease) and update its stream's summary."""
    with transaction.atomic():
        SyncTask.objects.filter(pk=task.pk, lease=task.lease).update(
            status=status,
            counters=task.counters,
            error=error[:4000],
            error_ref=error_ref,
            finished_at=timezone.now(),
            lease="",
            not_before=None,
        )
        refresh_summary(task.run_id, task.stream)


def _park_task(task: SyncTask, run: SyncRun, message: str, countdown: float | None) -> None:
    """Give the task back as pending. With a countdown (the provider's Retry-After, a database
    outage), not before then, and the run counts as alive till then. Without (waiting for a task
    it depends on), any message may take it again, and the run's heartbeat stays that task's: a
    run whose task lost its worker must look stale while the tasks after it wait."""
    not_before = None if countdown is None else timezone.now() + timedelta(seconds=countdown)
    with transaction.atomic():
        SyncTask.objects.filter(pk=task.pk, lease=task.lease).update(
            status=SyncTask.Status.PENDING,
            lease="",
            counters=task.counters,
            error=message[:4000],
            not_before=not_before,
        )
        if not_before is not None:
            SyncRun.objects.filter(pk=run.pk).update(heartbeat_at=Greatest(F("heartbeat_at"), not_before))
        refresh_summary(task.run_id, task.stream)


def _parked_countdown(run_id: int, stream_key: str, part: str) -> float | None:
    """Seconds until a parked task is due, if it is one. Its retry message may have died with its
    worker (a countdown waits in the worker's memory): a message the resumed run sent for it then
    becomes its retry. Two messages for one task are harmless: only one claims it."""
    not_before = (
        SyncTask.objects.filter(
            run_id=run_id,
            stream=stream_key,
            part=part,
            status=SyncTask.Status.PENDING,
            not_before__isnull=False,
        )
        .values_list("not_before", flat=True)
        .first()
    )
    if not_before is None:
        return None
    return max((not_before - timezone.now()).total_seconds(), 0.0) + 0.1


def _unmet_dependencies(run: SyncRun, stream: Stream, streams: list[Stream]) -> tuple[str, bool]:
    """(why this stream cannot run, whether that may change): a stream it depends on did not
    complete (skip it), or has not ended yet (wait; only a resumed run can get here). A skipped
    optional stream (its data unavailable) counts as complete unless it was skipped because a
    stream it depends on did not complete."""
    by_key = {s.key: s for s in streams}
    statuses: dict[str, set[str]] = {}
    for key, status in SyncTask.objects.filter(run=run).values_list("stream", "status"):
        statuses.setdefault(key, set()).add(status)

    def complete(key: str) -> bool:
        done = statuses.get(key, set())
        if done <= {SyncTask.Status.SUCCEEDED}:
            return True
        if done <= {SyncTask.Status.SUCCEEDED, SyncTask.Status.SKIPPED} and by_key[key].optional:
            return all(complete(dep) for dep in by_key[key].depends_on if dep in by_key)
        return False

    waiting = [
        key for key in stream.waits_for if key in by_key and statuses.get(key, set()) - set(SyncTask.DONE)
    ]
    if waiting:
        return f"Waiting for {', '.join(by_key[k].label for k in waiting)}.", True
    blocked = [key for key in stream.depends_on if key in by_key and not complete(key)]
    if blocked:
        return (
            f"Not synced, because {', '.join(by_key[k].label for k in blocked)} did not complete in this run.",
            False,
        )
    return "", False


def _ended(run_id: int, streams: list[Stream], dispatch: bool) -> bool:
    """After a task ended: send the joins it was the last to wait for, and claim the run's finish
    if nothing is left (claim_finish). In the foreground the caller runs what is pending itself."""
    if dispatch:
        send_ready_joins(run_id, streams)
    return claim_finish(run_id, dispatch)


def _retry_countdown(task: SyncTask, exc: ProviderError) -> float:
    """Never before the provider's Retry-After; else backoff (the client already retried)."""
    retry_after = getattr(exc, "retry_after", None)
    if retry_after:
        return float(retry_after)
    return float(min(5 * (2 ** max(task.attempts - 1, 0)), 15 * 60))


def sync_task_execute(*, run_id: int, stream_key: str, part: str = "", dispatch: bool = True) -> bool:
    """Run one task of a run (one stream, or one part of it). Returns True when the run has no
    task left to run, its finish step claimed (dispatch=True also queues it).

    Raises RetryLater when the task must be tried again later. A task that is done, or held by a
    live worker, or not due yet, is left alone (a redelivered or duplicated message)."""
    run = SyncRun.objects.select_related("connection").get(pk=run_id)
    provider = registry.get(run.connection.provider)
    streams = streams_for(provider, run.kind)
    stream = next((s for s in streams if s.key == stream_key), None)
    task = _claim_task(run_id, stream_key, part)
    if task is None or stream is None:
        queued = dispatch and stream is not None and not current_app.conf.task_always_eager
        countdown = _parked_countdown(run_id, stream_key, part) if queued else None
        if countdown is not None and run.status == SyncRun.Status.RUNNING:
            raise RetryLater("not due yet", countdown)
        return False
    if run.status != SyncRun.Status.RUNNING or run.stop_reason:
        _end_task(task, SyncTask.Status.CANCELLED, "Not synced: the run ended before this stream ran.")
        return _ended(run_id, streams, dispatch)
    reason, wait = _unmet_dependencies(run, stream, streams)
    if wait:
        _park_task(task, run, reason, None)
        raise RetryLater(reason, WAIT_SECONDS)
    if reason:
        _end_task(task, SyncTask.Status.SKIPPED, reason)
        return _ended(run_id, streams, dispatch)
    if task.attempts > MAX_TASK_ATTEMPTS:
        _end_task(task, SyncTask.Status.FAILED, f"Gave up after {MAX_TASK_ATTEMPTS} attempts: {task.error}")
        return _ended(run_id, streams, dispatch)

    try:
        client = provider.get_client(run.connection)
    except Exception as exc:
        # A stored connection that cannot be used (its key unreadable with the configured
        # FIELD_ENCRYPTION_KEYS, its origin no longer allowed): no task of the run can do better.
        message = getattr(exc, "message", "") or str(exc)
        logger.error("sync run %s: cannot build a client: %s", run_id, type(exc).__name__)
        _end_task(task, SyncTask.Status.FAILED, message)
        stop_run(run_id, SyncRun.StopReason.CONFIGURATION, message)
        return _ended(run_id, streams, dispatch)
    # A stream allocates millions of short-lived objects (decoded JSON, rows): collect far less
    # often while it runs, or the cyclic collector walks every live object thousands of times.
    thresholds = gc.get_threshold()
    gc.set_threshold(100_000, 50, 100)
    try:
        ctx = StreamContext(
            run=run, connection=run.connection, stream=stream, client=client, task=task, part=part
        )
        ctx.progress(force=True)
        # A backfill's slices leave half the request budget to the streams the run waits for.
        with budget.lane(background=stream.backfill):
            stream.run(ctx)
    except (LeaseLost, StopRequested) as exc:
        logger.info("sync task %s stopped: %s", task, exc)
        if isinstance(exc, StopRequested):
            _end_task(task, SyncTask.Status.CANCELLED, "Not finished: the run ended while this stream ran.")
            return _ended(run_id, streams, dispatch)
        return False
    except FeatureUnavailable as exc:
        # What an optional stream reads may be missing (no usage product, say); a required one
        # cannot do without it.
        _end_task(task, SyncTask.Status.SKIPPED if stream.optional else SyncTask.Status.FAILED, exc.message)
    except CredentialsRejected as exc:
        _end_task(task, SyncTask.Status.FAILED, exc.message)
        stop_run(run_id, SyncRun.StopReason.RECONNECT, exc.message)
    except (RateLimited, UpstreamUnavailable) as exc:
        countdown = _retry_countdown(task, exc)
        _park_task(task, run, f"Retrying in {int(countdown)} s: {exc.message}", countdown)
        raise RetryLater(exc.message, countdown) from exc
    except ProviderError as exc:
        _end_task(task, SyncTask.Status.FAILED, exc.message)
    except (OperationalError, InterfaceError) as exc:
        # The database went away or could not serve: the task's last page was rolled back with its
        # checkpoint, so it goes on from there later.
        logger.warning("sync task %s: database unavailable (%s); retrying", task, type(exc).__name__)
        db.close_if_unusable_or_obsolete()
        _park_task(task, run, "torii's database was unavailable; retrying.", DATABASE_RETRY_SECONDS)
        raise RetryLater("database unavailable", DATABASE_RETRY_SECONDS) from exc
    except DatabaseError as exc:
        ref = log_internal(exc, f"sync task {task}: database error")
        _end_task(task, SyncTask.Status.FAILED, database_message(), ref)
    except Exception as exc:
        ref = log_internal(exc, f"sync task {task} failed")
        _end_task(task, SyncTask.Status.FAILED, internal_message(), ref)
    else:
        _end_task(task, SyncTask.Status.SUCCEEDED)
    finally:
        gc.set_threshold(*thresholds)
        if hasattr(client, "close"):
            client.close()
    return _ended(run_id, streams, dispatch)
