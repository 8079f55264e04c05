"""Property 4: no SSRF. torii talks to JumpCloud's own hosts (US, EU, IN) and to nothing else,
except an origin an operator listed, exactly, in JUMPCLOUD_ALLOWED_BASE_URLS (the simulator).

Outbound HTTP is intercepted at requests' transport: everything torii tries to reach is recorded,
only the simulator is really contacted, and every recorded target must be an allowed host.
"""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from requests.adapters import HTTPAdapter
from rest_framework.test import APIClient

from integrations.crypto import encrypt_json
from integrations.models import Connection, SyncRun
from integrations.providers import CredentialsError, registry
from integrations.services.connections import connection_check_endpoint
from integrations.services.sync import RetryLater, sync_run_execute, sync_run_request
from jumpcloud.client import REGION_HOSTS
from jumpcloud.simulator.api import Response
from tests.factories import ConnectionFactory

pytestmark = [pytest.mark.django_db]

JUMPCLOUD_ORIGINS = {origin for hosts in REGION_HOSTS.values() for origin in hosts}


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@pytest.fixture
def outbound(monkeypatch, sim) -> list[str]:
    """Every URL torii sends a request to. Only the simulator is really contacted."""
    seen: list[str] = []
    real_send = HTTPAdapter.send

    def send(self, request, *args, **kwargs):
        seen.append(request.url)
        if origin(request.url) == sim.base_url:
            return real_send(self, request, *args, **kwargs)
        raise requests.ConnectionError(f"blocked by the test: {request.url}")

    monkeypatch.setattr(HTTPAdapter, "send", send)
    return seen


def assert_only_allowed(seen: list[str], allowed: set[str]) -> None:
    bad = [u for u in seen if origin(u) not in allowed | JUMPCLOUD_ORIGINS]
    assert not bad, f"torii reached hosts it must not: {bad}"


# --- the endpoint check ------------------------------------------------------------------------
ALLOWED = "http://127.0.0.1:8765"
HOSTILE = [
    "http://127.0.0.1:8766",
    "https://127.0.0.1:8765",
    "http://localhost:8765",
    "http://[::1]:8765",
    "http://127.0.0.1:8765@evil.example",
    "http://evil.example#@127.0.0.1:8765",
    "http://evil.example?@127.0.0.1:8765",
    "http://user:pass@127.0.0.1:8765",
    "http://127.0.0.1:8765/api",
    "http://127.0.0.1:8765/../..",
    "http://127.0.0.1:8765?x=1",
    "http://127.0.0.1:8765#frag",
    "http://0x7f.0.0.1:8765",
    "http://2130706433:8765",
    "http://127.0.0.1.nip.io:8765",
    "http://169.254.169.254/",
    "http://metadata.google.internal/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:8765/",
    "ftp://127.0.0.1:8765",
    "//127.0.0.1:8765",
    "127.0.0.1:8765",
    "http://127.0.0.1:8765\r\nHost: evil.example",
    "http://127.0.0.1:8765\\@evil.example",
    "http://evil.example",
    "https://console.jumpcloud.com.evil.example",
    "https://evil.example/console.jumpcloud.com",
    "http://１２７.０.０.１:8765",
]


def test_only_an_exactly_listed_origin_passes(settings):
    settings.JUMPCLOUD_ALLOWED_BASE_URLS = [ALLOWED]
    assert connection_check_endpoint(provider_key="jumpcloud", region="us", base_url=ALLOWED) == (
        "custom",
        ALLOWED,
    )
    assert connection_check_endpoint(provider_key="jumpcloud", region="us", base_url=ALLOWED + "/") == (
        "custom",
        ALLOWED,
    )
    for region in ("us", "eu", "in"):
        assert connection_check_endpoint(provider_key="jumpcloud", region=region, base_url="") == (region, "")
    for hostile in HOSTILE:
        with pytest.raises(CredentialsError) as caught:
            connection_check_endpoint(provider_key="jumpcloud", region="us", base_url=hostile)
        assert caught.value.code == "base_url_not_allowed", hostile
    for region in ("custom", "xx", "", "us.evil.example", "../us"):
        with pytest.raises(CredentialsError):
            connection_check_endpoint(provider_key="jumpcloud", region=region, base_url="")


