"""Every write of policies: save a policy, make a run (by hand or on schedule), approve or reject
it, execute it, undo it.

At most once: each person of a run is suspended through the action service with a key made of
the run's and the person's row ids (`policy_item_key`). A resumed run (a worker killed mid-run,
a redelivered task) finds the action record that key already made and takes its outcome from
there; the action service never sends a key twice (integrations.services.actions).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.roles import is_admin
from integrations.models import ActionRun, Application, Connection
from integrations.services.actions import (
    ActionForbidden,
    ActionRefused,
    action_run_execute,
    app_user_act,
    connection_action_unavailable_reason,
)
from integrations.services.audit import audit_connection_event
from policies.models import Policy, PolicyRun, PolicyRunItem
from policies.selectors import (
    Selection,
    policy_approved_people,
    policy_brakes,
    policy_connections,
    policy_selection,
)
from policies.signals import policy_run_awaiting_approval, policy_run_finished

logger = logging.getLogger(__name__)

# A running run whose heartbeat is older than this lost its worker: recovery queues it again.
STALE_AFTER = timedelta(minutes=5)

# The actions a policy takes, by the keys providers declare them under (integrations.providers).
SUSPEND_USER = "suspend_user"
UNSUSPEND_USER = "unsuspend_user"


class PolicyError(Exception):
    """A request about a policy that torii refuses; nothing was changed."""

    def __init__(self, message: str, *, errors: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or {}


def _require_admin(actor: Any) -> None:
    if not is_admin(actor):
        raise ActionForbidden("Only torii Admins can change policies or run them.")


# --- policies ----------------------------------------------------------------------------------
def policy_next_run_at(*, policy: Policy, after: datetime) -> datetime | None:
    """The next scheduled time after `after` (server time zone), or None for a manual policy."""
    if not policy.enabled or policy.schedule == Policy.Schedule.MANUAL:
        return None
    local = timezone.localtime(after)
    at = local.replace(hour=policy.schedule_hour, minute=0, second=0, microsecond=0)
    if policy.schedule == Policy.Schedule.WEEKLY:
        at += timedelta(days=(policy.schedule_weekday - at.weekday()) % 7)
        if at <= local:
            at += timedelta(days=7)
    elif at <= local:
        at += timedelta(days=1)
    return at


def policy_validate(*, policy: Policy, connections: list[Connection]) -> dict[str, list[str]]:
    """Errors per field of a policy about to be saved ({} when it is fine)."""
    errors: dict[str, list[str]] = {}
    if not connections:
        errors["connections"] = ["Choose at least one account."]
    app: Application | None = policy.application
    if app is not None and app.connection_id not in {c.pk for c in connections}:
        errors.setdefault("application", []).append(
            "The application must belong to one of the chosen accounts."
        )
    if policy.use_scope == Policy.UseScope.APPLICATION and app is None:
        errors.setdefault("application", []).append("Choose the application whose use counts.")
    if app is not None and app.kind == Application.Kind.DIRECTORY:
        errors.setdefault("application", []).append(
            "Choose an SSO application (the directory is covered by “In the directory”)."
        )
    return errors


def policy_save(*, policy: Policy, connections: list[Connection], actor: Any) -> Policy:
    """Create or update a policy (Admins only). Raises PolicyError with the errors per field."""
    _require_admin(actor)
    errors = policy_validate(policy=policy, connections=connections)
    if errors:
        raise PolicyError("The policy is not valid.", errors=errors)
    if policy.pk is None:
        policy.created_by = actor
    policy.next_run_at = policy_next_run_at(policy=policy, after=timezone.now())
    with transaction.atomic():
        policy.save()
        policy.connections.set(connections)
        for connection in connections:
            audit_connection_event(
                connection=connection,
                action="policy.saved",
                actor=actor,
                parameters={
                    "policy": policy.name,
                    "action": policy.action,
                    "dry_run": policy.dry_run,
                    "schedule": policy.schedule,
                    "inactive_days": policy.inactive_days,
                },
            )
    return policy


def policy_delete(*, policy: Policy, actor: Any) -> None:
    _require_admin(actor)
    if policy.runs.filter(status__in=[PolicyRun.Status.QUEUED, PolicyRun.Status.RUNNING]).exists():
        raise PolicyError("A run of this policy is in progress; delete the policy once it has finished.")
    policy.delete()


# --- runs --------------------------------------------------------------------------------------
def _send_after_commit(signal: Any, run: PolicyRun) -> None:
    transaction.on_commit(lambda: signal.send_robust(sender=PolicyRun, run=run))


def _enqueue(run: PolicyRun) -> None:
    from policies import tasks

    transaction.on_commit(lambda: tasks.execute_policy_run.delay(run.pk))


def _cap_message(selection: Selection, policy: Policy) -> str:
    n = len(selection.candidates)
    return (
        f"This run would touch {n} people, more than its cap of {selection.limit} (at most "
        f"{policy.max_people} people and {policy.max_percent:g} % of the {selection.account_size} people "
        "of its accounts). Nothing was done: check the dry run, and raise the cap if this is expected."
    )


def policy_run_create(
    *,
    policy: Policy,
    trigger: str = PolicyRun.Trigger.MANUAL,
    actor: Any = None,
    now: datetime | None = None,
) -> PolicyRun:
    """Make a run from today's selection.

    By hand (an Admin, who has seen the dry run): approved by them and queued at once. On
    schedule: queued when the policy runs unattended or touches nobody not approved before,
    else waiting for an Admin's approval. A brake or the cap stops it before anyone is touched."""
    if trigger == PolicyRun.Trigger.MANUAL:
        _require_admin(actor)
    now = now or timezone.now()
    selection = policy_selection(policy=policy, now=now)
    approved = policy_approved_people(policy=policy)
    with transaction.atomic():
        run = PolicyRun.objects.create(
            policy=policy,
            trigger=trigger,
            action=policy.action,
            dry_run=policy.dry_run,
            requested_by=actor if getattr(actor, "is_authenticated", False) else None,
            account_size=selection.account_size,
            selected=len(selection.candidates),
        )
        PolicyRunItem.objects.bulk_create(
            [
                PolicyRunItem(
                    run=run,
                    connection=c.connection,
                    app_user=c.app_user,
                    external_id=c.app_user.external_id,
                    username=c.app_user.username,
                    email=c.app_user.email,
                    last_used_at=c.last_used_at,
                    reason=c.reason[:500],
                    is_new=(c.connection.pk, c.app_user.external_id) not in approved,
                )
                for c in selection.candidates
            ]
        )
        stop = list(selection.brakes)
        if selection.over_cap:
            stop.append(_cap_message(selection, policy))
        if stop:
            return _finish(run, status=PolicyRun.Status.STOPPED, reason=" ".join(stop))
        if policy.dry_run:
            run.items.update(outcome=PolicyRunItem.Outcome.WOULD_ACT)
            return _finish(run, status=PolicyRun.Status.SUCCEEDED)
        if trigger == PolicyRun.Trigger.MANUAL:
            run.actor = run.approved_by = actor
            run.approved_at = now
        elif policy.unattended or not run.items.filter(is_new=True).exists():
            run.actor = policy.created_by
        else:
            run.status = PolicyRun.Status.AWAITING_APPROVAL
            run.save(update_fields=["status"])
            _send_after_commit(policy_run_awaiting_approval, run)
            return run
        run.save(update_fields=["actor", "approved_by", "approved_at"])
        _enqueue(run)
    return run


