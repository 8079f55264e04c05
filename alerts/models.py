"""Alert channels (where to send), events (what happened), open conditions (what not to repeat),
and deliveries with every attempt (the delivery log)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from alerts.kinds import EventKind
from integrations.models import Connection


class Channel(models.Model):
    """Where alerts go: a list of e-mail addresses, or a webhook URL."""

    class Kind(models.TextChoices):
        EMAIL = "email", "E-mail"
        WEBHOOK = "webhook", "Webhook"

    class BodyFormat(models.TextChoices):
        JSON = "json", "JSON (torii's event)"
        SLACK = "slack", 'Slack-compatible ({"text": ...})'

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # E-mail: comma-separated addresses.
    recipients = models.TextField(blank=True)
    url = models.CharField(max_length=2048, blank=True)
    body_format = models.CharField(max_length=8, choices=BodyFormat.choices, default=BodyFormat.JSON)
    # Fernet token of {"secret": ...}, the HMAC key; never rendered, never in a payload or log.
    secret = models.TextField(blank=True, editable=False)
    secret_hint = models.CharField(max_length=16, blank=True)
    # The event kinds this channel receives (values of alerts.kinds.EventKind).
    event_kinds = models.JSONField(default=list, blank=True)
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def target(self) -> str:
        return self.recipients if self.kind == self.Kind.EMAIL else self.url

    @property
    def event_kind_labels(self) -> list[str]:
        return [EventKind(k).label for k in self.event_kinds or [] if k in EventKind.values]

    def recipient_list(self) -> list[str]:
        return [a.strip() for a in self.recipients.split(",") if a.strip()]


class AlertEvent(models.Model):
    """One thing that happened and was announced (once) to the subscribed channels."""

    kind = models.CharField(max_length=40, choices=EventKind.choices)
    connection = models.ForeignKey(
        Connection, null=True, blank=True, on_delete=models.SET_NULL, related_name="alert_events"
    )
    connection_name = models.CharField(max_length=100, blank=True)
    subject = models.CharField(max_length=255)
    body = models.TextField(blank=True)
    # Facts for machines (ids, names, counts); scrubbed of anything secret before it is stored.
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.subject}"

    @property
    def kind_label(self) -> str:
        return EventKind(self.kind).label if self.kind in EventKind.values else self.kind


class AlertCondition(models.Model):
    """A condition that is true until it clears (an account needs reconnecting, an admin has no MFA):
    it alerts when it opens, not again on every sync, and again only after it cleared."""

    kind = models.CharField(max_length=40, choices=EventKind.choices)
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="alert_conditions")
    # Tells conditions of one kind apart within a connection (an administrator's id), or "".
    key = models.CharField(max_length=128, blank=True, default="")
    active = models.BooleanField(default=True)
    opened_at = models.DateTimeField()
    cleared_at = models.DateTimeField(null=True, blank=True)
    event = models.ForeignKey(AlertEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "connection", "key"], name="uniq_alert_condition")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.connection_id}:{self.key} {'open' if self.active else 'cleared'}"


class AdminBaseline(models.Model):
    """The administrators of a connection as the last finished sync left them ({admin id: role}),
    to tell a new administrator or a changed role from the ones already known."""

    connection = models.OneToOneField(Connection, on_delete=models.CASCADE, related_name="+")
    admins = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Administrators of {self.connection_id}: {len(self.admins)}"


class Delivery(models.Model):
    """One event to one channel; its attempts are the delivery log."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RETRYING = "retrying", "Retrying"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    event = models.ForeignKey(AlertEvent, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["event", "channel"], name="uniq_delivery")]
        indexes = [models.Index(fields=["status"], condition=~Q(status="delivered"), name="delivery_open")]

    def __str__(self) -> str:
        return f"Delivery {self.pk} {self.status}"


class DeliveryAttempt(models.Model):
    """One try at sending a delivery: when, what came back, and when the next try is due."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_rows")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    succeeded = models.BooleanField(default=False)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    # The wait before the next attempt (exponential backoff); null when none follows.
    retry_in_seconds = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["delivery_id", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="uniq_delivery_attempt")]

    def __str__(self) -> str:
        return f"Attempt {self.number} of delivery {self.delivery_id}"
