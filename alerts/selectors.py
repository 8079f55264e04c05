"""Reads of the alerts pages and API, each a fixed number of queries."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from alerts.models import Channel, Delivery, DeliveryAttempt


def channel_get(*, pk: int) -> Channel:
    return Channel.objects.get(pk=pk)


def channels() -> QuerySet[Channel]:
    """The channels by name (what a picker or the subscriptions grid needs)."""
    return Channel.objects.order_by("name", "id")


def channel_rows() -> QuerySet[Channel]:
    """The channels with their delivered and failed counts (the channel list)."""
    return channels().annotate(
        delivered=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.DELIVERED)),
        failed=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.FAILED)),
    )


def delivery_rows(
    *, status: str = "", channel_id: int | None = None, event_id: int | None = None
) -> QuerySet[Delivery]:
    qs = Delivery.objects.select_related("event", "channel").order_by("-created_at", "-id")
    if status:
        qs = qs.filter(status=status)
    if channel_id:
        qs = qs.filter(channel_id=channel_id)
    if event_id:
        qs = qs.filter(event_id=event_id)
    return qs


def deliveries_with_attempts(deliveries: list[Delivery]) -> list[Delivery]:
    """The deliveries of one page with their attempts attached (`attempt_list`), in one query."""
    by_delivery: dict[int, list[DeliveryAttempt]] = {d.pk: [] for d in deliveries}
    for attempt in DeliveryAttempt.objects.filter(delivery_id__in=by_delivery).order_by(
        "delivery_id", "number"
    ):
        by_delivery[attempt.delivery_id].append(attempt)
    for delivery in deliveries:
        delivery.attempt_list = by_delivery[delivery.pk]  # type: ignore[attr-defined]
    return deliveries
