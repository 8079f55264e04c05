"""Reads for the audit log: records as people read them (labels instead of raw parameter keys)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from integrations.models import ActionRun, Connection
from integrations.providers import registry

PARAMETER_LABELS = {
    "permission": "Permission",
    "old_permission": "Permission before",
    "region": "Region",
    "base_url": "Endpoint",
    "org_id": "Organization ID",
    "name": "Name",
    "old_name": "Name before",
    "first_name": "First name",
    "last_name": "Last name",
    "email": "Email",
    "username": "Username",
    "state": "Initial state",
    "kind": "Sync",
    "delete_data": "Synced data",
    "events_interval_minutes": "Usage sync every (minutes)",
    "full_sync_interval_hours": "Full sync every (hours)",
    "reason": "Why",
    "from": "Before",
    "to": "After",
}
# Internal references a reader has no use for (the target is shown in its own column).
HIDDEN = {"app_user_id", "idempotency_key"}
REASONS = {
    "invalid_key": "the key was rejected",
    "no_rights": "the key's administrator lacks the rights",
    "no_write_rights": "the key's administrator cannot change users",
    "org_not_found": "the organization is not one the key manages",
    "org_required": "an organization must be chosen",
    "duplicate": "already connected",
    "rate_limited": "too many attempts",
    "upstream": "the account could not be reached",
    "base_url_not_allowed": "endpoint not allowed",
    "region": "unknown region",
    "permission": "no permission level chosen",
    "required": "no key entered",
}
STATES = {"": "Organization default", "ACTIVATED": "Activated", "STAGED": "Staged (invited)"}
# Provider-neutral words: the page around them names the account.
OUTCOMES = {
    "applied": "Done",
    "confirmed_by_reread": "Done (confirmed by reading the user again)",
    "already_gone": "Already deleted",
    "not_applied_by_reread": "Not done (checked by reading the user again)",
    "conflict_by_reread": "Not done: the username or email is taken",
    "refused": "Refused by the account",
    "not_found": "The user no longer exists in the account",
    "not_sent": "Nothing was sent",
    "invalid": "Refused: the input is not valid",
    "unknown": "Unknown: check the user in the account before trying again",
}


def _value(key: str, value: Any) -> str:
    if isinstance(value, list | tuple) and len(value) == 2:
        return f"{_value(key, value[0])} → {_value(key, value[1])}"
    if key in ("permission", "old_permission", "from", "to") and value in Connection.Permission.values:
        return str(Connection.Permission(value).label)
    if key in ("permission", "old_permission"):
        return (
            str(Connection.Permission(value).label) if value in Connection.Permission.values else str(value)
        )
    if key == "region":
        if value == "custom":
            return "Custom endpoint"
        names: dict[str, str] = {}
        for provider in registry.all():
            names.update(provider.regions)
        return names.get(str(value), str(value))
    if key == "reason":
        return REASONS.get(str(value), str(value))
    if key == "state":
        return STATES.get(str(value), str(value))
    if key == "delete_data":
        return "deleted" if value else "kept"
    if value in (None, ""):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def audit_parameters(run: ActionRun) -> list[tuple[str, str]]:
    """A record's parameters as (label, value) pairs, in a stable order, internals left out."""
    params = run.parameters if isinstance(run.parameters, dict) else {}
    out = []
    for key, value in params.items():
        if key in HIDDEN or (key == "base_url" and not value):
            continue
        out.append((PARAMETER_LABELS.get(key, key.replace("_", " ").capitalize()), _value(key, value)))
    return out


def audit_outcome(run: ActionRun) -> str:
    """What happened upstream, in words (empty when the record says nothing about it)."""
    outcome = str((run.result or {}).get("outcome") or "")
    return OUTCOMES.get(outcome, outcome.replace("_", " ").capitalize())


def audit_log_queryset(*, user_actions_only: bool = False) -> QuerySet[ActionRun]:
    """The audit log (every action and connection event), or only the user actions."""
    qs = ActionRun.objects.all()
    return qs.filter(category=ActionRun.Category.USER_ACTION) if user_actions_only else qs
