"""Connections: connect, edit, rotate the key, disconnect, and re-encrypt credentials.

Every path that touches credentials is here. They arrive as a dict of the fields the provider's
credentials class declares (integrations.providers.credential), are normalised and validated by the
provider, encrypted with MultiFernet as that dict, and never stored, logged or returned in plaintext.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from accounts.limits import rate_counter_hit
from integrations import crypto
from integrations.logging import register_secret
from integrations.models import Connection, SyncRun
from integrations.providers import CredentialsError, ValidatedAccount, registry
from integrations.services.audit import audit_connect_failed, audit_connection_event
from integrations.services.purge import connection_purge_request
from integrations.urlsafety import normalize_origin

logger = logging.getLogger(__name__)


class ConnectRateLimited(Exception):
    """Too many connect attempts: the connect form must not be an oracle for guessing keys."""


# --- endpoint (SSRF guard) --------------------------------------------------------------------
def allowed_base_urls(*, provider_key: str) -> list[str]:
    """The custom origins an operator allowed for this provider, in their canonical form."""
    origins = (normalize_origin(u) for u in registry.get(provider_key).allowed_origins())
    return list(dict.fromkeys(o for o in origins if o))


def connection_check_endpoint(*, provider_key: str, region: str, base_url: str) -> tuple[str, str]:
    """Return (region, base_url) if the server allows them; raise CredentialsError otherwise.

    Connections talk to the provider's own hosts (by region). A custom base URL — a local
    simulator — is accepted only when it is exactly an origin the provider's allowed_origins()
    lists (a server setting); nothing a form or API client sends can point it elsewhere.
    """
    provider = registry.get(provider_key)
    if base_url:
        origin = normalize_origin(base_url)
        if not origin or origin not in allowed_base_urls(provider_key=provider_key):
            raise CredentialsError(provider.custom_origin_refused, code="base_url_not_allowed")
        return "custom", origin
    if region not in provider.regions:
        raise CredentialsError(
            f"Unknown region {region!r}; choose one of: {', '.join(provider.regions)}.", code="region"
        )
    return region, ""


# --- credentials -----------------------------------------------------------------------------
def mask_secret(secret: str) -> str:
    return "••••" + secret[-4:] if len(secret) >= 8 else "••••"


@sensitive_variables("values")
def credentials_hint(*, provider_key: str, values: Mapping[str, Any]) -> str:
    """The masked suffix of the first secret field: all the UI ever shows of credentials."""
    secrets = registry.get(provider_key).secret_fields()
    return mask_secret(str(values.get(secrets[0]) or "").strip()) if secrets else ""


@sensitive_variables("data")
def connection_credentials(connection: Connection) -> Any:
    """The decrypted credentials dataclass of a connection (its secrets are registered for redaction)."""
    if not connection.credentials:
        raise crypto.CredentialsUnreadable("This connection has no stored credentials (it was disconnected).")
    data = crypto.decrypt_json(connection.credentials)
    provider = registry.get(connection.provider)
    for name in provider.secret_fields():
        register_secret(str(data.get(name, "")))
    return provider.credentials_class(**data)


def connection_client(connection: Connection) -> Any:
    return registry.get(connection.provider).get_client(connection)


def _check_connect_rate(user: Any) -> None:
    """Counted atomically in the database (accounts.limits): concurrent attempts cannot slip past
    the limit, whatever the cache backend."""
    limit = settings.CONNECT_ATTEMPTS_PER_HOUR
    ident = getattr(user, "pk", None) or "anonymous"
    attempts = rate_counter_hit(key=f"connect-attempts:{ident}", window_seconds=3600)
    if attempts > limit:
        raise ConnectRateLimited(
            f"Too many connection attempts ({limit} per hour). Wait a while before trying another key."
        )


@sensitive_variables("credentials", "values")
def connection_validate(
    *,
    provider_key: str,
    credentials: Mapping[str, Any],
    region: str,
    base_url: str,
    org_id: str,
    permission: str,
    user: Any = None,
) -> tuple[ValidatedAccount, Any]:
    """Ask the provider whether these credentials open an account; every failure says what to do.
    Returns the account and the normalised credentials dataclass."""
    _check_connect_rate(user)
    provider = registry.get(provider_key)
    for name in provider.secret_fields():
        register_secret(str(credentials.get(name) or "").strip())
    values = provider.normalize_credentials(credentials)
    region, base_url = connection_check_endpoint(provider_key=provider_key, region=region, base_url=base_url)
    account = provider.validate_credentials(
        credentials=values, region=region, base_url=base_url, org_id=org_id.strip()
    )
    if permission == Connection.Permission.READ_WRITE and account.detected.get("admin_read_only"):
        role = account.detected.get("admin_role") or "a read-only role"
        raise CredentialsError(
            f"This key belongs to an administrator with the {role} role, who cannot change users. "
            "Connect as Read only, or use the key of an administrator who can manage users.",
            code="no_write_rights",
        )
    return account, values


def _encrypt_credentials(values: Any) -> str:
    return crypto.encrypt_json({k: str(v) for k, v in dataclasses.asdict(values).items()})


def _duplicate_message(existing: Connection) -> str:
    return (
        f"This organization is already connected as “{existing.name}”. Edit that connection to "
        "change its key or permission instead of connecting it twice."
    )


def _find_live_duplicate(
    *, provider_key: str, region: str, base_url: str, org_id: str, exclude: int | None = None
) -> Connection | None:
    qs = Connection.objects.filter(
        provider=provider_key, region=region, base_url=base_url, org_id=org_id
    ).exclude(status=Connection.Status.DISCONNECTED)
    if exclude:
        qs = qs.exclude(pk=exclude)
    return qs.first()


@sensitive_variables("credentials", "values")
def connection_create(
    *,
    provider_key: str,
    name: str,
    credentials: Mapping[str, Any],
    permission: str,
    created_by: Any = None,
    region: str = "",
    base_url: str = "",
    org_id: str = "",
    start_sync: bool = True,
) -> Connection:
    """Validate, then save (encrypted) and queue the first sync. Nothing is saved on failure but
    the audit record of the failed attempt."""
    region = region or registry.get(provider_key).default_region
    attempt = {"permission": permission, "region": region, "base_url": base_url, "org_id": org_id}
    try:
        if permission not in Connection.Permission.values:
            raise CredentialsError("Choose Read only or Read and take action.", code="permission")
        account, values = connection_validate(
            provider_key=provider_key,
            credentials=credentials,
            region=region,
            base_url=base_url,
            org_id=org_id,
            permission=permission,
            user=created_by,
        )
    except CredentialsError as exc:
        # Choosing among the key's organizations is a question, not a failed attempt.
        if exc.code != "org_required":
            audit_connect_failed(
                name=name, actor=created_by, parameters=attempt, error_message=exc.message, code=exc.code
            )
        raise
    except ConnectRateLimited as exc:
        audit_connect_failed(
            name=name, actor=created_by, parameters=attempt, error_message=str(exc), code="rate_limited"
        )
        raise
    region, base_url = connection_check_endpoint(provider_key=provider_key, region=region, base_url=base_url)
    existing = _find_live_duplicate(
        provider_key=provider_key, region=region, base_url=base_url, org_id=account.org_id
    )
    if existing:
        message = _duplicate_message(existing)
        audit_connect_failed(
            name=name, actor=created_by, parameters=attempt, error_message=message, code="duplicate"
        )
        raise CredentialsError(message, code="duplicate")
    try:
        with transaction.atomic():
            connection = Connection.objects.create(
                provider=provider_key,
                name=(name.strip() or account.org_name or registry.get(provider_key).name)[:100],
                region=region,
                base_url=base_url,
                org_id=account.org_id,
                org_name=account.org_name[:200],
                credentials=_encrypt_credentials(values),
                secret_hint=credentials_hint(provider_key=provider_key, values=dataclasses.asdict(values)),
                permission=permission,
                status=Connection.Status.PENDING,
                capabilities=account.detected,
                created_by=created_by if getattr(created_by, "is_authenticated", False) else None,
            )
            audit_connection_event(
                connection=connection,
                action="connection.connected",
                actor=created_by,
                parameters={
                    "permission": permission,
                    "region": region,
                    "base_url": base_url,
                    "org_id": account.org_id,
                },
            )
            if start_sync:
                from integrations.services.sync import sync_run_request

                sync_run_request(
                    connection=connection,
                    kind=SyncRun.Kind.FULL,
                    trigger=SyncRun.Trigger.CONNECT,
                    requested_by=created_by,
                )
    except IntegrityError:
        existing = _find_live_duplicate(
            provider_key=provider_key, region=region, base_url=base_url, org_id=account.org_id
        )
        raise CredentialsError(
            _duplicate_message(existing) if existing else "This organization is already connected.",
            code="duplicate",
        ) from None
    logger.info("connection %s created for org %s", connection.pk, connection.org_id)
    return connection


@sensitive_variables("credentials", "typed", "typed_secrets", "values")
def connection_update(
    *,
    connection: Connection,
    actor: Any = None,
    name: str | None = None,
    permission: str | None = None,
    credentials: Mapping[str, Any] | None = None,
    events_interval_minutes: int | None = None,
    full_sync_interval_hours: int | None = None,
) -> Connection:
    """Edit a connection. A new key or a wider permission is validated against the provider first."""
    if not connection.is_live:
        raise CredentialsError(
            "This connection is disconnected; connect the account again instead.", code="disconnected"
        )
    changes: dict[str, Any] = {}
    new_permission = permission or connection.permission
    if permission and permission not in Connection.Permission.values:
        raise CredentialsError("Choose Read only or Read and take action.", code="permission")
    # New credentials replace the stored ones when any of their secrets was typed.
    secrets = registry.get(connection.provider).secret_fields()
    typed_secrets = [str((credentials or {}).get(n) or "").strip() for n in secrets]
    rotated = any(typed_secrets)
    if rotated or (
        permission and permission != connection.permission and permission == Connection.Permission.READ_WRITE
    ):
        typed = dict(credentials or {}) if rotated else dataclasses.asdict(connection_credentials(connection))
        account, values = connection_validate(
            provider_key=connection.provider,
            credentials=typed,
            region=connection.region,
            base_url=connection.base_url,
            org_id=connection.org_id,
            permission=new_permission,
            user=actor,
        )
        if account.org_id != connection.org_id:
            raise CredentialsError(
                "This key opens a different organization. A connection stays with one organization; "
                "connect the other one separately.",
                code="other_org",
            )
        connection.capabilities = {**connection.capabilities, **account.detected}
        if rotated:
            connection.credentials = _encrypt_credentials(values)
            connection.secret_hint = credentials_hint(
                provider_key=connection.provider, values=dataclasses.asdict(values)
            )
            if connection.status in (Connection.Status.NEEDS_RECONNECT, Connection.Status.FAILED):
                connection.status = Connection.Status.PENDING
                connection.status_message = ""
    if name is not None and name.strip() and name.strip() != connection.name:
        changes["name"] = [connection.name, name.strip()[:100]]
        connection.name = name.strip()[:100]
    if permission and permission != connection.permission:
        changes["permission"] = [connection.permission, permission]
        connection.permission = permission
    if events_interval_minutes is not None and events_interval_minutes != connection.events_interval_minutes:
        if not 5 <= events_interval_minutes <= 24 * 60:
            raise CredentialsError(
                "Usage sync interval must be between 5 minutes and 24 hours.", code="interval"
            )
        changes["events_interval_minutes"] = [connection.events_interval_minutes, events_interval_minutes]
        connection.events_interval_minutes = events_interval_minutes
        connection.next_events_sync_at = None
    if (
        full_sync_interval_hours is not None
        and full_sync_interval_hours != connection.full_sync_interval_hours
    ):
        if not 1 <= full_sync_interval_hours <= 24 * 7:
            raise CredentialsError("Full sync interval must be between 1 hour and 7 days.", code="interval")
        changes["full_sync_interval_hours"] = [connection.full_sync_interval_hours, full_sync_interval_hours]
        connection.full_sync_interval_hours = full_sync_interval_hours
        connection.next_full_sync_at = None
    fields = [
        "name",
        "permission",
        "capabilities",
        "events_interval_minutes",
        "full_sync_interval_hours",
        "next_events_sync_at",
        "next_full_sync_at",
        "updated_at",
    ]
    if rotated:
        fields += ["credentials", "secret_hint", "status", "status_message"]
    with transaction.atomic():
        connection.save(update_fields=fields)
        if rotated:
            audit_connection_event(
                connection=connection,
                action="connection.key_rotated",
                actor=actor,
                parameters={"secret_hint": connection.secret_hint},
            )
        if "permission" in changes:
            audit_connection_event(
                connection=connection,
                action="connection.permission_changed",
                actor=actor,
                parameters={"from": changes["permission"][0], "to": changes["permission"][1]},
            )
        other = {k: v for k, v in changes.items() if k != "permission"}
        if other:
            audit_connection_event(
                connection=connection, action="connection.updated", actor=actor, parameters=other
            )
        if rotated and connection.status == Connection.Status.PENDING:
            from integrations.services.sync import SyncAlreadyRunning, sync_run_request

            with contextlib.suppress(SyncAlreadyRunning):
                sync_run_request(
                    connection=connection,
                    kind=SyncRun.Kind.FULL,
                    trigger=SyncRun.Trigger.MANUAL,
                    requested_by=actor,
                )
    return connection


def connection_disconnect(*, connection: Connection, actor: Any = None, delete_data: bool = False) -> None:
    """Stop syncs, destroy the key; keep the synced data (marked disconnected) or delete it: the
    connection disappears at once and a worker deletes its data (integrations.services.purge)."""
    with transaction.atomic():
        connection = Connection.objects.select_for_update().get(pk=connection.pk)
        now = timezone.now()
        connection.sync_runs.filter(status__in=SyncRun.ACTIVE).update(
            status=SyncRun.Status.CANCELLED,
            finished_at=now,
            error_message="Cancelled: the connection was disconnected.",
        )
        audit_connection_event(
            connection=connection,
            action="connection.disconnected",
            actor=actor,
            parameters={"delete_data": delete_data, "org_id": connection.org_id},
        )
        connection.credentials = ""
        connection.status = Connection.Status.DISCONNECTED
        connection.status_message = (
            "Disconnected; the API key was destroyed. The synced data is being deleted."
            if delete_data
            else "Disconnected; the API key was destroyed. Synced data is kept."
        )
        connection.disconnected_at = now
        connection.next_events_sync_at = None
        connection.next_full_sync_at = None
        connection.save()
        if delete_data:
            # Hidden at once; the data goes in bounded steps on a worker, whatever its size.
            connection_purge_request(connection=connection)


def connection_reencrypt_all() -> int:
    """Re-encrypt every stored credential under the first FIELD_ENCRYPTION_KEYS key."""
    count = 0
    with transaction.atomic():
        for connection in Connection.objects.select_for_update().exclude(credentials=""):
            connection.credentials = crypto.rotate(connection.credentials)
            connection.save(update_fields=["credentials"])
            count += 1
    return count
