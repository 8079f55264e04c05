"""Signal receivers: a finished sync queues its alert checks (off the sync's own path)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.dispatch import receiver

from integrations.models import SyncRun
from integrations.signals import sync_run_finished


@receiver(sync_run_finished, dispatch_uid="alerts.sync_run_finished")
def on_sync_run_finished(sender: Any, run: SyncRun, **kwargs: Any) -> None:
    from alerts.tasks import check_sync_run

    run_id = run.pk
    transaction.on_commit(lambda: check_sync_run.delay(run_id))
