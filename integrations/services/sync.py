"""Syncs: request one, start it as a canvas, run its tasks, finish it; schedule and recover runs.

A run's life (docs/sync.md has the picture):

1. `sync_run_request` writes a queued SyncRun (at most one queued or running per connection: a
   partial unique constraint) and queues `start_sync`.
2. `sync_run_start` marks it running, asks each parted stream for its parts, writes one SyncTask
   row per stream or part, and sends the run's canvas (integrations.sync.canvas).
3. `sync_task_execute` runs one task: it takes the task's lease, runs the stream function with a
   StreamContext, and records the outcome. Upstream trouble parks the task for a retry
   (RetryLater: the Celery task retries it, never before a Retry-After); a rejected key stops the
   whole run; any other error fails the stream, and the streams that depend on it are skipped.
4. The task that ends last claims the run's finish (an atomic UPDATE) and queues `finish_sync`:
   `sync_run_finish` runs the streams' finish steps (rollups), sets the run's and the
   connection's status, warms the dashboard cache and sends `sync_run_finished`.

Recovery: a task whose heartbeat is older than SYNC_STALE_AFTER lost its worker; beat's
`sync_recover_stale` puts it back and sends the run's remaining canvas again. Redelivered or
duplicated messages find their task done or held, and do nothing.
"""

from __future__ import annotations

import gc
import logging
import os
import secrets
import socket
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from celery import current_app
from celery.canvas import Signature
from celery.result import allow_join_result
from django.conf import settings
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, transaction
from django.db import connection as db
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from integrations.exceptions import (
    CredentialsRejected,
    FeatureUnavailable,
    ProviderError,
    RateLimited,
    UpstreamUnavailable,
)
from integrations.models import Connection, SyncRun, SyncTask
from integrations.providers import Provider, Stream, registry
from integrations.services.audit import audit_connection_event
from integrations.signals import sync_run_finished
from integrations.sync.canvas import sync_canvas
from integrations.sync.context import LeaseLost, StopRequested, StreamContext, refresh_summary

logger = logging.getLogger(__name__)

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


def _send(task: str, *args: Any) -> None:
    """Queue a task by name when the current transaction commits (tasks import this module)."""
    _dispatch(current_app.signature(task, args=args, immutable=True))


def _dispatch(signature: Signature) -> None:
    """Send a task or canvas when the current transaction commits. Executed eagerly (tests,
    CELERY_TASK_ALWAYS_EAGER), a chain waits for each step's result in the task that sent it,
    which Celery refuses unless allowed: allowed here, where nothing else waits on it."""

    def send() -> None:
        with allow_join_result():
            signature.apply_async()

    transaction.on_commit(send)


# --- request ---------------------------------------------------------------------------------
def sync_run_request(
    *,
    connection: Connection,
    kind: str = SyncRun.Kind.FULL,
    trigger: str = SyncRun.Trigger.MANUAL,
    requested_by: Any = None,
    enqueue: bool = True,
) -> SyncRun:
    """Queue a sync. Raises SyncAlreadyRunning if one is queued or running for the connection.

    enqueue=False creates the run without a Celery task, for a caller that executes it in the
    foreground (`integrations_sync --wait`)."""
    if not connection.is_live or not connection.credentials:
        raise SyncNotAllowed("This connection is disconnected.")
    if connection.status == Connection.Status.NEEDS_RECONNECT and trigger == SyncRun.Trigger.SCHEDULE:
        raise SyncNotAllowed("The API key was rejected; reconnect before syncing.")
    provider = registry.get(connection.provider)
    user = requested_by if getattr(requested_by, "is_authenticated", False) else None
    streams = {
        s.key: {
            "label": s.label,
            "status": "pending",
            "fetched": 0,
            "created": 0,
            "updated": 0,
            "removed": 0,
            "skipped": 0,
            "pages": 0,
            "error": "",
            "error_ref": "",
        }
        for s in streams_for(provider, kind)
    }
    try:
        with transaction.atomic():
            run = SyncRun.objects.create(
                connection=connection, kind=kind, trigger=trigger, requested_by=user, streams=streams
            )
            if trigger == SyncRun.Trigger.MANUAL and user is not None:
                audit_connection_event(
                    connection=connection,
                    action="sync.started",
                    actor=user,
                    parameters={"kind": kind, "sync_run": run.pk},
                )
            if enqueue:
                _send(START_TASK, run.pk)
    except IntegrityError:
        raise SyncAlreadyRunning(connection.sync_runs.filter(status__in=SyncRun.ACTIVE).first()) from None
    return run


