"""What a stream function gets: its run, connection, client, counters, checkpoint and heartbeat.

A stream is a plain sequential function of a StreamContext. It knows nothing of the other streams
or of how tasks are scheduled: it reads pages, writes rows with the checkpoint that describes them
in one transaction, and calls progress() now and then.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from django.db import connection as db
from django.db import transaction
from django.utils import timezone

from integrations import bulk
from integrations.models import Connection, SyncCheckpoint, SyncRun, SyncTask
from integrations.providers import Stream

PROGRESS_EVERY_SECONDS = 1.0
COUNTERS = ("fetched", "created", "updated", "removed", "skipped", "pages")


class LeaseLost(Exception):
    """Another worker took this task over (ours was thought dead): stop without writing more."""


class StopRequested(Exception):
    """The run ended meanwhile (cancelled, or another task stopped it: credentials rejected)."""


@dataclass
class StreamContext:
    run: SyncRun
    connection: Connection
    stream: Stream
    client: Any
    task: SyncTask | None = None  # None while the stream plans its parts
    part: str = ""
    _last_progress: float = field(default=0.0)

    # --- counters -------------------------------------------------------------------------------
    @property
    def counters(self) -> dict[str, Any]:
        assert self.task is not None
        return self.task.counters

    def add(self, **amounts: int) -> None:
        """Add to this task's counters (fetched, created, updated, removed, skipped, pages, ...)."""
        counters = self.counters
        for key, value in amounts.items():
            counters[key] = counters.get(key, 0) + value

    def note(self, **values: Any) -> None:
        """Record values that are not sums (a time window, a timing) on this task."""
        self.counters.update(values)

    # --- checkpoints ----------------------------------------------------------------------------
    @property
    def checkpoint_key(self) -> str:
        return f"{self.stream.key}@{self.part}" if self.part else self.stream.key

    def checkpoint(self, key: str | None = None) -> dict[str, Any]:
        row = SyncCheckpoint.objects.filter(
            connection=self.connection, stream=key or self.checkpoint_key
        ).first()
        return dict(row.state) if row else {}

    def save_checkpoint(self, state: dict[str, Any], key: str | None = None) -> None:
        """Call inside the transaction that wrote the rows the checkpoint describes."""
        SyncCheckpoint.objects.update_or_create(
            connection=self.connection, stream=key or self.checkpoint_key, defaults={"state": state}
        )

    def hold_connection(self) -> None:
        """Call inside a transaction that writes AppUser or UsageEvent rows, before writing them
        (see bulk.hold_connection); stops the task if the connection was deleted meanwhile."""
        if not bulk.hold_connection(self.connection.pk):
            raise StopRequested(f"sync run {self.run.pk}: the connection was deleted")

    # --- what the account turned out to have ----------------------------------------------------
    def detect(self, **flags: Any) -> None:
        """Merge flags into the connection's detected capabilities (atomically: parts and streams
        of one run detect at the same time)."""
        if all((self.connection.capabilities or {}).get(k) == v for k, v in flags.items()):
            return
        with db.cursor() as cursor:
            cursor.execute(
                "UPDATE integrations_connection SET capabilities = capabilities || %s::jsonb "
                "WHERE id = %s RETURNING capabilities",
                [_json(flags), self.connection.pk],
            )
            row = cursor.fetchone()
        if row:
            self.connection.capabilities = row[0] if isinstance(row[0], dict) else _loads(row[0])

    # --- heartbeat ------------------------------------------------------------------------------
    def progress(self, force: bool = False) -> None:
        """Persist the counters and the heartbeat (at most once a second). Raises LeaseLost when
        another worker took the task over, StopRequested when the run ended meanwhile."""
        now_mono = time.monotonic()
        if not force and now_mono - self._last_progress < PROGRESS_EVERY_SECONDS:
            return
        self._last_progress = now_mono
        task = self.task
        assert task is not None
        now = timezone.now()
        with transaction.atomic():
            if not SyncTask.objects.filter(
                pk=task.pk, lease=task.lease, status=SyncTask.Status.RUNNING
            ).update(heartbeat_at=now, counters=task.counters):
                raise LeaseLost(f"sync task {task.pk} was taken over")
            live = SyncRun.objects.filter(
                pk=self.run.pk, status=SyncRun.Status.RUNNING, stop_reason=""
            ).update(heartbeat_at=now, current_stream=self.stream.key)
            refresh_summary(self.run.pk, self.stream.key)
        if not live:
            raise StopRequested(f"sync run {self.run.pk} ended")


def stream_summary(label: str, tasks: list[dict[str, Any]]) -> dict[str, Any]:
    """One stream's entry in SyncRun.streams, from its tasks (status, counters, error): the
    dashboard's progress and history read this."""
    summary: dict[str, Any] = {"label": label, **dict.fromkeys(COUNTERS, 0), "error": "", "error_ref": ""}
    statuses = [t["status"] for t in tasks]
    for t in tasks:
        for key, value in (t["counters"] or {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                summary[key] = round(summary.get(key, 0) + value, 2)  # counters and timings add up
            else:
                summary.setdefault(key, value)
        if t["error"] and not summary["error"]:
            summary["error"], summary["error_ref"] = t["error"], t["error_ref"]
    if len(tasks) > 1:
        summary["parts"] = len(tasks)
        summary["parts_done"] = sum(s in SyncTask.DONE for s in statuses)
    summary["status"] = _stream_status(statuses)
    started = [t["started_at"] for t in tasks if t.get("started_at")]
    if started:
        summary["started_at"] = min(started).isoformat()
    finished = [t["finished_at"] for t in tasks if t.get("finished_at")]
    if finished and summary["status"] not in ("pending", "running"):
        summary["finished_at"] = max(finished).isoformat()
    return summary


def _stream_status(statuses: list[str]) -> str:
    S = SyncTask.Status
    if not statuses:
        return S.PENDING
    if S.RUNNING in statuses or (S.PENDING in statuses and any(s in SyncTask.DONE for s in statuses)):
        return S.RUNNING
    if S.PENDING in statuses:
        return S.PENDING
    if S.FAILED in statuses:
        return S.FAILED
    if all(s == S.SKIPPED for s in statuses):
        return S.SKIPPED
    if all(s == S.CANCELLED for s in statuses):
        return S.CANCELLED
    return S.SUCCEEDED


def refresh_summary(run_id: int, stream_key: str) -> None:
    """Write one stream's summary into SyncRun.streams from its tasks. jsonb_set on the row's
    current value: tasks of other streams updating theirs at the same time lose nothing."""
    tasks = [
        dict(row)
        for row in SyncTask.objects.filter(run_id=run_id, stream=stream_key).values(
            "status", "counters", "error", "error_ref", "started_at", "finished_at"
        )
    ]
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT streams -> %s ->> 'label' FROM integrations_syncrun WHERE id = %s", [stream_key, run_id]
        )
        row = cursor.fetchone()
        label = (row[0] if row else None) or stream_key
        cursor.execute(
            "UPDATE integrations_syncrun SET streams = jsonb_set(streams, %s, %s::jsonb) WHERE id = %s",
            [[stream_key], _json(stream_summary(label, tasks)), run_id],
        )


def _json(value: Any) -> str:
    return json.dumps(value, default=str)


def _loads(value: Any) -> dict[str, Any]:
    return dict(json.loads(value))
