"""Reads for policies: whom a policy would touch today and why, and the brakes that stop a run.

A policy never acts on stale or missing usage: `policy_brakes` says why a run may not act, from
the same rows the dashboard's statuses come from (Connection.capabilities, the sync runs' stream
outcomes, the event streams' checkpoints).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Max, QuerySet
from django.utils import timezone

from integrations.models import Application, AppUser, Connection, LastUse, SyncCheckpoint, SyncRun
from integrations.providers import registry
from integrations.selectors.common import usage_available
from integrations.selectors.health import connection_health
from policies.models import Policy, PolicyRun, PolicyRunItem

# Usage data more than this far behind the last successful events sync, or behind now, is stale.
USAGE_MAX_LAG = timedelta(days=1)

EXCLUSION_LABELS = {
    "admin": "Administrators",
    "named": "Named people",
    "new": "Created recently",
    "created_unknown": "Creation date unknown",
    "invited": "Invited or staged",
    "not_active": "Already suspended or locked",
    "used": "Used recently",
}


@dataclass(frozen=True)
class Candidate:
    """One person the policy would touch, and why."""

    connection: Connection
    app_user: AppUser
    last_used_at: datetime | None
    reason: str


@dataclass
class Selection:
    candidates: list[Candidate]
    account_size: int
    limit: int
    brakes: list[str] = field(default_factory=list)
    excluded: dict[str, int] = field(default_factory=dict)

    @property
    def over_cap(self) -> bool:
        return len(self.candidates) > self.limit

    @property
    def excluded_rows(self) -> list[tuple[str, int]]:
        return [(EXCLUSION_LABELS.get(k, k), n) for k, n in self.excluded.items() if n]


def policy_connections(*, policy: Policy, connections: list[Connection] | None = None) -> list[Connection]:
    """The live accounts a policy covers (with an application: only that application's account).
    `connections` stands in for the policy's own before it is saved (the form's dry run)."""
    if connections is None:
        connections = list(policy.connections.all()) if policy.pk is not None else []
    connections = [c for c in connections if c.is_live]
    if policy.application_id is not None:
        connections = [c for c in connections if c.pk == policy.application.connection_id]  # type: ignore[union-attr]
    return sorted(connections, key=lambda c: (c.name, c.pk))


def _event_streams(connection: Connection) -> list[str]:
    try:
        provider = registry.get(connection.provider)
    except LookupError:
        return []
    return [s.key for s in provider.streams if s.kind == "events"]


def connection_usage_brakes(*, connection: Connection, now: datetime | None = None) -> list[str]:
    """Why this account's usage cannot be trusted for acting on people ([] when it can)."""
    now = now or timezone.now()
    name = connection.name
    if not usage_available(connection):
        return [
            f"{name} has no Directory Insights: torii cannot tell who is inactive there, so the policy "
            "does not act on its people."
        ]
    out: list[str] = []
    last = (
        SyncRun.objects.filter(connection=connection)
        .exclude(status__in=SyncRun.ACTIVE)
        .order_by("-created_at", "-id")
        .first()
    )
    if last is not None and last.status == SyncRun.Status.PARTIAL:
        out.append(
            f"The latest sync of {name} was Partial: some of its data did not sync, so usage may be "
            "incomplete. The policy acts again after a complete sync."
        )
    streams = _event_streams(connection)
    if not streams:
        return [*out, f"{name} syncs no usage events; the policy cannot act on its people."]
    states = dict(
        SyncCheckpoint.objects.filter(connection=connection, stream__in=streams).values_list(
            "stream", "state"
        )
    )
    untils: list[datetime] = []
    for key in streams:
        raw = (states.get(key) or {}).get("until")
        if raw:
            with contextlib.suppress(ValueError):
                untils.append(datetime.fromisoformat(str(raw)))
    health = connection_health(connection)
    successes = [health.streams[k].last_success_at for k in streams if k in health.streams]
    if len(untils) < len(streams) or not successes or any(s is None for s in successes):
        return [
            *out,
            f"The usage events of {name} have not synced completely yet; the policy waits for them.",
        ]
    as_of = min(untils)
    last_success = min(s for s in successes if s is not None)
    when = timezone.localtime(as_of).strftime("%Y-%m-%d %H:%M")
    if last_success - as_of > USAGE_MAX_LAG or now - as_of > USAGE_MAX_LAG:
        out.append(
            f"The usage data of {name} is stale: it reaches {when}, more than a day behind "
            f"{'its last successful usage sync' if last_success - as_of > USAGE_MAX_LAG else 'now'}. "
            "The policy never acts on stale usage; it acts again after a usage sync succeeds."
        )
    return out


def policy_brakes(
    *, policy: Policy, connections: list[Connection] | None = None, now: datetime | None = None
) -> list[str]:
    connections = policy_connections(policy=policy, connections=connections)
    if not connections:
        return ["The policy covers no connected account."]
    return [b for c in connections for b in connection_usage_brakes(connection=c, now=now)]


def _directory_rows(connection: Connection) -> QuerySet[AppUser]:
    return AppUser.objects.filter(
        connection=connection,
        application__kind=Application.Kind.DIRECTORY,
        directory_user__isnull=True,
        removed_at__isnull=True,
        kind=AppUser.Kind.USER,
    ).exclude(status=AppUser.Status.REMOVED)


