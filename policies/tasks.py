"""Celery tasks of policies: each takes ids and calls one service."""

from __future__ import annotations

from celery import shared_task

from policies import services


@shared_task(name="policies.tasks.execute_policy_run", acks_late=True, ignore_result=True)
def execute_policy_run(run_id: int) -> None:
    """Act on a queued run (safe to deliver twice: people already handled keep their outcome)."""
    services.policy_run_execute(run_id=run_id)


@shared_task(name="policies.tasks.run_due_policies", ignore_result=True)
def run_due_policies() -> None:
    """Beat: make the runs of scheduled policies whose time has come, and resume runs whose
    worker died."""
    services.policies_run_due()
    services.policy_runs_recover_stale()
