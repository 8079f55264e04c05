"""JumpCloud as a torii provider: what it can do, declared once.

The streams and their order (docs/sync.md has the canvas they make):

    organization                       (a detail; nothing depends on it)
    applications
     ├─ users
     │   └─ administrators             (matched to users by e-mail)
     ├─ assignment_graph               (who is bound to each app: no user needed to read it)
     │   └─ app_assignments ⋈ users    (a join: its rows point at the users' rows)
     ├─ events_sso      [time slices]  (sso_auth events are attributed to apps by their URL)
     └─ events_directory [time slices]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from integrations.providers import Action, Capability, Provider, Stream, UserDetails
from jumpcloud import actions, connect
from jumpcloud.connect import REGIONS, JumpCloudCredentials, client_for_connection, validate_credentials
from jumpcloud.streams import events
from jumpcloud.streams.applications import sync_applications
from jumpcloud.streams.assignments import (
    GRAPH_STREAM,
    finish_app_assignments,
    plan_app_assignments,
    read_assignment_graph,
    sync_app_assignments,
)
from jumpcloud.streams.directory import sync_administrators, sync_organization, sync_users

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


class JumpCloudProvider(Provider):
    key: ClassVar[str] = "jumpcloud"
    name: ClassVar[str] = "JumpCloud"
    credentials_class: ClassVar[type] = JumpCloudCredentials
    regions: ClassVar[dict[str, str]] = REGIONS
    default_region: ClassVar[str] = "us"
    custom_origin_help: ClassVar[str] = connect.ORIGIN_HELP
    custom_origin_refused: ClassVar[str] = connect.ORIGIN_REFUSED
    capability_catalog: ClassVar[tuple[Capability, ...]] = CAPABILITIES
    streams: ClassVar[tuple[Stream, ...]] = (
        Stream("organization", "Organization", sync_organization, optional=True),
        Stream("applications", "Applications", sync_applications, provides=("applications",)),
        Stream(
            "users",
            "Users",
            sync_users,
            provides=("users", "roles", "statuses"),
            depends_on=("applications",),
        ),
        Stream(
            "administrators",
            "Administrators",
            sync_administrators,
            provides=("administrators",),
            optional=True,
            depends_on=("users",),
        ),
        # Who is bound to each app: read beside the users; the rows are written once both are in.
        Stream(
            GRAPH_STREAM,
            "App assignments: JumpCloud's bindings",
            read_assignment_graph,
            depends_on=("applications",),
        ),
        Stream(
            "app_assignments",
            "App assignments",
            sync_app_assignments,
            provides=("app_assignments",),
            depends_on=("applications", "users", GRAPH_STREAM),
            # Written once the SSO logins are folded into LastUse, each row takes its last use as
            # it is written: rows written before would be written again by the SSO events' finish.
            after=("events_sso",),
            plan=plan_app_assignments,
            finish=finish_app_assignments,
        ),
        Stream(
            "events_sso",
            "Usage: SSO events",
            events.fetch("sso"),
            provides=("usage_sso", "last_used"),
            kind="events",
            optional=True,
            depends_on=("applications",),
            plan=events.plan("sso"),
            finish=events.finish("sso"),
        ),
        Stream(
            "events_directory",
            "Usage: directory events",
            events.fetch("directory"),
            provides=("usage_directory", "last_used"),
            kind="events",
            optional=True,
            depends_on=("applications",),
            plan=events.plan("directory"),
            finish=events.finish("directory"),
        ),
    )
    actions: ClassVar[tuple[Action, ...]] = actions.ACTIONS

    @classmethod
    def normalize_credentials(cls, values: Mapping[str, Any]) -> JumpCloudCredentials:
        return connect.normalize_credentials(values)

    @classmethod
    def allowed_origins(cls) -> list[str]:
        return connect.allowed_origins()

    def validate_credentials(self, *, credentials: Any, region: str, base_url: str, org_id: str = "") -> Any:
        return validate_credentials(credentials=credentials, region=region, base_url=base_url, org_id=org_id)

    def get_client(self, connection: Any) -> Any:
        return connect.sync_client_for_connection(connection)

    event_labels: ClassVar[dict[str, str]] = EVENT_LABELS

    def user_details(self, connection: Any, external_id: str) -> Any:
        """One user's record and group memberships, read now (three requests at most)."""
        return _user_details(connection, external_id)

    def console_user_url(self, connection: Any, external_id: str) -> str:
        # A custom endpoint (the simulator) is the JumpCloud this connection talks to.
        origin = connection.base_url or CONSOLES.get(connection.region, CONSOLES["us"])
        return f"{origin.rstrip('/')}/#/users/{external_id}/details"


# --- behaviour ---------------------------------------------------------------------------------
def _user_details(connection: Any, external_id: str) -> UserDetails:
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
