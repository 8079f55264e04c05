"""Property 2: nobody acts where they don't belong.

Every route of the URLconf is walked (ids filled from a small world of sample objects) and every
operation of the OpenAPI schema is checked: state-changing requests are refused to anonymous
visitors, to Viewers, without a CSRF token, and by GET where only POST acts; every GET changes
nothing; and every action refuses a read-only connection before anything is sent to JumpCloud.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from integrations.models import ActionRun, AppUser
from integrations.services.actions import READ_ONLY_NOTE
from tests.security.support import Route, all_routes, body_of, make_world, state_snapshot, view_methods

pytestmark = [pytest.mark.django_db]

UNSAFE = ("POST", "PUT", "PATCH", "DELETE")
# Public by design: the login form itself, and logging out (which only ends one's own session).
# favicon: a public, GET-only redirect to a static file (405 for anything else); it changes nothing.
EXEMPT = {"login", "logout", "favicon"}
# One's own account: any Viewer may make, rotate and revoke their own API tokens, and anyone
# signed in may change their own password (tests/security/test_tokens.py covers them).
SELF_SERVICE = {
    "dashboard:api_token_create",
    "dashboard:api_token_rotate",
    "dashboard:api_token_revoke",
    "dashboard:password_change",
    # One's own display preferences (the users table's columns): they change nothing else.
    "dashboard:users_columns",
}
# Accept POST but only render a page (the selection form may post): nothing changes.
RENDER_ONLY_POSTS = {"dashboard:bulk_suspend_confirm"}


@pytest.fixture
def world(allow_sim):
    return make_world(allow_sim, users=12)


def _call(client: Any, method: str, url: str, data: dict[str, Any] | None = None, **extra: Any) -> Any:
    data = data or {}
    if isinstance(client, APIClient):
        return getattr(client, method.lower())(url, data, format="json", **extra)
    if method == "POST":
        return client.post(url, data, **extra)
    return getattr(client, method.lower())(url, **extra)


def acting_routes(client: Client, world) -> list[tuple[Route, str]]:
    """Routes that accept a state-changing method for an Admin: declared by the view, or found by
    trying (anything that does not answer 405 to an empty POST)."""
    found = []
    for route in all_routes():
        if route.name in EXEMPT:
            continue
        url = route.reverse(world)
        declared = view_methods(route) & set(UNSAFE)
        if not declared:
            probe = _call(client, "POST", url)
            if probe.status_code != 405:
                declared = {"POST"}
        found += [(route, m) for m in sorted(declared)]
    return found


def test_the_walk_finds_every_acting_endpoint(admin_client, world, allow_sim):
    acting = {(r.name, m) for r, m in acting_routes(admin_client, world)}
    # A sample of what must be there; anything new is walked automatically.
    for expected in [
        ("dashboard:connect", "POST"),
        ("dashboard:connection_rotate_key", "POST"),
        ("dashboard:connection_disconnect", "POST"),
        ("dashboard:connection_edit", "POST"),
        ("dashboard:sync_now", "POST"),
        ("dashboard:user_suspend", "POST"),
        ("dashboard:user_delete", "POST"),
        ("dashboard:user_create_submit", "POST"),
        ("dashboard:bulk_suspend", "POST"),
        ("api-v1:action-suspend-user", "POST"),
        ("api-v1:action-delete-user", "POST"),
        ("api-v1:action-create-user", "POST"),
        ("api-v1:sync-run-list", "POST"),
        ("dashboard:alert_channel_create", "POST"),
        ("dashboard:alert_channel_test", "POST"),
        ("dashboard:alert_subscriptions", "POST"),
        ("dashboard:application_licence", "POST"),
        ("api-v1:alert-channel-list", "POST"),
        ("api-v1:application-licence", "PUT"),
    ]:
        assert expected in acting, expected
    assert not [r for r in allow_sim.requests if r.method != "GET"], "probing changed nothing upstream"


def test_anonymous_visitors_can_change_nothing(client, world, allow_sim):
    before = state_snapshot()
    checked = 0
    for route in all_routes():
        if route.name in EXEMPT:
            continue
        url = route.reverse(world)
        for method in UNSAFE:
            api = route.is_api
            response = _call(APIClient() if api else client, method, url)
            if api:
                assert response.status_code in (401, 403), (method, url, response.status_code)
            else:
                assert response.status_code == 302, (method, url, response.status_code)
                assert response["Location"].startswith(reverse("login")), (method, url)
            checked += 1
    assert checked > 100
    assert state_snapshot() == before
    assert allow_sim.requests == []


def test_viewers_can_change_nothing(viewer_client, viewer_user, world, allow_sim, admin_client):
    from tests.factories import api_token_for

    acting = {(r.name, m) for r, m in acting_routes(admin_client, world)}
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {api_token_for(viewer_user)}")
    session_api = APIClient()
    session_api.force_login(viewer_user)
    before = state_snapshot()
    refused = 0
    for route in all_routes():
        if route.name in EXEMPT | SELF_SERVICE:
            continue
        url = route.reverse(world)
        data = {
            "idempotency_key": uuid.uuid4().hex,
            "user": world.directory_user.pk,
            "connection": world.connection.pk,
            "api_key": "x" * 40,
        }
        for method in UNSAFE:
            clients = [api, session_api] if route.is_api else [viewer_client]
            for client in clients:
                response = _call(client, method, url, data, HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
                if (route.name, method) in acting:
                    # An endpoint that acts for Admins says "forbidden" to Viewers.
                    assert response.status_code == 403, (method, url, response.status_code)
                    refused += 1
                else:
                    assert response.status_code in (403, 405), (method, url, response.status_code)
    assert refused >= 15
    assert state_snapshot() == before
    assert allow_sim.requests == []


def test_post_only_endpoints_refuse_get(admin_client, admin_user, world, allow_sim):
    api = APIClient()
    api.force_login(admin_user)
    post_only = []
    for route in all_routes():
        methods = view_methods(route)
        if methods and "GET" not in methods and methods & set(UNSAFE):
            post_only.append(route)
    names = {r.name for r in post_only}
    assert {
        "dashboard:sync_now",
        "dashboard:user_suspend",
        "dashboard:user_delete",
        "dashboard:bulk_suspend",
        "dashboard:user_create_submit",
        "api-v1:action-suspend-user",
    } <= names, names
    before = state_snapshot()
    for route in post_only:
        url = route.reverse(world)
        response = (api if route.is_api else admin_client).get(url)
        assert response.status_code == 405, (url, response.status_code)
    assert state_snapshot() == before
    assert allow_sim.requests == []


def test_get_changes_nothing_anywhere(admin_client, admin_user, world, allow_sim):
    """Safe methods are safe: an Admin GETting (and HEADing) every route changes no row and sends
    nothing to JumpCloud — so a link, a prefetch or an <img src> can never act."""
    api = APIClient()
    api.force_login(admin_user)
    before = state_snapshot()
    for route in all_routes():
        if route.name in EXEMPT:
            continue
        url = route.reverse(world)
        client = api if route.is_api else admin_client
        for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
            assert client.get(url, **headers).status_code < 500, url
            client.head(url, **headers)
    assert state_snapshot() == before
    assert [r for r in allow_sim.requests if r.method != "GET"] == []


def test_csrf_token_is_required_for_every_state_changing_request(admin_user, world, allow_sim):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin_user)
    api = APIClient(enforce_csrf_checks=True)
    api.force_login(admin_user)  # session authentication: the browser flow of the API
    plain = Client()
    plain.force_login(admin_user)
    before = state_snapshot()
    checked = 0
    for route, method in acting_routes(plain, world):
        url = route.reverse(world)
        data = {"idempotency_key": uuid.uuid4().hex, "user": world.directory_user.pk}
        response = _call(
            api if route.is_api else browser, method, url, data, HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4())
        )
        assert response.status_code == 403, (method, url, response.status_code)
        assert "CSRF" in body_of(response), body_of(response)[:300]  # refused for the token, not the role
        checked += 1
    # Logging in and out are protected too (login CSRF, forced logout).
    anonymous = Client(enforce_csrf_checks=True)
    assert anonymous.post(reverse("login"), {"username": "alice.admin", "password": "x"}).status_code == 403
    assert browser.post(reverse("logout")).status_code == 403
    assert checked >= 15
    assert state_snapshot() == before
    assert allow_sim.requests == []


def test_the_api_schema_lists_no_unsafe_operation_that_escapes_these_checks(admin_client, world):
    """Every unsafe operation in the OpenAPI schema resolves to a route the walks above cover."""
    from django.urls import resolve
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    walked = {(r.name, m) for r, m in acting_routes(admin_client, world)}
    unsafe_ops = 0
    for path, operations in schema["paths"].items():
        for method in operations:
            if method.upper() not in UNSAFE:
                continue
            unsafe_ops += 1
            url = re.sub(r"\{[^}]+\}", str(world.connection.pk), path)
            match = resolve(url)
            assert (f"{':'.join(match.namespaces)}:{match.url_name}", method.upper()) in walked, (
                method,
                path,
            )
    assert unsafe_ops >= 5


# --- actions and read-only connections ----------------------------------------------------------
def _action_data(world, target: AppUser) -> dict[str, Any]:
    return {
        "idempotency_key": uuid.uuid4().hex,
        "confirm_username": target.username,
        "app_user_ids": [target.pk],
        "user": target.pk,
        "connection": target.connection_id,
        "first_name": "Jane",
        "last_name": "Doe",
        "email": f"jane.doe.{uuid.uuid4().hex[:6]}@example.test",
        "username": f"jane.doe.{uuid.uuid4().hex[:6]}",
        "state": "",
    }


def action_routes(client: Client, world) -> list[tuple[Route, str]]:
    return [
        (r, m)
        for r, m in acting_routes(client, world)
        if "actions/" in r.pattern and r.name not in RENDER_ONLY_POSTS
    ]


def test_every_action_refuses_a_read_only_connection_without_calling_jumpcloud(
    admin_client, admin_user, world, allow_sim
):
    api = APIClient()
    api.force_login(admin_user)
    routes = action_routes(admin_client, world)
    assert len(routes) >= 8, [r.name for r, _ in routes]
    target = world.read_only_user
    before = state_snapshot()
    for route, method in routes:
        url = route.reverse(world, overrides={"pk": target.pk})
        client = api if route.is_api else admin_client
        response = _call(
            client, method, url, _action_data(world, target), HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4())
        )
        body = body_of(response)
        refused = response.status_code == 403 or (
            response.status_code in (200, 400) and READ_ONLY_NOTE in body
        )
        assert refused, (route.name, response.status_code, body[:500])
        assert allow_sim.requests == [], (route.name, allow_sim.requests)
    assert state_snapshot() == before, "a refused action records nothing and changes nothing"


def test_the_same_actions_reach_jumpcloud_on_a_read_write_connection(
    admin_client, admin_user, world, allow_sim
):
    """The positive control of the test above: its requests are well-formed, so the refusal there
    is the read-only rule and not a malformed request."""
    api = APIClient()
    api.force_login(admin_user)
    users = world.extra["rw_users"]
    for n, (route, method) in enumerate(action_routes(admin_client, world)):
        target = users[n]  # a fresh user each time (a deleted one cannot be suspended)
        if "unsuspend" in route.name:
            AppUser.objects.filter(pk=target.pk).update(status=AppUser.Status.SUSPENDED)
        url = route.reverse(world, overrides={"pk": target.pk})
        client = api if route.is_api else admin_client
        allow_sim.clear_requests()
        response = _call(
            client, method, url, _action_data(world, target), HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4())
        )
        assert response.status_code in (200, 201, 302), (
            route.name,
            response.status_code,
            re.findall(r"(?s)<main.*</main>", body_of(response))[:1],
        )
        assert [r for r in allow_sim.requests if r.method != "GET"], (route.name, "nothing was sent upstream")
    assert ActionRun.objects.filter(category="user_action", status="succeeded", actor=admin_user).exists()


def test_users_without_a_role_and_inactive_admins_are_refused(world, allow_sim):
    norole = get_user_model().objects.create_user("nobody", password="x" * 20)
    client = Client()
    client.force_login(norole)
    from tests.factories import AdminFactory

    gone = AdminFactory(username="former.admin")
    gone_client = Client()
    gone_client.force_login(gone)
    gone.is_active = False
    gone.save()
    before = state_snapshot()
    for route in all_routes():
        if route.name in EXEMPT | SELF_SERVICE or route.is_api:
            continue
        url = route.reverse(world)
        response = client.post(url, _action_data(world, world.directory_user))
        assert response.status_code in (403, 405), (url, response.status_code)
        # A deactivated account's session no longer authenticates at all.
        response = gone_client.post(url, _action_data(world, world.directory_user))
        assert response.status_code in (302, 403, 405), (url, response.status_code)
    assert state_snapshot() == before
    assert allow_sim.requests == []
