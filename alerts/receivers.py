"""Signal receivers: a finished sync queues its alert checks (off the sync's own path); a policy
run that waits for approval or has finished is announced."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.dispatch import receiver

from alerts.kinds import EventKind
from integrations.models import SyncRun
from integrations.signals import sync_run_finished
from policies.signals import policy_run_awaiting_approval, policy_run_finished


@receiver(sync_run_finished, dispatch_uid="alerts.sync_run_finished")
def on_sync_run_finished(sender: Any, run: SyncRun, **kwargs: Any) -> None:
    from alerts.tasks import check_sync_run

    run_id = run.pk
    transaction.on_commit(lambda: check_sync_run.delay(run_id))


@receiver(policy_run_awaiting_approval, dispatch_uid="alerts.policy_run_awaiting_approval")
def on_policy_run_awaiting_approval(sender: Any, run: Any, **kwargs: Any) -> None:
    from alerts.services import alert_policy_run

    alert_policy_run(run=run, kind=EventKind.POLICY_AWAITING_APPROVAL)


@receiver(policy_run_finished, dispatch_uid="alerts.policy_run_finished")
def on_policy_run_finished(sender: Any, run: Any, **kwargs: Any) -> None:
    from alerts.services import alert_policy_run

    alert_policy_run(run=run, kind=EventKind.POLICY_FINISHED)
