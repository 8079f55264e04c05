"""Alerts: channels, emitting events once per condition, and delivering them (signed, retried).

Everything that writes alert rows or sends anything is here; tasks and views only call it.
A delivery is at least once: a receiver that must not act twice deduplicates on X-Torii-Delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import urllib3
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from alerts.kinds import SUBSCRIBABLE, EventKind
from alerts.models import AlertCondition, AlertEvent, Channel, Delivery, DeliveryAttempt
from integrations import crypto
from integrations.logging import register_secret
from integrations.models import Connection
from integrations.services.audit import SECRET_PARAMETER_NAMES, audit_access_event
from integrations.services.connections import mask_secret
from integrations.urlsafety import CheckedURL, UnsafeURL, outbound_url_check, outbound_url_resolve

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Torii-Signature"
TIMESTAMP_HEADER = "X-Torii-Timestamp"
DELIVERY_HEADER = "X-Torii-Delivery"
EVENT_HEADER = "X-Torii-Event"
# Keys never copied into an event's data, whatever the caller passed (besides the audit log's list).
SECRET_DATA_KEYS = SECRET_PARAMETER_NAMES | {"api_key_hint", "secret_hint", "authorization", "signature"}


class ChannelInvalid(Exception):
    """What was entered for a channel cannot be used; the message says why (field → message)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class RetryDelivery(Exception):
    """The attempt failed and another one is due after `countdown` seconds."""

    def __init__(self, countdown: float) -> None:
        super().__init__(f"retry in {countdown:g} s")
        self.countdown = countdown


# --- channels ----------------------------------------------------------------------------------
def _clean_channel(
    *, kind: str, recipients: str, url: str, event_kinds: list[str], name: str
) -> dict[str, Any]:
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {"name": name.strip()[:100], "recipients": "", "url": ""}
    if not cleaned["name"]:
        errors["name"] = "Give the channel a name."
    if kind not in Channel.Kind.values:
        errors["kind"] = "Choose e-mail or webhook."
    elif kind == Channel.Kind.EMAIL:
        addresses = [a.strip() for a in (recipients or "").replace(";", ",").split(",") if a.strip()]
        if not addresses:
            errors["recipients"] = "Enter at least one e-mail address."
        for address in addresses:
            try:
                validate_email(address)
            except ValidationError:
                errors["recipients"] = f"{address!r} is not an e-mail address."
                break
        cleaned["recipients"] = ", ".join(addresses)
    else:
        try:
            cleaned["url"] = outbound_url_check(url)
        except UnsafeURL as exc:
            errors["url"] = str(exc)
    unknown = [k for k in event_kinds if k not in SUBSCRIBABLE]
    if unknown:
        errors["event_kinds"] = f"Unknown event kinds: {', '.join(unknown)}."
    cleaned["event_kinds"] = [k.value for k in SUBSCRIBABLE if k in event_kinds]
    if errors:
        raise ChannelInvalid(errors)
    return cleaned


@sensitive_variables("secret")
def channel_create(
    *,
    actor: Any,
    name: str,
    kind: str,
    recipients: str = "",
    url: str = "",
    body_format: str = Channel.BodyFormat.JSON,
    event_kinds: list[str],
    secret: str = "",
    active: bool = True,
) -> tuple[Channel, str]:
    """Create a channel. Returns it and its signing secret, generated unless given: the secret is
    shown once, to the person who made the channel, and never again."""
    cleaned = _clean_channel(kind=kind, recipients=recipients, url=url, event_kinds=event_kinds, name=name)
    if body_format not in Channel.BodyFormat.values:
        raise ChannelInvalid({"body_format": "Choose JSON or Slack-compatible."})
    secret = secret or secrets.token_urlsafe(32)
    if len(secret) < 16:
        raise ChannelInvalid({"secret": "A signing secret has at least 16 characters."})
    with transaction.atomic():
        channel = Channel.objects.create(
            kind=kind,
            body_format=body_format,
            secret=crypto.encrypt_json({"secret": secret}),
            secret_hint=mask_secret(secret),
            active=active,
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
            **cleaned,
        )
        audit_access_event(
            action="alerts.channel_created",
            actor=actor,
            target_username=channel.name,
            parameters={"kind": kind, "event_kinds": channel.event_kinds},
        )
    return channel, secret


