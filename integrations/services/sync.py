"""Syncs: request one, execute it (stream by stream, resumable), schedule and recover them.

Concurrency: at most one active SyncRun per connection (a partial unique constraint), and only the
holder of a run's lease executes it. The lease is a token plus a heartbeat; a heartbeat older than
SYNC_STALE_AFTER means the worker died (SIGKILL, lost node), and `sync_recover_stale` hands the run
to a new task, which resumes from the streams' checkpoints. Because the lock lives in the database,
it outlives any Celery time limit or broker redelivery.
"""

from __future__ import annotations

import copy
import gc
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from integrations import bulk
from integrations.models import Connection, SyncCheckpoint, SyncRun
from integrations.providers import Provider, Stream, registry
from integrations.services.audit import audit_connection_event

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 20  # resumes after a dead worker count too
_BESIDE = "integrations.sync.beside"  # SyncContext.shared: progress of the concurrent streams
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


class StopRequested(Exception):
    """The other half of a run ended it (failure, retry, lost lease): stop at the next page."""


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
        }
        for s in streams_for(provider, kind)
    }


def streams_for(provider: Provider, kind: str) -> list[Stream]:
    if kind == SyncRun.Kind.EVENTS:
        return [s for s in provider.streams if s.kind == "events"]
    return list(provider.streams)


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
    try:
        with transaction.atomic():
            run = SyncRun.objects.create(
                connection=connection,
                kind=kind,
                trigger=trigger,
                requested_by=user,
                streams=_initial_streams(provider, kind),
            )
            if trigger == SyncRun.Trigger.MANUAL and user is not None:
                audit_connection_event(
                    connection=connection,
                    action="sync.started",
                    actor=user,
                    parameters={"kind": kind, "sync_run": run.pk},
                )
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
    # Shared by the contexts of one run when streams run concurrently: run.streams and the
    # connection's capabilities are changed and saved under it; `stop` ends the other thread.
    lock: threading.RLock = field(default_factory=threading.RLock)
    stop: threading.Event = field(default_factory=threading.Event)
    # Run-scoped helpers one stream starts for a later one (e.g. a read-ahead thread); anything
    # with a close() here is closed when the run's execution ends, however it ends.
    shared: dict[str, Any] = field(default_factory=dict)
    # The dashboard cache's data version before and just after this attempt marked its start
    # (selectors.common.data_version): what _finish may carry the cached aggregates forward from.
    dashboard_versions: tuple[str | None, str | None] = (None, None)

    def beside_done(self, key: str) -> bool:
        """False while stream `key` is still running in this run's concurrent thread (its `run`
        step); True otherwise, including when there is no such thread or stream."""
        progress = self.shared.get(_BESIDE)
        return progress is None or progress.ended or progress.is_done((key,))

    def wait_beside(self, key: str, tick: Callable[[], Any] | None = None, poll: float = 1.0) -> None:
        """Wait until beside_done(key), keeping the run's heartbeat meanwhile (progress() also
        raises StopRequested when the run is told to stop) and calling `tick` about every `poll`
        seconds (work that can be done ahead while waiting)."""
        while not self.beside_done(key):
            self.progress()
            if tick is not None:
                tick()
            progress = self.shared.get(_BESIDE)
            if progress is not None:
                progress.wait((key,), timeout=poll)

    def close_shared(self) -> None:
        for helper in list(self.shared.values()):
            close = getattr(helper, "close", None)
            if close:
                close()
        self.shared.clear()

    @property
    def counters(self) -> dict[str, Any]:
        return self.run.streams[self.stream_key]

    def add(self, stream: str | None = None, **amounts: int) -> None:
        """Add to this stream's counters (or to `stream`'s, from a helper that outlives this
        context's current stream)."""
        with self.lock:
            c = self.run.streams.setdefault(stream, {}) if stream else self.counters
            for k, v in amounts.items():
                c[k] = c.get(k, 0) + v

    def note(self, **values: Any) -> None:
        with self.lock:
            self.counters.update(values)

    def checkpoint(self, stream: str | None = None) -> dict[str, Any]:
        row = SyncCheckpoint.objects.filter(
            connection=self.connection, stream=stream or self.stream_key
        ).first()
        return dict(row.state) if row else {}

    def hold_connection(self) -> None:
        """Call inside a transaction that writes AppUser or UsageEvent rows, before writing them
        (see bulk.hold_connection); stops the run if the connection was deleted."""
        if not bulk.hold_connection(self.connection.pk):
            raise LeaseLost(f"sync run {self.run.pk}: the connection was deleted")

    def save_checkpoint(self, state: dict[str, Any], stream: str | None = None) -> None:
        """Call inside the transaction that wrote the rows the checkpoint describes."""
        SyncCheckpoint.objects.update_or_create(
            connection=self.connection, stream=stream or self.stream_key, defaults={"state": state}
        )

    def detect(self, **flags: Any) -> None:
        with self.lock:
            caps = {**(self.connection.capabilities or {}), **flags}
            if caps != self.connection.capabilities:
                self.connection.capabilities = caps
                Connection.objects.filter(pk=self.connection.pk).update(capabilities=caps)

    def set_state(self, **values: Any) -> dict[str, Any]:
        """Update this stream's entry in run.streams (created if missing); returns it."""
        with self.lock:
            state = self.run.streams.setdefault(self.stream_key, {"status": "pending"})
            state.update(values)
            return state

    def progress(self, force: bool = False) -> None:
        """Persist counters and the heartbeat (at most once a second), checking the lease."""
        if self.stop.is_set():
            raise StopRequested()
        now_mono = time.monotonic()
        if not force and now_mono - self._last_progress < PROGRESS_EVERY_SECONDS:
            return
        self._last_progress = now_mono
        with self.lock:
            streams = copy.deepcopy(self.run.streams)
            current = self.stream_key
        updated = SyncRun.objects.filter(
            pk=self.run.pk, lease=self.lease, status=SyncRun.Status.RUNNING
        ).update(heartbeat_at=timezone.now(), streams=streams, current_stream=current)
        if not updated:
            raise LeaseLost(f"sync run {self.run.pk} was taken over or cancelled")


