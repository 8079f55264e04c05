"""A small, realistic torii for looking at every page: two accounts synced from the JumpCloud
simulator (one with Directory Insights and actions, one read-only without), a partial usage sync
with a failed stream, a user action and a failed connect attempt. Shared by the axe sweep
(tests/browser/test_every_page.py) and the screenshot script (scripts/screenshots.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.utils import timezone

from integrations.models import ActionRun, Application, AppUser, Connection, SyncRun
from integrations.providers import CredentialsError
from integrations.services.actions import app_user_act
from integrations.services.connections import connection_create
from jumpcloud.simulator import Simulator, SimulatorConfig

PASSWORD = "correct horse battery staple"
ADMIN_USERNAME = "ada.admin"


def demo_simulator() -> Simulator:
    return Simulator(SimulatorConfig(seed=7, users=80, apps=8, days=30, admins=4, groups=6))


@dataclass
class Demo:
    """Ids of what the pages below are about."""

    admin: Any
    acme: Connection
    initech: Connection
    person: AppUser
    admin_person: AppUser | None
    app: Application
    action_run: ActionRun
    extras: dict[str, Any] = field(default_factory=dict)


def seed_demo(sim: Simulator) -> Demo:
    """Connect the simulator's accounts through the services (the first syncs run in-process: the
    caller makes Celery eager) and add the states worth looking at."""
    from django.conf import settings

    from tests.factories import AdminFactory

    settings.JUMPCLOUD_ALLOWED_BASE_URLS = [sim.base_url]
    admin = AdminFactory(username=ADMIN_USERNAME)
    acme = connection_create(
        provider_key="jumpcloud",
        name="Acme (simulator)",
        credentials={"api_key": sim.keys["admin"]},
        permission=Connection.Permission.READ_WRITE,
        created_by=admin,
        base_url=sim.base_url,
        region="custom",
    )
    initech = connection_create(
        provider_key="jumpcloud",
        name="Initech",
        credentials={"api_key": sim.keys["no_di"]},
        permission=Connection.Permission.READ_ONLY,
        created_by=admin,
        base_url=sim.base_url,
        region="custom",
    )
    # A failed connect attempt, recorded in the audit log.
    with contextlib.suppress(CredentialsError):
        connection_create(
            provider_key="jumpcloud",
            name="Typo",
            credentials={"api_key": "0" * 40},
            permission=Connection.Permission.READ_ONLY,
            created_by=admin,
            base_url=sim.base_url,
            region="custom",
        )
    # The latest usage sync of Acme: one stream failed with an internal error (and its reference).
    now = timezone.now()
    SyncRun.objects.create(
        connection=acme,
        kind=SyncRun.Kind.EVENTS,
        trigger=SyncRun.Trigger.SCHEDULE,
        status=SyncRun.Status.PARTIAL,
        started_at=now - timedelta(minutes=6),
        finished_at=now - timedelta(minutes=5),
        error_message="Usage: SSO events: Internal error while syncing this stream (see the worker log).",
        streams={
            "events_sso": {
                "label": "Usage: SSO events",
                "status": "failed",
                "error": "Internal error while syncing this stream (see the worker log).",
                "error_ref": "e7c41d9a",
                "fetched": 120,
                "pages": 1,
            },
            "events_directory": {
                "label": "Usage: directory events",
                "status": "succeeded",
                "fetched": 88,
                "created": 88,
                "pages": 1,
            },
        },
    )
    Connection.objects.filter(pk=acme.pk).update(status=Connection.Status.PARTIAL, updated_at=now)
    acme.refresh_from_db()
    people = AppUser.objects.filter(
        connection=acme,
        application__kind=Application.Kind.DIRECTORY,
        kind=AppUser.Kind.USER,
        removed_at__isnull=True,
    ).order_by("username")
    person = people.filter(app_memberships__isnull=False).distinct().first() or people.first()
    assert person is not None
    target = people.exclude(pk=person.pk).filter(status=AppUser.Status.ACTIVE).last()
    assert target is not None
    run = app_user_act(
        action="suspend_user", app_user=target, actor=admin, idempotency_key="demo-suspend-0001"
    ).run
    admin_person = (
        AppUser.objects.filter(connection=acme, application__kind=Application.Kind.DIRECTORY, is_admin=True)
        .order_by("pk")
        .first()
    )
    app = (
        Application.objects.filter(connection=acme, kind=Application.Kind.SSO, removed_at__isnull=True)
        .order_by("label", "pk")
        .first()
    )
    assert app is not None
    _seed_alerts_and_licences(admin, acme, app)
    return Demo(
        admin=admin,
        acme=acme,
        initech=initech,
        person=person,
        admin_person=admin_person,
        app=app,
        action_run=run,
    )


@dataclass(frozen=True)
class DemoPage:
    name: str
    path: Callable[[Demo], str]
    # What must be on the page once it is ready (a CSS selector), so nothing is taken half-drawn.
    ready: str = "main"


def _seed_alerts_and_licences(admin: Any, acme: Connection, app: Application) -> None:
    """Seats and a price for one app, and an e-mail alert channel with one delivered alert."""
    from alerts.kinds import EventKind
    from alerts.models import Channel
    from alerts.services import alert_emit, channel_create
    from integrations.services.licences import application_licence_set

    application_licence_set(application=app, actor=admin, seats_purchased=25, price_per_seat_month="8.00")
    channel_create(
        actor=admin,
        name="IT team",
        kind=Channel.Kind.EMAIL,
        recipients="it@example.com",
        event_kinds=[EventKind.RECONNECT, EventKind.SYNC_FAILED_TWICE, EventKind.POLICY_FINISHED],
    )
    alert_emit(
        kind=EventKind.POLICY_FINISHED,
        connection=acme,
        subject="Policy “Inactive 90 days” finished",
        body="2 people suspended.",
        data={"suspended": 2},
    )


PAGES: tuple[DemoPage, ...] = (
    DemoPage("overview", lambda d: "/", ".kpis"),
    DemoPage("integrations", lambda d: "/integrations/", ".connection-card"),
    DemoPage("integration-detail", lambda d: f"/integrations/{d.acme.pk}/", "#connection-live"),
    DemoPage("integration-no-insights", lambda d: f"/integrations/{d.initech.pk}/", "#connection-live"),
    DemoPage("capabilities", lambda d: "/integrations/capabilities/", ".capabilities"),
    DemoPage("connect", lambda d: "/integrations/connect/jumpcloud/", "main form"),
    DemoPage("connection-edit", lambda d: f"/integrations/{d.acme.pk}/edit/", "main form"),
    DemoPage("connection-rotate-key", lambda d: f"/integrations/{d.acme.pk}/rotate-key/", "main form"),
    DemoPage("connection-disconnect", lambda d: f"/integrations/{d.initech.pk}/disconnect/", "main form"),
    DemoPage("users", lambda d: "/users/", "#users-results"),
    DemoPage(
        "users-inactive",
        lambda d: "/users/?inactive_days=30&status=active&ordering=last_used",
        "#users-results",
    ),
    DemoPage("user-detail", lambda d: f"/users/{d.person.pk}/", "h1"),
    DemoPage("user-detail-admin", lambda d: f"/users/{(d.admin_person or d.person).pk}/", "h1"),
    DemoPage("applications", lambda d: "/applications/", ".app-group"),
    DemoPage("application-detail", lambda d: f"/applications/{d.app.pk}/", "h1"),
    DemoPage("insights", lambda d: "/insights/", "h1"),
    DemoPage("audit-log", lambda d: "/audit/", "table"),
    DemoPage("alerts", lambda d: "/alerts/", "h1"),
    DemoPage("alert-channel-new", lambda d: "/alerts/channels/new/", "main form"),
    DemoPage("alert-deliveries", lambda d: "/alerts/deliveries/", "h1"),
    DemoPage("alert-subscriptions", lambda d: "/alerts/subscriptions/", "main form"),
    DemoPage("create-user", lambda d: "/actions/users/new/", "main form"),
    DemoPage("suspend-confirm", lambda d: f"/actions/users/{d.person.pk}/suspend/", "main form"),
    DemoPage("delete-confirm", lambda d: f"/actions/users/{d.person.pk}/delete/", "main form"),
    DemoPage("action-result", lambda d: f"/actions/runs/{d.action_run.pk}/", "#run-status"),
    DemoPage(
        "bulk-suspend-confirm",
        lambda d: f"/actions/users/bulk-suspend/?app_user_ids={d.person.pk}",
        "main form",
    ),
    DemoPage("api-docs", lambda d: "/api/docs/", ".swagger-ui .info"),
    DemoPage("not-found", lambda d: "/no-such-page/", "h1"),
)
