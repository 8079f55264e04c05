"""A second provider that exists only in the tests: the proof that the core names no provider.

"Acme Directory" keeps its accounts in UPSTREAM (an in-memory stand-in for a remote API). Its
credentials are two fields of its own (a secret token and a tenant chosen from a list), it syncs
its applications and users in two streams, and it declares two actions. It uses only what the core
offers every provider: integrations.providers, the connect service's credentials, the core's rows.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar

from integrations.models import Application, AppUser
from integrations.providers import (
    CREATES_USER,
    Action,
    ActionCheck,
    ActionOutcome,
    Capability,
    CredentialsError,
    Provider,
    Stream,
    ValidatedAccount,
    credential,
)
from integrations.services.connections import connection_credentials

TOKEN = "acme-token-0123456789"
INITIAL = {
    "north": {
        "name": "Acme North",
        "apps": {"wiki": "Team wiki", "crm": "CRM"},
        "users": {
            "u1": {"username": "ana", "email": "ana@acme.example", "suspended": False, "apps": ["wiki"]},
            "u2": {"username": "bo", "email": "bo@acme.example", "suspended": False, "apps": ["wiki", "crm"]},
        },
    }
}
UPSTREAM: dict[str, Any] = {}


def reset_upstream() -> None:
    UPSTREAM.clear()
    UPSTREAM.update(copy.deepcopy(INITIAL))


@dataclass(frozen=True)
class AcmeCredentials:
    token: str = credential(label="Access token", secret=True, help_text="Settings → Tokens in Acme.")
    tenant: str = credential(label="Tenant", choices=(("north", "North"), ("south", "South")))


class AcmeClient:
    def __init__(self, credentials: AcmeCredentials) -> None:
        if credentials.token != TOKEN:
            raise CredentialsError("Acme refused this token.", code="invalid_key", field="token")
        if credentials.tenant not in UPSTREAM:
            raise CredentialsError("This token opens no such tenant.", code="org_not_found")
        self.tenant = UPSTREAM[credentials.tenant]


def _directory(connection: Any) -> Application:
    app, _ = Application.objects.get_or_create(
        connection=connection,
        external_id="acme",
        defaults={"kind": Application.Kind.DIRECTORY, "label": "Acme"},
    )
    return app


def sync_apps(ctx: Any) -> None:
    _directory(ctx.connection)
    rows = [
        Application(
            connection=ctx.connection, external_id=key, kind=Application.Kind.SSO, name=key, label=label
        )
        for key, label in ctx.client.tenant["apps"].items()
    ]
    Application.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["connection", "external_id"],
        update_fields=["name", "label"],
    )
    ctx.add(fetched=len(rows), pages=1)


def _user_row(connection: Any, app: Application, uid: str, user: dict[str, Any]) -> AppUser:
    status = AppUser.Status.SUSPENDED if user["suspended"] else AppUser.Status.ACTIVE
    return AppUser(
        connection=connection, application=app, external_id=uid, username=user["username"],
        email=user["email"], display_name=user["username"], status=status, role="User",
    )  # fmt: skip


def _mirror(connection: Any, uid: str, user: dict[str, Any]) -> None:
    row = _user_row(connection, _directory(connection), uid, user)
    AppUser.objects.bulk_create(
        [row], update_conflicts=True, unique_fields=["application", "external_id"],
        update_fields=["username", "email", "status", "display_name"],
    )  # fmt: skip


def sync_users(ctx: Any) -> None:
    directory = _directory(ctx.connection)
    apps = {a.external_id: a for a in Application.objects.filter(connection=ctx.connection)}
    users = ctx.client.tenant["users"]
    for uid, user in users.items():
        _mirror(ctx.connection, uid, user)
    people = {u.external_id: u for u in AppUser.objects.filter(application=directory)}
    assigned = [
        AppUser(connection=ctx.connection, application=apps[a], external_id=uid, directory_user=people[uid],
                username=user["username"], email=user["email"], assignment="direct")
        for uid, user in users.items() for a in user["apps"]
    ]  # fmt: skip
    AppUser.objects.bulk_create(assigned, ignore_conflicts=True)
    ctx.add(fetched=len(users), created=len(users) + len(assigned), pages=1)


def _client(connection: Any) -> AcmeClient:
    return AcmeClient(connection_credentials(connection))


def check_new_user(*, connection: Any, params: dict[str, Any]) -> ActionCheck:
    clean = {
        "username": str(params.get("username") or "").strip().lower(),
        "email": str(params.get("email") or ""),
    }
    errors = {} if clean["username"].isalnum() else {"username": ["Letters and digits only."]}
    return ActionCheck(params=clean, errors=errors)


def create_user(*, connection: Any, run: Any, params: dict[str, Any]) -> ActionOutcome:
    users = _client(connection).tenant["users"]
    uid = f"u{len(users) + 1}"
    users[uid] = {"username": params["username"], "email": params["email"], "suspended": False, "apps": []}
    _mirror(connection, uid, users[uid])
    return ActionOutcome(
        succeeded=True, message="Created.", target_external_id=uid, target_username=params["username"]
    )


def suspend_user(*, connection: Any, run: Any, params: dict[str, Any]) -> ActionOutcome:
    user = _client(connection).tenant["users"][run.target_external_id]
    user["suspended"] = True
    _mirror(connection, run.target_external_id, user)
    return ActionOutcome(
        succeeded=True, message=f"Suspended {user['username']} in Acme.", request_id="acme-1"
    )


class AcmeProvider(Provider):
    key: ClassVar[str] = "acme"
    name: ClassVar[str] = "Acme Directory"
    credentials_class: ClassVar[type] = AcmeCredentials
    regions: ClassVar[dict[str, str]] = {"global": "Worldwide"}
    default_region: ClassVar[str] = "global"
    capability_catalog: ClassVar[tuple[Capability, ...]] = (
        Capability("users", "Users", "Acme's people."),
        Capability("applications", "Applications", "Acme's apps."),
        Capability("action_create_user", "Action: create user", "", requires_write=True),
        Capability("action_suspend_user", "Action: suspend user", "", requires_write=True),
    )
    streams: ClassVar[tuple[Stream, ...]] = (
        Stream("apps", "Applications", sync_apps, provides=("applications",)),
        Stream("people", "Users", sync_users, provides=("users",), depends_on=("apps",)),
    )
    actions: ClassVar[tuple[Action, ...]] = (
        Action("create_user", "Create user", create_user, "action_create_user", check=check_new_user, category=CREATES_USER),
        Action("suspend_user", "Suspend user", suspend_user, "action_suspend_user"),
    )  # fmt: skip

    def validate_credentials(
        self, *, credentials: Any, region: str, base_url: str, org_id: str = ""
    ) -> ValidatedAccount:
        client = AcmeClient(credentials)
        return ValidatedAccount(org_id=credentials.tenant, org_name=client.tenant["name"], detected={})

    def get_client(self, connection: Any) -> AcmeClient:
        return _client(connection)