def _acquire(run_id: int) -> tuple[SyncRun, str] | None:
    """Take the run's lease if it is queued, or running with a stale heartbeat."""
    lease = uuid.uuid4().hex
    stale_before = timezone.now() - settings.SYNC_STALE_AFTER
    now = timezone.now()
    taken = (
        SyncRun.objects.filter(pk=run_id)
        .filter(
            # Queued, and not parked until a later time (a retry waiting for Retry-After)...
            Q(status=SyncRun.Status.QUEUED) & (Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lte=now))
            # ...or running under a worker whose heartbeat stopped.
            | Q(status=SyncRun.Status.RUNNING, heartbeat_at__lt=stale_before)
            | Q(status=SyncRun.Status.RUNNING, heartbeat_at__isnull=True)
        )
        .update(status=SyncRun.Status.RUNNING, lease=lease, heartbeat_at=now, attempts=F("attempts") + 1)
    )
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
    version_before = _dashboard_version()
    Connection.objects.filter(pk=connection.pk).update(last_sync_at=timezone.now())
    versions = (version_before, _dashboard_version() if version_before else None)
    try:
        client = provider.get_client(connection)
    except Exception as exc:  # credentials unreadable: a configuration problem, not upstream
        logger.error("sync run %s: cannot build a client: %s", run_id, type(exc).__name__)
        return _finish(
            run, lease, SyncRun.Status.FAILED, str(exc), connection_status=Connection.Status.FAILED
        )
    ctx = SyncContext(
        run=run,
        connection=connection,
        client=client,
        provider=provider,
        lease=lease,
        dashboard_versions=versions,
    )
    # A big sync allocates millions of short-lived objects (decoded JSON, rows); with the default
    # thresholds the cyclic collector runs thousands of times and walks every live object each
    # time. Collect far less often for the length of the run.
    thresholds = gc.get_threshold()
    gc.set_threshold(100_000, 50, 100)
    try:
        return _execute_streams(run, lease, ctx)
    finally:
        gc.set_threshold(*thresholds)


@dataclass
class _Outcome:
    """How a run ends early: a rejected key (reconnect) or a required stream that failed."""

    reconnect: bool
    message: str


