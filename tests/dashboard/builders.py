"""Build small synced-looking tenants for dashboard and selector tests (factories underneath).

Each builder refreshes the tenant's read models at the end, as a sync's finish step would; a test
that changes rows by hand afterwards calls refresh() itself."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.utils import timezone

from integrations.models import Application, AppUser, Connection, DailyUsage, UsageEvent
from tests.factories import ApplicationFactory, AppUserFactory, ConnectionFactory, DirectoryAppFactory
from tests.read_models import refresh


@dataclass
class Tenant:
    connection: Connection
    directory: Application
    apps: list[Application]
    people: list[AppUser] = field(default_factory=list)
    memberships: list[AppUser] = field(default_factory=list)


def ago(days: float) -> dt.datetime:
    return timezone.now() - dt.timedelta(days=days)


def build_tenant(
    *,
    people: int = 5,
    apps: int = 3,
    usage: bool = True,
    connection: Connection | None = None,
    name: str | None = None,
) -> Tenant:
    """`people` directory users; each can use every SSO app; person i last used app j i+j days ago
    (person 0 never used anything) and logged in to JumpCloud i days ago."""
    conn = connection or ConnectionFactory(
        name=name or "Acme", capabilities={"usage_events": usage, "administrators": True}
    )
    directory = DirectoryAppFactory(connection=conn, external_id="directory")
    sso = [ApplicationFactory(connection=conn, label=f"App {j}", name=f"app{j}") for j in range(apps)]
    tenant = Tenant(connection=conn, directory=directory, apps=sso)
    add_people(tenant, people)
    return tenant


def add_people(tenant: Tenant, count: int) -> list[AppUser]:
    start = len(tenant.people)
    rows = []
    for i in range(start, start + count):
        rows.append(
            AppUser(
                connection=tenant.connection,
                application=tenant.directory,
                external_id=f"u{tenant.connection.pk}x{i:06d}",
                kind=AppUser.Kind.USER,
                username=f"person{i}",
                email=f"person{i}@acme.test",
                first_name="Pat",
                last_name=f"Person{i}",
                display_name=f"Pat Person{i}",
                status=AppUser.Status.ACTIVE,
                role="User",
                upstream_created_at=ago(300),
                last_used_at=None if i == 0 else ago(i),
                mfa_enabled=True,
            )
        )
    people = AppUser.objects.bulk_create(rows)
    members = []
    for p in people:
        i = int(p.username.removeprefix("person"))
        for j, app in enumerate(tenant.apps):
            members.append(
                AppUser(
                    connection=tenant.connection,
                    application=app,
                    external_id=p.external_id,
                    directory_user=p,
                    kind=AppUser.Kind.USER,
                    username=p.username,
                    email=p.email,
                    first_name=p.first_name,
                    last_name=p.last_name,
                    display_name=p.display_name,
                    status=AppUser.Status.ACTIVE,
                    assignment="direct" if j % 2 == 0 else "group",
                    last_used_at=None if i == 0 else ago(i + j),
                )
            )
    tenant.people.extend(people)
    tenant.memberships.extend(AppUser.objects.bulk_create(members))
    refresh(tenant.connection)
    return people


def add_admin(
    tenant: Tenant,
    *,
    role: str = "Administrator With Billing",
    mfa: bool | None = False,
    last_login_days: float | None = None,
    kind: str = AppUser.Kind.ADMIN_ONLY,
) -> AppUser:
    admin = AppUserFactory(
        application=tenant.directory,
        kind=kind,
        is_admin=True,
        role=role,
        admin_mfa_enabled=mfa,
        admin_external_id=f"adm{AppUser.objects.count():08d}",
        admin_last_login_at=None if last_login_days is None else ago(last_login_days),
    )
    refresh(tenant.connection)
    return admin


def add_events(
    tenant: Tenant, person: AppUser, *, count: int = 3, app: Application | None = None
) -> list[UsageEvent]:
    rows = [
        UsageEvent(
            connection=tenant.connection,
            external_id=f"ev{person.pk}x{k}x{app.pk if app else 0}",
            kind="sso" if app else "directory",
            event_type="sso_auth" if app else "user_login_attempt",
            occurred_at=ago(k + 0.5),
            success=k != 1,
            actor_external_id=person.external_id,
            application_external_id=app.external_id if app else "directory",
            application_name=(app.label if app else ""),
            client_ip="203.0.113.9",
            error_message="" if k != 1 else "bad password",
        )
        for k in range(count)
    ]
    events = UsageEvent.objects.bulk_create(rows)
    refresh(tenant.connection)
    return events


def add_daily(tenant: Tenant, *, days: int = 10) -> None:
    rows = []
    for d in range(days):
        day = timezone.localdate() - dt.timedelta(days=d)
        rows.append(
            DailyUsage(
                connection=tenant.connection,
                application=tenant.directory,
                day=day,
                successes=10 + d,
                failures=1,
                active_users=5,
            )
        )
        for app in tenant.apps:
            rows.append(
                DailyUsage(
                    connection=tenant.connection,
                    application=app,
                    day=day,
                    successes=3,
                    failures=0,
                    active_users=2,
                )
            )
    DailyUsage.objects.bulk_create(rows)
