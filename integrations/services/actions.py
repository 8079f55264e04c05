"""User actions with their audit record.

Provider-neutral: the core knows actions only through the provider's declarations
(integrations.providers.Action: key, label, input schema, destructive or not, a `check` and a `run`
callable, and one of two generic categories: it creates a directory user, or it acts on one).
This module decides whether an action may run, makes it happen at most once, and records it.

The rules, in order, for every request:
1. Only torii Admins act, and only on connections whose permission is "Read and take action" (and
   whose key can act). Refusals raise ActionForbidden before anything is sent upstream.
2. At most once: each request carries an idempotency key (a hidden form field, or the API's
   Idempotency-Key header). A key already used replays its first outcome; the same key for a
   different request is refused.
3. The input is checked (the provider's own rules, then a collision check against the synced users)
   before anything is recorded or sent.
4. The pending ActionRun is committed, then the provider runs the action inline (its client has a
   short timeout) and the run is completed with the outcome, the provider's message and request id.

The provider's two callables:
    check(*, connection, params) -> ActionCheck   normalised params, errors per field, notes; no network
    run(*, connection, run, params) -> ActionOutcome   may call `action_run_snapshot` before a
                                                       destructive call
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError
from django.db.models import Q
from django.utils import timezone

from accounts.roles import is_admin
from integrations.models import ActionRun, Application, AppUser, Connection
from integrations.providers import CREATES_USER, Action, ActionCheck, ActionOutcome, registry
from integrations.services.audit import (
    action_run_complete,
    action_run_mark_sent,
    action_run_start,
    scrub_parameters,
)
from integrations.services.read_models import read_models_refresh_soon

logger = logging.getLogger(__name__)

__all__ = ["ActionCheck", "ActionOutcome"]  # re-exported: the provider's verdicts, as callers see them

READ_ONLY_NOTE = "Connected read-only — reconnect with Read and take action to enable."
BULK_LIMIT = 100
_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{8,64}$")


# --- results and refusals --------------------------------------------------------------------
@dataclass
class ActionResult:
    run: ActionRun
    replayed: bool = False


@dataclass
class BulkItem:
    app_user: AppUser
    run: ActionRun | None = None
    replayed: bool = False
    refused: str = ""

    @property
    def succeeded(self) -> bool:
        return self.run is not None and self.run.status == ActionRun.Status.SUCCEEDED


class ActionRefused(Exception):
    """torii refused the request; nothing was sent upstream and nothing was recorded."""

    code = "refused"

    def __init__(
        self, message: str, *, errors: dict[str, list[str]] | None = None, run: ActionRun | None = None
    ):
        super().__init__(message)
        self.message = message
        self.errors = errors or {}
        self.run = run


class ActionForbidden(ActionRefused):
    """Not an Admin, or the connection cannot act (read-only, disconnected, key rejected)."""

    code = "forbidden"


class ActionInvalid(ActionRefused):
    """The input breaks a rule of the provider (e.g. a username it refuses)."""

    code = "invalid"


class ActionConflict(ActionRefused):
    """The user to create collides with a synced user of the same account."""

    code = "conflict"


class ActionTargetInvalid(ActionRefused):
    """The target is not a (live) directory user of the connection."""

    code = "target"


class IdempotencyKeyReused(ActionRefused):
    """The idempotency key was already used for a different request."""

    code = "idempotency_key_reused"


# --- checks ----------------------------------------------------------------------------------
def action_check_allowed(*, connection: Connection, actor: Any, action: str) -> None:
    """Raise ActionForbidden unless `actor` may run `action` on `connection` (no network)."""
    if not is_admin(actor):
        raise ActionForbidden("Only torii Admins can act on users.")
    if _declared(connection, action) is None:
        raise ActionForbidden(f"Unknown action {action!r}.")
    reason = connection_action_unavailable_reason(connection=connection, action=action)
    if reason:
        raise ActionForbidden(reason)


def connection_action_unavailable_reason(*, connection: Connection, action: str) -> str:
    """Why `action` cannot run on this connection now ('' when it can). Rendered in the UI too."""
    if not connection.can_act:
        return READ_ONLY_NOTE if connection.is_live else "This account is disconnected."
    provider = registry.get(connection.provider)
    try:
        declared = provider.action(action)
    except KeyError:
        return f"{provider.name} does not support this action."
    for status in provider.capability_statuses(connection):
        if status.capability.key == declared.capability:
            return status.reason if not status.available else ""
    return ""


def validate_idempotency_key(key: str | None) -> str:
    key = (key or "").strip()
    if not _KEY_PATTERN.match(key):
        raise ActionInvalid(
            "Every action needs an idempotency key of 8 to 64 visible ASCII characters (a UUID is ideal).",
            errors={"idempotency_key": ["8 to 64 visible ASCII characters."]},
        )
    return key


def _declared(connection: Connection, action: str) -> Action | None:
    """The provider's declaration of `action` (None when the provider has no such action)."""
    try:
        return registry.get(connection.provider).action(action)
    except KeyError:
        return None


