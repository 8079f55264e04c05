"""Connecting JumpCloud: what a key opens (validation), and clients for stored connections."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from integrations.providers import CredentialsError, ValidatedAccount, credential
from integrations.services.connections import connection_check_endpoint, connection_credentials
from integrations.sync.budget import RequestBudget
from jumpcloud import errors
from jumpcloud.client import READ_AHEAD, JumpCloudClient
from jumpcloud.errors import API_KEY_PATH

REGIONS = {"us": "United States", "eu": "Europe", "in": "India"}


@dataclass(frozen=True)
class JumpCloudCredentials:
    api_key: str = credential(
        label="API key",
        secret=True,
        help_text=f"Where to find it: {API_KEY_PATH}.",
        required_message="Enter the API key of a JumpCloud administrator.",
    )


@sensitive_variables("values", "api_key")
def normalize_credentials(values: Mapping[str, Any]) -> JumpCloudCredentials:
    """JumpCloud's rule for a key, checked before any request: it travels in an HTTP header, so it
    is printable ASCII without spaces (anything else cannot be sent, and is no JumpCloud key)."""
    api_key = str(values.get("api_key") or "").strip()
    if not api_key:
        raise CredentialsError(
            "Enter the API key of a JumpCloud administrator.", code="required", field="api_key"
        )
    if not (api_key.isascii() and api_key.isprintable()) or any(ch.isspace() for ch in api_key):
        raise CredentialsError(
            "This is not a JumpCloud API key: a key is letters and digits only, without spaces."
            f" Copy it again from {API_KEY_PATH}.",
            code="invalid_key",
            field="api_key",
        )
    return JumpCloudCredentials(api_key=api_key)


def allowed_origins() -> list[str]:
    """Origins an operator listed in JUMPCLOUD_ALLOWED_BASE_URLS (the local simulator; none in
    production) besides JumpCloud's own hosts."""
    return list(getattr(settings, "JUMPCLOUD_ALLOWED_BASE_URLS", []))


ORIGIN_REFUSED = (
    "This base URL is not allowed. torii only talks to JumpCloud's own hosts, or to an "
    "origin an operator listed in JUMPCLOUD_ALLOWED_BASE_URLS."
)
ORIGIN_HELP = "Only origins listed in the server's JUMPCLOUD_ALLOWED_BASE_URLS are offered."


# Roles that cannot change users (docs/jumpcloud-api.md §4). Help Desk can; Command Runners cannot use the API at all.
READ_ONLY_ROLES = frozenset({"read only", "billing only", "command runner", "command runner with billing"})