def _run_stream(
    ctx: SyncContext, stream: Stream, step: Callable[[SyncContext], Any], *, last: bool
) -> _Outcome | None:
    """Run one step of one stream with the run's error policy. Raises RetryLater / LeaseLost /
    StopRequested; returns an outcome when the run must end."""
    from jumpcloud import errors as jc_errors  # provider errors are mapped below by family

    ctx.stream_key = stream.key
    state = ctx.set_state(label=stream.label, status="running", error="")
    with ctx.lock:
        state.setdefault("started_at", timezone.now().isoformat())
    ctx.progress(force=True)
    try:
        step(ctx)
    except StreamSkipped as exc:
        ctx.set_state(status="skipped", error=str(exc))
    except jc_errors.InvalidApiKey as exc:
        ctx.set_state(status="failed", error=exc.message)
        return _Outcome(reconnect=True, message=exc.message)
    except (jc_errors.RateLimited, jc_errors.UpstreamError) as exc:
        ctx.set_state(status="pending", error=exc.message)
        raise RetryLater(exc.message, countdown=_retry_countdown(ctx.run, exc)) from exc
    except jc_errors.JumpCloudError as exc:
        ctx.set_state(status="failed", error=exc.message)
        if not stream.optional:
            return _Outcome(reconnect=False, message=f"{stream.label}: {exc.message}")
    except (LeaseLost, RetryLater, StopRequested):
        raise
    except DatabaseError as exc:
        # The database went away or refused a write: the stream's last page was rolled
        # back with its checkpoint, so try again later from there.
        ctx.set_state(status="pending", error="Database error; retrying.")
        raise RetryLater(f"database error: {type(exc).__name__}", countdown=60) from exc
    except Exception:
        logger.exception("sync run %s: stream %s crashed", ctx.run.pk, stream.key)
        ctx.set_state(status="failed", error="Internal error while syncing this stream (see the worker log).")
        if not stream.optional:
            return _Outcome(reconnect=False, message=f"{stream.label}: internal error")
    else:
        # A stream with a finish step is done only once that step has run too.
        ctx.set_state(status="succeeded" if last else "running")
    if ctx.run.streams[stream.key].get("status") != "running":
        ctx.set_state(finished_at=timezone.now().isoformat(), peak_rss_mb=peak_rss_mb())
    ctx.progress(force=True)
    return None


def _pending(run: SyncRun, streams: list[Stream]) -> list[Stream]:
    """The streams still to run (a resumed run skips those that finished)."""
    return [s for s in streams if run.streams.get(s.key, {}).get("status") not in ("succeeded", "skipped")]


def _run_streams(
    ctx: SyncContext,
    streams: list[Stream],
    on_done: Callable[[str], None] = lambda key: None,
) -> _Outcome | None:
    for stream in streams:
        outcome = _run_stream(ctx, stream, stream.run, last=stream.finish is None)
        if outcome is not None:
            return outcome
        on_done(stream.key)
    return None


class _Beside(threading.Thread):
    """Runs the concurrent streams of a run with their own client and database connection, then
    those of their finish steps whose inventory streams are done (waiting for them)."""

    def __init__(self, ctx: SyncContext, streams: list[Stream], inventory: _Progress, progress: _Progress):
        super().__init__(name=f"sync-{ctx.run.pk}-events", daemon=True)
        self.ctx, self.streams, self.inventory, self.progress = ctx, streams, inventory, progress
        self.outcome: _Outcome | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.outcome = self._run_all()
            if self.outcome is not None:
                self.ctx.stop.set()  # e.g. the key was rejected: the inventory stops too
        except StopRequested:
            pass
        except BaseException as exc:  # handed to the main thread, which decides the run's fate
            self.error = exc
            self.ctx.stop.set()
        finally:
            self.progress.end()
            close = getattr(self.ctx.client, "close", None)
            if close:
                close()
            connections.close_all()  # this thread's connections only

    def _run_all(self) -> _Outcome | None:
        """Each stream, then its finish step at once if its inventory is done; the finish steps
        still waiting once what they wait for is done (unless the worker's thread, done with the
        inventory, has taken one meanwhile: see _finish_beside)."""
        waiting: list[tuple[Stream, Callable[[SyncContext], Any]]] = []
        for index, stream in enumerate(self.streams):
            outcome = _run_stream(self.ctx, stream, stream.run, last=stream.finish is None)
            if outcome is not None:
                return outcome
            self.progress.done(stream.key)
            finish = stream.finish
            if finish is not None and stream.finish_waits_for and _finish_due(self.ctx.run, stream):
                # Deferred while what it needs is still being written; and, once the whole
                # inventory is done, left to the worker's thread (idle then: see _finish_beside)
                # while this thread goes on with its next stream.
                more = index < len(self.streams) - 1
                if not self.inventory.is_done(stream.finish_waits_for) or (
                    more and self.inventory.all_done()
                ):
                    waiting.append((stream, finish))
                    continue
                outcome = _run_claimed_finish(self.ctx, stream, finish)
                if outcome is not None:
                    return outcome
        for stream, finish in waiting:
            if not self.inventory.wait_for(stream.finish_waits_for, self.ctx.stop):
                return None  # the inventory ended early: the run's outcome decides what follows
            outcome = _run_claimed_finish(self.ctx, stream, finish)
            if outcome is not None:
                return outcome
        return None