@sensitive_variables("secret")
def channel_update(
    *,
    channel: Channel,
    actor: Any,
    name: str,
    recipients: str = "",
    url: str = "",
    body_format: str = Channel.BodyFormat.JSON,
    event_kinds: list[str],
    active: bool = True,
    secret: str = "",
) -> Channel:
    """Change a channel (its kind stays); a new secret replaces the old one only when given."""
    cleaned = _clean_channel(
        kind=channel.kind, recipients=recipients, url=url, event_kinds=event_kinds, name=name
    )
    if body_format not in Channel.BodyFormat.values:
        raise ChannelInvalid({"body_format": "Choose JSON or Slack-compatible."})
    if secret and len(secret) < 16:
        raise ChannelInvalid({"secret": "A signing secret has at least 16 characters."})
    for field, value in cleaned.items():
        setattr(channel, field, value)
    channel.body_format = body_format
    channel.active = active
    if secret:
        channel.secret = crypto.encrypt_json({"secret": secret})
        channel.secret_hint = mask_secret(secret)
    with transaction.atomic():
        channel.save()
        audit_access_event(
            action="alerts.channel_changed",
            actor=actor,
            target_username=channel.name,
            parameters={
                "event_kinds": channel.event_kinds,
                "active": active,
                "secret_replaced": bool(secret),
            },
        )
    return channel


def channel_subscriptions_set(*, actor: Any, subscriptions: dict[int, list[str]]) -> int:
    """Set the event kinds of several channels at once (the subscriptions page); channels not named
    keep theirs. Returns how many changed; each change is audited. Unknown kinds are refused."""
    unknown = sorted({k for kinds in subscriptions.values() for k in kinds if k not in SUBSCRIBABLE})
    if unknown:
        raise ChannelInvalid({"event_kinds": f"Unknown event kinds: {', '.join(unknown)}."})
    changed = 0
    with transaction.atomic():
        for channel in Channel.objects.select_for_update().filter(pk__in=list(subscriptions)).order_by("pk"):
            kinds = [k.value for k in SUBSCRIBABLE if k in subscriptions[channel.pk]]
            if kinds == list(channel.event_kinds or []):
                continue
            channel.event_kinds = kinds
            channel.save(update_fields=["event_kinds", "updated_at"])
            audit_access_event(
                action="alerts.channel_changed",
                actor=actor,
                target_username=channel.name,
                parameters={"event_kinds": kinds},
            )
            changed += 1
    return changed


def channel_delete(*, channel: Channel, actor: Any) -> None:
    with transaction.atomic():
        audit_access_event(action="alerts.channel_deleted", actor=actor, target_username=channel.name)
        channel.delete()


@sensitive_variables("data")
def channel_secret(channel: Channel) -> str:
    data = crypto.decrypt_json(channel.secret)
    secret = str(data.get("secret", ""))
    register_secret(secret)
    return secret


def channel_reencrypt_all() -> int:
    """Re-encrypt every channel's secret under the first FIELD_ENCRYPTION_KEYS key."""
    count = 0
    with transaction.atomic():
        for channel in Channel.objects.select_for_update().exclude(secret="").only("pk", "secret"):
            Channel.objects.filter(pk=channel.pk).update(secret=crypto.rotate(channel.secret))
            count += 1
    return count


# --- events --------------------------------------------------------------------------------------
def scrub_data(value: Any) -> Any:
    """The data as stored and sent: every key that names a secret is dropped, at any depth."""
    if isinstance(value, dict):
        return {k: scrub_data(v) for k, v in value.items() if str(k).lower() not in SECRET_DATA_KEYS}
    if isinstance(value, list | tuple):
        return [scrub_data(v) for v in value]
    return value


