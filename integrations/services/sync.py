"""Syncs: request one, execute it (stream by stream, resumable), schedule and recover them.

Concurrency: at most one active SyncRun per connection (a partial unique constraint), and only the
holder of a run's lease executes it. The lease is a token plus a heartbeat; a heartbeat older than
SYNC_STALE_AFTER means the worker died (SIGKILL, lost node), and `sync_recover_stale` hands the run
to a new task, which resumes from the streams' checkpoints. Because the lock lives in the database,
it outlives any Celery time limit or broker redelivery.
"""

from __future__ import annotations

import gc
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from integrations.models import Connection, SyncCheckpoint, SyncRun
from integrations.providers import Provider, Stream, registry
from integrations.services.audit import audit_connection_event

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 20  # resumes after a dead worker count too
PROGRESS_EVERY_SECONDS = 1.0


class SyncAlreadyRunning(Exception):
    def __init__(self, run: SyncRun | None):
        super().__init__("A sync of this connection is already queued or running.")
        self.run = run


class SyncNotAllowed(Exception):
    """The connection cannot sync (disconnected, or its key was rejected)."""


class LeaseLost(Exception):
    """Another worker took this run over (ours was considered dead): stop without writing."""


class RetryLater(Exception):
    """A transient upstream failure: the task retries the run later, from its checkpoints."""

    def __init__(self, message: str, countdown: float):
        super().__init__(message)
        self.countdown = countdown


class StreamSkipped(Exception):
    """A stream cannot run for this account (e.g. no Directory Insights); not an error."""