def policy_run_approve(*, run: PolicyRun, actor: Any) -> PolicyRun:
    """An Admin approves a waiting run: it acts on their authority, on the people it listed."""
    _require_admin(actor)
    with transaction.atomic():
        run = PolicyRun.objects.select_for_update().get(pk=run.pk)
        if run.status != PolicyRun.Status.AWAITING_APPROVAL:
            raise PolicyError(
                f"This run is {run.get_status_display().lower()}; only a waiting run can be approved."
            )
        run.status = PolicyRun.Status.QUEUED
        run.actor = run.approved_by = actor
        run.approved_at = timezone.now()
        run.save(update_fields=["status", "actor", "approved_by", "approved_at"])
        _audit_run(run, action="policy.run_approved", actor=actor)
        _enqueue(run)
    return run


def _audit_run(run: PolicyRun, *, action: str, actor: Any) -> None:
    """An approval or rejection in the audit log of each account the run touches."""
    ids = set(run.items.exclude(connection=None).values_list("connection_id", flat=True))
    for connection in Connection.objects.filter(pk__in=ids):
        audit_connection_event(
            connection=connection,
            action=action,
            actor=actor,
            parameters={"policy": run.policy.name, "run": run.pk, "people": run.selected},
        )


def policy_run_reject(*, run: PolicyRun, actor: Any) -> PolicyRun:
    _require_admin(actor)
    with transaction.atomic():
        run = PolicyRun.objects.select_for_update().get(pk=run.pk)
        if run.status != PolicyRun.Status.AWAITING_APPROVAL:
            raise PolicyError(
                f"This run is {run.get_status_display().lower()}; only a waiting run can be rejected."
            )
        run.items.filter(outcome=PolicyRunItem.Outcome.PENDING).update(
            outcome=PolicyRunItem.Outcome.SKIPPED, message="The run was rejected."
        )
        _audit_run(run, action="policy.run_rejected", actor=actor)
        return _finish(run, status=PolicyRun.Status.REJECTED, reason=f"Rejected by {actor.get_username()}.")


