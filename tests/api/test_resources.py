"""REST API v1: every resource, its filters and pagination, and who may read or write it."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from integrations.models import ActionRun, Connection, SyncRun
from tests.factories import (
    TEST_API_KEY,
    ActionRunFactory,
    ApplicationFactory,
    AppUserFactory,
    ConnectionFactory,
    DirectoryAppFactory,
    SyncRunFactory,
    UsageEventFactory,
)
from tests.read_models import refresh

pytestmark = pytest.mark.django_db

LISTS = [
    "/api/v1/connections/",
    "/api/v1/sync-runs/",
    "/api/v1/applications/",
    "/api/v1/users/",
    "/api/v1/usage-events/",
    "/api/v1/actions/",
    "/api/v1/audit-log/",
    "/api/v1/capabilities/",
]
NOW = timezone.now()


@pytest.fixture
def world(db):
    rw = ConnectionFactory(name="Acme")
    ro = ConnectionFactory(name="Globex", permission=Connection.Permission.READ_ONLY)
    directory = DirectoryAppFactory(connection=rw)
    zoom = ApplicationFactory(connection=rw, name="zoom", label="Zoom")
    jane = AppUserFactory(
        application=directory, username="jane.doe", email="jane@acme.test", last_used_at=NOW
    )
    bob = AppUserFactory(
        application=directory,
        username="bob.stale",
        email="bob@acme.test",
        last_used_at=NOW - dt.timedelta(days=120),
        status="suspended",
    )
    AppUserFactory(
        application=zoom,
        external_id=jane.external_id,
        username="jane.doe",
        directory_user=jane,
        last_used_at=NOW - dt.timedelta(days=1),
    )
    AppUserFactory(
        application=zoom,
        external_id=bob.external_id,
        username="bob.stale",
        directory_user=bob,
        last_used_at=NOW - dt.timedelta(days=100),
    )
    events = [
        UsageEventFactory(
            connection=rw,
            kind="sso",
            event_type="sso_auth",
            actor_external_id=jane.external_id,
            actor_username="jane.doe",
            application_external_id=zoom.external_id,
            occurred_at=NOW - dt.timedelta(hours=i),
        )
        for i in range(5)
    ]
    UsageEventFactory(
        connection=rw,
        kind="directory",
        actor_external_id=bob.external_id,
        occurred_at=NOW - dt.timedelta(days=3),
    )
    SyncRunFactory(connection=rw)
    refresh()
    ActionRunFactory(
        connection=rw,
        action="suspend_user",
        status="succeeded",
        target_username="bob.stale",
        actor_username="alice.admin",
        request_id="req-1",
        snapshot={"_id": "x"},
    )
    ActionRunFactory(
        connection=rw,
        category="connection",
        action="connection.connected",
        status="succeeded",
        actor_username="system",
    )
    return {
        "rw": rw,
        "ro": ro,
        "directory": directory,
        "zoom": zoom,
        "jane": jane,
        "bob": bob,
        "events": events,
    }


# --- authentication and roles ----------------------------------------------------------------
@pytest.mark.parametrize("url", LISTS)
def test_anonymous_callers_are_refused_not_redirected(anonymous_api, world, url):
    response = anonymous_api.get(url)
    assert response.status_code in (401, 403)
    assert "Location" not in response


@pytest.mark.parametrize("url", LISTS)
def test_viewers_and_admins_read_every_resource(viewer_api, admin_api, world, url):
    assert viewer_api.get(url).status_code == 200
    assert admin_api.get(url).status_code == 200


def test_a_user_without_a_role_reads_nothing(world):
    from tests.api.conftest import token_client
    from tests.factories import UserFactory

    assert token_client(UserFactory()).get("/api/v1/users/").status_code == 403


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/api/v1/sync-runs/", {"connection": 1, "kind": "full"}),
        ("/api/v1/actions/create-user/", {"connection": 1, "email": "a@b.c", "username": "x"}),
        ("/api/v1/actions/suspend-user/", {"user": 1}),
        ("/api/v1/actions/unsuspend-user/", {"user": 1}),
        ("/api/v1/actions/delete-user/", {"user": 1}),
    ],
)
def test_viewers_cannot_write(viewer_api, world, url, body):
    response = viewer_api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="k" * 16)
    assert response.status_code == 403
    assert not SyncRun.objects.filter(status="queued").exists()
    assert ActionRun.objects.count() == 2


def test_session_authentication_works_and_requires_csrf_for_writes(admin_user, world):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.get("/api/v1/connections/").status_code == 200
    response = client.post("/api/v1/sync-runs/", {"connection": world["rw"].pk}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_a_token_from_the_tokens_page_works_and_a_wrong_one_does_not(admin_user, admin_client, world):
    page = admin_client.post(
        reverse("dashboard:api_token_create"), {"name": "script", "days": 30, "form_key": "k" * 32}
    )
    assert page.status_code == 200
    key = re.search(r'<code id="new-token">([^<]+)</code>', page.content.decode()).group(1)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/users/").status_code == 200
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert client.get("/api/v1/users/").status_code in (401, 403)


# --- connections and capabilities ------------------------------------------------------------
def test_connections_never_expose_the_key(viewer_api, world):
    response = viewer_api.get("/api/v1/connections/")
    body = response.content.decode()
    assert TEST_API_KEY not in body and "credentials" not in body
    rows = {r["name"]: r for r in response.json()["results"]}
    assert rows["Acme"]["secret_hint"] == "••••abcd"
    assert rows["Acme"]["can_act"] is True and rows["Globex"]["can_act"] is False
    detail = viewer_api.get(f"/api/v1/connections/{world['rw'].pk}/").content.decode()
    assert TEST_API_KEY not in detail


def test_connections_filter_by_permission_and_search(viewer_api, world):
    only_ro = viewer_api.get("/api/v1/connections/", {"permission": "read_only"}).json()["results"]
    assert [c["name"] for c in only_ro] == ["Globex"]
    assert [
        c["name"] for c in viewer_api.get("/api/v1/connections/", {"search": "acm"}).json()["results"]
    ] == ["Acme"]


def test_capabilities_say_why_actions_are_unavailable_on_a_read_only_account(viewer_api, world):
    caps = viewer_api.get(f"/api/v1/connections/{world['ro'].pk}/capabilities/").json()
    by_key = {c["key"]: c for c in caps}
    assert by_key["users"]["available"] is True
    assert by_key["action_suspend_user"]["supported"] is True
    assert by_key["action_suspend_user"]["available"] is False
    assert "read-only" in by_key["action_suspend_user"]["reason"]
    rows = viewer_api.get("/api/v1/capabilities/", {"connection": world["rw"].pk}).json()
    assert [r["connection"] for r in rows] == [world["rw"].pk]
    assert {c["key"]: c["available"] for c in rows[0]["capabilities"]}["action_delete_user"] is True
    assert viewer_api.get("/api/v1/capabilities/", {"connection": "x"}).status_code == 400


# --- syncs -----------------------------------------------------------------------------------
def test_an_admin_starts_a_sync_and_a_second_one_conflicts(
    admin_api, admin_user, world, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        response = admin_api.post(
            "/api/v1/sync-runs/", {"connection": world["rw"].pk, "kind": "full"}, format="json"
        )
        assert response.status_code == 202
        run = response.json()
        assert (run["status"], run["trigger"], run["requested_by"]) == (
            "queued",
            "manual",
            admin_user.username,
        )
        again = admin_api.post("/api/v1/sync-runs/", {"connection": world["rw"].pk}, format="json")
    assert again.status_code == 409
    assert again.json()["sync_run"] == run["id"]
    assert ActionRun.objects.filter(action="sync.started", actor=admin_user).count() == 1


def test_sync_runs_are_listed_and_filtered(viewer_api, world):
    rows = viewer_api.get("/api/v1/sync-runs/", {"connection": world["rw"].pk, "status": "succeeded"}).json()[
        "results"
    ]
    assert len(rows) == 1 and rows[0]["requested_by"] is None
    assert viewer_api.get("/api/v1/sync-runs/", {"status": "nonsense"}).status_code == 400


# --- applications and users ------------------------------------------------------------------
def test_applications_with_their_users_and_last_use(viewer_api, world):
    rows = {
        a["label"]: a
        for a in viewer_api.get("/api/v1/applications/", {"connection": world["rw"].pk}).json()["results"]
    }
    assert rows["Zoom"]["users_count"] == 2
    assert rows["Zoom"]["last_used_at"] is not None
    users = viewer_api.get(f"/api/v1/applications/{world['zoom'].pk}/users/").json()["results"]
    assert [(u["username"], u["directory_user"]) for u in users] == [
        ("bob.stale", world["bob"].pk),
        ("jane.doe", world["jane"].pk),
    ]
    assert viewer_api.get("/api/v1/applications/99999/users/").status_code == 404
    assert viewer_api.get("/api/v1/applications/", {"search": "zoo"}).json()["count"] == 1


def test_application_users_leave_out_people_removed_upstream_as_the_page_does(
    viewer_api, admin_client, world
):
    gone = AppUserFactory(
        application=world["zoom"],
        username="gone.person",
        status="removed",
        removed_at=NOW - dt.timedelta(days=2),
    )
    url = f"/api/v1/applications/{world['zoom'].pk}/users/"
    listed = [u["username"] for u in viewer_api.get(url).json()["results"]]
    assert listed == ["bob.stale", "jane.doe"]
    assert viewer_api.get(url, {"status": "removed"}).json()["results"] == []
    page = admin_client.get(reverse("dashboard:application_detail", args=[world["zoom"].pk])).content.decode()
    assert "jane.doe" in page and gone.username not in page


def test_users_search_filters_and_detail(viewer_api, world):
    def names(params):
        return [u["username"] for u in viewer_api.get("/api/v1/users/", params).json()["results"]]

    assert names({}) == ["bob.stale", "jane.doe"]  # directory users only, not app rows
    assert names({"q": "JANE.DOE"}) == ["jane.doe"]
    assert names({"status": "suspended"}) == ["bob.stale"]
    assert names({"inactive_days": 90}) == ["bob.stale"]
    assert names({"app": world["zoom"].pk, "ordering": "-username"}) == ["jane.doe", "bob.stale"]
    detail = viewer_api.get(f"/api/v1/users/{world['jane'].pk}/").json()
    assert [a["application_label"] for a in detail["apps"]] == ["Zoom"]
    assert detail["apps"][0]["last_used_at"] is not None
    assert viewer_api.get("/api/v1/users/abc/").status_code == 404


# --- usage events: cursor pagination ---------------------------------------------------------
def test_usage_events_page_with_a_cursor_newest_first(viewer_api, world):
    seen, url, params = [], "/api/v1/usage-events/", {"page_size": 2, "kind": "sso"}
    while url:
        page = viewer_api.get(url, params).json()
        assert set(page) == {"next", "previous", "results"}
        seen += [e["id"] for e in page["results"]]
        url, params = page["next"], None
    assert seen == [e.pk for e in world["events"]]


def test_usage_events_filter_by_user_app_and_time(viewer_api, world):
    def count(params):
        return len(viewer_api.get("/api/v1/usage-events/", params).json()["results"])

    assert count({"user": world["jane"].pk}) == 5
    assert count({"user": world["bob"].pk}) == 1
    assert count({"application": world["zoom"].pk}) == 5
    assert count({"since": (NOW - dt.timedelta(hours=2, minutes=30)).isoformat()}) == 3
    assert count({"until": (NOW - dt.timedelta(days=1)).isoformat()}) == 1
    assert count({"connection": world["ro"].pk}) == 0
    assert viewer_api.get("/api/v1/usage-events/", {"cursor": "garbage"}).status_code == 404


# --- audit log -------------------------------------------------------------------------------
def test_the_audit_log_is_filterable_and_shows_snapshots_to_admins_only(viewer_api, admin_api, world):
    rows = viewer_api.get("/api/v1/audit-log/").json()["results"]
    assert {r["action"] for r in rows} == {"suspend_user", "connection.connected"}
    assert "snapshot" not in rows[0]
    only = viewer_api.get("/api/v1/audit-log/", {"action": "suspend_user", "actor": "ALICE.ADMIN"}).json()[
        "results"
    ]
    assert [(r["target_username"], r["request_id"], r["action_label"]) for r in only] == [
        ("bob.stale", "req-1", "Suspend user")
    ]
    assert viewer_api.get("/api/v1/audit-log/", {"category": "connection"}).json()["count"] == 1
    today = timezone.localdate().isoformat()
    assert viewer_api.get("/api/v1/audit-log/", {"date_from": today, "date_to": today}).json()["count"] == 2
    detail = viewer_api.get(f"/api/v1/audit-log/{only[0]['id']}/").json()
    assert detail["snapshot"] is None and detail["has_snapshot"] is True
    detail = admin_api.get(f"/api/v1/audit-log/{only[0]['id']}/").json()
    assert detail["snapshot"] == {"_id": "x"}
    actions = viewer_api.get("/api/v1/actions/").json()["results"]
    assert [a["action"] for a in actions] == ["suspend_user"]


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_the_audit_log_cannot_be_changed_through_the_api(admin_api, world, method):
    run = ActionRun.objects.filter(action="suspend_user").get()
    for url in ("/api/v1/audit-log/", f"/api/v1/audit-log/{run.pk}/", f"/api/v1/actions/{run.pk}/"):
        assert getattr(admin_api, method)(url, {"status": "failed"}, format="json").status_code == 405
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert ActionRun.objects.count() == 2


def test_the_schema_is_served_to_token_clients_and_refused_to_anonymous(db, client):
    from tests.factories import ViewerFactory, api_token_for

    token = api_token_for(ViewerFactory())
    assert client.get("/api/schema/").status_code in (401, 403)
    response = client.get("/api/schema/", HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 200 and b"openapi" in response.content