def peak_rss_mb() -> int | None:
    """This process's peak resident memory since it started its program (VmHWM).

    Not getrusage's ru_maxrss: Linux carries that across fork and exec, so a worker forked from a
    big parent would report the parent's size."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


# --- request ---------------------------------------------------------------------------------
def _initial_streams(provider: Provider, kind: str) -> dict[str, Any]:
    return {
        s.key: {"label": s.label, "status": "pending", "fetched": 0, "created": 0, "updated": 0,
                "removed": 0, "skipped": 0, "pages": 0, "error": ""}
        for s in streams_for(provider, kind)
    }


def streams_for(provider: Provider, kind: str) -> list[Stream]:
    if kind == SyncRun.Kind.EVENTS:
        return [s for s in provider.streams if s.kind == "events"]
    return list(provider.streams)


def sync_run_request(
    *, connection: Connection, kind: str = SyncRun.Kind.FULL, trigger: str = SyncRun.Trigger.MANUAL,
    requested_by: Any = None, enqueue: bool = True,
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
    try:
        with transaction.atomic():
            run = SyncRun.objects.create(
                connection=connection, kind=kind, trigger=trigger, requested_by=user,
                streams=_initial_streams(provider, kind),
            )
            if trigger == SyncRun.Trigger.MANUAL and user is not None:
                audit_connection_event(connection=connection, action="sync.started", actor=user,
                                       parameters={"kind": kind, "sync_run": run.pk})
    except IntegrityError:
        raise SyncAlreadyRunning(connection.sync_runs.filter(status__in=SyncRun.ACTIVE).first()) from None
    if enqueue:
        _enqueue(run.pk)
    return run


def _enqueue(run_id: int, countdown: float = 0) -> None:
    from integrations.tasks import run_sync

    transaction.on_commit(lambda: run_sync.apply_async((run_id,), countdown=countdown or None))


# --- execute ---------------------------------------------------------------------------------
@dataclass
class SyncContext:
    """What a stream function gets: the run, the connection, a client, counters and checkpoints."""

    run: SyncRun
    connection: Connection
    client: Any
    provider: Provider
    lease: str
    stream_key: str = ""
    _last_progress: float = field(default=0.0)

    @property
    def counters(self) -> dict[str, Any]:
        return self.run.streams[self.stream_key]

    def add(self, **amounts: int) -> None:
        c = self.counters
        for k, v in amounts.items():
            c[k] = c.get(k, 0) + v

    def note(self, **values: Any) -> None:
        self.counters.update(values)

    def checkpoint(self, stream: str | None = None) -> dict[str, Any]:
        row = SyncCheckpoint.objects.filter(connection=self.connection, stream=stream or self.stream_key).first()
        return dict(row.state) if row else {}

    def save_checkpoint(self, state: dict[str, Any], stream: str | None = None) -> None:
        """Call inside the transaction that wrote the rows the checkpoint describes."""
        SyncCheckpoint.objects.update_or_create(
            connection=self.connection, stream=stream or self.stream_key, defaults={"state": state}
        )

    def detect(self, **flags: Any) -> None:
        caps = {**(self.connection.capabilities or {}), **flags}
        if caps != self.connection.capabilities:
            self.connection.capabilities = caps
            Connection.objects.filter(pk=self.connection.pk).update(capabilities=caps)

    def progress(self, force: bool = False) -> None:
        """Persist counters and the heartbeat (at most once a second), checking the lease."""
        now_mono = time.monotonic()
        if not force and now_mono - self._last_progress < PROGRESS_EVERY_SECONDS:
            return
        self._last_progress = now_mono
        updated = SyncRun.objects.filter(pk=self.run.pk, lease=self.lease, status=SyncRun.Status.RUNNING).update(
            heartbeat_at=timezone.now(), streams=self.run.streams, current_stream=self.stream_key
        )
        if not updated:
            raise LeaseLost(f"sync run {self.run.pk} was taken over or cancelled")


def _acquire(run_id: int) -> tuple[SyncRun, str] | None:
    """Take the run's lease if it is queued, or running with a stale heartbeat."""
    lease = uuid.uuid4().hex
    stale_before = timezone.now() - settings.SYNC_STALE_AFTER
    now = timezone.now()
    taken = SyncRun.objects.filter(pk=run_id).filter(
        # Queued, and not parked until a later time (a retry waiting for Retry-After)...
        Q(status=SyncRun.Status.QUEUED) & (Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lte=now))
        # ...or running under a worker whose heartbeat stopped.
        | Q(status=SyncRun.Status.RUNNING, heartbeat_at__lt=stale_before)
        | Q(status=SyncRun.Status.RUNNING, heartbeat_at__isnull=True)
    ).update(status=SyncRun.Status.RUNNING, lease=lease, heartbeat_at=now, attempts=F("attempts") + 1)
    if not taken:
        return None
    run = SyncRun.objects.select_related("connection").get(pk=run_id)
    if run.started_at is None:
        SyncRun.objects.filter(pk=run_id).update(started_at=now)
        run.started_at = now
    return run, lease


def sync_run_execute(*, run_id: int) -> SyncRun | None:
    """Run (or resume) one sync. Returns None when another worker holds the run."""
    acquired = _acquire(run_id)
    if acquired is None:
        logger.info("sync run %s is held by another worker or finished; nothing to do", run_id)
        return None
    run, lease = acquired
    connection = run.connection
    if run.attempts > MAX_ATTEMPTS:
        return _finish(run, lease, SyncRun.Status.FAILED, f"Gave up after {MAX_ATTEMPTS} attempts.")
    provider = registry.get(connection.provider)
    Connection.objects.filter(pk=connection.pk).update(last_sync_at=timezone.now())
    try:
        client = provider.get_client(connection)
    except Exception as exc:  # credentials unreadable: a configuration problem, not upstream
        logger.error("sync run %s: cannot build a client: %s", run_id, type(exc).__name__)
        return _finish(run, lease, SyncRun.Status.FAILED, str(exc), connection_status=Connection.Status.FAILED)
    ctx = SyncContext(run=run, connection=connection, client=client, provider=provider, lease=lease)
    # A big sync allocates millions of short-lived objects (decoded JSON, rows); with the default
    # thresholds the cyclic collector runs thousands of times and walks every live object each
    # time. Collect far less often for the length of the run.
    thresholds = gc.get_threshold()
    gc.set_threshold(100_000, 50, 100)
    try:
        return _execute_streams(run, lease, ctx)
    finally:
        gc.set_threshold(*thresholds)