def _provider_action(connection: Connection, action: str) -> Action:
    declared = _declared(connection, action)
    if declared is None:
        raise ActionForbidden(f"Unknown action {action!r}.")
    return declared


def action_creates_user(*, connection: Connection, action: str) -> bool:
    declared = _declared(connection, action)
    return declared is not None and declared.category == CREATES_USER


def _replay(
    *, key: str, action: str, connection: Connection, actor: Any, parameters: dict[str, Any]
) -> ActionRun | None:
    """The run an idempotency key already produced, if it was for this same request."""
    existing = ActionRun.objects.filter(idempotency_key=key).first()
    if existing is None:
        return None
    same = (
        existing.action == action
        and existing.connection_id == connection.pk
        and existing.actor_id == getattr(actor, "pk", None)
        and existing.parameters == scrub_parameters(parameters)
    )
    if not same:
        raise IdempotencyKeyReused(
            "This idempotency key was already used for a different request; use a new key for a new action."
        )
    return existing


def directory_user_of(*, connection: Connection, app_user: AppUser) -> AppUser:
    """The directory row an action targets: the row itself, or the directory row an app row points at."""
    if app_user.connection_id != connection.pk:
        raise ActionTargetInvalid("This user belongs to another account.")
    if app_user.application.kind != Application.Kind.DIRECTORY:
        if app_user.directory_user_id is None:
            raise ActionTargetInvalid("This application user is not linked to a directory user.")
        app_user = app_user.directory_user  # type: ignore[assignment]
    if app_user.kind == AppUser.Kind.ADMIN_ONLY:
        raise ActionTargetInvalid(
            "This is an administrator without a user account; manage administrators in the console."
        )
    return app_user


def action_input_check(*, connection: Connection, action: str, params: dict[str, Any]) -> ActionCheck:
    """Normalise and check an action's input: the provider's own rules, then (for an action that
    creates a user) the synced users.

    Used by the live preview (nothing raised) and before the action is recorded."""
    declared = _provider_action(connection, action)
    check = declared.check(connection=connection, params=params)
    if declared.category != CREATES_USER:
        return check
    email = str(check.params.get("email", "")).strip()
    if email and "email" not in check.errors:
        try:
            validate_email(email)
        except ValidationError:
            check.errors.setdefault("email", []).append("Enter a valid email address.")
    username = str(check.params.get("username", ""))
    clashes = _synced_clashes(connection=connection, username=username, email=email)
    for field_name, message in clashes:
        check.errors.setdefault(field_name, []).append(message)
    check.conflict = bool(clashes)
    if check.suggestion:
        base = check.suggestion
        for n in range(1, 10):
            if not any(
                f == "username"
                for f, _ in _synced_clashes(connection=connection, username=check.suggestion, email="")
            ):
                break
            check.suggestion = f"{base[:28]}{n + 1}"
    return check