_FINISH_CLAIMS = "integrations.sync.finish_claims"  # SyncContext.shared: finish steps taken by a thread


def _finish_due(run: SyncRun, stream: Stream) -> bool:
    """The stream's run step is done and its finish step has not run yet (the stream stays
    "running" between the two)."""
    return run.streams.get(stream.key, {}).get("status") == "running"


def _run_claimed_finish(
    ctx: SyncContext, stream: Stream, finish: Callable[[SyncContext], Any]
) -> _Outcome | None:
    """Run stream's finish step in this thread unless the other thread has taken it already."""
    with ctx.lock:
        claims = ctx.shared.setdefault(_FINISH_CLAIMS, set())
        if stream.key in claims:
            return None
        claims.add(stream.key)
    return _run_stream(ctx, stream, finish, last=True)


def _finish_beside(
    ctx: SyncContext, helper: _Beside, beside: list[Stream], progress: _Progress
) -> _Outcome | None:
    """The worker's thread, done with the inventory, runs the concurrent streams' finish steps that
    are ready (their `run` is done) while the concurrent thread is still busy with another stream,
    instead of waiting for it; the concurrent thread skips what was taken here."""
    pending = [s for s in beside if s.finish is not None and s.finish_waits_for]
    while helper.is_alive() and pending and not ctx.stop.is_set():
        for stream in list(pending):
            if not progress.is_done((stream.key,)):
                continue
            pending.remove(stream)
            finish = stream.finish
            if finish is not None and _finish_due(ctx.run, stream):
                outcome = _run_claimed_finish(ctx, stream, finish)
                if outcome is not None:
                    return outcome
        helper.join(timeout=0.2)
    return None


class _Progress:
    """Which streams of one side of this execution are done (the inventory in the worker's thread,
    or the concurrent streams beside it); the other side waits on it."""

    def __init__(self, keys: set[str]):
        self._pending = set(keys)
        self._ended = False
        self._cond = threading.Condition()

    def done(self, key: str) -> None:
        with self._cond:
            self._pending.discard(key)
            self._cond.notify_all()

    def end(self) -> None:
        """This side is over (finished or not): nobody waits any longer."""
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def is_done(self, keys: tuple[str, ...]) -> bool:
        with self._cond:
            return not self._pending.intersection(keys)

    def wait(self, keys: tuple[str, ...], timeout: float) -> None:
        """Return once every stream in `keys` is done or this side ended, or after `timeout`."""
        with self._cond:
            if self._pending.intersection(keys) and not self._ended:
                self._cond.wait(timeout)

    def all_done(self) -> bool:
        with self._cond:
            return not self._pending

    @property
    def ended(self) -> bool:
        return self._ended

    def wait_for(self, keys: tuple[str, ...], stop: threading.Event) -> bool:
        """True once every stream in `keys` is done (streams not in this execution count as done);
        False when this side ended without them, or on `stop`."""
        with self._cond:
            while not stop.is_set():
                if not self._pending.intersection(keys):
                    return True
                if self._ended:
                    return False
                self._cond.wait(timeout=0.5)
            return False


def concurrency_enabled() -> bool:
    """May a run use more than one thread (SYNC_CONCURRENT_STREAMS, PostgreSQL only)?"""
    return (
        bool(getattr(settings, "SYNC_CONCURRENT_STREAMS", False))
        and connections["default"].vendor == "postgresql"
    )


