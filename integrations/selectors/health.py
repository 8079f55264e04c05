"""How each connection is doing, derived from its latest sync runs (never from a hand-kept flag).

Every badge the dashboard shows about a connection — its status, each stream, each capability —
comes from here: the newest outcome of every stream across the connection's recent runs (a usage
sync carries only the event streams, a full sync all of them), the newest run, and the active one.
A stream that failed in its latest run is a problem until a later run succeeds with it; a capability
provided by a failing stream is "Failing", not "Available".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import F, Window
from django.db.models.functions import RowNumber

from integrations.models import Connection, SyncRun
from integrations.providers import CapabilityStatus, registry

# Runs read per connection: enough to find the latest outcome of the full-sync streams behind a
# day of hourly usage syncs.
RECENT_RUNS = 40
TERMINAL = ("succeeded", "failed", "skipped")


@dataclass(frozen=True)
class StreamOutcome:
    """The newest finished outcome of one stream, and when it last succeeded."""

    key: str
    label: str
    status: str  # succeeded | failed | skipped | never
    error: str = ""
    error_ref: str = ""
    at: datetime | None = None
    last_success_at: datetime | None = None


@dataclass(frozen=True)
class Problem:
    """Something the admin should know: what failed, why, what to do, and the log reference."""

    title: str
    cause: str
    advice: str = ""
    ref: str = ""
    since: datetime | None = None
    tone: str = "bad"


@dataclass(frozen=True)
class CapabilityCell:
    """One capability of one connection, as the capabilities table shows it."""

    tone: str  # ok | warn | bad | pending | off
    label: str
    reason: str = ""
    ref: str = ""
    since: datetime | None = None

    @property
    def available(self) -> bool:
        return self.tone == "ok"


@dataclass
class ConnectionHealth:
    tone: str  # ok | warn | bad | pending | off
    label: str
    icon: str
    problems: list[Problem] = field(default_factory=list)
    streams: dict[str, StreamOutcome] = field(default_factory=dict)
    last_run: SyncRun | None = None
    active_run: SyncRun | None = None
    # The newest run that succeeded in full (a partial run is not one).
    last_complete_at: datetime | None = None

    @property
    def run_status(self) -> str:
        """The active run's status, else the latest run's ("none" before the first)."""
        run = self.active_run or self.last_run
        return run.status if run else "none"

    @property
    def failing_streams(self) -> list[StreamOutcome]:
        return [s for s in self.streams.values() if s.status == "failed"]


# --- messages ----------------------------------------------------------------------------------
_WORKER_LOG_HINT = re.compile(r"\s*\((?:see|check) the worker log\)", re.IGNORECASE)
_INTERNAL = re.compile(r"\binternal error\b", re.IGNORECASE)


def error_cause(message: str) -> str:
    """The cause as the admin reads it: without advice they cannot follow (the worker log is the
    operator's), one sentence, no doubled punctuation."""
    text = _WORKER_LOG_HINT.sub("", " ".join(str(message or "").split()))
    if _INTERNAL.search(text) and len(text) < 90:
        text = "torii hit an unexpected error while syncing this data"
    text = re.sub(r"\s*([.;,:!?])(?:\s*[.;,:])+", r"\1", text).strip(" ;,:")
    if text and text[-1] not in ".!?…":
        text += "."
    return text


def error_advice(message: str, *, ref: str, optional: bool) -> str:
    """What the admin can do about a failed stream."""
    if _INTERNAL.search(message or ""):
        advice = "Nothing to change on your side: the next sync tries again."
        if ref:
            advice += (
                " If it keeps failing, send the reference to whoever runs torii; it finds the log entry."
            )
        return advice
    if optional:
        return "The other data keeps syncing; the next sync tries this again."
    return "The next sync tries again; Sync now retries it at once."


# --- reading runs ------------------------------------------------------------------------------
def _recent_runs(connection_ids: list[int]) -> dict[int, list[SyncRun]]:
    """The newest RECENT_RUNS runs of each connection, newest first, in one query."""
    if not connection_ids:
        return {}
    ranked = (
        SyncRun.objects.filter(connection_id__in=connection_ids)
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("connection_id")],
                order_by=[F("created_at").desc(), F("id").desc()],
            )
        )
        .only(
            "id",
            "connection_id",
            "kind",
            "trigger",
            "status",
            "created_at",
            "started_at",
            "finished_at",
            "streams",
            "error_message",
            "current_stream",
        )
    )
    out: dict[int, list[SyncRun]] = {pk: [] for pk in connection_ids}
    for run in ranked.filter(rank__lte=RECENT_RUNS).order_by("connection_id", "-created_at", "-id"):
        out[run.connection_id].append(run)
    return out


def _labels(provider_key: str) -> tuple[dict[str, str], set[str]]:
    try:
        provider = registry.get(provider_key)
    except LookupError:
        return {}, set()
    return {s.key: s.label for s in provider.streams}, {s.key for s in provider.streams if s.optional}


def stream_outcomes(connection: Connection, runs: list[SyncRun]) -> dict[str, StreamOutcome]:
    """The newest finished outcome of every declared stream (`never` when none ran to an end)."""
    labels, _ = _labels(connection.provider)
    latest: dict[str, dict[str, Any]] = {}
    success: dict[str, datetime | None] = {}
    for run in runs:  # newest first
        streams = run.streams if isinstance(run.streams, dict) else {}
        for key, state in streams.items():
            if not isinstance(state, dict):
                continue
            status = str(state.get("status") or "")
            if status not in TERMINAL:
                continue
            when = run.finished_at or run.created_at
            if key not in latest:
                latest[key] = {**state, "at": when}
            if status == "succeeded" and key not in success:
                success[key] = when
    out: dict[str, StreamOutcome] = {}
    for key in [*labels, *(k for k in latest if k not in labels)]:
        state = latest.get(key)
        label = labels.get(key) or str((state or {}).get("label") or key)
        if state is None:
            out[key] = StreamOutcome(key=key, label=label, status="never")
            continue
        out[key] = StreamOutcome(
            key=key,
            label=label,
            status=str(state.get("status")),
            error=str(state.get("error") or ""),
            error_ref=str(state.get("error_ref") or ""),
            at=state["at"],
            last_success_at=success.get(key),
        )
    return out