def test_production_allows_no_custom_origin(settings):
    settings.JUMPCLOUD_ALLOWED_BASE_URLS = []
    with pytest.raises(CredentialsError):
        connection_check_endpoint(provider_key="jumpcloud", region="us", base_url=ALLOWED)


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    url=st.one_of(
        st.text(max_size=80),
        st.builds(
            lambda scheme, host, rest: f"{scheme}{host}{rest}",
            st.sampled_from(["http://", "https://", "HTTP://", "//", "", "file://", "http:\\\\"]),
            st.sampled_from(
                ["127.0.0.1", "127.0.0.1:8765", "localhost:8765", "evil.example", "[::1]:8765", ""]
            ),
            st.text(alphabet="/\\@#?:.%0123456789abcdef\t\r\n ", max_size=20),
        ),
    ),
    region=st.sampled_from(["us", "eu", "in", "custom", "xx", ""]),
)
def test_whatever_is_sent_the_result_is_an_allowed_endpoint(settings, url, region):
    settings.JUMPCLOUD_ALLOWED_BASE_URLS = [ALLOWED]
    try:
        got_region, got_base = connection_check_endpoint(
            provider_key="jumpcloud", region=region, base_url=url
        )
    except CredentialsError:
        return
    if got_base:
        assert (got_region, got_base) == ("custom", ALLOWED), (url, got_region, got_base)
    else:
        assert got_region in REGION_HOSTS and not url, (url, got_region)


# --- the forms ---------------------------------------------------------------------------------
def _connect(client, **data):
    form = {"api_key": "0" * 40, "permission": "read_only", "region": "us", "name": "", **data}
    return client.post(reverse("dashboard:connect", args=["jumpcloud"]), form)


@pytest.mark.parametrize("hostile", HOSTILE[:12] + ["http://169.254.169.254/", "file:///etc/passwd"])
def test_the_connect_form_cannot_point_torii_elsewhere(admin_client, allow_sim, outbound, hostile):
    response = _connect(admin_client, base_url=hostile, api_key=allow_sim.keys["admin"])
    assert response.status_code == 400
    assert "base_url" in response.context["form"].errors
    assert not Connection.objects.exists()
    assert outbound == [], "nothing was sent anywhere"


@pytest.mark.parametrize("region", ["custom", "xx", "evil.example", "us/../evil"])
def test_the_connect_form_refuses_unknown_regions(admin_client, allow_sim, outbound, region):
    response = _connect(admin_client, region=region, api_key=allow_sim.keys["admin"])
    assert response.status_code == 400
    assert not Connection.objects.exists()
    assert outbound == []


def test_without_listed_origins_the_form_reaches_only_jumpcloud(admin_client, settings, sim, outbound):
    settings.JUMPCLOUD_ALLOWED_BASE_URLS = []  # production
    page = admin_client.get(reverse("dashboard:connect", args=["jumpcloud"])).content.decode()
    assert 'name="base_url"' not in page
    for region in ("us", "eu", "in"):
        response = _connect(
            admin_client, region=region, base_url="http://evil.example"
        )  # not a field: ignored
        assert response.status_code == 400  # JumpCloud is unreachable from the tests
    assert {origin(u) for u in outbound} == {REGION_HOSTS[r][0] for r in ("us", "eu", "in")}, outbound
    assert not Connection.objects.exists()


def test_editing_or_rotating_cannot_move_a_connection(admin_client, allow_sim, outbound):
    connection = ConnectionFactory(
        base_url=allow_sim.base_url, region="custom", org_id=allow_sim.org_ids["primary"]
    )
    hostile = {"base_url": "http://evil.example", "region": "eu", "org_id": "0" * 24, "provider": "evil"}
    admin_client.post(
        reverse("dashboard:connection_edit", args=[connection.pk]),
        {
            "name": "Renamed",
            "permission": "read_write",
            "events_interval_minutes": 60,
            "full_sync_interval_hours": 24,
            **hostile,
        },
    )
    admin_client.post(
        reverse("dashboard:connection_rotate_key", args=[connection.pk]),
        {"api_key": allow_sim.keys["admin"], **hostile},
    )
    connection.refresh_from_db()
    assert (connection.base_url, connection.region, connection.provider) == (
        allow_sim.base_url,
        "custom",
        "jumpcloud",
    )
    assert connection.org_id == allow_sim.org_ids["primary"]
    assert_only_allowed(outbound, {allow_sim.base_url})
    assert outbound, "the rotation was validated against the simulator"


