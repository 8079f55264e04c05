"""The action endpoints of the REST API, against the JumpCloud simulator over HTTP."""

from __future__ import annotations

import pytest

from integrations.models import ActionRun, AppUser, Connection
from tests.api.support import (
    IDEMPOTENCY_KEY,
    acting_connection,
    directory_users,
    running_simulator,
    writes,
)

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.fixture
def sim():
    with running_simulator() as s:
        yield s


@pytest.fixture
def connection(sim, settings):
    return acting_connection(sim, settings)


@pytest.fixture
def target(connection):
    return directory_users(connection)[0]


def post(client, route, body, key=IDEMPOTENCY_KEY):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(f"/api/v1/actions/{route}/", body, format="json", **headers)


def test_suspend_through_the_api_then_the_same_key_replays(admin_api, sim, target):
    first = post(admin_api, "suspend-user", {"user": target.pk})

    assert first.status_code == 201
    run = first.json()
    assert (run["status"], run["action"], run["target_username"]) == (
        "succeeded",
        "suspend_user",
        target.username,
    )
    assert [r.json_body for r in writes(sim)] == [{"state": "SUSPENDED", "suspended": True}]
    assert run["request_id"] == writes(sim)[0].request_id
    target.refresh_from_db()
    assert target.status == AppUser.Status.SUSPENDED

    again = post(admin_api, "suspend-user", {"user": target.pk})
    assert again.status_code == 200 and again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == run["id"]
    assert len(writes(sim)) == 1


def test_unsuspend_and_delete_through_the_api(admin_api, sim, target):
    assert post(admin_api, "suspend-user", {"user": target.pk}, key="key-suspend-0001").status_code == 201
    response = post(admin_api, "unsuspend-user", {"user": target.pk}, key="key-unsuspend-001")
    assert response.status_code == 201 and response.json()["status"] == "succeeded"

    deleted = post(admin_api, "delete-user", {"user": target.pk}, key="key-delete-00001")
    body = deleted.json()
    assert deleted.status_code == 201 and body["status"] == "succeeded"
    assert body["snapshot"]["_id"] == target.external_id
    assert [r.method for r in writes(sim)] == ["PUT", "PUT", "DELETE"]
    target.refresh_from_db()
    assert target.status == AppUser.Status.REMOVED
    # A removed user is refused before anything is sent.
    refused = post(admin_api, "suspend-user", {"user": target.pk}, key="key-suspend-0002")
    assert refused.status_code == 400 and "removed" in refused.json()["detail"]
    assert len(writes(sim)) == 3


def test_create_user_through_the_api(admin_api, sim, connection):
    response = post(
        admin_api,
        "create-user",
        {
            "connection": connection.pk,
            "first_name": "Jane",
            "last_name": "Doe",
            "email": "jane.doe@newhire.example",
            "username": "Jane Doe",
        },
    )
    assert response.status_code == 201
    run = response.json()
    assert run["status"] == "succeeded" and run["target_username"] == "Jane.Doe"
    assert writes(sim)[0].json_body["username"] == "Jane.Doe"
    user = admin_api.get("/api/v1/users/", {"q": "Jane.Doe"}).json()["results"]
    assert [u["external_id"] for u in user] == [run["target_external_id"]]


def test_create_user_collision_is_a_409_and_nothing_is_sent(admin_api, sim, connection, target):
    response = post(
        admin_api,
        "create-user",
        {"connection": connection.pk, "email": "new@newhire.example", "username": target.username},
    )
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "conflict" and "already exists" in body["errors"]["username"][0]
    assert sim.requests == [] and not ActionRun.objects.exists()


def test_create_user_invalid_username_is_a_400_with_the_reason(admin_api, sim, connection):
    response = post(
        admin_api,
        "create-user",
        {"connection": connection.pk, "email": "x@newhire.example", "username": "1st@user"},
    )
    assert response.status_code == 400
    reasons = " ".join(response.json()["errors"]["username"])
    assert "start with a letter" in reasons and "'@'" in reasons
    assert sim.requests == []


def test_jumpcloud_refusal_is_recorded_and_returned(admin_api, sim, connection):
    from jumpcloud.client import JumpCloudClient

    with JumpCloudClient(sim.keys["admin"], base_url=sim.base_url) as other:
        other.create_system_user(username="taken.name", email="taken@newhire.example")
    sim.clear_requests()
    response = post(
        admin_api,
        "create-user",
        {"connection": connection.pk, "email": "mine@newhire.example", "username": "taken.name"},
    )
    assert response.status_code == 201
    run = response.json()
    assert run["status"] == "failed" and "already has a user" in run["error_message"]
    assert len(writes(sim)) == 1


@pytest.mark.parametrize("key", [None, "", "short", "k" * 65])
def test_an_action_without_a_usable_idempotency_key_is_refused(admin_api, sim, target, key):
    response = post(admin_api, "suspend-user", {"user": target.pk}, key=key)
    assert response.status_code == 400
    assert "idempotency" in response.json()["detail"].lower()
    assert sim.requests == []


def test_a_key_reused_for_another_user_is_a_422(admin_api, sim, connection):
    one, two = directory_users(connection)[:2]
    assert post(admin_api, "suspend-user", {"user": one.pk}).status_code == 201
    response = post(admin_api, "suspend-user", {"user": two.pk})
    assert response.status_code == 422 and response.json()["code"] == "idempotency_key_reused"
    assert len(writes(sim)) == 1


def test_read_only_accounts_are_refused_with_403_and_nothing_is_sent(admin_api, sim, connection, target):
    Connection.objects.filter(pk=connection.pk).update(permission=Connection.Permission.READ_ONLY)
    for route, body in [
        ("suspend-user", {"user": target.pk}),
        ("unsuspend-user", {"user": target.pk}),
        ("delete-user", {"user": target.pk}),
        ("create-user", {"connection": connection.pk, "email": "a@newhire.example", "username": "abc"}),
    ]:
        response = post(admin_api, route, body)
        assert response.status_code == 403, route
        assert "read-only" in response.json()["detail"]
    assert sim.requests == [] and not ActionRun.objects.exists()


def test_viewers_are_refused_with_403_and_nothing_is_sent(viewer_api, sim, target):
    response = post(viewer_api, "suspend-user", {"user": target.pk})
    assert response.status_code == 403
    assert sim.requests == [] and not ActionRun.objects.exists()


def test_an_unknown_or_non_directory_user_is_a_400(admin_api, sim, connection):
    from tests.factories import ApplicationFactory, AppUserFactory

    app_row = AppUserFactory(application=ApplicationFactory(connection=connection))
    assert post(admin_api, "suspend-user", {"user": 999999}).status_code == 400
    assert post(admin_api, "suspend-user", {"user": app_row.pk}).status_code == 400
    assert post(admin_api, "suspend-user", {}).status_code == 400
    assert sim.requests == []


def test_the_audit_record_is_readable_by_viewers(admin_api, viewer_api, sim, target):
    run_id = post(admin_api, "suspend-user", {"user": target.pk}).json()["id"]
    record = viewer_api.get(f"/api/v1/audit-log/{run_id}/").json()
    assert record["actor_username"] == "alice.admin" and record["status"] == "succeeded"
    assert record["parameters"] == {"app_user_id": target.pk}
    assert sim.keys["admin"] not in str(record)