def _execute_streams(run: SyncRun, lease: str, ctx: SyncContext) -> SyncRun | None:
    """Inventory streams in order; concurrent streams (events) beside them in a thread once what
    they wait for is done (or after them, without concurrency); then the finish steps."""
    run_id, provider, client = run.pk, ctx.provider, ctx.client
    streams = _pending(run, streams_for(provider, run.kind))
    serial = [s for s in streams if not s.concurrent]
    beside = [s for s in streams if s.concurrent]
    needed = {key for s in beside for key in s.waits_for if key in {x.key for x in serial}}
    inventory = _Progress({s.key for s in serial})
    beside_progress = _Progress({s.key for s in beside})
    helper: _Beside | None = None
    outcome: _Outcome | None = None

    def start_beside(done_key: str | None) -> None:
        nonlocal helper
        needed.discard(done_key or "")
        if done_key:
            inventory.done(done_key)
        if helper is None and beside and serial and not needed and concurrency_enabled():
            helper = _Beside(
                replace(ctx, client=provider.get_client(ctx.connection), stream_key=""),
                beside,
                inventory,
                beside_progress,
            )
            ctx.shared[_BESIDE] = beside_progress
            helper.start()

    try:
        try:
            start_beside(None)
            outcome = _run_streams(ctx, serial, on_done=start_beside)
            if outcome is None and helper is not None:
                inventory.end()
                outcome = _finish_beside(ctx, helper, beside, beside_progress)
        except StopRequested:
            pass  # the concurrent streams ended the run; their outcome or error is taken below
        except BaseException:
            ctx.stop.set()
            raise
        finally:
            if outcome is not None:
                ctx.stop.set()
            inventory.end()
            if helper is not None:
                helper.join()
            ctx.close_shared()
        if helper is not None:
            if helper.error is not None:
                raise helper.error
            outcome = outcome or helper.outcome
        elif outcome is None:
            outcome = _run_streams(ctx, beside)
        if outcome is None:
            for stream in beside:
                if stream.finish is not None and _finish_due(run, stream):
                    ctx.stream_key = stream.key
                    outcome = _run_stream(ctx, stream, stream.finish, last=True)
                    if outcome is not None:
                        break
    except RetryLater as exc:
        _park_for_retry(run, lease, exc)
        raise
    except LeaseLost:
        logger.warning("sync run %s: lease lost; another worker continues it", run_id)
        return None
    client_close = getattr(client, "close", None)
    if client_close:
        client_close()
    if outcome is not None and outcome.reconnect:
        return _finish(
            run,
            lease,
            SyncRun.Status.FAILED,
            outcome.message,
            connection_status=Connection.Status.NEEDS_RECONNECT,
            ctx=ctx,
        )
    if outcome is not None:
        return _finish(run, lease, SyncRun.Status.FAILED, outcome.message, ctx=ctx)
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
    run: SyncRun,
    lease: str,
    status: str,
    message: str,
    *,
    connection_status: str | None = None,
    ctx: SyncContext | None = None,
) -> SyncRun:
    now = timezone.now()
    connection = run.connection
    warm = status in (SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL)
    unchanged_since = _unchanged_since(run, ctx) if warm else None
    with transaction.atomic():
        updated = SyncRun.objects.filter(pk=run.pk, lease=lease).update(
            status=status,
            finished_at=now,
            error_message=message[:4000],
            streams=run.streams,
            current_stream="",
            heartbeat_at=now,
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
        Connection.objects.filter(pk=connection.pk).exclude(status=Connection.Status.DISCONNECTED).update(
            **fields
        )
    run.refresh_from_db()
    logger.info("sync run %s finished: %s", run.pk, status)
    if warm:
        _warm_dashboard(unchanged_since)
    return run


def _unchanged_since(run: SyncRun, ctx: SyncContext | None) -> str | None:
    """The data version the dashboard's cached aggregates may be carried forward from: the one
    from before this attempt started, when the run wrote nothing (every stream counted no row
    created, updated or removed; finish steps count theirs as updated) and nothing else moved the
    version meanwhile (an action, another connection's sync). None otherwise: recompute."""
    if ctx is None or None in ctx.dashboard_versions:
        return None
    wrote = any(
        state.get(counter)
        for state in run.streams.values()
        if isinstance(state, dict)
        for counter in ("created", "updated", "removed")
    )
    if wrote or _dashboard_version() != ctx.dashboard_versions[1]:
        return None
    return ctx.dashboard_versions[0]


def _dashboard_version() -> str | None:
    from integrations.selectors.warm import dashboard_version

    try:
        return dashboard_version()
    except Exception:  # a cache problem must never fail a finished sync
        logger.exception("reading the dashboard cache's data version failed")
        return None


def _warm_dashboard(unchanged_since: str | None = None) -> None:
    """Recompute the dashboard's cached aggregates here, off the request path (or carry them
    forward: see dashboard_cache_warm)."""
    from integrations.selectors.warm import dashboard_cache_warm

    try:
        dashboard_cache_warm(unchanged_since=unchanged_since)
    except Exception:  # a cache problem must never fail a finished sync
        logger.exception("warming the dashboard cache failed")


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
            SyncRun.objects.filter(pk=run_id, status=SyncRun.Status.RUNNING).update(
                heartbeat_at=cutoff - timedelta(days=1)
            )
        _enqueue(run_id)
    if ids:
        logger.warning("re-queued %d stale sync run(s): %s", len(ids), ids)
    return ids


def sync_prune_history(*, keep_days: int = 90) -> int:
    cutoff = timezone.now() - timedelta(days=keep_days)
    deleted, _ = SyncRun.objects.filter(finished_at__lt=cutoff).exclude(status__in=SyncRun.ACTIVE).delete()
    return deleted