def _health(connection: Connection, runs: list[SyncRun]) -> ConnectionHealth:
    active = next((r for r in runs if r.status in SyncRun.ACTIVE), None)
    finished = [r for r in runs if r.status not in SyncRun.ACTIVE]
    last = finished[0] if finished else None
    complete = next((r for r in finished if r.status == SyncRun.Status.SUCCEEDED), None)
    streams = stream_outcomes(connection, runs)
    _, optional = _labels(connection.provider)
    problems = [
        Problem(
            title=f"{s.label}: failed",
            cause=error_cause(s.error) or "The sync of this data failed.",
            advice=error_advice(s.error, ref=s.error_ref, optional=s.key in optional),
            ref=s.error_ref,
            since=s.at,
            tone="warn" if s.key in optional else "bad",
        )
        for s in streams.values()
        if s.status == "failed"
    ]
    health = ConnectionHealth(
        tone="ok",
        label="Connected",
        icon="circle-check",
        problems=problems,
        streams=streams,
        last_run=last,
        active_run=active,
        last_complete_at=(complete.finished_at or complete.created_at) if complete else None,
    )
    status = connection.status
    if status == Connection.Status.DISCONNECTED:
        health.tone, health.label, health.icon = "off", "Disconnected", "unplug"
        health.problems = []
        return health
    if status == Connection.Status.NEEDS_RECONNECT:
        health.tone, health.label, health.icon = "bad", "Reconnect", "key-round"
        health.problems.insert(
            0,
            Problem(
                title="The API key was rejected",
                cause=error_cause(connection.status_message) or "The account refused the stored API key.",
                advice="Rotate the key with a valid one; syncs are paused until then.",
            ),
        )
        return health
    if last is None:
        if active is not None or status == Connection.Status.PENDING:
            health.tone, health.label, health.icon = "pending", "Connecting…", "loader-circle"
        else:
            health.tone, health.label, health.icon = "off", "Not synced yet", "circle-dashed"
        return health
    if last.status == SyncRun.Status.FAILED and not any(p.tone == "bad" for p in problems):
        # The run failed as a whole (no stream says why): its own message is the cause.
        health.problems.insert(
            0,
            Problem(
                title="The latest sync failed",
                cause=error_cause(last.error_message) or "The sync stopped before it finished.",
                advice="The next scheduled sync tries again; Sync now retries it at once.",
                since=last.finished_at,
            ),
        )
    if any(p.tone == "bad" for p in health.problems):
        health.tone, health.label, health.icon = "bad", "Needs attention", "circle-x"
    elif health.problems:
        n = len(health.problems)
        health.tone, health.label, health.icon = (
            "warn",
            f"Partial: {n} stream{'s' if n != 1 else ''} failing",
            "triangle-alert",
        )
    return health


def connection_health_map(connections: Iterable[Connection]) -> dict[int, ConnectionHealth]:
    """Health of each connection, from its recent runs (one query for all of them)."""
    conns = list(connections)
    runs = _recent_runs([c.pk for c in conns])
    return {c.pk: _health(c, runs.get(c.pk, [])) for c in conns}


def connection_health(connection: Connection) -> ConnectionHealth:
    return connection_health_map([connection])[connection.pk]


# --- capabilities ------------------------------------------------------------------------------
def capability_cell(
    status: CapabilityStatus, *, provider_key: str, health: ConnectionHealth
) -> CapabilityCell:
    """A capability of one connection: what the provider and the connection allow, then what the
    latest outcome of the streams that provide it says."""
    if not status.supported:
        return CapabilityCell("off", "Not supported", status.reason)
    if not status.available:
        pending = status.reason.startswith("Not detected yet")
        return CapabilityCell("pending" if pending else "off", "Not available", status.reason)
    try:
        provider = registry.get(provider_key)
    except LookupError:
        return CapabilityCell("ok", "Available")
    providing = [
        health.streams[s.key]
        for s in provider.streams
        if status.capability.key in s.provides and s.key in health.streams
    ]
    if not providing:  # an action, or nothing syncs it: available is what the declarations say
        return CapabilityCell("ok", "Available")
    failed = [s for s in providing if s.status == "failed"]
    if failed:
        first = failed[0]
        partly = len(failed) < len(providing) and any(s.status == "succeeded" for s in providing)
        reason = "; ".join(f"{s.label}: {error_cause(s.error)}" for s in failed)
        return CapabilityCell(
            "warn" if partly else "bad",
            "Partly failing" if partly else "Failing",
            reason,
            ref=first.error_ref,
            since=first.at,
        )
    if all(s.status == "never" for s in providing):
        return CapabilityCell("pending", "Not synced yet", "Available after the first sync finishes.")
    if not any(s.status == "succeeded" for s in providing):
        skipped = next((s for s in providing if s.status == "skipped"), None)
        return CapabilityCell("off", "Skipped", error_cause(skipped.error) if skipped else "")
    newest = max((s.last_success_at for s in providing if s.last_success_at), default=None)
    return CapabilityCell("ok", "Available", since=newest)