# --- start -----------------------------------------------------------------------------------
def _stale_before() -> datetime:
    return timezone.now() - settings.SYNC_STALE_AFTER


def _claim_run(run_id: int, *, foreground: bool = False) -> SyncRun | None:
    """Mark a queued run running, or take over a running one that nothing has touched for
    SYNC_STALE_AFTER (its tasks or their messages were lost). In the foreground, also a run parked
    for a retry: no task of it running, one waiting for its retry time."""
    now = timezone.now()
    takeover = Q(status=SyncRun.Status.RUNNING, lease="") & (
        Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=_stale_before())
    )
    if foreground:
        # A run parked for a retry: no task running, one waiting for its retry time.
        working = SyncTask.objects.filter(
            run=OuterRef("pk"), status=SyncTask.Status.RUNNING, heartbeat_at__gte=_stale_before()
        )
        parked = SyncTask.objects.filter(
            run=OuterRef("pk"), status=SyncTask.Status.PENDING, not_before__isnull=False
        )
        takeover |= Q(status=SyncRun.Status.RUNNING, lease="") & ~Exists(working) & Exists(parked)
    first = SyncRun.objects.filter(pk=run_id, status=SyncRun.Status.QUEUED).exists()
    before = _dashboard_version() if first else None
    taken = (
        SyncRun.objects.filter(pk=run_id)
        .filter(Q(status=SyncRun.Status.QUEUED) | takeover)
        .update(
            status=SyncRun.Status.RUNNING,
            heartbeat_at=now,
            attempts=F("attempts") + 1,
            started_at=Coalesce(F("started_at"), now),
        )
    )
    if not taken:
        return None
    run = SyncRun.objects.select_related("connection").get(pk=run_id)
    if run.attempts == 1:
        Connection.objects.filter(pk=run.connection_id).update(last_sync_at=now)
        run.cache_versions = [before, _dashboard_version() if before else None]
        SyncRun.objects.filter(pk=run_id).update(cache_versions=run.cache_versions)
    return run


def _dashboard_version() -> str | None:
    from integrations.selectors.warm import dashboard_version

    try:
        return dashboard_version()
    except Exception:  # a cache problem must never fail a sync
        logger.exception("reading the dashboard cache's data version failed")
        return None


def _plan(run: SyncRun, provider: Provider, streams: list[Stream]) -> dict[str, list[str]]:
    """Each stream's part keys ([""] for a stream in one piece). A parted stream plans from its
    checkpoint, so a resumed run gets the parts it had."""
    parts: dict[str, list[str]] = {}
    for stream in streams:
        if stream.plan is None:
            parts[stream.key] = [""]
            continue
        ctx = StreamContext(run=run, connection=run.connection, stream=stream, client=None)
        with transaction.atomic():
            parts[stream.key] = list(stream.plan(ctx)) or [""]
    return parts