def _finish(run: PolicyRun, *, status: str, reason: str = "") -> PolicyRun:
    run.status = status
    run.stop_reason = reason
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "stop_reason", "finished_at"])
    if status == PolicyRun.Status.STOPPED:
        run.items.filter(outcome=PolicyRunItem.Outcome.PENDING).update(
            outcome=PolicyRunItem.Outcome.SKIPPED, message="The run was stopped before acting."
        )
    _send_after_commit(policy_run_finished, run)
    return run


def policy_item_key(*, run: PolicyRun, item: PolicyRunItem, undo: bool = False) -> str:
    """The idempotency key of one person's action in one run: the same on every attempt."""
    return f"policy-{'undo-' if undo else ''}run{run.pk}-item{item.pk}"


def _apply_action(item: PolicyRunItem, action: ActionRun) -> None:
    """The item's outcome from its action record (a record left pending by a dead worker is
    sent now if it never was; if it was sent, the outcome is unknown — never a guess)."""
    if action.status == ActionRun.Status.PENDING and not (action.result or {}).get("sent_at"):
        action = action_run_execute(run_id=action.pk)
    item.action_run = action
    if action.status == ActionRun.Status.SUCCEEDED:
        item.outcome = PolicyRunItem.Outcome.SUSPENDED
        answer = str((action.result or {}).get("message") or "JumpCloud suspended the user.")
        item.message = f"{answer} (request id {action.request_id})" if action.request_id else answer
    elif action.status == ActionRun.Status.FAILED:
        item.outcome = PolicyRunItem.Outcome.FAILED
        item.message = action.error_message or "JumpCloud refused the suspension."
    else:
        item.outcome = PolicyRunItem.Outcome.UNKNOWN
        item.message = (
            "torii stopped while JumpCloud was being called; whether the user was suspended is "
            "unknown. The next sync shows their state; the action is never sent twice."
        )