def _last_uses(
    *, policy: Policy, connection: Connection, directory_app_id: int | None
) -> dict[str, datetime]:
    rows = LastUse.objects.filter(connection=connection)
    if policy.use_scope != Policy.UseScope.ANYWHERE:
        app_id = directory_app_id if policy.use_scope == Policy.UseScope.DIRECTORY else policy.application_id
        if app_id is None:
            return {}
        rows = rows.filter(application_id=app_id)
    return dict(
        rows.values("person_external_id")
        .annotate(ts=Max("last_used_at"))
        .order_by()
        .values_list("person_external_id", "ts")
    )


def _scope_phrase(policy: Policy, connection: Connection) -> str:
    if policy.use_scope == Policy.UseScope.APPLICATION and policy.application is not None:
        return f"of {policy.application}"
    if policy.use_scope == Policy.UseScope.ANYWHERE:
        return "anywhere"
    return f"of {registry.get(connection.provider).name}" if connection.provider else "of the directory"


def policy_cap(*, policy: Policy, account_size: int) -> int:
    """The most people one run may touch: the smaller of the count and the share of the account."""
    share = math.floor(account_size * float(policy.max_percent) / 100)
    return min(policy.max_people, share)


def policy_selection(
    *, policy: Policy, connections: list[Connection] | None = None, now: datetime | None = None
) -> Selection:
    """Whom the policy would touch now, and why (each with their last use), plus the brakes."""
    now = now or timezone.now()
    connections = policy_connections(policy=policy, connections=connections)
    cutoff = now - timedelta(days=policy.inactive_days)
    created_cutoff = now - timedelta(days=policy.min_account_age_days)
    names = policy.excluded_names()
    excluded = dict.fromkeys(EXCLUSION_LABELS, 0)
    candidates: list[Candidate] = []
    size = 0
    for connection in connections:
        directory_app_id = (
            Application.objects.filter(connection=connection, kind=Application.Kind.DIRECTORY)
            .values_list("pk", flat=True)
            .first()
        )
        rows = _directory_rows(connection)
        size += rows.count()
        app_id = policy.application_id
        if app_id is not None:
            assigned = AppUser.objects.filter(
                application_id=app_id, removed_at__isnull=True, directory_user__isnull=False
            ).values("directory_user_id")
            rows = rows.filter(pk__in=assigned)
        elif policy.use_scope == Policy.UseScope.APPLICATION:
            rows = rows.none()
        last_uses = _last_uses(policy=policy, connection=connection, directory_app_id=directory_app_id)
        phrase = _scope_phrase(policy, connection)
        for row in rows.order_by("username", "id").iterator(chunk_size=2000):
            if row.status == AppUser.Status.INVITED:
                if policy.exclude_invited:
                    excluded["invited"] += 1
                    continue
            elif row.status != AppUser.Status.ACTIVE:
                excluded["not_active"] += 1
                continue
            if policy.exclude_admins and row.is_admin:
                excluded["admin"] += 1
                continue
            if names and (row.username.lower() in names or (row.email and row.email.lower() in names)):
                excluded["named"] += 1
                continue
            if policy.min_account_age_days:
                if row.upstream_created_at is None:
                    excluded["created_unknown"] += 1
                    continue
                if row.upstream_created_at > created_cutoff:
                    excluded["new"] += 1
                    continue
            last = last_uses.get(row.external_id)
            if last is not None and last >= cutoff:
                excluded["used"] += 1
                continue
            if last is None:
                reason = f"No successful use {phrase} on record (usage history holds none)"
            else:
                days = (now - last).days
                reason = f"No successful use {phrase} for {days} days (last {last:%Y-%m-%d})"
            candidates.append(
                Candidate(connection=connection, app_user=row, last_used_at=last, reason=reason)
            )
    candidates.sort(key=lambda c: (c.last_used_at is not None, c.last_used_at or now, c.app_user.username))
    return Selection(
        candidates=candidates,
        account_size=size,
        limit=policy_cap(policy=policy, account_size=size),
        brakes=policy_brakes(policy=policy, connections=connections, now=now),
        excluded=excluded,
    )


def policy_approved_people(*, policy: Policy) -> set[tuple[int | None, str]]:
    """(connection id, person id) of everyone an Admin approved in an earlier run of the policy."""
    return set(
        PolicyRunItem.objects.filter(
            run__policy=policy,
            run__actor__isnull=False,
            run__dry_run=False,
            outcome__in=[PolicyRunItem.Outcome.SUSPENDED, PolicyRunItem.Outcome.NOTIFIED],
        ).values_list("connection_id", "external_id")
    )


def policy_list() -> QuerySet[Policy]:
    return Policy.objects.prefetch_related("connections").select_related("application")


def policy_run_list(*, policy: Policy | None = None) -> QuerySet[PolicyRun]:
    qs = PolicyRun.objects.select_related("policy", "actor", "approved_by", "requested_by", "undone_by")
    return qs.filter(policy=policy) if policy is not None else qs


def policy_run_items(*, run: PolicyRun) -> QuerySet[PolicyRunItem]:
    return run.items.select_related("connection", "action_run", "undo_action_run").order_by("username", "id")
