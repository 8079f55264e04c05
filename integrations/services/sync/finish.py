"""A run's finish (the canvas's callback): claimed by the task that ends last, it runs the
streams' finish steps, refreshes the connection's read models, sets the run's and the connection's
status and sends sync_run_finished."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from integrations.exceptions import ProviderError
from integrations.models import Connection, SyncRun, SyncTask
from integrations.providers import Stream, registry
from integrations.services.read_models import read_models_refresh
from integrations.services.sync.common import (
    FINISH_TASK,
    internal_message,
    log_internal,
    logger,
    send_task,
    streams_for,
)
from integrations.signals import sync_run_finished
from integrations.sync.context import StreamContext, refresh_summary


# --- finish ----------------------------------------------------------------------------------
def claim_finish(run_id: int, dispatch: bool) -> bool:
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
            send_task(FINISH_TASK, run_id)
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
    _refresh_read_models(run, provider.streams)
    run.refresh_from_db()
    if run.stop_reason:
        reconnect = run.stop_reason == SyncRun.StopReason.RECONNECT
        return close_run(run, SyncRun.Status.FAILED, run.error_message, reconnect=reconnect)
    failed = [s for s in streams if statuses.get(s.key) == SyncTask.Status.FAILED]
    if not failed:
        return close_run(run, SyncRun.Status.SUCCEEDED, "")
    message = " ".join(_stream_error(s.label, run.streams.get(s.key, {})) for s in failed)
    required = [s for s in failed if not s.optional]
    return close_run(run, SyncRun.Status.FAILED if required else SyncRun.Status.PARTIAL, message)


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
        error_ref = log_internal(exc, f"sync run {run.pk}: finish step of {stream.key} failed")
        error = internal_message()
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


def close_run(run: SyncRun, status: str, message: str, *, reconnect: bool = False) -> SyncRun:
    """End the run (no task of it is left running) and set the connection's status from it."""
    now = timezone.now()
    connection = run.connection
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
    # A receiver's failure (an alert channel, say) must not fail a finished sync.
    for receiver, result in sync_run_finished.send_robust(sender=SyncRun, run=run):
        if isinstance(result, Exception):
            logger.error("sync_run_finished receiver %r failed", receiver, exc_info=result)
    return run


def _refresh_read_models(run: SyncRun, streams: tuple[Stream, ...] | list[Stream]) -> None:
    """The connection's read models, before the run's status says it is done (so a green check
    never sits beside stale counts). The events the run's event streams stored move the event
    count without a recount; after an events-only run, people's latest use is folded in from the
    windows the run fetched. Read models are derived data: their failure is logged, not the run's."""
    event_keys = {s.key for s in streams if s.kind == "events"}
    states = {k: v for k, v in (run.streams or {}).items() if k in event_keys and isinstance(v, dict)}
    added = sum(int(state.get("created") or 0) for state in states.values())
    uses_since = None
    if run.kind == SyncRun.Kind.EVENTS and states:
        starts = [_window_start(state) for state in states.values()]
        if all(starts):
            uses_since = min(s for s in starts if s is not None)
    try:
        read_models_refresh(connection=run.connection, events_added=added, uses_since=uses_since)
    except Exception:
        logger.exception("refreshing the read models after sync run %s failed", run.pk)


def _window_start(state: dict[str, Any]) -> datetime | None:
    window = state.get("window")
    if not isinstance(window, list | tuple) or len(window) != 2 or not window[0]:
        return None
    try:
        return datetime.fromisoformat(str(window[0]))
    except ValueError:
        return None