def validate_credentials(
    *, credentials: JumpCloudCredentials, region: str, base_url: str, org_id: str = ""
) -> ValidatedAccount:
    """List the key's organizations (no x-org-id), pick or check the org, then probe rights:
    the admin's role, reading users and administrators, and Directory Insights."""

    def client_for(org: str | None) -> JumpCloudClient:
        return JumpCloudClient(
            credentials.api_key,
            region=region if region in REGIONS else "us",
            base_url=base_url or None,
            org_id=org,
            timeout=(5.0, 20.0),
            max_retries=2,
        )

    with client_for(None) as discovery:
        try:
            orgs = discovery.list_organizations()
        except errors.InvalidApiKey:
            raise CredentialsError(
                f"JumpCloud rejected this API key. Copy the key again from {API_KEY_PATH}; "
                "a regenerated key replaces the old one.",
                code="invalid_key",
            ) from None
        except errors.PermissionDenied:
            raise CredentialsError(
                "This key's administrator is not allowed to use the JumpCloud API (Command Runner roles "
                "cannot). Use the key of an administrator with the Administrator, Manager or Read Only role.",
                code="no_rights",
            ) from None
        except errors.JumpCloudError as exc:
            raise CredentialsError(
                f"Could not reach JumpCloud to check the key: {exc.message}", code="upstream"
            ) from None
    choices = [(o.id, o.name) for o in orgs]
    listing = ", ".join(f"{name} ({oid})" for oid, name in choices)
    if org_id:
        match = [o for o in orgs if o.id == org_id]
        if not match:
            raise CredentialsError(
                f"Organization ID {org_id} is not one this key can manage. "
                + (f"It manages: {listing}." if choices else ""),
                code="org_not_found",
                choices=choices,
            )
        org = match[0]
    elif len(orgs) > 1:
        raise CredentialsError(
            f"This key manages {len(orgs)} organizations; choose the one to connect: {listing}.",
            code="org_required",
            choices=choices,
        )
    elif len(orgs) == 1:
        org = orgs[0]
    else:
        raise CredentialsError(
            "This key does not give access to any JumpCloud organization.", code="org_not_found"
        )

    multi_tenant = len(orgs) > 1
    detected: dict[str, Any] = {"multi_tenant": multi_tenant}
    with client_for(org.id if multi_tenant else None) as client:
        # `notices` are shown to the admin with the connect result and on the connection's page.
        detected["notices"] = []
        try:
            me = client.get_self()
            role = str(me.get("roleName") or "")
            detected["admin_role_verified"] = bool(role)
        except errors.InvalidApiKey:
            raise CredentialsError("JumpCloud rejected this API key.", code="invalid_key") from None
        except errors.JumpCloudError as exc:
            # The route is not published; its absence must not block a connect, but it must not
            # pass silently either: the key was not shown to be allowed to change users.
            role = ""
            detected["admin_role_verified"] = False
            detected["notices"].append(
                "torii could not verify the role of this key's administrator: JumpCloud did not answer "
                f"the request for it (/api/users/getSelf: {exc.message}). Whether the key may change "
                "users is unknown until an action is tried; reconnect later to check again."
            )
        if not role and not detected["notices"]:
            detected["notices"].append(
                "torii could not verify the role of this key's administrator: JumpCloud's answer "
                "named no role. Whether the key may change users is unknown until an action is tried."
            )
        detected["admin_role"] = role
        detected["admin_read_only"] = role.lower() in READ_ONLY_ROLES
        try:
            next(iter(client.iter_system_user_pages()), None)
        except errors.OrganizationRequired:
            raise CredentialsError(
                f"This key manages several organizations; choose one: {listing}.",
                code="org_required",
                choices=choices,
            ) from None
        except errors.OrganizationNotFound:
            raise CredentialsError(
                f"Organization ID {org.id} was not found.", code="org_not_found", choices=choices
            ) from None
        except errors.PermissionDenied:
            raise CredentialsError(
                f"This key's administrator{f' ({role})' if role else ''} cannot read JumpCloud users. "
                "Use the key of an administrator with the Administrator, Manager, Help Desk or Read Only role.",
                code="no_rights",
            ) from None
        except errors.JumpCloudError as exc:
            raise CredentialsError(
                f"JumpCloud answered with an error: {exc.message}", code="upstream"
            ) from None
        try:
            next(iter(client.iter_administrator_pages()), None)
            detected["administrators"] = True
        except errors.JumpCloudError:
            detected["administrators"] = False
        try:
            now = timezone.now()
            client.count_events("directory", now - timedelta(hours=1), now - timedelta(minutes=1))
            detected["usage_events"] = True
        except errors.DirectoryInsightsUnavailable:
            detected["usage_events"] = False
        except errors.JumpCloudError:
            pass  # unknown for now; the first sync finds out
    return ValidatedAccount(org_id=org.id, org_name=org.name, detected=detected)


def client_for_connection(connection: Any, **options: Any) -> JumpCloudClient:
    """A client for a stored connection; `options` go to JumpCloudClient (timeouts, retries)."""
    # Checked every time a client is built, not only at connect: an origin an operator removed from
    # JUMPCLOUD_ALLOWED_BASE_URLS (or a row edited by hand) is never contacted again.
    region, base_url = connection_check_endpoint(
        provider_key=connection.provider, region=connection.region, base_url=connection.base_url
    )
    credentials = connection_credentials(connection)
    multi_tenant = bool((connection.capabilities or {}).get("multi_tenant"))
    return JumpCloudClient(
        credentials.api_key,
        region=region if region in REGIONS else "us",
        base_url=base_url or None,
        org_id=connection.org_id if multi_tenant else None,
        **options,
    )


def sync_client_for_connection(connection: Any) -> JumpCloudClient:
    """A client for a sync task: it reads ahead, and every request takes a slot of the
    organization's request budget, which all workers share (integrations.sync.budget)."""
    key = f"jumpcloud:{connection.base_url or connection.region}:{connection.org_id}"
    return client_for_connection(
        connection,
        gate=RequestBudget(key),
        read_ahead=getattr(settings, "JUMPCLOUD_READ_AHEAD", READ_AHEAD),
    )