def _execute_item(run: PolicyRun, item: PolicyRunItem, current: set[tuple[int | None, str]]) -> None:
    key = policy_item_key(run=run, item=item)
    existing = ActionRun.objects.filter(idempotency_key=key).first()
    if existing is not None:
        _apply_action(item, existing)
    elif item.app_user is None or (item.connection_id, item.external_id) not in current:
        item.outcome = PolicyRunItem.Outcome.SKIPPED
        item.message = "No longer matches the policy (used, changed or removed since the run was made)."
    elif run.action == Policy.Action.NOTIFY:
        item.outcome = PolicyRunItem.Outcome.NOTIFIED
        item.message = "Listed in the run's notification; nothing was changed in JumpCloud."
    else:
        unavailable = connection_action_unavailable_reason(connection=item.connection, action=SUSPEND_USER)  # type: ignore[arg-type]
        if unavailable:
            # Read-only accounts: the policy can only notify.
            item.outcome = PolicyRunItem.Outcome.NOTIFIED
            item.message = f"Not suspended: {unavailable} Listed in the run's notification instead."
        else:
            try:
                result = app_user_act(
                    app_user=item.app_user, action=SUSPEND_USER, actor=run.actor, idempotency_key=key
                )
            except ActionRefused as exc:
                item.outcome = PolicyRunItem.Outcome.REFUSED
                item.message = exc.message
            else:
                _apply_action(item, result.run)
    item.save(update_fields=["outcome", "message", "action_run"])


def policy_run_execute(*, run_id: int) -> PolicyRun:
    """Act on a queued run's people, once each. Safe to call again on a run that a dead worker
    left running: people already handled keep their outcome, the rest are done now."""
    now = timezone.now()
    with transaction.atomic():
        run = (
            PolicyRun.objects.select_for_update(of=("self",)).select_related("policy", "actor").get(pk=run_id)
        )
        if run.status not in (PolicyRun.Status.QUEUED, PolicyRun.Status.RUNNING):
            return run
        if (
            run.status == PolicyRun.Status.RUNNING
            and run.heartbeat_at is not None
            and now - run.heartbeat_at < STALE_AFTER
        ):
            # A duplicate delivery while a live worker runs it: that worker finishes the run.
            return run
        run.status = PolicyRun.Status.RUNNING
        run.attempts += 1
        run.started_at = run.started_at or now
        run.heartbeat_at = now
        run.save(update_fields=["status", "attempts", "started_at", "heartbeat_at"])
    policy = run.policy
    pending = list(
        run.items.filter(outcome=PolicyRunItem.Outcome.PENDING)
        .select_related("connection", "app_user")
        .order_by("id")
    )
    untouched = not run.items.exclude(outcome=PolicyRunItem.Outcome.PENDING).exists()
    # The usage may have gone stale while the run waited for approval: check the brakes again.
    brakes = policy_brakes(policy=policy)
    if brakes and untouched:
        return _finish(run, status=PolicyRun.Status.STOPPED, reason=" ".join(brakes))
    # Resumed onto stale data (brakes): finish what was started, start nobody new.
    current: set[tuple[int | None, str]] = (
        set()
        if brakes
        else {(c.connection.pk, c.app_user.external_id) for c in policy_selection(policy=policy).candidates}
    )
    for item in pending:
        _execute_item(run, item, current)
        PolicyRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now())
    outcomes = set(run.items.values_list("outcome", flat=True))
    bad = {PolicyRunItem.Outcome.FAILED, PolicyRunItem.Outcome.UNKNOWN, PolicyRunItem.Outcome.REFUSED}
    status = PolicyRun.Status.PARTIAL if outcomes & bad else PolicyRun.Status.SUCCEEDED
    return _finish(run, status=status, reason=" ".join(brakes))