def alert_emit(
    *,
    kind: str,
    connection: Connection | None = None,
    subject: str,
    body: str,
    data: dict[str, Any],
    channel: Channel | None = None,
) -> AlertEvent:
    """Record an event and queue one delivery to each active channel subscribed to its kind (or to
    `channel` alone, for a test message). Deliveries start once the transaction commits."""
    if kind not in EventKind.values:
        raise ValueError(f"unknown alert kind {kind!r}")
    with transaction.atomic():
        event = AlertEvent.objects.create(
            kind=kind,
            connection=connection,
            connection_name=connection.name if connection else "",
            subject=subject[:255],
            body=body,
            data=scrub_data(data),
        )
        if channel is not None:
            channels = [channel]
        else:
            channels = [
                c for c in Channel.objects.filter(active=True).order_by("id") if kind in (c.event_kinds or [])
            ]
        deliveries = Delivery.objects.bulk_create([Delivery(event=event, channel=c) for c in channels])
        ids = [d.pk for d in deliveries]
        transaction.on_commit(lambda: _enqueue(ids))
    logger.info("alert %s (%s): %d deliveries", event.pk, kind, len(ids))
    return event


def _enqueue(delivery_ids: list[int]) -> None:
    from alerts.tasks import deliver

    for delivery_id in delivery_ids:
        deliver.delay(delivery_id)


def alert_condition_open(
    *,
    kind: str,
    connection: Connection,
    key: str = "",
    subject: str,
    body: str,
    data: dict[str, Any],
) -> AlertEvent | None:
    """Alert that a condition holds, unless it was already open: once, until it clears."""
    now = timezone.now()
    with transaction.atomic():
        try:
            with transaction.atomic():
                condition, created = AlertCondition.objects.select_for_update().get_or_create(
                    kind=kind, connection=connection, key=key, defaults={"opened_at": now}
                )
        except IntegrityError:  # opened by a concurrent check: it alerted
            return None
        if not created and condition.active:
            return None
        event = alert_emit(kind=kind, connection=connection, subject=subject, body=body, data=data)
        condition.active = True
        condition.opened_at = now
        condition.cleared_at = None
        condition.event = event
        condition.save(update_fields=["active", "opened_at", "cleared_at", "event"])
        return event


def alert_conditions_clear(
    *, kind: str, connection: Connection, keep: set[str] | None = None, key: str | None = None
) -> int:
    """Mark conditions of a kind cleared (all of them, one key, or all but `keep`); a cleared
    condition alerts again when it comes back."""
    qs = AlertCondition.objects.filter(kind=kind, connection=connection, active=True)
    if key is not None:
        qs = qs.filter(key=key)
    if keep:
        qs = qs.exclude(key__in=keep)
    return qs.update(active=False, cleared_at=timezone.now())


# --- delivering -----------------------------------------------------------------------------------
def event_payload(event: AlertEvent) -> dict[str, Any]:
    """What a channel receives about an event: never a secret (data was scrubbed when stored)."""
    link = ""
    if settings.TORII_BASE_URL and event.connection_id:
        link = f"{settings.TORII_BASE_URL.rstrip('/')}/integrations/{event.connection_id}/"
    return {
        "id": event.pk,
        "kind": event.kind,
        "kind_label": EventKind(event.kind).label,
        "subject": event.subject,
        "body": event.body,
        "connection": {"id": event.connection_id, "name": event.connection_name}
        if event.connection_id
        else None,
        "data": scrub_data(event.data),
        "occurred_at": event.created_at.isoformat(),
        **({"url": link} if link else {}),
    }


def webhook_body(channel: Channel, event: AlertEvent) -> bytes:
    payload = event_payload(event)
    if channel.body_format == Channel.BodyFormat.SLACK:
        text = f"*{payload['subject']}*\n{payload['body']}".strip()
        if payload.get("url"):
            text += f"\n{payload['url']}"
        return json.dumps({"text": text}).encode()
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def sign(*, secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over "<timestamp>.<body>": a captured delivery cannot be replayed later with a
    new timestamp, since the receiver checks both."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signature_valid(*, secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret=secret, timestamp=timestamp, body=body), signature)


def backoff_seconds(attempt: int) -> float:
    """The wait after failed attempt number `attempt` (1-based): base, 2×base, 4×base, ..."""
    return float(settings.ALERTS_RETRY_BASE_SECONDS) * (2 ** (attempt - 1))


@dataclass
class _Outcome:
    ok: bool
    status_code: int | None = None
    error: str = ""


def _post_pinned(target: CheckedURL, body: bytes, headers: dict[str, str]) -> int:
    """POST to the address that was checked, not to whatever the name resolves to now; TLS still
    verifies the certificate against the host name (SNI and hostname check)."""
    address = str(target.addresses[0])
    timeout = urllib3.Timeout(total=settings.ALERTS_WEBHOOK_TIMEOUT_SECONDS)
    pool: urllib3.HTTPConnectionPool
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            address,
            target.port,
            timeout=timeout,
            retries=False,
            cert_reqs="CERT_REQUIRED",
            server_hostname=target.host,
            assert_hostname=target.host,
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, target.port, timeout=timeout, retries=False)
    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if ":" not in target.host else f"[{target.host}]"
    if target.port != default_port:
        host_header += f":{target.port}"
    try:
        # A redirect could lead anywhere, an internal address included: never followed.
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": host_header},
            redirect=False,
            retries=False,
            preload_content=True,
        )
        return int(response.status)
    finally:
        pool.close()