def test_the_api_cannot_create_or_move_a_connection(admin_user, allow_sim, outbound):
    from drf_spectacular.generators import SchemaGenerator

    connection = ConnectionFactory(
        base_url=allow_sim.base_url, region="custom", org_id=allow_sim.org_ids["primary"]
    )
    api = APIClient()
    api.force_login(admin_user)
    hostile = {
        "base_url": "http://evil.example",
        "region": "eu",
        "api_key": allow_sim.keys["admin"],
        "name": "x",
        "permission": "read_only",
    }
    schema = SchemaGenerator().get_schema(request=None, public=True)
    # Any operation that takes an endpoint (now or later) must refuse a hostile one.
    endpoint_ops = []
    for path, operations in schema["paths"].items():
        for method, op in operations.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            ref = body.get("$ref", "")
            props = schema["components"]["schemas"].get(ref.rsplit("/", 1)[-1], body).get("properties", {})
            if {"base_url", "region"} & set(props):
                endpoint_ops.append((method, path.replace("{id}", str(connection.pk))))
    for method, path in endpoint_ops + [
        ("post", "/api/v1/connections/"),
        ("put", f"/api/v1/connections/{connection.pk}/"),
        ("patch", f"/api/v1/connections/{connection.pk}/"),
    ]:
        response = getattr(api, method)(path, hostile, format="json")
        assert response.status_code in (400, 403, 405, 429), (method, path, response.status_code)
    connection.refresh_from_db()
    assert (connection.base_url, connection.region) == (allow_sim.base_url, "custom")
    assert not Connection.objects.filter(base_url__contains="evil").exists()
    assert_only_allowed(outbound, {allow_sim.base_url})


# --- the client of a stored connection --------------------------------------------------------
@pytest.mark.parametrize("region", ["us", "eu", "in"])
def test_a_connection_client_targets_its_region_hosts(region):
    connection = ConnectionFactory(region=region, base_url="")
    client = registry.get("jumpcloud").get_client(connection)
    assert (client._console, client._di) == REGION_HOSTS[region]
    assert {origin(prefix) for prefix in client._session.adapters} >= set(REGION_HOSTS[region])


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "stored",
    [("custom", "http://evil.example"), ("custom", "http://127.0.0.1:1"), ("xx", ""), ("custom", "")],
)
def test_a_stored_connection_outside_the_allowed_endpoints_never_syncs(settings, sim, outbound, stored):
    """Rows written before an operator removed an origin (or by hand): the guard is applied every
    time a client is built, not only when connecting."""
    settings.JUMPCLOUD_ALLOWED_BASE_URLS = [sim.base_url]
    region, base_url = stored
    connection = ConnectionFactory(region=region, base_url=base_url)
    with pytest.raises(CredentialsError):
        registry.get("jumpcloud").get_client(connection)
    run = sync_run_request(connection=connection, kind="full", trigger="manual", enqueue=False)
    run = sync_run_execute(run_id=run.pk)
    assert run.status == SyncRun.Status.FAILED
    assert "not allowed" in run.error_message.lower() or "region" in run.error_message.lower(), (
        run.error_message
    )
    assert outbound == []


@pytest.fixture
def evil_server() -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's hook name
            hits.append(self.path + " " + str(self.headers.get("x-api-key")))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"[]")

        do_POST = do_GET  # noqa: N815

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


@pytest.mark.django_db(transaction=True)
def test_redirects_from_upstream_are_not_followed(allow_sim, evil_server, monkeypatch):
    """A redirect would take the request, and its x-api-key header, to another host."""
    evil_url, hits = evil_server
    connection = ConnectionFactory(
        base_url=allow_sim.base_url,
        region="custom",
        org_id=allow_sim.org_ids["primary"],
        credentials=encrypt_json({"api_key": allow_sim.keys["admin"]}),
    )

    def redirect(req, malform=None):
        return Response(302, b"", {"Location": f"{evil_url}/api/organizations"})

    monkeypatch.setattr(allow_sim._api, "handle", redirect)
    run = sync_run_request(connection=connection, kind="full", trigger="manual", enqueue=False)
    with contextlib.suppress(RetryLater):  # an unexpected answer may be retried later: fine
        sync_run_execute(run_id=run.pk)
    run.refresh_from_db()
    # Failed, or parked for a retry (running, its task waiting): either way the 302 is reported.
    assert run.status in (SyncRun.Status.FAILED, SyncRun.Status.RUNNING), run.status
    errors = [run.error_message, *run.tasks.values_list("error", flat=True)]
    assert any("302" in e for e in errors), errors
    assert hits == [], f"the key went to the redirect target: {hits}"


@pytest.mark.parametrize("stored", [("custom", "http://evil.example"), ("xx", "")])
def test_an_action_on_a_connection_outside_the_allowed_endpoints_sends_nothing(
    admin_user, settings, sim, outbound, stored
):
    import uuid

    from tests.factories import AppUserFactory, DirectoryAppFactory

    settings.JUMPCLOUD_ALLOWED_BASE_URLS = [sim.base_url]
    region, base_url = stored
    connection = ConnectionFactory(region=region, base_url=base_url, permission="read_write")
    target = AppUserFactory(application=DirectoryAppFactory(connection=connection))
    api = APIClient()
    api.force_login(admin_user)
    for action in ("suspend-user", "delete-user"):
        response = api.post(
            f"/api/v1/actions/{action}/",
            {"user": target.pk},
            format="json",
            HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        )
        assert response.status_code < 500, response.content
        if response.status_code == 201:
            assert response.json()["status"] == "failed"
    assert outbound == [], outbound
