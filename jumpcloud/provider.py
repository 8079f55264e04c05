"""JumpCloud as a torii provider: what it can do, declared once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from integrations.providers import Action, Capability, Provider, Stream

REGIONS = {"us": "United States", "eu": "Europe", "in": "India"}
# Where an administrator finds their API key: the one wording every help text and error uses.
API_KEY_PATH = "JumpCloud Admin Console → your name (top right) → My API Key"


@dataclass(frozen=True)
class JumpCloudCredentials:
    # repr=False: tracebacks and error reports print a frame's locals with repr().
    api_key: str = field(metadata={"secret": True}, repr=False)


CAPABILITIES = (
    Capability("users", "Users", "Every JumpCloud user (system user) of the organization."),
    Capability("roles", "Roles", "User or administrator, with the administrator's role name."),
    Capability(
        "statuses", "Statuses", "Active, invited (staged), suspended, locked, password expired, removed."
    ),
    Capability(
        "last_used",
        "Last used date",
        "Latest successful portal or SSO login per person and app.",
        requires_detected="usage_events",
        unavailable_reason="No Directory Insights for this organization",
    ),
    Capability(
        "administrators",
        "Administrators",
        "JumpCloud console administrators and their roles.",
        requires_detected="administrators",
        unavailable_reason="The administrator of this key cannot list administrators",
    ),
    Capability("applications", "Applications", "SSO (SAML) applications configured in JumpCloud."),
    Capability(
        "app_assignments", "App assignments", "Who can use each SSO app, directly or through user groups."
    ),
    Capability(
        "usage_directory",
        "Usage: directory events",
        "User Portal and Admin Console logins (Directory Insights).",
        requires_detected="usage_events",
        unavailable_reason="No Directory Insights for this organization",
    ),
    Capability(
        "usage_sso",
        "Usage: SSO events",
        "Logins to SSO applications (Directory Insights sso_auth).",
        requires_detected="usage_events",
        unavailable_reason="No Directory Insights for this organization",
    ),
    Capability("action_create_user", "Action: create user", "Create a JumpCloud user.", requires_write=True),
    Capability(
        "action_suspend_user", "Action: suspend user", "Suspend a JumpCloud user.", requires_write=True
    ),
    Capability(
        "action_unsuspend_user", "Action: unsuspend user", "Unsuspend a JumpCloud user.", requires_write=True
    ),
    Capability("action_delete_user", "Action: delete user", "Delete a JumpCloud user.", requires_write=True),
)


CONSOLES = {
    "us": "https://console.jumpcloud.com",
    "eu": "https://console.eu.jumpcloud.com",
    "in": "https://console.in.jumpcloud.com",
}
EVENT_LABELS = {
    "sso_auth": "Signed in to an SSO app",
    "user_login_attempt": "Signed in to the User Portal",
    "admin_login_attempt": "Signed in to the Admin Console",
    "user_create": "User created",
    "user_update": "User changed by an administrator",
    "user_delete": "User deleted",
    "user_password_change": "Changed their password",
    "user_lockout": "Locked out after failed sign-ins",
    "user_unlocked": "Unlocked by an administrator",
    "user_suspended": "Suspended",
    "user_unsuspended": "Unsuspended",
}
# mfaEnrollment status keys (API.md §2) and what an admin calls each method.
MFA_METHODS = (
    ("totpStatus", "Authenticator app (TOTP)"),
    ("webAuthnStatus", "Security key or passkey (WebAuthn)"),
    ("pushStatus", "JumpCloud Protect push"),
    ("jcGoStatus", "JumpCloud Go"),
)


def _lazy(path: str) -> Any:
    """Resolve a function in jumpcloud.sync / jumpcloud.actions when called (no import cycles)."""
    module_name, _, attr = path.rpartition(".")

    def call(*args: Any, **kwargs: Any) -> Any:
        import importlib

        return getattr(importlib.import_module(module_name), attr)(*args, **kwargs)

    call.__name__ = attr
    return call


class JumpCloudProvider(Provider):
    key: ClassVar[str] = "jumpcloud"
    name: ClassVar[str] = "JumpCloud"
    credentials_class: ClassVar[type] = JumpCloudCredentials
    regions: ClassVar[dict[str, str]] = REGIONS
    capability_catalog: ClassVar[tuple[Capability, ...]] = CAPABILITIES
    api_key_help: ClassVar[str] = API_KEY_PATH
    streams: ClassVar[tuple[Stream, ...]] = (
        Stream("organization", "Organization", _lazy("jumpcloud.sync.sync_organization")),
        # Applications first: the event streams start beside the rest once they can attribute
        # sso_auth events that carry only an sso_url.
        Stream(
            "applications",
            "Applications",
            _lazy("jumpcloud.sync.sync_applications"),
            provides=("applications",),
        ),
        Stream("users", "Users", _lazy("jumpcloud.sync.sync_users"), provides=("users", "roles", "statuses")),
        Stream(
            "administrators",
            "Administrators",
            _lazy("jumpcloud.sync.sync_administrators"),
            provides=("administrators",),
            optional=True,
        ),
        Stream(
            "app_assignments",
            "App assignments",
            _lazy("jumpcloud.sync.sync_app_assignments"),
            provides=("app_assignments",),
        ),
        # SSO events first: assignment rows written once they are stored carry their last use.
        Stream(
            "events_sso",
            "Usage: SSO events",
            _lazy("jumpcloud.sync.sync_sso_events"),
            provides=("usage_sso", "last_used"),
            kind="events",
            optional=True,
            concurrent=True,
            waits_for=("applications",),
            finish=_lazy("jumpcloud.sync.rollup_sso_usage"),
            finish_waits_for=("users", "app_assignments"),
        ),
        Stream(
            "events_directory",
            "Usage: directory events",
            _lazy("jumpcloud.sync.sync_directory_events"),
            provides=("usage_directory", "last_used"),
            kind="events",
            optional=True,
            concurrent=True,
            waits_for=("applications",),
            finish=_lazy("jumpcloud.sync.rollup_directory_usage"),
            finish_waits_for=("users", "administrators"),
        ),
    )
    actions: ClassVar[tuple[Action, ...]] = (
        Action("create_user", "Create user", _lazy("jumpcloud.actions.create_user"), "action_create_user"),
        Action(
            "suspend_user", "Suspend user", _lazy("jumpcloud.actions.suspend_user"), "action_suspend_user"
        ),
        Action(
            "unsuspend_user",
            "Unsuspend user",
            _lazy("jumpcloud.actions.unsuspend_user"),
            "action_unsuspend_user",
        ),
        Action(
            "delete_user",
            "Delete user",
            _lazy("jumpcloud.actions.delete_user"),
            "action_delete_user",
            destructive=True,
        ),
    )

    def validate_credentials(self, *, credentials: Any, region: str, base_url: str, org_id: str = "") -> Any:
        """List the key's organizations (no x-org-id), pick or check the org, then probe rights:
        the admin's role, reading users and administrators, and Directory Insights."""
        return _validate(credentials=credentials, region=region, base_url=base_url, org_id=org_id)

    def get_client(self, connection: Any) -> Any:
        return client_for_connection(connection)

    event_labels: ClassVar[dict[str, str]] = EVENT_LABELS

    def user_details(self, connection: Any, external_id: str) -> Any:
        """One user's record and group memberships, read now (three requests at most)."""
        return _user_details(connection, external_id)

    def console_user_url(self, connection: Any, external_id: str) -> str:
        # A custom endpoint (the simulator) is the JumpCloud this connection talks to.
        origin = connection.base_url or CONSOLES.get(connection.region, CONSOLES["us"])
        return f"{origin.rstrip('/')}/#/users/{external_id}/details"