def sync_run_start(*, run_id: int, dispatch: bool = True) -> SyncRun | None:
    """Start (or resume) a run: write its tasks and send the canvas of those not done yet
    (dispatch=False: the caller runs them, in the foreground). Returns None when the run is not
    startable (running elsewhere, or finished)."""
    run = _claim_run(run_id, foreground=not dispatch)
    if run is None:
        logger.info("sync run %s is running or finished; nothing to start", run_id)
        return None
    provider = registry.get(run.connection.provider)
    streams = streams_for(provider, run.kind)
    if run.attempts > MAX_TASK_ATTEMPTS:
        _close_run(run, SyncRun.Status.FAILED, f"Gave up after {MAX_TASK_ATTEMPTS} attempts.")
        return run
    try:
        parts = _plan(run, provider, streams)
    except Exception as exc:
        ref = _log_internal(exc, f"sync run {run_id}: planning failed")
        _close_run(run, SyncRun.Status.FAILED, f"{_internal_message()} Reference: {ref}.")
        return run
    with transaction.atomic():
        SyncTask.objects.bulk_create(
            [SyncTask(run=run, stream=s.key, part=p) for s in streams for p in parts[s.key]],
            ignore_conflicts=True,
        )
        # Tasks a dead worker left running start again from their checkpoints.
        SyncTask.objects.filter(run=run, status=SyncTask.Status.RUNNING).update(
            status=SyncTask.Status.PENDING, lease=""
        )
        for stream in streams:
            refresh_summary(run.pk, stream.key)
        done = set(SyncTask.objects.filter(run=run, status__in=SyncTask.DONE).values_list("stream", "part"))
        canvas = sync_canvas(run.pk, streams, parts, done)
        if dispatch:
            if canvas is not None:
                _dispatch(canvas)
            else:
                _claim_finish(run.pk, dispatch=True)
    return run