def _execute_streams(run: SyncRun, lease: str, ctx: SyncContext) -> SyncRun | None:
    from jumpcloud import errors as jc_errors  # provider errors are mapped below by family

    run_id, provider, client = run.pk, ctx.provider, ctx.client
    failed_required = ""
    try:
        for stream in streams_for(provider, run.kind):
            state = run.streams.setdefault(stream.key, {"label": stream.label, "status": "pending"})
            if state.get("status") in ("succeeded", "skipped"):
                continue  # resumed run: this stream already finished
            ctx.stream_key = stream.key
            state.update(status="running", error="")
            state.setdefault("started_at", timezone.now().isoformat())
            ctx.progress(force=True)
            try:
                stream.run(ctx)
            except StreamSkipped as exc:
                state.update(status="skipped", error=str(exc))
            except jc_errors.InvalidApiKey as exc:
                state.update(status="failed", error=exc.message)
                return _finish(run, lease, SyncRun.Status.FAILED, exc.message,
                               connection_status=Connection.Status.NEEDS_RECONNECT, ctx=ctx)
            except (jc_errors.RateLimited, jc_errors.UpstreamError) as exc:
                state.update(status="pending", error=exc.message)
                raise RetryLater(exc.message, countdown=_retry_countdown(run, exc)) from exc
            except jc_errors.JumpCloudError as exc:
                state.update(status="failed", error=exc.message)
                if not stream.optional:
                    failed_required = f"{stream.label}: {exc.message}"
                    break
            except (LeaseLost, RetryLater):
                raise
            except DatabaseError as exc:
                # The database went away or refused a write: the stream's last page was rolled
                # back with its checkpoint, so try again later from there.
                state.update(status="pending", error="Database error; retrying.")
                raise RetryLater(f"database error: {type(exc).__name__}", countdown=60) from exc
            except Exception:
                logger.exception("sync run %s: stream %s crashed", run_id, stream.key)
                state.update(status="failed", error="Internal error while syncing this stream (see the worker log).")
                if not stream.optional:
                    failed_required = f"{stream.label}: internal error"
                    break
            else:
                state["status"] = "succeeded"
            state["finished_at"] = timezone.now().isoformat()
            state["peak_rss_mb"] = peak_rss_mb()
            ctx.progress(force=True)
    except RetryLater as exc:
        _park_for_retry(run, lease, exc)
        raise
    except LeaseLost:
        logger.warning("sync run %s: lease lost; another worker continues it", run_id)
        return None
    client_close = getattr(client, "close", None)
    if client_close:
        client_close()
    if failed_required:
        return _finish(run, lease, SyncRun.Status.FAILED, failed_required, ctx=ctx)
    failed = [s for s in run.streams.values() if s.get("status") == "failed"]
    if failed:
        message = "; ".join(f"{s['label']}: {s['error']}" for s in failed)
        return _finish(run, lease, SyncRun.Status.PARTIAL, message, ctx=ctx)
    return _finish(run, lease, SyncRun.Status.SUCCEEDED, "", ctx=ctx)


def _retry_countdown(run: SyncRun, exc: Any) -> float:
    retry_after = getattr(exc, "retry_after", None)
    backoff = min(30 * (2 ** max(run.attempts - 1, 0)), 15 * 60)
    return max(float(retry_after or 0), float(backoff))


def _park_for_retry(run: SyncRun, lease: str, exc: RetryLater) -> None:
    """Give the run back as queued, not to be taken before the retry time (honours Retry-After)."""
    SyncRun.objects.filter(pk=run.pk, lease=lease).update(
        status=SyncRun.Status.QUEUED,
        lease="",
        streams=run.streams,
        heartbeat_at=timezone.now() + timedelta(seconds=exc.countdown),
        error_message=f"Retrying in {int(exc.countdown)} s: {exc}",
    )