# --- behaviour ---------------------------------------------------------------------------------
def _user_details(connection: Any, external_id: str) -> Any:
    from integrations.providers import UserDetails

    with client_for_connection(connection, timeout=(5.0, 15.0), max_retries=1) as client:
        user = client.get_system_user(external_id)
        group_ids = client.user_group_ids(external_id)
        names = client.user_group_names() if group_ids else {}
    raw = user.raw or {}
    found = raw.get("mfaEnrollment")
    enrollment: dict[str, Any] = found if isinstance(found, dict) else {}
    methods = [label for key, label in MFA_METHODS if str(enrollment.get(key) or "").upper() == "ENROLLED"]
    if not methods and raw.get("totp_enabled") is True:
        methods.append("Authenticator app (TOTP)")
    return UserDetails(
        department=user.department,
        job_title=user.job_title,
        manager_external_id=str(raw.get("manager") or ""),
        groups=tuple(sorted((names.get(g, g) for g in group_ids), key=str.casefold)),
        mfa_methods=tuple(methods),
    )


# Roles that cannot change users (docs/jumpcloud-api.md §4). Help Desk can; Command Runners cannot use the API at all.
READ_ONLY_ROLES = frozenset({"read only", "billing only", "command runner", "command runner with billing"})


def _validate(*, credentials: JumpCloudCredentials, region: str, base_url: str, org_id: str = "") -> Any:
    from datetime import timedelta

    from django.utils import timezone

    from integrations.providers import CredentialsError, ValidatedAccount
    from jumpcloud import errors
    from jumpcloud.client import JumpCloudClient

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


def client_for_connection(connection: Any, **options: Any) -> Any:
    """A client for a stored connection; `options` go to JumpCloudClient (timeouts, retries)."""
    from integrations.services.connections import connection_check_endpoint, connection_credentials
    from jumpcloud.client import JumpCloudClient

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
