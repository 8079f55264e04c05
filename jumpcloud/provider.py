"""JumpCloud as a torii provider: what it can do, declared once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from integrations.providers import Action, Capability, Provider, Stream

REGIONS = {"us": "United States", "eu": "Europe", "in": "India"}


@dataclass(frozen=True)
class JumpCloudCredentials:
    api_key: str = field(metadata={"secret": True})


CAPABILITIES = (
    Capability("users", "Users", "Every JumpCloud user (system user) of the organization."),
    Capability("roles", "Roles", "User or administrator, with the administrator's role name."),
    Capability("statuses", "Statuses", "Active, invited (staged), suspended, locked, password expired, removed."),
    Capability(
        "last_used", "Last used date", "Latest successful portal or SSO login per person and app.",
        requires_detected="usage_events", unavailable_reason="No Directory Insights for this organization",
    ),
    Capability("administrators", "Administrators", "JumpCloud console administrators and their roles.",
               requires_detected="administrators", unavailable_reason="The administrator of this key cannot list administrators"),
    Capability("applications", "Applications", "SSO (SAML) applications configured in JumpCloud."),
    Capability("app_assignments", "App assignments", "Who can use each SSO app, directly or through user groups."),
    Capability(
        "usage_directory", "Usage: directory events", "User Portal and Admin Console logins (Directory Insights).",
        requires_detected="usage_events", unavailable_reason="No Directory Insights for this organization",
    ),
    Capability(
        "usage_sso", "Usage: SSO events", "Logins to SSO applications (Directory Insights sso_auth).",
        requires_detected="usage_events", unavailable_reason="No Directory Insights for this organization",
    ),
    Capability("action_create_user", "Action: create user", "Create a JumpCloud user.", requires_write=True),
    Capability("action_suspend_user", "Action: suspend user", "Suspend a JumpCloud user.", requires_write=True),
    Capability("action_unsuspend_user", "Action: unsuspend user", "Unsuspend a JumpCloud user.", requires_write=True),
    Capability("action_delete_user", "Action: delete user", "Delete a JumpCloud user.", requires_write=True),
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
    streams: ClassVar[tuple[Stream, ...]] = (
        Stream("organization", "Organization", _lazy("jumpcloud.sync.sync_organization")),
        Stream("users", "Users", _lazy("jumpcloud.sync.sync_users"), provides=("users", "roles", "statuses")),
        Stream("administrators", "Administrators", _lazy("jumpcloud.sync.sync_administrators"),
               provides=("administrators",), optional=True),
        Stream("applications", "Applications", _lazy("jumpcloud.sync.sync_applications"), provides=("applications",)),
        Stream("app_assignments", "App assignments", _lazy("jumpcloud.sync.sync_app_assignments"),
               provides=("app_assignments",)),
        Stream("events_directory", "Usage: directory events", _lazy("jumpcloud.sync.sync_directory_events"),
               provides=("usage_directory", "last_used"), kind="events", optional=True),
        Stream("events_sso", "Usage: SSO events", _lazy("jumpcloud.sync.sync_sso_events"),
               provides=("usage_sso", "last_used"), kind="events", optional=True),
    )
    actions: ClassVar[tuple[Action, ...]] = (
        Action("create_user", "Create user", _lazy("jumpcloud.actions.create_user"), "action_create_user"),
        Action("suspend_user", "Suspend user", _lazy("jumpcloud.actions.suspend_user"), "action_suspend_user"),
        Action("unsuspend_user", "Unsuspend user", _lazy("jumpcloud.actions.unsuspend_user"), "action_unsuspend_user"),
        Action("delete_user", "Delete user", _lazy("jumpcloud.actions.delete_user"), "action_delete_user", destructive=True),
    )
