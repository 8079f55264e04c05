"""A run's life around its tasks: request, start (the canvas), the foreground runner, beat's
dispatch and recovery, and pruning."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from integrations.models import Connection, SyncRun, SyncTask
from integrations.providers import Provider, Stream, registry
from integrations.services.audit import audit_connection_event
from integrations.services.sync.common import (
    FINISH_TASK,
    MAX_TASK_ATTEMPTS,
    START_TASK,
    RetryLater,
    SyncAlreadyRunning,
    SyncNotAllowed,
    internal_message,
    log_internal,
    logger,
    send_on_commit,
    send_task,
    stale_before,
    streams_for,
)
from integrations.services.sync.finish import claim_finish, close_run, sync_run_finish
from integrations.services.sync.joins import send_ready_joins
from integrations.services.sync.task import sync_task_execute
from integrations.sync.canvas import sync_canvas
from integrations.sync.context import StreamContext, refresh_summary


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
                send_task(START_TASK, run.pk)
    except IntegrityError:
        raise SyncAlreadyRunning(connection.sync_runs.filter(status__in=SyncRun.ACTIVE).first()) from None
    return run


# --- start -----------------------------------------------------------------------------------
def _claim_run(
    run_id: int, *, foreground: bool = False, recovered_attempt: int | None = None
) -> SyncRun | None:
    """Mark a queued run running, or take over a running one that nothing has touched for
    SYNC_STALE_AFTER (its tasks or their messages were lost). In the foreground, also a run parked
    for a retry: no task of it running, one waiting for its retry time.

    `recovered_attempt`: sync_recover_stale found the run stale at this attempt. It is taken over
    even if a task of its lost canvas touched it since: a message left in the queue runs its one
    task, while the rest of that canvas is gone. Only one start can win, as the attempt counts on."""
    now = timezone.now()
    takeover = Q(status=SyncRun.Status.RUNNING, lease="") & (
        Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=stale_before())
    )
    if recovered_attempt is not None:
        takeover |= Q(status=SyncRun.Status.RUNNING, lease="", attempts=recovered_attempt)
    if foreground:
        # A run parked for a retry: no task running, one waiting for its retry time.
        working = SyncTask.objects.filter(
            run=OuterRef("pk"), status=SyncTask.Status.RUNNING, heartbeat_at__gte=stale_before()
        )
        parked = SyncTask.objects.filter(
            run=OuterRef("pk"), status=SyncTask.Status.PENDING, not_before__isnull=False
        )
        takeover |= Q(status=SyncRun.Status.RUNNING, lease="") & ~Exists(working) & Exists(parked)
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
    return run


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


def sync_run_start(
    *, run_id: int, dispatch: bool = True, recovered_attempt: int | None = None
) -> SyncRun | None:
    """Start (or resume) a run: write its tasks and send the canvas of those not done yet
    (dispatch=False: the caller runs them, in the foreground). Returns None when the run is not
    startable (running elsewhere, or finished). `recovered_attempt`: see _claim_run."""
    run = _claim_run(run_id, foreground=not dispatch, recovered_attempt=recovered_attempt)
    if run is None:
        logger.info("sync run %s is running or finished; nothing to start", run_id)
        return None
    provider = registry.get(run.connection.provider)
    streams = streams_for(provider, run.kind)
    if run.attempts > MAX_TASK_ATTEMPTS:
        close_run(run, SyncRun.Status.FAILED, f"Gave up after {MAX_TASK_ATTEMPTS} attempts.")
        return run
    try:
        parts = _plan(run, provider, streams)
    except Exception as exc:
        ref = log_internal(exc, f"sync run {run_id}: planning failed")
        close_run(run, SyncRun.Status.FAILED, f"{internal_message()} Reference: {ref}.")
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
                send_on_commit(canvas)
            # A resumed run's joins whose dependencies ended before it stopped.
            joined = send_ready_joins(run.pk, streams, resend=True)
            if canvas is None and not joined:
                claim_finish(run.pk, dispatch=True)
    return run


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
    if finish_claimed or claim_finish(run.pk, dispatch=False):
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
            if all(dep in {p.key for p in placed} or dep not in keys for dep in stream.waits_for):
                placed.append(stream)
                remaining.remove(stream)
                break
    return placed


# --- schedule and recover ---------------------------------------------------------------------
def sync_dispatch_due(*, now: datetime | None = None) -> list[int]:
    """Queue the syncs that are due: a full sync when its time has come, else an events sync.

    The longest-waiting connections first, and at most SYNC_DISPATCH_PER_TICK new runs a tick: a
    hundred accounts due at once are started in the order they have waited, a tick's worth at a
    time, so none is queued behind the others' work again and again (no account starves)."""
    now = now or timezone.now()
    limit = settings.SYNC_DISPATCH_PER_TICK
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
    for connection in due.iterator():
        if len(queued) >= limit:
            break
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
                    send_task(FINISH_TASK, run.pk)
                    recovered.append(run.pk)
                    continue
                send_task(START_TASK, run.pk, run.attempts)
            else:
                send_task(START_TASK, run.pk)
        recovered.append(run.pk)
    if recovered:
        logger.warning("re-queued %d stale sync run(s): %s", len(recovered), recovered)
    return recovered


def sync_prune_history(*, keep_days: int = 90) -> int:
    cutoff = timezone.now() - timedelta(days=keep_days)
    deleted, _ = SyncRun.objects.filter(finished_at__lt=cutoff).exclude(status__in=SyncRun.ACTIVE).delete()
    return deleted
