"""The audit log: one ActionRun row per action or connection event.

User actions are written before the upstream call (pending) and completed after it; connection
events are written already finished. Records are only ever created and completed here: nothing in
torii edits or deletes them afterwards (the admin site registers ActionRun read-only, the API has
no write route for it).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from integrations.models import ActionRun, Connection
from integrations.providers import registry

SECRET_PARAMETER_NAMES = frozenset({"api_key", "apikey", "key", "password", "token", "secret", "credentials"})

# What the audit page and the API call each recorded event of torii's own. User actions are named
# by the providers that declare them (action_labels); unknown keys render as themselves.
ACTION_LABELS: dict[str, str] = {
    "connection.connected": "Account connected",
    "connection.connect_failed": "Connect attempt failed",
    "connection.key_rotated": "API key rotated",
    "connection.permission_changed": "Permission changed",
    "connection.updated": "Connection settings changed",
    "connection.disconnected": "Account disconnected",
    "sync.started": "Sync started by hand",
    "person.created": "Person added",
    "person.role_changed": "Role changed",
    "person.deactivated": "Person deactivated",
    "person.reactivated": "Person reactivated",
    "token.created": "API token made",
    "token.rotated": "API token rotated",
    "token.revoked": "API token revoked",
    "login.unlocked": "Login lockout lifted",
    "policy.saved": "Policy saved",
    "policy.run_approved": "Policy run approved",
    "policy.run_rejected": "Policy run rejected",
    "policy.run_undone": "Policy run undone",
    "alerts.channel_created": "Alert channel added",
    "alerts.channel_changed": "Alert channel changed",
    "alerts.channel_deleted": "Alert channel deleted",
    "licence.changed": "Licence seats or price changed",
}


def action_labels() -> dict[str, str]:
    """Every recorded action's label: the providers' declared actions, then torii's own events."""
    labels = {a.key: a.label for provider in registry.all() for a in provider.actions}
    return {**labels, **ACTION_LABELS}


def action_label(action: str) -> str:
    return action_labels().get(action, action)


def scrub_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    """Parameters as recorded: never a secret, whatever the caller passed."""
    return {k: ("[redacted]" if k.lower() in SECRET_PARAMETER_NAMES else v) for k, v in parameters.items()}


def _actor_fields(actor: Any) -> dict[str, Any]:
    if getattr(actor, "is_authenticated", False):
        return {"actor": actor, "actor_username": actor.get_username()}
    return {"actor": None, "actor_username": "system"}


def audit_connection_event(
    *,
    connection: Connection,
    action: str,
    actor: Any = None,
    parameters: dict[str, Any] | None = None,
    succeeded: bool = True,
    error_message: str = "",
) -> ActionRun:
    """Record a connection event (connected, key rotated, permission changed, disconnected, sync
    started by hand: action "sync.started"), already finished."""
    now = timezone.now()
    return ActionRun.objects.create(
        category=ActionRun.Category.CONNECTION,
        action=action,
        connection=connection,
        connection_name=connection.name,
        parameters=scrub_parameters(parameters or {}),
        status=ActionRun.Status.SUCCEEDED if succeeded else ActionRun.Status.FAILED,
        error_message=error_message,
        finished_at=now,
        **_actor_fields(actor),
    )


def audit_access_event(
    *, action: str, actor: Any, target_username: str, parameters: dict[str, Any] | None = None
) -> ActionRun:
    """Record a change of who may use torii (a person added, a role given, a token made, a lockout
    lifted), already finished. No connection is involved."""
    return ActionRun.objects.create(
        category=ActionRun.Category.ACCESS,
        action=action,
        target_username=target_username[:255],
        parameters=scrub_parameters(parameters or {}),
        status=ActionRun.Status.SUCCEEDED,
        finished_at=timezone.now(),
        **_actor_fields(actor),
    )


def audit_connect_failed(
    *,
    name: str,
    actor: Any = None,
    parameters: dict[str, Any] | None = None,
    error_message: str = "",
    code: str = "",
) -> ActionRun:
    """Record a connect attempt that did not connect (rejected key, wrong organization, too many
    attempts): who tried what, and why it failed. There is no connection to point at; the key is
    never among the parameters."""
    now = timezone.now()
    params = {**(parameters or {}), **({"reason": code} if code else {})}
    return ActionRun.objects.create(
        category=ActionRun.Category.CONNECTION,
        action="connection.connect_failed",
        connection=None,
        connection_name=name[:100],
        parameters=scrub_parameters(params),
        status=ActionRun.Status.FAILED,
        error_message=error_message,
        finished_at=now,
        **_actor_fields(actor),
    )


def action_run_start(
    *,
    connection: Connection,
    action: str,
    actor: Any,
    parameters: dict[str, Any],
    idempotency_key: str,
    target_external_id: str = "",
    target_username: str = "",
) -> ActionRun:
    """Write the pending record of a user action, committed before anything is sent upstream.

    Raises IntegrityError when the idempotency key is taken (the caller replays that run)."""
    with transaction.atomic():
        return ActionRun.objects.create(
            category=ActionRun.Category.USER_ACTION,
            action=action,
            connection=connection,
            connection_name=connection.name,
            target_external_id=target_external_id[:64],
            target_username=target_username[:255],
            parameters=scrub_parameters(parameters),
            status=ActionRun.Status.PENDING,
            idempotency_key=idempotency_key,
            **_actor_fields(actor),
        )


def action_run_mark_sent(*, run_id: int) -> ActionRun | None:
    """Claim a pending run for sending, once. Returns None if it was already sent or finished, so a
    retried task or a second worker never sends the same action twice."""
    with transaction.atomic():
        run = ActionRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status != ActionRun.Status.PENDING or (run.result or {}).get("sent_at"):
            return None
        run.result = {**(run.result or {}), "sent_at": timezone.now().isoformat()}
        run.save(update_fields=["result"])
        return run


def action_run_snapshot(*, run: ActionRun, snapshot: dict[str, Any] | None) -> None:
    """Keep the upstream record as it was before a destructive action (saved before the call)."""
    run.snapshot = snapshot
    ActionRun.objects.filter(pk=run.pk).update(snapshot=snapshot)


def action_run_complete(
    *,
    run: ActionRun,
    succeeded: bool,
    error_message: str = "",
    request_id: str = "",
    result: dict[str, Any] | None = None,
    target_external_id: str = "",
    target_username: str = "",
) -> ActionRun:
    """Finish a pending record with the outcome. A finished record is never changed again."""
    updates: dict[str, Any] = {
        "status": ActionRun.Status.SUCCEEDED if succeeded else ActionRun.Status.FAILED,
        "error_message": error_message,
        "request_id": request_id[:128],
        "result": {**(run.result or {}), **scrub_parameters(result or {})},
        "finished_at": timezone.now(),
    }
    if target_external_id:
        updates["target_external_id"] = target_external_id[:64]
    if target_username:
        updates["target_username"] = target_username[:255]
    with transaction.atomic():
        changed = ActionRun.objects.filter(pk=run.pk, status=ActionRun.Status.PENDING).update(**updates)
        if changed:
            for name, value in updates.items():
                setattr(run, name, value)
        else:
            run.refresh_from_db()
    return run
