"""Alert tasks: each takes ids and calls one service; the retry waits live here."""

from __future__ import annotations

from celery import shared_task

from alerts import checks, services


@shared_task(bind=True, name="alerts.tasks.deliver", acks_late=True, max_retries=None, ignore_result=True)
def deliver(self, delivery_id: int) -> None:  # type: ignore[no-untyped-def]
    """One attempt at a delivery; a failure comes back after its backoff (the service counts them)."""
    try:
        services.alert_delivery_attempt(delivery_id=delivery_id)
    except services.RetryDelivery as exc:
        raise self.retry(countdown=exc.countdown, exc=None) from None


@shared_task(name="alerts.tasks.check_sync_run", acks_late=True, ignore_result=True)
def check_sync_run(run_id: int) -> None:
    checks.alerts_check_sync_run(run_id=run_id)


@shared_task(name="alerts.tasks.check_usage_staleness", acks_late=True, ignore_result=True)
def check_usage_staleness() -> None:
    checks.alerts_check_usage_staleness()


@shared_task(name="alerts.tasks.resume_deliveries", acks_late=True, ignore_result=True)
def resume_deliveries() -> None:
    services.alert_deliveries_resume()
