"""Policy runs against the simulator over HTTP: approval of scheduled runs, acting through the
action service (audit, idempotency), undo, notify-only, read-only refusal and the signals."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.models import ActionRun, AppUser
from integrations.services.actions import ActionForbidden
from policies.models import Policy, PolicyRun, PolicyRunItem
from policies.services import (
    PolicyError,
    policies_run_due,
    policy_next_run_at,
    policy_run_approve,
    policy_run_create,
    policy_run_reject,
    policy_run_undo,
)
from policies.signals import policy_run_awaiting_approval, policy_run_finished
from tests.policies.conftest import connect_and_sync, make_policy

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


@pytest.fixture
def received():
    got: list[tuple[str, int, str]] = []

    def on_waiting(sender, run, **kwargs):
        got.append(("waiting", run.pk, run.status))

    def on_finished(sender, run, **kwargs):
        got.append(("finished", run.pk, run.status))

    policy_run_awaiting_approval.connect(on_waiting)
    policy_run_finished.connect(on_finished)
    yield got
    policy_run_awaiting_approval.disconnect(on_waiting)
    policy_run_finished.disconnect(on_finished)


def _puts(sim):
    return [r for r in sim.requests if r.method == "PUT" and r.path.startswith("/api/systemusers/")]


def _due(policy: Policy) -> None:
    Policy.objects.filter(pk=policy.pk).update(next_run_at=timezone.now() - timedelta(minutes=1))


def test_a_scheduled_run_waits_for_an_admin_then_suspends_once_each(synced, sim, admin_user, received):
    policy = make_policy([synced], schedule=Policy.Schedule.DAILY, created_by=admin_user)
    _due(policy)
    [run] = policies_run_due()
    assert run.status == PolicyRun.Status.AWAITING_APPROVAL
    assert received == [("waiting", run.pk, "awaiting_approval")]
    assert not _puts(sim), "nothing is sent before approval"
    policy.refresh_from_db()
    assert policy.next_run_at > timezone.now()
    assert policies_run_due() == [], "the next time moved on: no second run"

    run = policy_run_approve(run=run, actor=admin_user)
    run.refresh_from_db()
    assert run.status == PolicyRun.Status.SUCCEEDED, run.stop_reason
    items = list(run.items.all())
    assert items and all(i.outcome == PolicyRunItem.Outcome.SUSPENDED for i in items)
    # One PUT per person, JumpCloud's state changed, the action's audit record is linked.
    assert sorted(r.path for r in _puts(sim)) == sorted(f"/api/systemusers/{i.external_id}" for i in items)
    for item in items:
        assert sim.tenant().user(item.external_id)["state"] == "SUSPENDED"
        assert item.action_run.status == ActionRun.Status.SUCCEEDED
        assert item.action_run.actor == admin_user and item.action_run.action == "suspend_user"
        assert item.action_run.request_id and item.action_run.request_id in item.message
    assert ("finished", run.pk, "succeeded") in received
    approval = ActionRun.objects.get(action="policy.run_approved")
    assert approval.actor == admin_user and approval.parameters["run"] == run.pk
    # Approving twice is refused and sends nothing more.
    with pytest.raises(PolicyError):
        policy_run_approve(run=run, actor=admin_user)
    assert len(_puts(sim)) == len(items)


def test_a_viewer_cannot_approve_or_run(synced, admin_user, viewer_user):
    policy = make_policy([synced], schedule=Policy.Schedule.DAILY, created_by=admin_user)
    _due(policy)
    [run] = policies_run_due()
    with pytest.raises(ActionForbidden):
        policy_run_approve(run=run, actor=viewer_user)
    with pytest.raises(ActionForbidden):
        policy_run_create(policy=policy, actor=viewer_user)
    assert PolicyRun.objects.get(pk=run.pk).status == PolicyRun.Status.AWAITING_APPROVAL


def test_rejecting_a_waiting_run_touches_nobody(synced, sim, admin_user, received):
    policy = make_policy([synced], schedule=Policy.Schedule.WEEKLY, created_by=admin_user)
    _due(policy)
    [run] = policies_run_due()
    run = policy_run_reject(run=run, actor=admin_user)
    assert run.status == PolicyRun.Status.REJECTED
    assert set(run.items.values_list("outcome", flat=True)) == {"skipped"}
    assert not _puts(sim)
    assert ActionRun.objects.get(action="policy.run_rejected").actor == admin_user


def test_unattended_runs_and_people_already_approved_need_no_approval(synced, sim, admin_user):
    notify = make_policy(
        [synced],
        name="notify",
        action=Policy.Action.NOTIFY,
        schedule=Policy.Schedule.DAILY,
        created_by=admin_user,
    )
    _due(notify)
    [first] = policies_run_due()
    assert first.status == PolicyRun.Status.AWAITING_APPROVAL
    policy_run_approve(run=first, actor=admin_user)
    first.refresh_from_db()
    assert set(first.items.values_list("outcome", flat=True)) == {"notified"}
    # The same people the next day: nobody new, so it runs without waiting.
    _due(notify)
    [second] = policies_run_due()
    second.refresh_from_db()
    assert second.status == PolicyRun.Status.SUCCEEDED
    assert not second.items.filter(is_new=True).exists()
    assert not _puts(sim), "notify only never writes to JumpCloud"

    unattended = make_policy(
        [synced], name="unattended", schedule=Policy.Schedule.DAILY, unattended=True, created_by=admin_user
    )
    _due(unattended)
    [run] = policies_run_due()
    run.refresh_from_db()
    assert run.status == PolicyRun.Status.SUCCEEDED and run.actor == admin_user
    assert run.items.filter(outcome="suspended").count() == len(_puts(sim)) > 0


def test_undo_unsuspends_everyone_the_run_suspended_and_is_audited(synced, sim, admin_user):
    policy = make_policy([synced])
    run = policy_run_create(policy=policy, actor=admin_user)
    run.refresh_from_db()
    suspended = list(run.items.filter(outcome="suspended"))
    assert suspended
    sim.clear_requests()
    policy_run_undo(run=run, actor=admin_user)
    run.refresh_from_db()
    assert run.undone_by == admin_user and run.undone_at is not None
    for item in run.items.filter(outcome="suspended"):
        assert item.undo == PolicyRunItem.Undo.UNSUSPENDED
        assert item.undo_action_run.action == "unsuspend_user" and item.undo_action_run.status == "succeeded"
        assert sim.tenant().user(item.external_id)["state"] == "ACTIVATED"
        assert AppUser.objects.get(pk=item.app_user_id).status == AppUser.Status.ACTIVE
    assert len(_puts(sim)) == len(suspended)
    audit = ActionRun.objects.get(action="policy.run_undone")
    assert audit.actor == admin_user and audit.parameters["unsuspended"] == len(suspended)
    # Nothing left to undo: a second undo is refused and sends nothing.
    with pytest.raises(PolicyError):
        policy_run_undo(run=run, actor=admin_user)
    assert len(_puts(sim)) == len(suspended)


def test_a_read_only_account_is_only_notified(sim, settings, admin_user):
    connection = connect_and_sync(sim, settings, permission="read_only")
    policy = make_policy([connection])
    run = policy_run_create(policy=policy, actor=admin_user)
    run.refresh_from_db()
    outcomes = set(run.items.values_list("outcome", flat=True))
    assert outcomes == {"notified"}
    assert all("read-only" in m for m in run.items.values_list("message", flat=True))
    assert not _puts(sim)
    assert not ActionRun.objects.filter(action="suspend_user").exists()


def test_a_dry_run_policy_records_whom_it_would_touch_and_touches_nobody(synced, sim, admin_user, received):
    policy = make_policy([synced], dry_run=True)
    run = policy_run_create(policy=policy, actor=admin_user)
    assert run.status == PolicyRun.Status.SUCCEEDED and run.dry_run
    assert run.items.exists() and set(run.items.values_list("outcome", flat=True)) == {"would_act"}
    assert not _puts(sim)
    assert received == [("finished", run.pk, "succeeded")]


def test_a_person_who_signs_in_before_approval_is_skipped(synced, sim, admin_user):
    from integrations.models import Application, LastUse

    policy = make_policy([synced], schedule=Policy.Schedule.DAILY, created_by=admin_user)
    _due(policy)
    [run] = policies_run_due()
    item = run.items.order_by("id").first()
    directory = Application.objects.get(connection=synced, kind="directory")
    LastUse.objects.update_or_create(
        application=directory,
        person_external_id=item.external_id,
        defaults={"connection": synced, "last_used_at": timezone.now()},
    )
    policy_run_approve(run=run, actor=admin_user)
    item.refresh_from_db()
    assert item.outcome == PolicyRunItem.Outcome.SKIPPED
    assert f"/api/systemusers/{item.external_id}" not in {r.path for r in _puts(sim)}


def test_schedule_times():
    now = timezone.now().replace(hour=10, minute=30, second=0, microsecond=0)
    daily = Policy(schedule=Policy.Schedule.DAILY, schedule_hour=6)
    assert policy_next_run_at(policy=daily, after=now) == (now + timedelta(days=1)).replace(hour=6, minute=0)
    later = Policy(schedule=Policy.Schedule.DAILY, schedule_hour=11)
    assert policy_next_run_at(policy=later, after=now) == now.replace(hour=11, minute=0)
    weekly = Policy(schedule=Policy.Schedule.WEEKLY, schedule_hour=6, schedule_weekday=now.weekday())
    assert policy_next_run_at(policy=weekly, after=now) == (now + timedelta(days=7)).replace(hour=6, minute=0)
    assert policy_next_run_at(policy=Policy(schedule=Policy.Schedule.MANUAL), after=now) is None


def test_beat_runs_due_policies_through_a_registered_task(settings, synced, admin_user):
    from torii.celery import app

    entry = next(
        e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "policies.tasks.run_due_policies"
    )
    assert entry["task"] in app.tasks
    policy = make_policy([synced], schedule=Policy.Schedule.WEEKLY, created_by=admin_user)
    _due(policy)
    app.tasks[entry["task"]].delay()
    assert PolicyRun.objects.get(policy=policy).status == PolicyRun.Status.AWAITING_APPROVAL


def test_a_duplicate_delivery_while_a_worker_runs_the_run_does_nothing(synced, sim, admin_user):
    from policies.services import policy_run_execute, policy_runs_recover_stale

    policy = make_policy([synced], schedule=Policy.Schedule.DAILY, created_by=admin_user)
    _due(policy)
    [run] = policies_run_due()
    # As if a live worker had just started it (approved, running, fresh heartbeat).
    PolicyRun.objects.filter(pk=run.pk).update(
        status=PolicyRun.Status.RUNNING, actor=admin_user, heartbeat_at=timezone.now()
    )
    assert policy_run_execute(run_id=run.pk).status == PolicyRun.Status.RUNNING
    assert not _puts(sim) and not run.items.exclude(outcome="pending").exists()
    # Once its heartbeat is stale, recovery hands it over and the next delivery finishes it.
    assert policy_runs_recover_stale(now=timezone.now() + timedelta(minutes=10)) == 1
    run.refresh_from_db()
    assert run.status == PolicyRun.Status.SUCCEEDED
    assert len(_puts(sim)) == run.items.filter(outcome="suspended").count() > 0