# --- one task --------------------------------------------------------------------------------
def _claim_task(run_id: int, stream_key: str, part: str) -> SyncTask | None:
    now = timezone.now()
    lease = uuid.uuid4().hex
    taken = (
        SyncTask.objects.filter(run_id=run_id, stream=stream_key, part=part)
        .filter(
            Q(status=SyncTask.Status.PENDING) & (Q(not_before__isnull=True) | Q(not_before__lte=now))
            | Q(status=SyncTask.Status.RUNNING, heartbeat_at__lt=_stale_before())
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


def _park_task(task: SyncTask, run: SyncRun, message: str, countdown: float) -> None:
    """Give the task back as pending until the retry time; the run counts as alive till then."""
    not_before = timezone.now() + timedelta(seconds=countdown)
    with transaction.atomic():
        SyncTask.objects.filter(pk=task.pk, lease=task.lease).update(
            status=SyncTask.Status.PENDING,
            lease="",
            counters=task.counters,
            error=message[:4000],
            not_before=not_before,
        )
        SyncRun.objects.filter(pk=run.pk).update(heartbeat_at=Greatest(F("heartbeat_at"), not_before))
        refresh_summary(task.run_id, task.stream)


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

    deps = [key for key in stream.depends_on if key in by_key]
    waiting = [key for key in deps if statuses.get(key, set()) - set(SyncTask.DONE)]
    if waiting:
        return f"Waiting for {', '.join(by_key[k].label for k in waiting)}.", True
    blocked = [key for key in deps if not complete(key)]
    if blocked:
        return (
            f"Not synced, because {', '.join(by_key[k].label for k in blocked)} did not complete in this run.",
            False,
        )
    return "", False


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
        return False
    if run.status != SyncRun.Status.RUNNING or run.stop_reason:
        _end_task(task, SyncTask.Status.CANCELLED, "Not synced: the run ended before this stream ran.")
        return _claim_finish(run_id, dispatch)
    reason, wait = _unmet_dependencies(run, stream, streams)
    if wait:
        _park_task(task, run, reason, WAIT_SECONDS)
        raise RetryLater(reason, WAIT_SECONDS)
    if reason:
        _end_task(task, SyncTask.Status.SKIPPED, reason)
        return _claim_finish(run_id, dispatch)
    if task.attempts > MAX_TASK_ATTEMPTS:
        _end_task(task, SyncTask.Status.FAILED, f"Gave up after {MAX_TASK_ATTEMPTS} attempts: {task.error}")
        return _claim_finish(run_id, dispatch)

    try:
        client = provider.get_client(run.connection)
    except Exception as exc:
        # A stored connection that cannot be used (its key unreadable with the configured
        # FIELD_ENCRYPTION_KEYS, its origin no longer allowed): no task of the run can do better.
        message = getattr(exc, "message", "") or str(exc)
        logger.error("sync run %s: cannot build a client: %s", run_id, type(exc).__name__)
        _end_task(task, SyncTask.Status.FAILED, message)
        _stop_run(run_id, SyncRun.StopReason.CONFIGURATION, message)
        return _claim_finish(run_id, dispatch)
    # A stream allocates millions of short-lived objects (decoded JSON, rows): collect far less
    # often while it runs, or the cyclic collector walks every live object thousands of times.
    thresholds = gc.get_threshold()
    gc.set_threshold(100_000, 50, 100)
    try:
        ctx = StreamContext(
            run=run, connection=run.connection, stream=stream, client=client, task=task, part=part
        )
        ctx.progress(force=True)
        stream.run(ctx)
    except (LeaseLost, StopRequested) as exc:
        logger.info("sync task %s stopped: %s", task, exc)
        if isinstance(exc, StopRequested):
            _end_task(task, SyncTask.Status.CANCELLED, "Not finished: the run ended while this stream ran.")
            return _claim_finish(run_id, dispatch)
        return False
    except FeatureUnavailable as exc:
        # What an optional stream reads may be missing (no usage product, say); a required one
        # cannot do without it.
        _end_task(task, SyncTask.Status.SKIPPED if stream.optional else SyncTask.Status.FAILED, exc.message)
    except CredentialsRejected as exc:
        _end_task(task, SyncTask.Status.FAILED, exc.message)
        _stop_run(run_id, SyncRun.StopReason.RECONNECT, exc.message)
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
        ref = _log_internal(exc, f"sync task {task}: database error")
        _end_task(task, SyncTask.Status.FAILED, _database_message(), ref)
    except Exception as exc:
        ref = _log_internal(exc, f"sync task {task} failed")
        _end_task(task, SyncTask.Status.FAILED, _internal_message(), ref)
    else:
        _end_task(task, SyncTask.Status.SUCCEEDED)
    finally:
        gc.set_threshold(*thresholds)
        if hasattr(client, "close"):
            client.close()
    return _claim_finish(run_id, dispatch)


def _stop_run(run_id: int, reason: str, message: str) -> None:
    """Stop the whole run: its other tasks end at their next page, and it fails with `message`."""
    SyncRun.objects.filter(pk=run_id, stop_reason="").update(stop_reason=reason, error_message=message[:4000])


def _log_internal(exc: BaseException, what: str) -> str:
    """Log an unexpected error with its traceback under a short reference the admin can quote."""
    ref = secrets.token_hex(4)
    logger.error("%s [ref %s]: %s", what, ref, type(exc).__name__, exc_info=exc)
    return ref


def _internal_message() -> str:
    return (
        "An unexpected error stopped this stream. Sync again; if it happens again, give the "
        "reference below to whoever runs torii (it marks the error in the worker's log)."
    )


def _database_message() -> str:
    return (
        "torii's database refused a write while syncing this stream. Sync again; if it happens "
        "again, give the reference below to whoever runs torii (it marks the error in the worker's log)."
    )


# --- finish ----------------------------------------------------------------------------------
def _claim_finish(run_id: int, dispatch: bool) -> bool:
    """When no task of the run is left to run, take the run's finish step (once: the lease)."""
    lease = f"finish:{uuid.uuid4().hex[:24]}"
    unfinished = SyncTask.objects.filter(
        run_id=run_id, status__in=[SyncTask.Status.PENDING, SyncTask.Status.RUNNING]
    )
    with transaction.atomic():
        taken = (
            SyncRun.objects.filter(pk=run_id, status=SyncRun.Status.RUNNING, lease="")
            .exclude(Q(tasks__status__in=[SyncTask.Status.PENDING, SyncTask.Status.RUNNING]))
            .update(lease=lease, heartbeat_at=timezone.now())
        )
        if not taken or unfinished.exists():
            if taken:  # a task was added meanwhile (a resumed run): not the end after all
                SyncRun.objects.filter(pk=run_id, lease=lease).update(lease="")
            return False
        if dispatch:
            _send(FINISH_TASK, run_id)
    return True


def sync_run_finish(*, run_id: int) -> SyncRun | None:
    """The run's callback: the streams' finish steps, then the run's and connection's status."""
    run = (
        SyncRun.objects.select_related("connection").filter(pk=run_id, status=SyncRun.Status.RUNNING).first()
    )
    if run is None or not run.lease.startswith("finish:"):
        return None
    provider = registry.get(run.connection.provider)
    streams = streams_for(provider, run.kind)
    statuses = _stream_statuses(run)
    if not run.stop_reason:
        for stream in streams:
            if stream.finish is not None and statuses.get(stream.key) == SyncTask.Status.SUCCEEDED:
                _run_finish_step(run, stream)
        statuses = _stream_statuses(run)
    run.refresh_from_db()
    if run.stop_reason:
        reconnect = run.stop_reason == SyncRun.StopReason.RECONNECT
        return _close_run(run, SyncRun.Status.FAILED, run.error_message, reconnect=reconnect)
    failed = [s for s in streams if statuses.get(s.key) == SyncTask.Status.FAILED]
    if not failed:
        return _close_run(run, SyncRun.Status.SUCCEEDED, "")
    message = " ".join(_stream_error(s.label, run.streams.get(s.key, {})) for s in failed)
    required = [s for s in failed if not s.optional]
    return _close_run(run, SyncRun.Status.FAILED if required else SyncRun.Status.PARTIAL, message)


def _stream_statuses(run: SyncRun) -> dict[str, str]:
    run.refresh_from_db(fields=["streams"])
    return {key: state.get("status", "") for key, state in run.streams.items() if isinstance(state, dict)}


def _run_finish_step(run: SyncRun, stream: Stream) -> None:
    """A stream's finish step (e.g. its rollups), with the same error policy as its tasks: the
    failure is recorded on the stream, and the next run computes it again."""
    assert stream.finish is not None
    error = error_ref = ""
    ctx = StreamContext(
        run=run,
        connection=run.connection,
        stream=stream,
        client=None,
        task=SyncTask(run=run, stream=stream.key, counters={}),
    )
    started = time.monotonic()
    try:
        stream.finish(ctx)
    except ProviderError as exc:
        error = exc.message
    except Exception as exc:
        error_ref = _log_internal(exc, f"sync run {run.pk}: finish step of {stream.key} failed")
        error = _internal_message()
    counters = ctx.counters
    counters["finish_s"] = round(time.monotonic() - started, 2)
    refresh_summary(run.pk, stream.key)
    run.refresh_from_db(fields=["streams"])
    state = run.streams.get(stream.key, {})
    state["updated"] = state.get("updated", 0) + counters.pop("updated", 0)
    state.update({k: v for k, v in counters.items() if k not in ("created", "removed")})
    if error:
        state.update(status=SyncTask.Status.FAILED, error=error, error_ref=error_ref)
    SyncRun.objects.filter(pk=run.pk).update(streams=run.streams)


def _stream_error(label: str, state: dict[str, Any]) -> str:
    """ "Label: message." (with its reference), for the run's error message."""
    text = f"{label}: {_sentence(state.get('error', '') or 'failed')}"
    return f"{text} Reference: {state['error_ref']}." if state.get("error_ref") else text


def _sentence(text: str) -> str:
    text = text.strip().rstrip(";,").strip()
    return text if not text or text.endswith((".", "!", "?", "…")) else text + "."


def _close_run(run: SyncRun, status: str, message: str, *, reconnect: bool = False) -> SyncRun:
    """End the run (no task of it is left running) and set the connection's status from it."""
    now = timezone.now()
    connection = run.connection
    version_at_end = _dashboard_version()
    with transaction.atomic():
        open_tasks = SyncTask.objects.filter(
            run=run, status__in=[SyncTask.Status.PENDING, SyncTask.Status.RUNNING]
        )
        stuck = list(open_tasks.values_list("stream", flat=True).distinct())
        open_tasks.update(
            status=SyncTask.Status.CANCELLED,
            lease="",
            finished_at=now,
            error="Not finished: the run ended first.",
        )
        for key in stuck:
            refresh_summary(run.pk, key)
        updated = SyncRun.objects.filter(pk=run.pk, status=SyncRun.Status.RUNNING).update(
            status=status,
            finished_at=now,
            error_message=message[:4000],
            current_stream="",
            heartbeat_at=now,
            lease="",
        )
        if not updated:
            run.refresh_from_db()
            return run
        connection_status: str = Connection.Status.FAILED
        if reconnect:
            connection_status = Connection.Status.NEEDS_RECONNECT
        elif status == SyncRun.Status.SUCCEEDED:
            connection_status = Connection.Status.CONNECTED
        elif status == SyncRun.Status.PARTIAL:
            connection_status = Connection.Status.PARTIAL
        fields: dict[str, Any] = {"status": connection_status, "status_message": message[:4000]}
        if status in (SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL):
            fields["last_success_at"] = now
        if reconnect:
            fields["next_events_sync_at"] = None
            fields["next_full_sync_at"] = None
        else:
            fields["next_events_sync_at"] = now + timedelta(minutes=connection.events_interval_minutes)
            if run.kind == SyncRun.Kind.FULL or connection.next_full_sync_at is None:
                fields["next_full_sync_at"] = now + timedelta(hours=connection.full_sync_interval_hours)
        # Never resurrect a connection that was disconnected while the run was going.
        Connection.objects.filter(pk=connection.pk).exclude(status=Connection.Status.DISCONNECTED).update(
            **fields
        )
    run.refresh_from_db()
    logger.info("sync run %s finished: %s", run.pk, status)
    if status in (SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL):
        _warm_dashboard(run, version_at_end)
    sync_run_finished.send(sender=SyncRun, run=run)
    return run


def _warm_dashboard(run: SyncRun, version_at_end: str | None) -> None:
    """Recompute the dashboard's cached aggregates off the request path; or, when the run wrote
    nothing (no stream counted a row created, updated or removed) and nothing else moved the
    cache's data version while it ran, carry them forward from the version before the run."""
    from integrations.selectors.warm import dashboard_cache_warm

    before, after_start = (list(run.cache_versions or []) + [None, None])[:2]
    wrote = any(
        state.get(counter)
        for state in run.streams.values()
        if isinstance(state, dict)
        for counter in ("created", "updated", "removed")
    )
    unchanged = before is not None and not wrote and version_at_end == after_start
    try:
        dashboard_cache_warm(unchanged_since=before if unchanged else None)
    except Exception:  # a cache problem must never fail a finished sync
        logger.exception("warming the dashboard cache failed")


# --- in the foreground -----------------------------------------------------------------------
def sync_run_execute(*, run_id: int, on_retry: Callable[[float], None] | None = None) -> SyncRun | None:
    """Run a whole sync in this process, one task after the other in the canvas's order
    (`integrations_sync --wait`, tests). A queued run nobody started is taken over here.

    Upstream trouble raises RetryLater unless `on_retry` is given, which is called with the
    countdown (and may sleep) before the task is tried again."""
    run = sync_run_start(run_id=run_id, dispatch=False)
    if run is None:
        return None
    provider = registry.get(run.connection.provider)
    streams = _in_canvas_order(streams_for(provider, run.kind))
    finish_claimed = False
    while run.status == SyncRun.Status.RUNNING:
        pending = list(
            SyncTask.objects.filter(run=run, status=SyncTask.Status.PENDING).values_list("stream", "part")
        )
        order = {s.key: i for i, s in enumerate(streams)}
        pending.sort(key=lambda sp: (order.get(sp[0], 0), sp[1]))
        if not pending:
            break
        for stream_key, part in pending:
            SyncTask.objects.filter(run=run, stream=stream_key, part=part).update(not_before=None)
            try:
                finish_claimed |= sync_task_execute(
                    run_id=run.pk, stream_key=stream_key, part=part, dispatch=False
                )
            except RetryLater as exc:
                if on_retry is None:
                    raise
                on_retry(exc.countdown)
                break
        run.refresh_from_db()
    if finish_claimed or _claim_finish(run.pk, dispatch=False):
        sync_run_finish(run_id=run.pk)
    run.refresh_from_db()
    return run


def _in_canvas_order(streams: list[Stream]) -> list[Stream]:
    """The streams with each after those it depends on (their declaration order otherwise)."""
    placed: list[Stream] = []
    keys = {s.key for s in streams}
    remaining = list(streams)
    while remaining:
        for stream in remaining:
            if all(dep in {p.key for p in placed} or dep not in keys for dep in stream.depends_on):
                placed.append(stream)
                remaining.remove(stream)
                break
    return placed


# --- schedule and recover ---------------------------------------------------------------------
def sync_dispatch_due(*, now: datetime | None = None) -> list[int]:
    """Queue the syncs that are due: a full sync when its time has come, else an events sync."""
    now = now or timezone.now()
    queued: list[int] = []
    due = (
        Connection.objects.exclude(
            status__in=[Connection.Status.DISCONNECTED, Connection.Status.NEEDS_RECONNECT]
        )
        .exclude(credentials="")
        .filter(
            Q(next_full_sync_at__isnull=True)
            | Q(next_full_sync_at__lte=now)
            | Q(next_events_sync_at__lte=now)
        )
        .order_by(Coalesce("last_sync_at", "created_at"), "pk")  # the longest-waiting first
    )
    for connection in due:
        full_due = connection.next_full_sync_at is None or connection.next_full_sync_at <= now
        kind = SyncRun.Kind.FULL if full_due else SyncRun.Kind.EVENTS
        try:
            run = sync_run_request(connection=connection, kind=kind, trigger=SyncRun.Trigger.SCHEDULE)
        except (SyncAlreadyRunning, SyncNotAllowed):
            continue
        queued.append(run.pk)
    return queued


def sync_recover_stale(*, stale_after: timedelta | None = None) -> list[int]:
    """Hand runs that nothing has moved for SYNC_STALE_AFTER to new tasks: a run whose start
    message was lost starts; a run whose tasks lost their worker sends its remaining canvas
    again (they resume from their checkpoints); a run whose finish was lost finishes."""
    stale_after = settings.SYNC_STALE_AFTER if stale_after is None else stale_after
    cutoff = timezone.now() - stale_after
    recovered: list[int] = []
    stale = SyncRun.objects.filter(
        Q(status=SyncRun.Status.QUEUED, created_at__lt=cutoff)
        & (Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=cutoff))
        | Q(status=SyncRun.Status.RUNNING) & (Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=cutoff))
    )
    for run in stale:
        with transaction.atomic():
            if run.status == SyncRun.Status.RUNNING:
                # Make the run and its lost tasks unambiguously stale for whoever takes them.
                past = cutoff - timedelta(days=1)
                SyncTask.objects.filter(
                    run=run, status=SyncTask.Status.RUNNING, heartbeat_at__lt=cutoff
                ).update(heartbeat_at=past)
                SyncRun.objects.filter(pk=run.pk).update(heartbeat_at=past)
                if run.lease.startswith("finish:"):
                    _send(FINISH_TASK, run.pk)
                    recovered.append(run.pk)
                    continue
            _send(START_TASK, run.pk)
        recovered.append(run.pk)
    if recovered:
        logger.warning("re-queued %d stale sync run(s): %s", len(recovered), recovered)
    return recovered


def sync_prune_history(*, keep_days: int = 90) -> int:
    cutoff = timezone.now() - timedelta(days=keep_days)
    deleted, _ = SyncRun.objects.filter(finished_at__lt=cutoff).exclude(status__in=SyncRun.ACTIVE).delete()
    return deleted