def _send_webhook(channel: Channel, delivery: Delivery, body: bytes, headers: dict[str, str]) -> _Outcome:
    try:
        target = outbound_url_resolve(channel.url)
    except UnsafeURL as exc:
        return _Outcome(False, error=f"Not sent: {exc}")
    try:
        status_code = _post_pinned(
            target,
            body,
            {**headers, "Content-Type": "application/json", "User-Agent": "torii-alerts"},
        )
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        return _Outcome(False, error=f"{type(exc).__name__}: could not reach the URL")
    if 200 <= status_code < 300:
        return _Outcome(True, status_code=status_code)
    return _Outcome(False, status_code=status_code, error=f"HTTP {status_code}")


def email_text(event: AlertEvent) -> str:
    """The plain-text body of an alert e-mail (what its signature covers)."""
    payload = event_payload(event)
    lines = [payload["body"], ""]
    if payload["connection"]:
        lines.append(f"Account: {payload['connection']['name']}")
    for key, value in payload["data"].items():
        if isinstance(value, str | int | float | bool):
            lines.append(f"{key}: {value}")
    if payload.get("url"):
        lines += ["", payload["url"]]
    return "\n".join(lines).strip() + "\n"


def _send_email(channel: Channel, event: AlertEvent, body: bytes, headers: dict[str, str]) -> _Outcome:
    message = EmailMessage(
        subject=f"[torii] {event.subject}",
        body=body.decode(),
        to=channel.recipient_list(),
        headers=headers,
    )
    try:
        message.send(fail_silently=False)
    except Exception as exc:  # noqa: BLE001 - any mail-backend failure is one failed attempt
        return _Outcome(False, error=f"{type(exc).__name__}: the mail server did not take the message")
    return _Outcome(True)


def alert_delivery_attempt(*, delivery_id: int) -> Delivery | None:
    """Make one attempt at a delivery. Raises RetryDelivery when it failed and another is due;
    the last allowed failure marks it failed. Delivered or failed deliveries are left alone."""
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update()
            .select_related("event", "channel")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None or delivery.status in (Delivery.Status.DELIVERED, Delivery.Status.FAILED):
            return delivery
        number = delivery.attempts + 1
        delivery.attempts = number
        delivery.save(update_fields=["attempts"])
    channel, event = delivery.channel, delivery.event
    started = timezone.now()
    timestamp = str(int(time.time()))
    # What the signature covers: the webhook's JSON body, or the e-mail's text.
    if channel.kind == Channel.Kind.WEBHOOK:
        body = webhook_body(channel, event)
    else:
        body = email_text(event).encode()
    headers = {
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(secret=channel_secret(channel), timestamp=timestamp, body=body),
        DELIVERY_HEADER: str(delivery.pk),
        EVENT_HEADER: event.kind,
    }
    if channel.kind == Channel.Kind.WEBHOOK:
        outcome = _send_webhook(channel, delivery, body, headers)
    else:
        outcome = _send_email(channel, event, body, headers)
    last = number >= settings.ALERTS_MAX_ATTEMPTS
    retry_in = None if outcome.ok or last else backoff_seconds(number)
    DeliveryAttempt.objects.create(
        delivery=delivery,
        number=number,
        started_at=started,
        succeeded=outcome.ok,
        status_code=outcome.status_code,
        error=outcome.error[:2000],
        retry_in_seconds=retry_in,
    )
    now = timezone.now()
    if outcome.ok:
        delivery.status = Delivery.Status.DELIVERED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
        delivery.last_error = ""
    elif retry_in is None:
        delivery.status = Delivery.Status.FAILED
        delivery.next_attempt_at = None
        delivery.last_error = outcome.error
    else:
        delivery.status = Delivery.Status.RETRYING
        delivery.next_attempt_at = now + timedelta(seconds=retry_in)
        delivery.last_error = outcome.error
    delivery.save(update_fields=["status", "delivered_at", "next_attempt_at", "last_error"])
    if retry_in is not None:
        logger.warning("alert delivery %s attempt %s failed; retrying in %g s", delivery.pk, number, retry_in)
        raise RetryDelivery(retry_in)
    return delivery


