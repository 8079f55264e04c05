"""Reads about connections: cards for the integrations page, sync progress and history, gaps in
the usage record, capabilities, and what a disconnect would delete."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone

from integrations.models import Application, AppUser, Connection, ConnectionStats, SyncRun, UsageEvent
from integrations.providers import Capability, CapabilityStatus, registry
from integrations.selectors.common import CONNECTION_SUMMARY_FIELDS, usage_available
from integrations.selectors.health import (
    CapabilityCell,
    ConnectionHealth,
    capability_cell,
    connection_health_map,
    error_cause,
)

GAP_LOOKBACK_DAYS = 90
# Upper bound on the run rows read to find gaps: hourly usage syncs for 90 days are ~2,200 rows.
GAP_MAX_RUNS = 5000
STREAM_COUNTERS = ("fetched", "created", "updated", "removed", "skipped", "pages")


# --- data shapes -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Gap:
    """A stretch of time whose usage events a sync failed to fetch and no later run recovered."""

    stream: str
    label: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class ConnectionCounts:
    users: int = 0
    admins_only: int = 0
    apps: int = 0
    events: int = 0
    oldest_event_at: datetime | None = None


@dataclass
class ConnectionCard:
    connection: Connection
    counts: ConnectionCounts
    usage_available: bool
    # False while the first sync has not yet told whether usage events exist.
    usage_detected: bool
    gaps: list[Gap] = field(default_factory=list)
    active_run: SyncRun | None = None
    last_run: SyncRun | None = None
    # Status, problems and per-stream outcomes derived from the latest runs (selectors.health).
    health: ConnectionHealth | None = None


@dataclass(frozen=True)
class StreamProgress:
    key: str
    label: str
    status: str
    fetched: int
    created: int
    updated: int
    removed: int
    skipped: int
    pages: int
    error: str
    error_ref: str
    window_start: datetime | None
    window_end: datetime | None
    is_current: bool


@dataclass(frozen=True)
class CapabilityRow:
    capability: Capability
    supported: CapabilityStatus
    per_connection: list[CapabilityCell]


@dataclass(frozen=True)
class CapabilityTable:
    provider_key: str
    provider_name: str
    connections: list[Connection]
    rows: list[CapabilityRow]


@dataclass(frozen=True)
class ConnectionDataCounts:
    users: int
    apps: int
    assignments: int
    events: int
    sync_runs: int


# --- connections -------------------------------------------------------------------------------
def connection_list() -> list[Connection]:
    """Every connection, live ones first, by name."""
    conns = list(Connection.objects.select_related("created_by").order_by("name", "id"))
    return sorted(conns, key=lambda c: (not c.is_live,))


def connection_queryset() -> QuerySet[Connection]:
    """Every connection by name (the API's list; filters narrow it)."""
    return Connection.objects.all().order_by("name", "id")


def connections_live(*, pk: int | None = None) -> list[Connection]:
    """Connections not disconnected, by name; only the one with `pk` when given."""
    qs = Connection.objects.exclude(status=Connection.Status.DISCONNECTED).order_by("name", "id")
    return list(qs.filter(pk=pk) if pk is not None else qs)


def sync_run_queryset() -> QuerySet[SyncRun]:
    """Sync history, newest first."""
    return SyncRun.objects.select_related("requested_by").order_by("-created_at", "-id")


def connection_choices() -> list[Connection]:
    """Connections for filter drop-downs (only what a label needs)."""
    return list(Connection.objects.only(*CONNECTION_SUMMARY_FIELDS).order_by("name", "id"))


def connected_orgs(*, provider_key: str) -> dict[str, str]:
    """Organizations already connected (live) with this provider: org id → connection name."""
    return dict(
        Connection.objects.filter(provider=provider_key)
        .exclude(status=Connection.Status.DISCONNECTED)
        .exclude(org_id="")
        .values_list("org_id", "name")
    )


def connection_get(pk: int) -> Connection:
    return Connection.objects.select_related("created_by").get(pk=pk)


def _with_run_ids(qs: QuerySet[Connection]) -> QuerySet[Connection]:
    runs = SyncRun.objects.filter(connection=OuterRef("pk")).order_by("-created_at", "-id").values("pk")[:1]
    active = (
        SyncRun.objects.filter(connection=OuterRef("pk"), status__in=SyncRun.ACTIVE)
        .order_by("-created_at", "-id")
        .values("pk")[:1]
    )
    return qs.annotate(last_run_id=Subquery(runs), active_run_id=Subquery(active))


def connection_stats(connections: list[Connection]) -> dict[int, ConnectionStats]:
    """The connections' read models (one query); a connection never refreshed has none."""
    return {
        st.connection_id: st
        for st in ConnectionStats.objects.filter(connection_id__in=[c.pk for c in connections])
    }


def connection_counts(connections: list[Connection]) -> dict[int, ConnectionCounts]:
    """Users, admins without a user account, apps, events and the oldest event, per connection,
    from the read model the sync refreshes (integrations.services.read_models)."""
    stats = connection_stats(connections)
    return {
        c.pk: ConnectionCounts(
            users=st.users,
            admins_only=st.admins_only,
            apps=st.apps,
            events=st.events,
            oldest_event_at=st.oldest_event_at,
        )
        if (st := stats.get(c.pk))
        else ConnectionCounts()
        for c in connections
    }


def connection_cards(*, pk: int | None = None) -> list[ConnectionCard]:
    """Cards for the integrations page (or one connection's page): a fixed number of queries."""
    qs = _with_run_ids(Connection.objects.select_related("created_by").order_by("name", "id"))
    if pk is not None:
        qs = qs.filter(pk=pk)
    connections = sorted(qs, key=lambda c: not c.is_live)
    if not connections:
        return []
    run_ids = {i for c in connections for i in (c.last_run_id, c.active_run_id) if i}  # type: ignore[attr-defined]
    runs = SyncRun.objects.in_bulk(run_ids) if run_ids else {}
    counts = connection_counts(connections)
    gaps = connection_gaps(connections)
    health = connection_health_map(connections)
    cards = []
    for c in connections:
        detected = c.capabilities or {}
        cards.append(
            ConnectionCard(
                connection=c,
                counts=counts.get(c.pk, ConnectionCounts()),
                usage_available=usage_available(c),
                usage_detected="usage_events" in detected,
                gaps=gaps.get(c.pk, []),
                active_run=runs.get(c.active_run_id),  # type: ignore[attr-defined]
                last_run=runs.get(c.last_run_id),  # type: ignore[attr-defined]
                health=health[c.pk],
            )
        )
    return cards


def connection_data_counts(connection: Connection) -> ConnectionDataCounts:
    """What disconnecting with "delete data" removes (shown on the confirmation page)."""
    people = AppUser.objects.filter(
        connection=connection, application__kind=Application.Kind.DIRECTORY
    ).count()
    return ConnectionDataCounts(
        users=people,
        apps=Application.objects.filter(connection=connection, kind=Application.Kind.SSO).count(),
        assignments=AppUser.objects.filter(
            connection=connection, application__kind=Application.Kind.SSO
        ).count(),
        events=UsageEvent.objects.filter(connection=connection).count(),
        sync_runs=SyncRun.objects.filter(connection=connection).count(),
    )


# --- sync runs ---------------------------------------------------------------------------------
def sync_run_get(*, connection: Connection, pk: int) -> SyncRun:
    return SyncRun.objects.select_related("requested_by").get(connection=connection, pk=pk)


def sync_run_active(*, connection: Connection) -> SyncRun | None:
    return (
        SyncRun.objects.filter(connection=connection, status__in=SyncRun.ACTIVE)
        .order_by("-created_at", "-id")
        .first()
    )


def sync_run_latest(*, connection: Connection) -> SyncRun | None:
    return SyncRun.objects.filter(connection=connection).order_by("-created_at", "-id").first()


def sync_run_history(*, connection: Connection, limit: int = 25) -> list[SyncRun]:
    return list(
        SyncRun.objects.filter(connection=connection)
        .select_related("requested_by")
        .order_by("-created_at", "-id")[:limit]
    )


@dataclass(frozen=True)
class HistoryError:
    label: str
    # Empty when the same cause is already on the page (a problem, or a newer run's row).
    cause: str
    ref: str


@dataclass(frozen=True)
class HistoryRow:
    run: SyncRun
    totals: dict[str, int]
    errors: list[HistoryError]
    run_error: str


def sync_history_rows(runs: list[SyncRun], *, shown: set[str] | None = None) -> list[HistoryRow]:
    """The history table: counters summed per run and the failed streams' causes, each cause
    written out once on the page (`shown`: causes the page already states above the table)."""
    seen = set(shown or ())
    rows = []
    for run in runs:
        streams = run.streams if isinstance(run.streams, dict) else {}
        totals = {c: 0 for c in ("fetched", "created", "updated", "removed")}
        errors = []
        for key, state in streams.items():
            if not isinstance(state, dict):
                continue
            for counter in totals:
                totals[counter] += _int(state.get(counter))
            if state.get("status") == "failed" and state.get("error"):
                cause = error_cause(str(state["error"]))
                label = str(state.get("label") or key)
                errors.append(
                    HistoryError(label, "" if cause in seen else cause, str(state.get("error_ref") or ""))
                )
                seen.add(cause)
        run_error = ""
        if run.status == SyncRun.Status.FAILED and not errors and run.error_message:
            cause = error_cause(run.error_message)
            run_error = "" if cause in seen else cause
            seen.add(cause)
        rows.append(HistoryRow(run=run, totals=totals, errors=errors, run_error=run_error))
    return rows


def _stream_labels(provider_key: str) -> dict[str, str]:
    try:
        provider = registry.get(provider_key)
    except LookupError:
        return {}
    return {s.key: s.label for s in provider.streams}


def _parse_dt(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def sync_run_progress(run: SyncRun, *, provider_key: str) -> list[StreamProgress]:
    """The run's streams in the provider's declared order (then any the run reported extra)."""
    labels = _stream_labels(provider_key)
    data = run.streams if isinstance(run.streams, dict) else {}
    order = [k for k in labels if k in data] + [k for k in data if k not in labels]
    out = []
    for key in order:
        s = data.get(key) or {}
        window = s.get("window") or [None, None]
        if not isinstance(window, list | tuple) or len(window) != 2:
            window = [None, None]
        out.append(
            StreamProgress(
                key=key,
                label=str(s.get("label") or labels.get(key) or key),
                status=str(s.get("status") or "pending"),
                error=error_cause(str(s.get("error") or "")),
                error_ref=str(s.get("error_ref") or ""),
                window_start=_parse_dt(window[0]),
                window_end=_parse_dt(window[1]),
                is_current=run.is_active and run.current_stream == key,
                **{c: _int(s.get(c)) for c in STREAM_COUNTERS},
            )
        )
    return out


# --- gaps in the usage record --------------------------------------------------------------------
def _merge(intervals: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _subtract(
    failed: list[tuple[datetime, datetime]], covered: list[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    for start, end in _merge(failed):
        pieces = [(start, end)]
        for cs, ce in covered:
            next_pieces = []
            for ps, pe in pieces:
                if ce <= ps or cs >= pe:
                    next_pieces.append((ps, pe))
                    continue
                if cs > ps:
                    next_pieces.append((ps, cs))
                if ce < pe:
                    next_pieces.append((ce, pe))
            pieces = next_pieces
        out.extend(p for p in pieces if p[1] > p[0])
    return out


def connection_gaps(connections: list[Connection]) -> dict[int, list[Gap]]:
    """Failed usage-event windows that no later successful window covers, per connection.

    A failed event stream leaves its checkpoint where it was, so the next run usually refetches the
    window; only what stays uncovered is a gap. Event streams are the provider's kind="events"
    streams, so nothing here names a provider.
    """
    since = timezone.now() - timedelta(days=GAP_LOOKBACK_DAYS)
    by_provider: dict[str, dict[str, str]] = {}
    for c in connections:
        try:
            provider = registry.get(c.provider)
        except LookupError:
            continue
        by_provider[c.provider] = {s.key: s.label for s in provider.streams if s.kind == "events"}
    if not any(by_provider.values()):
        return {}
    rows = (
        SyncRun.objects.filter(connection_id__in=[c.pk for c in connections], created_at__gte=since)
        .exclude(streams={})
        .order_by("-created_at")
        .values_list("connection_id", "streams")[:GAP_MAX_RUNS]
    )
    provider_of = {c.pk: c.provider for c in connections}
    failed: dict[tuple[int, str], list[tuple[datetime, datetime]]] = defaultdict(list)
    covered: dict[tuple[int, str], list[tuple[datetime, datetime]]] = defaultdict(list)
    for conn_id, streams in rows:
        if not isinstance(streams, dict):
            continue
        for key in by_provider.get(provider_of.get(conn_id, ""), {}):
            s = streams.get(key)
            if not isinstance(s, dict):
                continue
            window = s.get("window")
            if not isinstance(window, list | tuple) or len(window) != 2:
                continue
            start, end = _parse_dt(window[0]), _parse_dt(window[1])
            if not start or not end or end <= start:
                continue
            if s.get("status") == "failed":
                failed[(conn_id, key)].append((start, end))
            elif s.get("status") == "succeeded":
                covered[(conn_id, key)].append((start, end))
    out: dict[int, list[Gap]] = defaultdict(list)
    for (conn_id, key), intervals in failed.items():
        label = by_provider[provider_of[conn_id]][key]
        for start, end in _subtract(intervals, _merge(covered.get((conn_id, key), []))):
            out[conn_id].append(Gap(stream=key, label=label, start=start, end=end))
    for gaps in out.values():
        gaps.sort(key=lambda g: g.start, reverse=True)
    return dict(out)


# --- capabilities ------------------------------------------------------------------------------
def capability_tables() -> list[CapabilityTable]:
    """One table per registered provider: what torii supports, and per live connection whether
    each capability works now and why not — from the provider's declarations, what the connection
    detected, and the latest outcome of the streams that provide it (a failing stream's capability
    is never shown as available)."""
    live = list(
        Connection.objects.exclude(status=Connection.Status.DISCONNECTED)
        .only("id", "name", "provider", "status", "status_message", "permission", "capabilities", "org_name")
        .order_by("name", "id")
    )
    health = connection_health_map(live)
    tables = []
    for provider in registry.all():
        conns = [c for c in live if c.provider == provider.key]
        supported = provider.capability_statuses(None)
        per_conn = [
            [
                capability_cell(status, provider_key=provider.key, health=health[c.pk])
                for status in provider.capability_statuses(c)
            ]
            for c in conns
        ]
        rows = [
            CapabilityRow(capability=s.capability, supported=s, per_connection=[pc[i] for pc in per_conn])
            for i, s in enumerate(supported)
        ]
        tables.append(
            CapabilityTable(
                provider_key=provider.key, provider_name=provider.name, connections=conns, rows=rows
            )
        )
    return tables
