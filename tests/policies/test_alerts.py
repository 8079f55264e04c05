"""Policy runs are announced: a scheduled run waiting for approval, and a run that ended, by e-mail
to the channels subscribed to those kinds (Django's test outbox), with no secret in them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from alerts.kinds import EventKind
from alerts.models import AlertEvent, Channel
from alerts.services import channel_create
from policies.models import Policy, PolicyRun
from policies.services import policies_run_due, policy_run_approve
from tests.policies.conftest import make_policy

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


@pytest.fixture
def inbox(settings):
    settings.TORII_BASE_URL = "https://torii.example.com"
    channel_create(
        actor=None,
        name="IT",
        kind=Channel.Kind.EMAIL,
        recipients="it@example.com",
        event_kinds=[EventKind.POLICY_AWAITING_APPROVAL, EventKind.POLICY_FINISHED],
    )
    return mail.outbox


def test_a_waiting_run_and_its_end_are_announced(synced, sim, admin_user, inbox):
    policy = make_policy([synced], schedule=Policy.Schedule.DAILY, created_by=admin_user)
    Policy.objects.filter(pk=policy.pk).update(next_run_at=timezone.now() - timedelta(minutes=1))
    [run] = policies_run_due()
    assert run.status == PolicyRun.Status.AWAITING_APPROVAL
    waiting = AlertEvent.objects.get(kind=EventKind.POLICY_AWAITING_APPROVAL)
    assert waiting.data["run_id"] == run.pk and waiting.data["selected"] == run.selected > 0
    assert waiting.data["url"] == f"https://torii.example.com/policies/runs/{run.pk}/"
    assert any("waits for approval" in m.subject for m in inbox)

    policy_run_approve(run=run, actor=admin_user)
    run.refresh_from_db()
    assert run.status == PolicyRun.Status.SUCCEEDED, run.stop_reason
    finished = AlertEvent.objects.get(kind=EventKind.POLICY_FINISHED)
    assert finished.data["outcomes"].get("suspended") == run.selected
    ended = [m for m in inbox if m.subject.endswith(": succeeded")]
    assert len(ended) == 1 and f"{run.selected} suspended" in ended[0].body
    assert all(sim.keys["admin"] not in m.body and sim.keys["admin"] not in m.subject for m in inbox)