def policy_run_undo(*, run: PolicyRun, actor: Any) -> PolicyRun:
    """Unsuspend everyone this run suspended, each through the action service (audited), and
    record the undo itself in the audit log of each account."""
    _require_admin(actor)
    if not run.is_finished:
        raise PolicyError("Only a finished run can be undone.")
    items = list(
        run.items.filter(outcome=PolicyRunItem.Outcome.SUSPENDED)
        .exclude(undo=PolicyRunItem.Undo.UNSUSPENDED)
        .select_related("connection", "app_user")
        .order_by("id")
    )
    if not items:
        raise PolicyError("This run suspended nobody who is still to be unsuspended.")
    for item in items:
        if item.app_user is None:
            item.undo, item.undo_message = PolicyRunItem.Undo.FAILED, "The user is no longer in torii."
        else:
            try:
                result = app_user_act(
                    action=UNSUSPEND_USER,
                    app_user=item.app_user,
                    actor=actor,
                    idempotency_key=policy_item_key(run=run, item=item, undo=True),
                )
            except ActionRefused as exc:
                item.undo, item.undo_message = PolicyRunItem.Undo.FAILED, exc.message
            else:
                item.undo_action_run = result.run
                if result.run.status == ActionRun.Status.SUCCEEDED:
                    item.undo = PolicyRunItem.Undo.UNSUSPENDED
                    item.undo_message = str(
                        (result.run.result or {}).get("message") or "JumpCloud unsuspended the user."
                    )
                else:
                    item.undo = PolicyRunItem.Undo.FAILED
                    item.undo_message = result.run.error_message or "The outcome is unknown."
        item.save(update_fields=["undo", "undo_message", "undo_action_run"])
    run.undone_by, run.undone_at = actor, timezone.now()
    run.save(update_fields=["undone_by", "undone_at"])
    for connection in {i.connection for i in items if i.connection is not None}:
        mine = [i for i in items if i.connection_id == connection.pk]
        audit_connection_event(
            connection=connection,
            action="policy.run_undone",
            actor=actor,
            parameters={
                "policy": run.policy.name,
                "run": run.pk,
                "unsuspended": sum(1 for i in mine if i.undo == PolicyRunItem.Undo.UNSUSPENDED),
                "failed": sum(1 for i in mine if i.undo == PolicyRunItem.Undo.FAILED),
            },
            succeeded=all(i.undo == PolicyRunItem.Undo.UNSUSPENDED for i in mine),
        )
    return run


# --- schedules and recovery ----------------------------------------------------------------
def policies_run_due(*, now: datetime | None = None) -> list[PolicyRun]:
    """Make the runs of every policy whose time has come (beat calls this every few minutes).
    Each policy is locked while its next time moves on, so two beats never make two runs."""
    now = now or timezone.now()
    runs: list[PolicyRun] = []
    due = list(
        Policy.objects.filter(enabled=True, next_run_at__lte=now)
        .exclude(schedule=Policy.Schedule.MANUAL)
        .values_list("pk", flat=True)
    )
    for pk in due:
        with transaction.atomic():
            policy = (
                Policy.objects.select_for_update(skip_locked=True)
                .filter(pk=pk, enabled=True, next_run_at__lte=now)
                .first()
            )
            if policy is None:
                continue
            policy.next_run_at = policy_next_run_at(policy=policy, after=now)
            policy.save(update_fields=["next_run_at"])
            if policy.runs.filter(
                status__in=[
                    PolicyRun.Status.AWAITING_APPROVAL,
                    PolicyRun.Status.QUEUED,
                    PolicyRun.Status.RUNNING,
                ]
            ).exists():
                logger.info("policy %s: a run is still open; the scheduled run is skipped", policy.pk)
                continue
            runs.append(policy_run_create(policy=policy, trigger=PolicyRun.Trigger.SCHEDULE, now=now))
    return runs


def policy_runs_recover_stale(*, now: datetime | None = None) -> int:
    """Queue again the runs whose worker died (a stale heartbeat, or queued and never started)."""
    now = now or timezone.now()
    stale = PolicyRun.objects.filter(
        status__in=[PolicyRun.Status.RUNNING, PolicyRun.Status.QUEUED],
        heartbeat_at__lt=now - STALE_AFTER,
    ) | PolicyRun.objects.filter(
        status=PolicyRun.Status.QUEUED, heartbeat_at__isnull=True, created_at__lt=now - STALE_AFTER
    )
    count = 0
    for run in stale:
        # The dead worker's heartbeat no longer holds the run: the next delivery takes it over.
        PolicyRun.objects.filter(pk=run.pk).update(heartbeat_at=None)
        _enqueue(run)
        count += 1
    return count


__all__ = [
    "PolicyError",
    "policies_run_due",
    "policy_connections",
    "policy_delete",
    "policy_item_key",
    "policy_next_run_at",
    "policy_run_approve",
    "policy_run_create",
    "policy_run_execute",
    "policy_run_reject",
    "policy_run_undo",
    "policy_runs_recover_stale",
    "policy_save",
    "policy_validate",
]
