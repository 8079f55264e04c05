"""End to end over real HTTP: syncs of the JumpCloud simulator raise the administrator alerts once,
through integrations.signals.sync_run_finished, and e-mail them."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.management import call_command

from alerts.kinds import SUBSCRIBABLE, EventKind
from alerts.models import AlertEvent, Channel
from alerts.services import channel_create
from integrations.models import Connection
from integrations.services.connections import connection_create
from jumpcloud.simulator import Simulator, SimulatorConfig
from jumpcloud.simulator.tenant import ROLE_NAMES

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sim(settings):
    simulator = Simulator(SimulatorConfig(seed=11, users=30, apps=2, days=2, events=200, admins=5, groups=2))
    simulator.start(host="127.0.0.1", port=0)
    settings.JUMPCLOUD_ALLOWED_BASE_URLS = [simulator.base_url]
    yield simulator
    simulator.stop()


def events(kind: str) -> list[AlertEvent]:
    return list(AlertEvent.objects.filter(kind=kind).order_by("id"))


def test_admin_alerts_from_real_syncs(sim):
    channel_create(
        actor=None,
        name="IT",
        kind=Channel.Kind.EMAIL,
        recipients="it@example.com",
        event_kinds=[k.value for k in SUBSCRIBABLE],
    )
    tenant = sim.tenant("primary")
    # Upstream, two administrators have MFA off.
    for admin in tenant.admins[-2:]:
        admin.update(enableMultiFactor=False, totpEnrolled=False)
    conn = connection_create(
        provider_key="jumpcloud",
        name="Acme",
        credentials={"api_key": sim.keys["admin"]},
        permission=Connection.Permission.READ_ONLY,
        base_url=sim.base_url,
        region="custom",
    )
    conn.refresh_from_db()
    assert conn.status == Connection.Status.CONNECTED, conn.status_message
    without_mfa = {a["email"] for a in tenant.admins if not a["enableMultiFactor"]}
    assert len(without_mfa) >= 2
    # The first sync learns the administrators: only those without MFA are worth an alert.
    assert {e.data["administrator"] for e in events(EventKind.ADMIN_WITHOUT_MFA)} == without_mfa
    assert events(EventKind.ADMIN_ADDED) == [] and events(EventKind.ADMIN_ROLE_CHANGED) == []

    # Upstream: a new administrator appears and another one's role changes.
    newcomer = tenant._admin_record(
        aid="0" * 23 + "9",
        email="new.admin@it-partner.example",
        first="New",
        last="Admin",
        role="Administrator",
        mfa=True,
        created_ms=0,
    )
    tenant.admins.append(newcomer)
    changed = next(
        a for a in tenant.admins if a["roleName"] != ROLE_NAMES[-1] and a["email"] != newcomer["email"]
    )
    old_role, new_role = changed["roleName"], ROLE_NAMES[-1]
    changed.update(roleName=new_role, roleNames=[new_role])
    tenant.version += 1  # the simulator serves cached lists per data version
    call_command("integrations_sync", "--connection", str(conn.pk), "--kind", "full", "--wait")
    call_command("integrations_sync", "--connection", str(conn.pk), "--kind", "full", "--wait")

    added = events(EventKind.ADMIN_ADDED)
    assert [e.data["administrator"] for e in added] == ["new.admin@it-partner.example"]
    roles = events(EventKind.ADMIN_ROLE_CHANGED)
    assert [(e.data["administrator"], e.data["role_before"], e.data["role"]) for e in roles] == [
        (changed["email"], old_role, new_role)
    ]
    # Still without MFA after three syncs: each was announced once.
    assert len(events(EventKind.ADMIN_WITHOUT_MFA)) == len(without_mfa)
    subjects = [m.subject for m in mail.outbox]
    assert "[torii] New administrator in Acme: new.admin@it-partner.example" in subjects
    assert sum("without MFA" in s for s in subjects) == len(without_mfa)
