"""Integrations views: connect / edit / rotate / disconnect forms, sync now, live progress.

The services are replaced here where the point is the view's handling of their answers; the real
services against the simulator are in test_connect_simulator.py.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from integrations.models import ActionRun, Connection, SyncRun
from integrations.providers import CredentialsError
from integrations.services import connections as conn_services
from tests.dashboard.builders import build_tenant
from tests.factories import ConnectionFactory, SyncRunFactory

pytestmark = pytest.mark.django_db

CONNECT = reverse("dashboard:connect", args=["jumpcloud"])
SECRET = "sk-live-0123456789abcdef0123456789abcdef"


def form_data(**overrides):
    return {
        "permission": "read_only",
        "api_key": SECRET,
        "org_id": "",
        "name": "",
        "region": "us",
        **overrides,
    }


@pytest.fixture
def fake_create(monkeypatch):
    calls = []

    def install(result=None, exc=None):
        def fake(**kwargs):
            calls.append(kwargs)
            if exc:
                raise exc
            return result or ConnectionFactory(name=kwargs["name"] or "Acme Inc.")

        monkeypatch.setattr(conn_services, "connection_create", fake)
        return calls

    return install


# --- connect ---------------------------------------------------------------------------------------
def test_connect_form_fields(admin_client, settings):
    settings.JUMPCLOUD_ALLOWED_BASE_URLS = []
    body = admin_client.get(CONNECT).content.decode()
    assert 'type="radio" name="permission" value="read_only"' in body
    assert "Read and take action" in body and "Actions need this level" in body
    key_input = re.search(r'<input type="password" name="api_key"[^>]*>', body).group(0)
    assert 'autocomplete="off"' in key_input and "value=" not in key_input
    assert "Required for multi-tenant keys" in body
    for region in ("United States (US)", "Europe (EU)", "India (IN)"):
        assert region in body
    assert 'name="base_url"' not in body


def test_connect_form_offers_only_allowed_base_urls(admin_client, settings):
    settings.JUMPCLOUD_ALLOWED_BASE_URLS = ["http://127.0.0.1:8765"]
    body = admin_client.get(CONNECT).content.decode()
    assert 'name="base_url"' in body and '<option value="http://127.0.0.1:8765">' in body
    response = admin_client.post(CONNECT, form_data(base_url="http://169.254.169.254"))
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()


def test_connect_success_redirects_to_progress(admin_client, fake_create, admin_user):
    calls = fake_create()
    response = admin_client.post(CONNECT, form_data(name="Prod", region="eu", permission="read_write"))
    assert response.status_code == 302
    conn = Connection.objects.get(name="Prod")
    assert response["Location"] == reverse("dashboard:connection_detail", args=[conn.pk]) + "#progress"
    assert (
        calls[0]["credentials"] == {"api_key": SECRET}
        and calls[0]["region"] == "eu"
        and calls[0]["permission"] == "read_write"
    )
    assert calls[0]["created_by"] == admin_user


@pytest.mark.parametrize(
    ("code", "field"),
    [
        ("invalid_key", "api_key"),
        ("no_rights", "api_key"),
        ("org_not_found", "org_id"),
        ("no_write_rights", "permission"),
        ("region", "region"),
        ("duplicate", None),
    ],
)
def test_connect_errors_sit_next_to_their_field_and_never_echo_the_key(
    admin_client, fake_create, code, field
):
    fake_create(exc=CredentialsError(f"Specific message for {code}.", code=code))
    response = admin_client.post(CONNECT, form_data())
    body = response.content.decode()
    assert response.status_code == 400
    assert f"Specific message for {code}." in body
    assert SECRET not in body
    if field:
        assert (
            f'id="id_{field}_error"' in body
            or f'aria-describedby="id_{field}_error' in body
            or (field == "permission" and 'id="id_permission_error"' in body)
        )
    else:
        assert 'id="form-errors"' in body
    assert Connection.objects.count() == 0


def test_a_key_for_several_organizations_offers_them(admin_client, fake_create):
    choices = [("aaaaaaaaaaaaaaaaaaaaaaaa", "Acme"), ("bbbbbbbbbbbbbbbbbbbbbbbb", "<b>Globex</b>")]
    fake_create(
        exc=CredentialsError(
            "This key manages several organizations; choose one.", code="org_required", choices=choices
        )
    )
    body = admin_client.post(CONNECT, form_data()).content.decode()
    assert '<select name="org_id"' in body
    assert '<option value="aaaaaaaaaaaaaaaaaaaaaaaa">Acme (aaaaaaaaaaaaaaaaaaaaaaaa)</option>' in body
    assert "&lt;b&gt;Globex&lt;/b&gt;" in body and "<b>Globex</b>" not in body
    # The key is kept on the server for the second step (not echoed, not asked again).
    assert "is kept for this step" in body and 'name="pending"' in body
    assert SECRET not in body


def test_connect_rate_limit_is_429(admin_client, fake_create):
    fake_create(exc=conn_services.ConnectRateLimited("Too many connection attempts (10 per hour)."))
    response = admin_client.post(CONNECT, form_data())
    assert response.status_code == 429 and "Too many connection attempts" in response.content.decode()


def test_connect_requires_a_key(admin_client, fake_create):
    calls = fake_create()
    response = admin_client.post(CONNECT, form_data(api_key=""))
    assert (
        response.status_code == 400
        and "Enter the API key of a JumpCloud administrator." in response.content.decode()
    )
    assert calls == []


def test_connect_marks_the_key_as_sensitive(admin_client, fake_create):
    fake_create(exc=CredentialsError("nope", code="invalid_key"))
    response = admin_client.post(CONNECT, form_data())
    assert response.wsgi_request.sensitive_post_parameters == ("api_key",)


def test_unknown_provider_is_404(admin_client):
    assert admin_client.get(reverse("dashboard:connect", args=["okta"])).status_code == 404


# --- edit, rotate, disconnect ----------------------------------------------------------------------
def test_edit_saves_through_the_service(admin_client, admin_user):
    conn = ConnectionFactory(name="Old", permission="read_only")
    response = admin_client.post(
        reverse("dashboard:connection_edit", args=[conn.pk]),
        {
            "name": "New name",
            "permission": "read_only",
            "events_interval_minutes": 30,
            "full_sync_interval_hours": 12,
        },
    )
    assert response.status_code == 302
    conn.refresh_from_db()
    assert (conn.name, conn.events_interval_minutes, conn.full_sync_interval_hours) == ("New name", 30, 12)
    assert ActionRun.objects.filter(action="connection.updated", actor=admin_user).exists()


def test_edit_rejects_out_of_range_intervals(admin_client):
    conn = ConnectionFactory()
    response = admin_client.post(
        reverse("dashboard:connection_edit", args=[conn.pk]),
        {
            "name": "x",
            "permission": "read_only",
            "events_interval_minutes": 1,
            "full_sync_interval_hours": 1000,
        },
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "greater than or equal to 5" in body and "less than or equal to 168" in body


def test_rotate_key_error_is_inline_and_the_key_not_echoed(admin_client, monkeypatch):
    conn = ConnectionFactory()

    def fake_update(**kwargs):
        raise CredentialsError("JumpCloud rejected this API key.", code="invalid_key")

    monkeypatch.setattr(conn_services, "connection_update", fake_update)
    url = reverse("dashboard:connection_rotate_key", args=[conn.pk])
    assert 'type="password"' in admin_client.get(url).content.decode()
    response = admin_client.post(url, {"api_key": SECRET})
    body = response.content.decode()
    assert response.status_code == 400 and "JumpCloud rejected this API key." in body and SECRET not in body
    assert response.wsgi_request.sensitive_post_parameters == ("api_key",)


def test_disconnect_confirmation_names_what_is_deleted(admin_client):
    t = build_tenant(people=3, apps=2)
    body = admin_client.get(
        reverse("dashboard:connection_disconnect", args=[t.connection.pk])
    ).content.decode()
    assert "<strong>3</strong> users" in body and "<strong>2</strong> applications" in body
    assert "<strong>6</strong> assignments" in body and "usage events" in body
    assert 'value="keep"' in body and 'value="delete"' in body


def test_disconnect_keep_data(admin_client):
    t = build_tenant(people=3, apps=1)
    response = admin_client.post(
        reverse("dashboard:connection_disconnect", args=[t.connection.pk]), {"synced_data": "keep"}
    )
    assert response.status_code == 302
    conn = Connection.objects.get(pk=t.connection.pk)
    assert conn.status == "disconnected" and conn.credentials == ""
    assert conn.app_users.count() == 6
    # A disconnected connection offers "connect again" and no sync.
    body = admin_client.get(reverse("dashboard:integrations")).content.decode()
    assert "Connect again" in body and "Disconnected" in body


def test_disconnect_delete_data(admin_client):
    t = build_tenant(people=3, apps=1)
    admin_client.post(
        reverse("dashboard:connection_disconnect", args=[t.connection.pk]), {"synced_data": "delete"}
    )
    assert not Connection.objects.filter(pk=t.connection.pk).exists()


def test_disconnect_requires_a_choice(admin_client):
    t = build_tenant(people=1, apps=0)
    response = admin_client.post(reverse("dashboard:connection_disconnect", args=[t.connection.pk]), {})
    assert response.status_code == 400 and Connection.objects.get(pk=t.connection.pk).is_live


# --- sync now and progress -------------------------------------------------------------------------
def test_sync_now_queues_a_run_and_redirects(admin_client, admin_user):
    conn = ConnectionFactory()
    response = admin_client.post(reverse("dashboard:sync_now", args=[conn.pk]), {"kind": "full"})
    assert response.status_code == 302 and response["Location"].endswith("#progress")
    run = SyncRun.objects.get(connection=conn)
    assert (run.kind, run.trigger, run.requested_by) == ("full", "manual", admin_user)


def test_sync_now_with_htmx_returns_the_polling_page_region(admin_client):
    """Sync now on a connection's page swaps the whole region (status, facts, progress, history),
    which then polls itself: nothing on the page stays stale until a reload."""
    conn = ConnectionFactory()
    response = admin_client.post(
        reverse("dashboard:sync_now", args=[conn.pk]),
        {"kind": "events"},
        headers={"HX-Request": "true", "HX-Target": "connection-live"},
    )
    body = response.content.decode()
    run = SyncRun.objects.get(connection=conn)
    assert run.kind == "events"
    assert "<html" not in body and 'id="connection-live"' in body and 'hx-trigger="every 2s"' in body
    assert f'hx-get="{reverse("dashboard:connection_live", args=[conn.pk])}"' in body
    assert "Sync started." in body and "Sync in progress" in body


def test_sync_now_on_a_card_returns_the_polling_card(admin_client):
    conn = ConnectionFactory()
    response = admin_client.post(
        reverse("dashboard:sync_now", args=[conn.pk]),
        headers={"HX-Request": "true", "HX-Target": f"connection-{conn.pk}"},
    )
    body = response.content.decode()
    assert f'id="connection-{conn.pk}"' in body and 'hx-trigger="every 2s"' in body
    assert f'hx-get="{reverse("dashboard:connection_card", args=[conn.pk])}"' in body


def test_sync_now_while_running_says_so_and_links_progress(admin_client):
    conn = ConnectionFactory()
    running = SyncRunFactory(connection=conn, status=SyncRun.Status.RUNNING)
    response = admin_client.post(
        reverse("dashboard:sync_now", args=[conn.pk]),
        headers={"HX-Request": "true", "HX-Target": "connection-live"},
    )
    body = response.content.decode()
    assert "A sync is already running" in body
    assert f'data-run-status="{running.status}"' in body and 'hx-trigger="every 2s"' in body
    assert SyncRun.objects.filter(connection=conn).count() == 1


def test_sync_now_on_a_disconnected_connection(admin_client):
    conn = ConnectionFactory(status="disconnected", credentials="")
    response = admin_client.post(
        reverse("dashboard:sync_now", args=[conn.pk]), headers={"HX-Request": "true"}
    )
    assert "disconnected" in response.content.decode()
    assert not SyncRun.objects.filter(connection=conn).exists()


def test_page_region_polls_while_active_and_stops_when_finished(viewer_client):
    conn = ConnectionFactory(status="pending")
    run = SyncRunFactory(
        connection=conn,
        status=SyncRun.Status.RUNNING,
        current_stream="users",
        streams={
            "users": {"label": "Users", "status": "running", "fetched": 120, "pages": 2},
            "applications": {"label": "Applications", "status": "pending"},
        },
    )
    url = reverse("dashboard:connection_live", args=[conn.pk])
    body = viewer_client.get(url).content.decode()
    assert 'hx-trigger="every 2s"' in body and f'hx-get="{url}"' in body
    assert 'aria-current="step"' in body and "120" in body
    assert "Connecting…" in body and "Sync in progress" in body
    run.status, run.streams["users"]["status"] = SyncRun.Status.SUCCEEDED, "succeeded"
    run.finished_at = run.created_at
    run.save()
    Connection.objects.filter(pk=conn.pk).update(status="connected")
    body = viewer_client.get(url).content.decode()
    # Finished: no more polling, and the header, facts and history all say so.
    assert 'hx-trigger="every 2s"' not in body
    assert "Connecting…" not in body and "Sync in progress" not in body and "Latest sync" in body
    assert re.search(r'status-ok"><span class="icon i-circle-check[^>]*></span> Connected', body)
    assert "i-hourglass" not in body and "i-loader-circle" not in body


def test_progress_of_another_connections_run_is_404(viewer_client):
    a, b = ConnectionFactory(), ConnectionFactory()
    run = SyncRunFactory(connection=b)
    assert viewer_client.get(reverse("dashboard:sync_progress", args=[a.pk, run.pk])).status_code == 404


def test_connection_detail_shows_history_with_counters_and_errors(admin_client):
    conn = ConnectionFactory()
    SyncRunFactory(
        connection=conn,
        status="partial",
        error_message="",
        streams={
            "users": {"label": "Users", "status": "succeeded", "fetched": 10, "created": 4},
            "events_sso": {"label": "Usage: SSO events", "status": "failed", "error": "HTTP 503"},
        },
    )
    body = admin_client.get(reverse("dashboard:connection_detail", args=[conn.pk])).content.decode()
    assert "Sync history" in body and "> Partial: 1 stream failing</span>" in body
    # The cause is written out once (in the problem above), not again in the progress or history.
    assert body.count("HTTP 503") == 1
    assert "Usage: SSO events: failed" in body and "See the problem above." in body