def _finish(
    run: SyncRun, lease: str, status: str, message: str, *, connection_status: str | None = None,
    ctx: SyncContext | None = None,
) -> SyncRun:
    now = timezone.now()
    connection = run.connection
    with transaction.atomic():
        updated = SyncRun.objects.filter(pk=run.pk, lease=lease).update(
            status=status, finished_at=now, error_message=message[:4000], streams=run.streams,
            current_stream="", heartbeat_at=now,
        )
        if not updated:
            return run
        fields: dict[str, Any] = {}
        if connection_status is None:
            by_run: dict[str, str] = {
                SyncRun.Status.SUCCEEDED: Connection.Status.CONNECTED,
                SyncRun.Status.PARTIAL: Connection.Status.PARTIAL,
            }
            connection_status = by_run.get(status, Connection.Status.FAILED)
        fields["status"] = connection_status
        fields["status_message"] = message[:4000]
        if status in (SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL):
            fields["last_success_at"] = now
        if connection_status == Connection.Status.NEEDS_RECONNECT:
            fields["next_events_sync_at"] = None
            fields["next_full_sync_at"] = None
        else:
            fields["next_events_sync_at"] = now + timedelta(minutes=connection.events_interval_minutes)
            if run.kind == SyncRun.Kind.FULL or connection.next_full_sync_at is None:
                fields["next_full_sync_at"] = now + timedelta(hours=connection.full_sync_interval_hours)
        # Never resurrect a connection that was disconnected while the run was going.
        Connection.objects.filter(pk=connection.pk).exclude(status=Connection.Status.DISCONNECTED).update(**fields)
    run.refresh_from_db()
    logger.info("sync run %s finished: %s", run.pk, status)
    if status in (SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL):
        _warm_dashboard()
    return run


def _warm_dashboard() -> None:
    """Recompute the dashboard's cached aggregates here, off the request path."""
    from integrations.selectors.warm import dashboard_cache_warm

    try:
        dashboard_cache_warm()
    except Exception:  # a cache problem must never fail a finished sync
        logger.exception("warming the dashboard cache failed")


# --- schedule and recover ---------------------------------------------------------------------
def sync_dispatch_due(*, now: datetime | None = None) -> list[int]:
    """Queue the syncs that are due: a full sync when its time has come, else an events sync."""
    now = now or timezone.now()
    queued: list[int] = []
    due = Connection.objects.exclude(
        status__in=[Connection.Status.DISCONNECTED, Connection.Status.NEEDS_RECONNECT]
    ).exclude(credentials="").filter(
        Q(next_full_sync_at__isnull=True) | Q(next_full_sync_at__lte=now) | Q(next_events_sync_at__lte=now)
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
    """Hand runs whose worker died (stale heartbeat) or whose message was lost to a new task."""
    stale_after = settings.SYNC_STALE_AFTER if stale_after is None else stale_after
    cutoff = timezone.now() - stale_after
    stale = SyncRun.objects.filter(
        Q(status=SyncRun.Status.RUNNING, heartbeat_at__lt=cutoff)
        | Q(status=SyncRun.Status.QUEUED, heartbeat_at__isnull=True, created_at__lt=cutoff)
        | Q(status=SyncRun.Status.QUEUED, heartbeat_at__lt=cutoff)
    )
    ids = list(stale.values_list("pk", flat=True))
    for run_id in ids:
        if stale_after.total_seconds() == 0:
            # Tests and operators may force recovery: make the heartbeat unambiguously stale.
            SyncRun.objects.filter(pk=run_id, status=SyncRun.Status.RUNNING).update(heartbeat_at=cutoff - timedelta(days=1))
        _enqueue(run_id)
    if ids:
        logger.warning("re-queued %d stale sync run(s): %s", len(ids), ids)
    return ids


def sync_prune_history(*, keep_days: int = 90) -> int:
    cutoff = timezone.now() - timedelta(days=keep_days)
    deleted, _ = SyncRun.objects.filter(finished_at__lt=cutoff).exclude(status__in=SyncRun.ACTIVE).delete()
    return deleted
