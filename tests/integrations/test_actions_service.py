"""The provider-neutral action service and the audit helpers, without any network."""

from __future__ import annotations

import pytest

from integrations.models import ActionRun
from integrations.providers import registry
from integrations.services import actions as services
from integrations.services.audit import (
    action_label,
    action_run_complete,
    action_run_start,
    audit_connection_event,
    scrub_parameters,
)
from tests.factories import AppUserFactory, ConnectionFactory

pytestmark = pytest.mark.django_db

KEY = "0f0e0d0c-0b0a-4909-8807-060504030201"


@pytest.fixture
def target():
    return AppUserFactory(application__connection=ConnectionFactory())


def test_parameters_never_record_a_secret():
    assert scrub_parameters({"api_key": "k", "Password": "p", "username": "jane"}) == {
        "api_key": "[redacted]",
        "Password": "[redacted]",
        "username": "jane",
    }


def test_a_finished_record_is_never_changed_again(target, admin_user):
    run = action_run_start(
        connection=target.connection,
        action="suspend_user",
        actor=admin_user,
        parameters={"app_user_id": target.pk},
        idempotency_key=KEY,
    )
    assert run.status == ActionRun.Status.PENDING and run.finished_at is None
    action_run_complete(run=run, succeeded=True, request_id="req-1")
    again = action_run_complete(run=ActionRun.objects.get(pk=run.pk), succeeded=False, error_message="late")
    assert (again.status, again.error_message, again.request_id) == ("succeeded", "", "req-1")


def test_connection_events_are_recorded_finished_with_their_label(admin_user):
    connection = ConnectionFactory()
    run = audit_connection_event(
        connection=connection,
        action="sync.started",
        actor=admin_user,
        parameters={"kind": "full", "token": "x"},
    )
    assert run.status == "succeeded" and run.finished_at is not None
    assert run.parameters == {"kind": "full", "token": "[redacted]"}
    assert action_label(run.action) == "Sync started by hand"
    assert action_label("something.new") == "something.new"


def test_an_unexpected_provider_error_is_recorded_as_an_unknown_outcome(target, admin_user, monkeypatch):
    provider = registry.get("jumpcloud")

    def explode(**kwargs):
        raise RuntimeError("boom")

    declared = provider.action("suspend_user")
    monkeypatch.setattr(
        type(provider),
        "action",
        lambda self, key: type(declared)(declared.key, declared.label, explode, declared.capability),
    )
    run = services.app_user_act(
        action="suspend_user", app_user=target, actor=admin_user, idempotency_key=KEY
    ).run
    assert run.status == ActionRun.Status.FAILED
    assert run.result["outcome"] == "unknown" and run.result["error"] == "RuntimeError"
    assert "whether JumpCloud applied the action is unknown" in run.error_message


def test_a_user_of_another_account_or_an_admin_only_row_is_not_a_target(target, admin_user):
    other = ConnectionFactory()
    with pytest.raises(services.ActionTargetInvalid):
        services.action_run_request(
            connection=other, action="suspend_user", actor=admin_user, idempotency_key=KEY, target=target
        )
    admin_only = AppUserFactory(application=target.application, kind="admin")
    with pytest.raises(services.ActionTargetInvalid):
        services.app_user_act(
            action="delete_user", app_user=admin_only, actor=admin_user, idempotency_key=KEY
        )
    assert not ActionRun.objects.exists()


def test_bulk_suspend_is_bounded(target, admin_user):
    with pytest.raises(services.ActionInvalid):
        services.app_users_bulk_act(
            action="suspend_user", app_users=[], actor=admin_user, idempotency_key=KEY
        )
    with pytest.raises(services.ActionInvalid):
        services.app_users_bulk_act(
            action="suspend_user",
            app_users=[target] * (services.BULK_LIMIT + 1),
            actor=admin_user,
            idempotency_key=KEY,
        )
    keys = {services.bulk_item_key(idempotency_key=KEY, app_user_id=i) for i in range(50)}
    assert len(keys) == 50 and all(len(k) <= 64 for k in keys)


def test_actions_left_pending_by_a_dead_process_are_closed_without_guessing(db):
    from datetime import timedelta

    from django.utils import timezone

    from integrations.models import ActionRun
    from integrations.services.actions import action_runs_close_abandoned
    from tests.factories import ActionRunFactory

    sent = ActionRunFactory(status="pending", result={"sent_at": "2026-01-01T00:00:00+00:00"})
    unsent = ActionRunFactory(status="pending")
    fresh = ActionRunFactory(status="pending")
    ActionRun.objects.filter(pk__in=[sent.pk, unsent.pk]).update(
        created_at=timezone.now() - timedelta(hours=1)
    )
    assert action_runs_close_abandoned() == 2
    sent.refresh_from_db(), unsent.refresh_from_db(), fresh.refresh_from_db()
    assert sent.status == "failed" and sent.result["outcome"] == "unknown" and "unknown" in sent.error_message
    assert unsent.status == "failed" and unsent.result["outcome"] == "not_applied"
    assert fresh.status == "pending"
