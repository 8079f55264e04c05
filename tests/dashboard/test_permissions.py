"""Who may do what: anonymous → login, Viewers read (200) and are refused every change (403),
state changes are POST-only (405 on GET). All enforced on the server."""

from __future__ import annotations

import pytest
from django.urls import reverse

from integrations.models import Connection, SyncRun
from tests.dashboard.builders import build_tenant
from tests.factories import SyncRunFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenant():
    t = build_tenant(people=2, apps=1)
    t.run = SyncRunFactory(connection=t.connection, status=SyncRun.Status.SUCCEEDED)
    return t


def read_urls(t) -> list[str]:
    c = t.connection.pk
    return [
        reverse("dashboard:home"),
        reverse("dashboard:integrations"),
        reverse("dashboard:capabilities"),
        reverse("dashboard:connection_detail", args=[c]),
        reverse("dashboard:sync_progress", args=[c, t.run.pk]),
        reverse("dashboard:users"),
        reverse("dashboard:users_export"),
        reverse("dashboard:user_detail", args=[t.people[0].pk]),
        reverse("dashboard:applications"),
        reverse("dashboard:application_detail", args=[t.apps[0].pk]),
        reverse("dashboard:insights"),
    ]


def change_requests(t) -> list[tuple[str, str, dict]]:
    c = t.connection.pk
    return [
        ("get", reverse("dashboard:connect", args=["jumpcloud"]), {}),
        (
            "post",
            reverse("dashboard:connect", args=["jumpcloud"]),
            {"api_key": "k" * 40, "permission": "read_only", "region": "us"},
        ),
        ("get", reverse("dashboard:connection_edit", args=[c]), {}),
        (
            "post",
            reverse("dashboard:connection_edit", args=[c]),
            {
                "name": "Pwned",
                "permission": "read_only",
                "events_interval_minutes": 60,
                "full_sync_interval_hours": 24,
            },
        ),
        ("get", reverse("dashboard:connection_rotate_key", args=[c]), {}),
        ("post", reverse("dashboard:connection_rotate_key", args=[c]), {"api_key": "k" * 40}),
        ("get", reverse("dashboard:connection_disconnect", args=[c]), {}),
        ("post", reverse("dashboard:connection_disconnect", args=[c]), {"synced_data": "delete"}),
        ("post", reverse("dashboard:sync_now", args=[c]), {"kind": "full"}),
    ]


def test_anonymous_is_sent_to_login(client, tenant):
    for url in read_urls(tenant) + [u for _, u, _ in change_requests(tenant)]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login") + "?next="), url


def test_viewer_reads_every_page(viewer_client, tenant):
    for url in read_urls(tenant):
        response = viewer_client.get(url)
        assert response.status_code == 200, url


def test_viewer_is_refused_every_change(viewer_client, tenant):
    runs = SyncRun.objects.count()
    for method, url, data in change_requests(tenant):
        response = getattr(viewer_client, method)(url, data)
        assert response.status_code == 403, (method, url)
    conn = Connection.objects.get(pk=tenant.connection.pk)
    assert conn.name == tenant.connection.name and conn.is_live
    assert SyncRun.objects.count() == runs


def test_viewer_sees_no_change_buttons(viewer_client, tenant):
    body = viewer_client.get(reverse("dashboard:integrations")).content.decode()
    assert "Sync now" not in body and "Disconnect" not in body and "Connect JumpCloud" not in body
    assert "Integration capabilities" in body


def test_admin_sees_change_buttons(admin_client, tenant):
    body = admin_client.get(reverse("dashboard:integrations")).content.decode()
    for label in ("Sync now", "Edit", "Rotate key", "Disconnect", "Connect JumpCloud"):
        assert label in body


@pytest.mark.parametrize("client_name", ["admin_client", "viewer_client"])
def test_post_only_endpoints_refuse_get(request, client_name, tenant):
    c = request.getfixturevalue(client_name)
    response = c.get(reverse("dashboard:sync_now", args=[tenant.connection.pk]))
    assert response.status_code == 405
    assert SyncRun.objects.filter(connection=tenant.connection).count() == 1


def test_user_without_a_role_is_refused(client, tenant):
    from tests.factories import UserFactory

    user = UserFactory(username="norole")
    user.save()  # the factory sets the password after saving
    client.force_login(user)
    assert client.get(reverse("dashboard:users")).status_code == 403
