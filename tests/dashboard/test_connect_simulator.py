"""Connecting through the dashboard's form, against the JumpCloud simulator over real HTTP."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from integrations.models import Connection, SyncRun
from jumpcloud.simulator import Simulator, SimulatorConfig

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

CONNECT = reverse("dashboard:connect", args=["jumpcloud"])


@pytest.fixture(scope="module")
def sim():
    simulator = Simulator(SimulatorConfig(seed=3, users=60, apps=4, days=5, events=600, admins=4, groups=4))
    simulator.start(host="127.0.0.1", port=0)
    yield simulator
    simulator.stop()


@pytest.fixture
def allow_sim(settings, sim):
    settings.JUMPCLOUD_ALLOWED_BASE_URLS = [sim.base_url]
    return sim


def post(client, sim, key_role: str, **extra):
    data = {
        "permission": "read_only",
        "api_key": sim.keys[key_role],
        "org_id": "",
        "name": "",
        "region": "us",
        "base_url": sim.base_url,
        **extra,
    }
    return client.post(CONNECT, data)


def test_connect_runs_the_first_sync_and_shows_connected(
    admin_client, allow_sim, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(admin_client, allow_sim, "admin", name="Acme via form", permission="read_write")
    assert response.status_code == 302, response.content.decode()[:2000]
    conn = Connection.objects.get(name="Acme via form")
    assert conn.org_id == allow_sim.org_ids["primary"] and conn.permission == "read_write"
    run = SyncRun.objects.get(connection=conn)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_message
    detail = admin_client.get(response["Location"].split("#")[0]).content.decode()
    assert re.search(r'status-ok"><span class="icon i-circle-check[^>]*></span> Connected', detail)
    assert "Sync history" in detail and "Succeeded" in detail
    # The synced people are on the users page, and usage is measured.
    users = admin_client.get(reverse("dashboard:users") + f"?connection={conn.pk}").content.decode()
    people = conn.app_users.filter(application__kind="directory", removed_at__isnull=True).count()
    assert people >= 60 and f"<strong>{people}</strong> users" in users
    assert "unavailable" not in users.split('id="users-results"')[1]


def test_a_rejected_key_is_said_next_to_the_key(admin_client, allow_sim):
    response = admin_client.post(
        CONNECT,
        {"permission": "read_only", "api_key": "0" * 40, "region": "us", "base_url": allow_sim.base_url},
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert 'id="id_api_key_error"' in body and "0" * 40 not in body
    assert Connection.objects.count() == 0


def test_multi_tenant_key_offers_the_organizations_then_connects_the_chosen_one(admin_client, allow_sim):
    response = post(admin_client, allow_sim, "multi_tenant")
    body = response.content.decode()
    # A question, not an error: nothing is marked invalid, no red banner.
    assert response.status_code == 200
    assert '<select name="org_id"' in body and "aria-invalid" not in body and 'role="alert"' not in body
    assert "This key manages 3 organizations. Choose the one to connect." in body
    for org_id in allow_sim.org_ids.values():
        assert f'<option value="{org_id}">' in body
    names = re.findall(r'<option value="[0-9a-f]{24}"[^>]*>([^<(]+) \(', body)
    assert names == sorted(names, key=str.casefold)
    assert allow_sim.keys["multi_tenant"] not in body
    token = re.search(r'name="pending" value="([^"]+)"', body).group(1)
    # The key is not pasted again: the first step's key was kept on the server.
    response = post(
        admin_client,
        allow_sim,
        "multi_tenant",
        api_key="",
        pending=token,
        org_id=allow_sim.org_ids["secondary"],
        name="Globex",
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Connection.objects.get(name="Globex").org_id == allow_sim.org_ids["secondary"]


def test_the_organization_picker_marks_connected_organizations(admin_client, allow_sim):
    assert (
        post(
            admin_client, allow_sim, "multi_tenant", org_id=allow_sim.org_ids["primary"], name="Acme"
        ).status_code
        == 302
    )
    body = post(admin_client, allow_sim, "multi_tenant").content.decode()
    primary = allow_sim.org_ids["primary"]
    assert re.search(rf'<option value="{primary}" disabled>[^<]*already connected as “Acme”', body)
    assert f'<option value="{allow_sim.org_ids["secondary"]}">' in body
    assert "2 of 3 can be connected" in body


def test_a_pending_connect_token_is_useless_to_another_user(admin_client, allow_sim, client):
    from tests.factories import AdminFactory

    body = post(admin_client, allow_sim, "multi_tenant").content.decode()
    token = re.search(r'name="pending" value="([^"]+)"', body).group(1)
    other = AdminFactory(username="mallory.admin")
    client.force_login(other)
    response = post(
        client, allow_sim, "multi_tenant", api_key="", pending=token, org_id=allow_sim.org_ids["secondary"]
    )
    assert response.status_code == 400 and "Enter the API key" in response.content.decode()
    assert not Connection.objects.exists()


def test_failed_connect_attempts_are_in_the_audit_log(admin_client, allow_sim):
    from integrations.models import ActionRun

    post(admin_client, allow_sim, "billing_only", name="Billing try")
    post(admin_client, allow_sim, "admin", api_key="0" * 40, name="Typo")
    runs = list(ActionRun.objects.filter(action="connection.connect_failed").order_by("id"))
    assert [r.connection_name for r in runs] == ["Billing try", "Typo"]
    assert all(r.status == "failed" and r.actor_username == "alice.admin" for r in runs)
    assert (
        "cannot read JumpCloud users" in runs[0].error_message
        and runs[1].parameters["reason"] == "invalid_key"
    )
    assert all("0" * 40 not in str(r.parameters) for r in runs)
    body = admin_client.get(reverse("dashboard:audit")).content.decode()
    assert "Connect attempt failed" in body and "Typo" in body


def test_read_only_administrator_cannot_connect_for_actions(admin_client, allow_sim):
    body = post(admin_client, allow_sim, "read_only", permission="read_write").content.decode()
    assert 'id="id_permission_error"' in body and "Read only" in body
    assert Connection.objects.count() == 0


def test_admin_without_rights_is_told_why(admin_client, allow_sim):
    body = post(admin_client, allow_sim, "billing_only").content.decode()
    assert "cannot read JumpCloud users" in body


def test_connecting_the_same_organization_twice_names_the_existing_connection(admin_client, allow_sim):
    assert post(admin_client, allow_sim, "admin", name="First").status_code == 302
    body = post(admin_client, allow_sim, "admin", name="Second").content.decode()
    assert "already connected" in body and "First" in body
    assert Connection.objects.count() == 1


def test_rotate_key_and_disconnect_through_the_pages(admin_client, allow_sim):
    post(admin_client, allow_sim, "admin", name="Rotating")
    conn = Connection.objects.get(name="Rotating")
    url = reverse("dashboard:connection_rotate_key", args=[conn.pk])
    body = admin_client.post(url, {"api_key": allow_sim.keys["no_di"]}).content.decode()
    assert "different organization" in body or "organization" in body
    assert admin_client.post(url, {"api_key": allow_sim.keys["admin"]}).status_code == 302
    response = admin_client.post(
        reverse("dashboard:connection_disconnect", args=[conn.pk]), {"synced_data": "keep"}
    )
    assert response.status_code == 302
    conn.refresh_from_db()
    assert conn.status == "disconnected" and conn.credentials == ""


def test_a_key_whose_role_cannot_be_read_is_connected_with_that_said(admin_client, allow_sim):
    """JumpCloud does not answer /api/users/getSelf: the key is accepted (the route is unpublished),
    but the connect result and the connection's page say the role could not be verified."""
    from jumpcloud.simulator import FaultConfig

    allow_sim.set_faults(FaultConfig(rate_503=1.0, path_prefixes=("/api/users/getSelf",)))
    try:
        response = post(admin_client, allow_sim, "admin", name="Unverified role", permission="read_write")
    finally:
        allow_sim.set_faults(None)
    assert response.status_code == 302, response.content.decode()[:2000]
    conn = Connection.objects.get(name="Unverified role")
    assert conn.capabilities["admin_role_verified"] is False
    assert conn.capabilities["admin_read_only"] is False
    assert any("could not verify the role" in n for n in conn.capabilities["notices"])
    detail = admin_client.get(response["Location"].split("#")[0]).content.decode()
    assert "could not verify the role of this key" in detail  # the connect result (a message)
    assert "Could not be verified" in detail  # the flag among the connection's facts


def test_a_key_whose_role_is_read_shows_it(admin_client, allow_sim):
    response = post(admin_client, allow_sim, "admin", name="Verified role", permission="read_write")
    assert response.status_code == 302, response.content.decode()[:2000]
    conn = Connection.objects.get(name="Verified role")
    assert conn.capabilities["admin_role_verified"] is True and conn.capabilities["notices"] == []
    detail = admin_client.get(response["Location"].split("#")[0]).content.decode()
    assert conn.capabilities["admin_role"] in detail and "Could not be verified" not in detail