def _synced_clashes(*, connection: Connection, username: str, email: str) -> list[tuple[str, str]]:
    if not username and not email:
        return []
    match = Q()
    if username:
        match |= Q(username__iexact=username)
    if email:
        match |= Q(email__iexact=email)
    rows = (
        AppUser.objects.filter(
            connection=connection, application__kind=Application.Kind.DIRECTORY, removed_at__isnull=True
        )
        .exclude(status=AppUser.Status.REMOVED)
        .filter(match)
        .only("username", "email")[:5]
    )
    out: list[tuple[str, str]] = []
    for row in rows:
        if username and row.username.lower() == username.lower():
            out.append(("username", f"“{row.username}” already exists in {connection.name}."))
        if email and row.email.lower() == email.lower():
            out.append(("email", f"{row.email} already belongs to “{row.username}” in {connection.name}."))
    return out


# --- the one path every action takes ---------------------------------------------------------
def action_run_request(
    *,
    connection: Connection,
    action: str,
    actor: Any,
    idempotency_key: str,
    params: dict[str, Any] | None = None,
    target: AppUser | None = None,
) -> ActionResult:
    """Check, record (pending), run once, complete. Returns the run, replayed or new."""
    action_check_allowed(connection=connection, actor=actor, action=action)
    key = validate_idempotency_key(idempotency_key)
    params = dict(params or {})
    if target is not None:
        target = directory_user_of(connection=connection, app_user=target)
        params = {"app_user_id": target.pk, **params}
    creates = action_creates_user(connection=connection, action=action)
    if target is None and not creates:
        raise ActionTargetInvalid("Choose the user to act on.")
    check = action_input_check(connection=connection, action=action, params=params)
    recorded = check.params
    replay = _replay(key=key, action=action, connection=connection, actor=actor, parameters=recorded)
    if replay is not None:
        return ActionResult(run=replay, replayed=True)

    if not check.ok:
        error_class = ActionConflict if check.conflict else ActionInvalid
        raise error_class(_first_error(check.errors), errors=check.errors)
    if target is None:
        target_username = str(recorded.get("username", ""))
        target_external_id = ""
    else:
        if target.removed_at is not None or target.status == AppUser.Status.REMOVED:
            raise ActionTargetInvalid(
                f"“{target.username}” was removed from {connection.name}; nothing to do."
            )
        target_username = target.username
        target_external_id = target.external_id

    try:
        run = action_run_start(
            connection=connection,
            action=action,
            actor=actor,
            parameters=recorded,
            idempotency_key=key,
            target_external_id=target_external_id,
            target_username=target_username,
        )
    except IntegrityError:
        # A concurrent request with the same key won the race: replay its run.
        replay = _replay(key=key, action=action, connection=connection, actor=actor, parameters=recorded)
        if replay is None:  # pragma: no cover - the unique key was taken, so a row exists
            raise
        return ActionResult(run=replay, replayed=True)
    return ActionResult(run=action_run_execute(run_id=run.pk))


def _first_error(errors: dict[str, list[str]]) -> str:
    for messages in errors.values():
        if messages:
            return messages[0]
    return "The input is not valid."


def _provider_name(connection: Connection | None) -> str:
    try:
        return registry.get(connection.provider).name if connection else "the provider"
    except LookupError:
        return "the provider"


