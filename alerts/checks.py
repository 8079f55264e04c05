"""What raises alerts about accounts: checked when a sync ends and, for stale usage, by beat.

Conditions (reconnect, repeated failure, stale usage, an admin without MFA) alert when they open and
not again until they clear; administrator changes are compared with the administrators the
previous sync left (AdminBaseline), so each new admin or role change is announced once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from alerts.kinds import EventKind
from alerts.models import AdminBaseline
from alerts.services import alert_condition_open, alert_conditions_clear, alert_emit
from integrations.models import Application, AppUser, Connection, SyncRun
from integrations.providers import registry
from integrations.selectors.common import usage_available

FINISHED = (SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL, SyncRun.Status.FAILED)


def _stream_keys(connection: Connection, *, provides: str = "", kind: str = "") -> list[str]:
    try:
        provider = registry.get(connection.provider)
    except LookupError:
        return []
    return [
        s.key
        for s in provider.streams
        if (not provides or provides in s.provides) and (not kind or s.kind == kind)
    ]


def _streams_succeeded(run: SyncRun, keys: list[str]) -> bool:
    return bool(keys) and all((run.streams.get(k) or {}).get("status") == "succeeded" for k in keys)


def alerts_check_sync_run(*, run_id: int) -> None:
    run = SyncRun.objects.select_related("connection").filter(pk=run_id).first()
    if run is None or run.status not in FINISHED:
        return
    connection = run.connection
    if not connection.is_live:
        return
    _check_reconnect(connection)
    _check_failed_twice(connection)
    if run.status != SyncRun.Status.FAILED and _streams_succeeded(
        run, _stream_keys(connection, provides="administrators")
    ):
        _check_administrators(connection)
    alerts_check_usage_staleness(connections=[connection])


def _check_reconnect(connection: Connection) -> None:
    if connection.status == Connection.Status.NEEDS_RECONNECT:
        alert_condition_open(
            kind=EventKind.RECONNECT,
            connection=connection,
            subject=f"{connection.name} needs reconnecting",
            body=(
                f"The API key of {connection.name} was rejected, so torii stopped syncing it. "
                "Reconnect the account with a valid key (Integrations → the account → Rotate key)."
            ),
            data={"connection_id": connection.pk, "status": connection.status},
        )
    else:
        alert_conditions_clear(kind=EventKind.RECONNECT, connection=connection)


def _check_failed_twice(connection: Connection) -> None:
    last_two = list(
        SyncRun.objects.filter(connection=connection, status__in=FINISHED)
        .order_by("-finished_at", "-id")
        .values_list("pk", "status", "error_message")[:2]
    )
    if len(last_two) == 2 and all(status == SyncRun.Status.FAILED for _, status, _ in last_two):
        alert_condition_open(
            kind=EventKind.SYNC_FAILED_TWICE,
            connection=connection,
            subject=f"Syncs of {connection.name} failed twice in a row",
            body=f"The last two syncs of {connection.name} failed. The latest said: {last_two[0][2][:500]}",
            data={"connection_id": connection.pk, "sync_run_ids": [pk for pk, _, _ in last_two]},
        )
    elif last_two and last_two[0][1] != SyncRun.Status.FAILED:
        alert_conditions_clear(kind=EventKind.SYNC_FAILED_TWICE, connection=connection)


def _current_admins(connection: Connection) -> dict[str, dict[str, Any]]:
    rows = AppUser.objects.filter(
        connection=connection,
        application__kind=Application.Kind.DIRECTORY,
        is_admin=True,
        removed_at__isnull=True,
    ).values("external_id", "admin_external_id", "username", "email", "role", "admin_mfa_enabled")
    return {
        (r["admin_external_id"] or r["external_id"]): {
            "name": r["email"] or r["username"],
            "role": r["role"],
            "mfa": r["admin_mfa_enabled"],
        }
        for r in rows
    }


def _check_administrators(connection: Connection) -> None:
    admins = _current_admins(connection)
    with transaction.atomic():
        baseline, created = AdminBaseline.objects.select_for_update().get_or_create(
            connection=connection, defaults={"admins": {k: v["role"] for k, v in admins.items()}}
        )
        if not created:
            # The first sync is where torii learns the administrators: only later changes alert.
            for admin_id, admin in sorted(admins.items()):
                before = baseline.admins.get(admin_id)
                if before is None:
                    alert_emit(
                        kind=EventKind.ADMIN_ADDED,
                        connection=connection,
                        subject=f"New administrator in {connection.name}: {admin['name']}",
                        body=f"{admin['name']} is now an administrator of {connection.name} ({admin['role']}).",
                        data={"administrator": admin["name"], "role": admin["role"], "admin_id": admin_id},
                    )
                elif before != admin["role"]:
                    alert_emit(
                        kind=EventKind.ADMIN_ROLE_CHANGED,
                        connection=connection,
                        subject=f"Administrator role changed in {connection.name}: {admin['name']}",
                        body=f"{admin['name']}'s role changed from {before} to {admin['role']}.",
                        data={
                            "administrator": admin["name"],
                            "role_before": before,
                            "role": admin["role"],
                            "admin_id": admin_id,
                        },
                    )
            baseline.admins = {k: v["role"] for k, v in admins.items()}
            baseline.save(update_fields=["admins", "updated_at"])
    without_mfa = {k: v for k, v in admins.items() if v["mfa"] is False}
    for admin_id, admin in sorted(without_mfa.items()):
        alert_condition_open(
            kind=EventKind.ADMIN_WITHOUT_MFA,
            connection=connection,
            key=admin_id,
            subject=f"Administrator without MFA in {connection.name}: {admin['name']}",
            body=f"{admin['name']} ({admin['role']}) administers {connection.name} without MFA.",
            data={"administrator": admin["name"], "role": admin["role"], "admin_id": admin_id},
        )
    alert_conditions_clear(kind=EventKind.ADMIN_WITHOUT_MFA, connection=connection, keep=set(without_mfa))


def usage_fresh_at(connection: Connection) -> datetime | None:
    """When the connection's usage data was last brought up to date: the end of the latest run
    whose event streams all succeeded (None if none did)."""
    keys = _stream_keys(connection, kind="events")
    runs = SyncRun.objects.filter(
        connection=connection, status__in=(SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL)
    ).order_by("-finished_at", "-id")[:25]
    for run in runs.only("streams", "finished_at"):
        if _streams_succeeded(run, keys):
            return run.finished_at
    return None


def alerts_check_usage_staleness(*, connections: list[Connection] | None = None) -> None:
    """Alert for each live account with usage data whose data is older than ALERTS_USAGE_STALE_HOURS
    (or that has been connected that long without any)."""
    limit = timedelta(hours=settings.ALERTS_USAGE_STALE_HOURS)
    now = timezone.now()
    if connections is None:
        connections = list(Connection.objects.exclude(status=Connection.Status.DISCONNECTED))
    for connection in connections:
        if not connection.is_live or not usage_available(connection):
            continue
        fresh_at = usage_fresh_at(connection)
        reference = fresh_at or connection.created_at
        if now - reference > limit:
            hours = int((now - reference).total_seconds() // 3600)
            since = f"was last updated {hours} hours ago" if fresh_at else f"never arrived in {hours} hours"
            alert_condition_open(
                kind=EventKind.USAGE_STALE,
                connection=connection,
                subject=f"Usage data of {connection.name} is out of date",
                body=(
                    f"Usage data of {connection.name} {since}. Pages and policies that depend on "
                    "last use may be wrong until a sync brings it up to date."
                ),
                data={
                    "connection_id": connection.pk,
                    "usage_updated_at": fresh_at.isoformat() if fresh_at else None,
                    "hours": hours,
                },
            )
        else:
            alert_conditions_clear(kind=EventKind.USAGE_STALE, connection=connection)