def alert_deliveries_resume(*, grace: timedelta = timedelta(minutes=5)) -> list[int]:
    """Queue again deliveries whose task was lost (a broker restart, a crash between attempts):
    pending ones never tried, and retrying ones overdue, both by more than `grace`. A task that
    was only late sends at most once more, with the same delivery id (at least once)."""
    now = timezone.now()
    ids = list(
        Delivery.objects.filter(status__in=(Delivery.Status.PENDING, Delivery.Status.RETRYING))
        .annotate(due=Coalesce("next_attempt_at", "created_at"))
        .filter(due__lt=now - grace)
        .order_by("id")
        .values_list("pk", flat=True)[:500]
    )
    if ids:
        logger.warning("re-queueing %d alert deliveries whose task was lost", len(ids))
        # Pushed forward, so the next sweep does not queue them again while these tasks run.
        Delivery.objects.filter(pk__in=ids).update(next_attempt_at=now)
        transaction.on_commit(lambda: _enqueue(ids))
    return ids


def channel_test_send(*, channel: Channel, actor: Any) -> AlertEvent:
    """Send a test message to one channel (whatever it subscribes to)."""
    who = actor.get_username() if getattr(actor, "is_authenticated", False) else "system"
    return alert_emit(
        kind=EventKind.TEST,
        subject=f"Test message for {channel.name}",
        body=f"{who} sent this test from torii. If you can read it, the channel works.",
        data={"channel": channel.name, "requested_by": who},
        channel=channel,
    )


# --- policy runs ------------------------------------------------------------------------------------
def alert_policy_run(*, run: Any, kind: str) -> AlertEvent:
    """Announce a policy run that waits for approval or has finished: who it selected and what it
    did, with the run's page (when TORII_BASE_URL is set). One event per run and kind."""
    from django.db.models import Count
    from django.urls import reverse

    outcomes = {
        row["outcome"]: row["n"] for row in run.items.values("outcome").annotate(n=Count("id")).order_by()
    }
    policy = run.policy.name
    if kind == EventKind.POLICY_AWAITING_APPROVAL:
        subject = f"Policy “{policy}” waits for approval ({run.selected} people)"
        body = (
            f"A scheduled run of the policy “{policy}” selected {run.selected} people who were not "
            "approved before. Nothing is done until an Admin approves the run in torii."
        )
    else:
        subject = f"Policy “{policy}”: {run.get_status_display().lower()}"
        done = ", ".join(f"{n} {outcome.replace('_', ' ')}" for outcome, n in sorted(outcomes.items()))
        body = f"The run of the policy “{policy}” ended: {run.get_status_display()}. " + (
            f"People: {done}." if done else "Nobody was selected."
        )
        if run.stop_reason:
            body += f" Stopped: {run.stop_reason}"
    data: dict[str, Any] = {
        "policy_id": run.policy_id,
        "policy": policy,
        "run_id": run.pk,
        "status": run.status,
        "selected": run.selected,
        "outcomes": outcomes,
    }
    if settings.TORII_BASE_URL:
        path = reverse("dashboard:policy_run", args=[run.pk])
        data["url"] = f"{settings.TORII_BASE_URL.rstrip('/')}{path}"
    return alert_emit(kind=kind, subject=subject, body=body, data=data)