def action_run_execute(*, run_id: int) -> ActionRun:
    """Send a pending run upstream exactly once and record the outcome.

    Safe to call again (a retried task, a second worker): a run already sent or finished is
    returned as it is, never sent twice."""
    run = action_run_mark_sent(run_id=run_id)
    if run is None:
        return ActionRun.objects.get(pk=run_id)
    connection = run.connection
    if connection is None:
        return action_run_complete(
            run=run, succeeded=False, error_message="The account was deleted before the action ran."
        )
    upstream = _provider_name(connection)
    try:
        outcome: ActionOutcome = _provider_action(connection, run.action).run(
            connection=connection, run=run, params=dict(run.parameters)
        )
    except Exception as exc:  # the outcome upstream is unknown: say so, never guess
        logger.exception("action run %s (%s) failed unexpectedly", run.pk, run.action)
        return action_run_complete(
            run=run,
            succeeded=False,
            result={"outcome": "unknown", "error": type(exc).__name__},
            error_message=f"torii hit an unexpected error; whether {upstream} applied the action is unknown. "
            f"Check the user in {upstream} before trying again.",
        )
    if outcome.succeeded:
        # The action mirrored its change into the synced rows: the counts shown beside them follow.
        read_models_refresh_soon(connection_id=connection.pk)
    return action_run_complete(
        run=run,
        succeeded=outcome.succeeded,
        error_message="" if outcome.succeeded else outcome.message,
        request_id=outcome.request_id,
        result={
            **outcome.result,
            **({"message": outcome.message} if outcome.succeeded and outcome.message else {}),
        },
        target_external_id=outcome.target_external_id,
        target_username=outcome.target_username,
    )


# --- entry points (views and the API call these) ----------------------------------------------
def app_user_act(*, app_user: AppUser, action: str, actor: Any, idempotency_key: str) -> ActionResult:
    """Run one of the provider's actions on one user (an SSO row acts on its directory user)."""
    return action_run_request(
        connection=app_user.connection,
        action=action,
        actor=actor,
        idempotency_key=idempotency_key,
        target=app_user,
    )


def bulk_item_key(*, idempotency_key: str, app_user_id: int) -> str:
    """One key per user of a bulk request, derived from the request's key (so a retried bulk
    request replays every user's outcome instead of sending again)."""
    digest = hashlib.sha256(f"bulk:{idempotency_key}:{app_user_id}".encode()).hexdigest()
    return f"bulk-{digest[:40]}"


def app_users_bulk_act(
    *, app_users: list[AppUser], action: str, actor: Any, idempotency_key: str
) -> list[BulkItem]:
    """Run `action` on each selected user once; one outcome per user (a refusal does not stop the rest)."""
    if not is_admin(actor):
        raise ActionForbidden("Only torii Admins can act on users.")
    key = validate_idempotency_key(idempotency_key)
    if not app_users:
        raise ActionInvalid(
            "Select at least one user.", errors={"app_user_ids": ["Select at least one user."]}
        )
    if len(app_users) > BULK_LIMIT:
        raise ActionInvalid(
            f"Select at most {BULK_LIMIT} users at a time.",
            errors={"app_user_ids": [f"At most {BULK_LIMIT} users."]},
        )
    items: list[BulkItem] = []
    for app_user in app_users:
        item = BulkItem(app_user=app_user)
        try:
            result = app_user_act(
                app_user=app_user,
                action=action,
                actor=actor,
                idempotency_key=bulk_item_key(idempotency_key=key, app_user_id=app_user.pk),
            )
            item.run, item.replayed = result.run, result.replayed
        except ActionRefused as exc:
            item.refused = exc.message
        items.append(item)
    return items


def action_runs_close_abandoned(*, older_than: timedelta = timedelta(minutes=15)) -> int:
    """Finish user actions left pending by a process that died (they would stay pending forever).

    Runs that were never sent say so; runs sent without an answer say the outcome is unknown —
    never a guess either way. Returns how many were closed."""
    cutoff = timezone.now() - older_than
    closed = 0
    stale = ActionRun.objects.filter(
        category=ActionRun.Category.USER_ACTION, status=ActionRun.Status.PENDING, created_at__lt=cutoff
    )
    for run in stale.select_related("connection"):
        upstream = _provider_name(run.connection)
        if (run.result or {}).get("sent_at"):
            action_run_complete(
                run=run,
                succeeded=False,
                result={"outcome": "unknown"},
                error_message=f"torii stopped while {upstream} was being called; whether {upstream} applied "
                f"the action is unknown. Check the user in {upstream} (the next sync shows its state).",
            )
        else:
            action_run_complete(
                run=run,
                succeeded=False,
                result={"outcome": "not_applied"},
                error_message=f"torii stopped before sending this action; nothing was sent to {upstream}.",
            )
        closed += 1
    return closed
