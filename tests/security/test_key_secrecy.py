"""Property 1: the JumpCloud API key never leaks.

The canary is a real simulator key (torii only stores keys JumpCloud accepts), 40 hex characters.
Every path that touches it runs — connect, failed connects, syncs that succeed and syncs that fail
(401, 500, 503, timeouts, an upstream that echoes the key), key rotation, edits, actions, a server
error with DEBUG off — and then every place it could end up is searched: every page and API
response, every log record (raw, before the redaction filter, and as the configured handlers write
it, SQL included), the error e-mail Django would send, the database (pg_dump) and Redis.
"""

from __future__ import annotations

import pickle
import re
import uuid

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from integrations import crypto
from integrations.models import ActionRun, Application, AppUser, Connection, SyncRun
from integrations.services.connections import connection_credentials
from integrations.services.sync import RetryLater, sync_run_execute, sync_run_request
from jumpcloud.client import JumpCloudClient
from jumpcloud.errors import InvalidApiKey
from jumpcloud.simulator import FaultConfig
from jumpcloud.simulator.api import error_response
from tests.factories import ViewerFactory
from tests.security.support import (
    SecretScan,
    body_of,
    database_dump,
    database_rows,
    every_log_record,
    redis_dump,
    samples_from_db,
    walk_get,
)

pytestmark = [pytest.mark.integration]

WRONG_KEY = "f" * 40


def connect_form(client: Client, sim, api_key: str, **fields: str):
    data = {
        "api_key": api_key,
        "permission": "read_write",
        "region": "us",
        "base_url": sim.base_url,
        "name": "",
    }
    data.update(fields)
    return client.post(reverse("dashboard:connect", args=["jumpcloud"]), data)


def fast_failing_client(monkeypatch) -> None:
    """Failing syncs give up quickly: no long backoff, a read timeout well under the latency fault."""
    defaults = dict(JumpCloudClient.__init__.__kwdefaults__)
    defaults.update(timeout=(2.0, 0.3), max_retries=1, backoff_factor=0.01, backoff_max=0.05)
    monkeypatch.setattr(JumpCloudClient.__init__, "__kwdefaults__", defaults)


def run_sync_now(connection: Connection, kind: str = "full") -> SyncRun:
    run = sync_run_request(connection=connection, kind=kind, trigger="manual", enqueue=False)
    try:
        return sync_run_execute(run_id=run.pk)
    except RetryLater:
        SyncRun.objects.filter(pk=run.pk).update(status=SyncRun.Status.FAILED)  # let the next one start
        return SyncRun.objects.get(pk=run.pk)


def hidden_idempotency_key(html: str) -> str:
    match = re.search(r'name="idempotency_key" value="([^"]+)"', html)
    assert match, "the action form carries an idempotency key"
    return match.group(1)


def api_client_for(user) -> APIClient:
    from tests.factories import api_token_for

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_for(user)}")
    return client


@pytest.mark.django_db(transaction=True)
def test_the_key_appears_nowhere_after_connect_syncs_failures_actions_and_browsing(
    admin_client, admin_user, allow_sim, canary, monkeypatch, caplog, settings
):
    sim = allow_sim
    scan = SecretScan(canary)
    caplog.set_level("DEBUG")
    with every_log_record() as (raw, formatted):
        # Connect through the form (the first sync runs, eagerly, on commit).
        response = connect_form(admin_client, sim, canary)
        assert response.status_code == 302, body_of(response)
        connection = Connection.objects.get()
        assert connection.status == Connection.Status.CONNECTED, connection.status_message
        scan.check("connect redirect", str(response.headers))

        # Connecting the same organization again fails; the re-rendered form holds no key.
        response = connect_form(admin_client, sim, canary)
        assert response.status_code == 400
        scan.check("duplicate connect page", body_of(response))

        # A wrong organization id: the error names organizations, never the key.
        response = connect_form(admin_client, sim, canary, org_id="0" * 24)
        assert response.status_code == 400
        scan.check("wrong org connect page", body_of(response))

        # Sync now through the dashboard, then failing syncs of every kind.
        response = admin_client.post(reverse("dashboard:sync_now", args=[connection.pk]), {"kind": "full"})
        assert response.status_code == 302
        fast_failing_client(monkeypatch)
        sim.set_faults(FaultConfig(rate_503=1.0))
        assert run_sync_now(connection).status in (SyncRun.Status.QUEUED, SyncRun.Status.FAILED)
        sim.set_faults(FaultConfig(latency_ms=800))  # read timeout is 0.3 s
        assert run_sync_now(connection, "events").status in (SyncRun.Status.QUEUED, SyncRun.Status.FAILED)
        sim.set_faults(None)

        def server_error(req, malform=None):
            raise RuntimeError("simulated JumpCloud bug")

        with monkeypatch.context() as m:
            m.setattr(sim._api, "handle", server_error)  # the simulator answers 500
            run_sync_now(connection)

        def echo_key(req, malform=None):
            # A proxy that repeats the request's key back in its error message.
            return error_response(401, f"Unauthorized: unknown key {req.header('x-api-key')}")

        with monkeypatch.context() as m:
            m.setattr(sim._api, "handle", echo_key)
            failed = run_sync_now(connection)
        assert failed.status == SyncRun.Status.FAILED
        scan.check("echoed-key sync error", failed.error_message + str(failed.streams))
        connection.refresh_from_db()
        assert connection.status == Connection.Status.NEEDS_RECONNECT

        # The stored key stops working (revoked in JumpCloud): 401, needs reconnect.
        Connection.objects.filter(pk=connection.pk).update(
            credentials=crypto.encrypt_json({"api_key": WRONG_KEY}), status=Connection.Status.CONNECTED
        )
        connection.refresh_from_db()
        assert run_sync_now(connection).status == SyncRun.Status.FAILED
        monkeypatch.undo()  # the client's normal timeouts again (and the simulator's handler)
        settings.JUMPCLOUD_ALLOWED_BASE_URLS = [sim.base_url]

        # Rotate: a wrong key is refused (the form comes back empty), the canary is accepted.
        rotate_url = reverse("dashboard:connection_rotate_key", args=[connection.pk])
        response = admin_client.post(rotate_url, {"api_key": WRONG_KEY})
        assert response.status_code == 400
        assert WRONG_KEY not in body_of(response)
        response = admin_client.post(rotate_url, {"api_key": canary})
        assert response.status_code == 302, body_of(response)
        connection.refresh_from_db()
        assert connection.status == Connection.Status.CONNECTED, connection.status_message

        # Edit: widen and narrow the permission (a permission upgrade re-validates the stored key).
        edit_url = reverse("dashboard:connection_edit", args=[connection.pk])
        for permission in ("read_only", "read_write"):
            response = admin_client.post(
                edit_url,
                {
                    "name": "Acme",
                    "permission": permission,
                    "events_interval_minutes": 60,
                    "full_sync_interval_hours": 24,
                },
            )
            assert response.status_code == 302, body_of(response)

        # Actions: suspend through the dashboard, unsuspend through the API, one that fails upstream.
        target = (
            AppUser.objects.filter(
                connection=connection,
                application__kind=Application.Kind.DIRECTORY,
                kind="user",
                status="active",
            )
            .order_by("username")
            .first()
        )
        confirm = admin_client.get(reverse("dashboard:user_suspend_confirm", args=[target.pk]))
        response = admin_client.post(
            reverse("dashboard:user_suspend", args=[target.pk]),
            {"idempotency_key": hidden_idempotency_key(body_of(confirm))},
        )
        assert response.status_code == 302, body_of(response)
        api = api_client_for(admin_user)
        response = api.post(
            "/api/v1/actions/unsuspend-user/",
            {"user": target.pk},
            format="json",
            HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        )
        assert response.status_code == 201, response.content
        scan.check("action API response", body_of(response))
        fast_failing_client(monkeypatch)
        sim.set_faults(FaultConfig(rate_503=1.0))
        response = api.post(
            "/api/v1/actions/suspend-user/",
            {"user": target.pk},
            format="json",
            HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        )
        sim.set_faults(None)
        monkeypatch.undo()
        settings.JUMPCLOUD_ALLOWED_BASE_URLS = [sim.base_url]
        assert response.status_code in (201, 400), response.content
        scan.check("failed action API response", body_of(response))
        assert ActionRun.objects.filter(category="user_action").count() >= 3

        # Every page (plain and htmx) and every API response, as an Admin and as a Viewer.
        samples = samples_from_db()
        viewer = ViewerFactory(username="vic.viewer")
        viewer_client = Client()
        viewer_client.force_login(viewer)
        pages = 0
        for client, who in ((admin_client, "admin"), (viewer_client, "viewer")):
            for htmx in (False, True):
                for url, response, body in walk_get(client, samples, api=False, htmx=htmx):
                    assert response.status_code < 500, (url, response.status_code)
                    scan.check(f"page {url} ({who}, htmx={htmx})", body + str(response.headers))
                    pages += 1
        for client, who in ((api, "admin"), (api_client_for(viewer), "viewer")):
            for url, response, body in walk_get(client, samples, api=True):
                assert response.status_code < 500, (url, response.status_code)
                scan.check(f"API {url} ({who})", body)
                pages += 1
        assert pages > 40

    for n, text in enumerate(raw.texts):
        scan.check(f"log record {n} (raw, before redaction)", text)
    assert len(raw.texts) > 50, "logging was captured"
    assert any("SELECT" in t for t in raw.texts), "SQL was logged too"
    scan.check("log output through the LOGGING handlers", "\n".join(formatted))
    scan.check("caplog", caplog.text)
    scan.check("database (pg_dump)", database_dump())
    scan.check("database (every column)", database_rows())
    if settings.REDIS_URL:
        for key, value in redis_dump():
            scan.check(f"redis {key}", key + value)
    scan.check("sent e-mail", "\n".join(m.subject + m.body for m in mail.outbox))
    scan.check("cookies", str(admin_client.cookies))
    scan.assert_clean(minimum_places=100)
    # The key is stored (encrypted) and still works.
    connection.refresh_from_db()
    assert connection_credentials(connection).api_key == canary


# --- server errors ---------------------------------------------------------------------------------
def _explode(*args, **kwargs):
    raise RuntimeError("unexpected failure")


def check_error_reports(scan: SecretScan, response, mailoutbox) -> None:
    """The e-mail Django sent to ADMINS, and the full report (frames with their local variables)
    that Django's reporter builds for the same error: what an HTML error e-mail or an error
    tracker would receive."""
    from django.views.debug import ExceptionReporter

    assert mailoutbox, "the error report e-mail was sent (so it is what gets searched)"
    for message in mailoutbox:
        scan.check("error e-mail", message.subject + message.body)
        for content, _mime in getattr(message, "alternatives", []):
            scan.check("error e-mail (html)", str(content))
    assert response.exc_info, "the test client kept the exception"
    reporter = ExceptionReporter(response.wsgi_request, *response.exc_info)
    frames = reporter.get_traceback_frames()
    assert any(frame["vars"] for frame in frames)
    scan.check("error report (html, with local variables)", reporter.get_traceback_html())
    scan.check("error report (text)", reporter.get_traceback_text())


DEPTHS = {
    # Where the exception is raised, from the view down to the HTTP call: each frame on the way
    # holds the key in some local variable.
    "service, before any network call": "integrations.services.connections._check_connect_rate",
    "provider validation": "jumpcloud.client.JumpCloudClient.list_organizations",
    "HTTP transport": "requests.adapters.HTTPAdapter.send",
}


@pytest.mark.django_db
@pytest.mark.parametrize("depth", list(DEPTHS))
def test_a_server_error_while_connecting_reports_no_key(
    depth, admin_user, allow_sim, canary, settings, monkeypatch, mailoutbox
):
    settings.DEBUG = False
    settings.ADMINS = [("Ops", "ops@example.test")]  # Django e-mails them a report of every 500
    monkeypatch.setattr(DEPTHS[depth], _explode)
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    scan = SecretScan(canary)
    with every_log_record() as (raw, formatted):
        response = connect_form(client, allow_sim, canary)
    assert response.status_code == 500
    scan.check("500 page", body_of(response))
    check_error_reports(scan, response, mailoutbox)
    for n, text in enumerate(raw.texts):
        scan.check(f"log record {n}", text)
    scan.check("formatted log output", "\n".join(formatted))
    scan.assert_clean(minimum_places=3)
    assert "unexpected failure" in "\n".join(raw.texts), "the error itself was logged"
    assert not Connection.objects.exists()


@pytest.mark.django_db
def test_a_server_error_while_rotating_the_key_reports_no_key(
    admin_user, allow_sim, canary, settings, monkeypatch, mailoutbox
):
    from tests.factories import ConnectionFactory

    connection = ConnectionFactory(
        base_url=allow_sim.base_url, region="custom", org_id=allow_sim.org_ids["primary"]
    )
    settings.DEBUG = False
    settings.ADMINS = [("Ops", "ops@example.test")]
    monkeypatch.setattr("jumpcloud.client.JumpCloudClient.list_organizations", _explode)
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    response = client.post(
        reverse("dashboard:connection_rotate_key", args=[connection.pk]), {"api_key": canary}
    )
    assert response.status_code == 500
    scan = SecretScan(canary)
    scan.check("500 page", body_of(response))
    check_error_reports(scan, response, mailoutbox)
    scan.assert_clean()


# --- forms, masking, objects that hold the key -------------------------------------------------
@pytest.mark.django_db
def test_forms_never_prefill_the_key(admin_client, allow_sim, canary):
    from tests.factories import ConnectionFactory

    # A failed connect (unknown key), then the forms fetched fresh: every key field is empty.
    response = connect_form(admin_client, allow_sim, WRONG_KEY)
    assert response.status_code == 400
    assert WRONG_KEY not in body_of(response)
    response = connect_form(admin_client, allow_sim, canary, org_id="0" * 24)  # valid key, wrong org
    assert response.status_code == 400
    assert canary not in body_of(response)
    connection = ConnectionFactory(
        base_url=allow_sim.base_url, region="custom", org_id=allow_sim.org_ids["primary"]
    )
    response = admin_client.post(
        reverse("dashboard:connection_rotate_key", args=[connection.pk]), {"api_key": WRONG_KEY}
    )
    assert response.status_code == 400
    assert WRONG_KEY not in body_of(response)
    for url in (
        reverse("dashboard:connect", args=["jumpcloud"]),
        reverse("dashboard:connection_rotate_key", args=[connection.pk]),
        reverse("dashboard:connection_edit", args=[connection.pk]),
    ):
        html = body_of(admin_client.get(url))
        for field_html in re.findall(r"<input[^>]*name=\"api_key\"[^>]*>", html):
            assert 'type="password"' in field_html, field_html
            assert "value=" not in field_html, field_html
            assert 'autocomplete="off"' in field_html, field_html
        assert canary not in html and WRONG_KEY not in html


@pytest.mark.django_db
def test_the_ui_and_the_api_show_only_a_masked_suffix(admin_client, admin_user, allow_sim, canary):
    from integrations.services.connections import connection_create

    connection = connection_create(
        provider_key="jumpcloud",
        name="Acme",
        credentials={"api_key": canary},
        permission="read_only",
        base_url=allow_sim.base_url,
        start_sync=False,
        created_by=admin_user,
    )
    hint = "••••" + canary[-4:]
    assert connection.secret_hint == hint
    scan = SecretScan(canary)
    for url in (
        reverse("dashboard:integrations"),
        reverse("dashboard:connection_detail", args=[connection.pk]),
        reverse("dashboard:home"),
    ):
        body = body_of(admin_client.get(url))
        scan.check(url, body)
    detail = body_of(admin_client.get(reverse("dashboard:connection_detail", args=[connection.pk])))
    assert hint in detail
    api = api_client_for(admin_user)
    data = api.get(f"/api/v1/connections/{connection.pk}/").json()
    assert data["secret_hint"] == hint
    assert "credentials" not in data and "api_key" not in data
    scan.check("API connection", str(data))
    scan.assert_clean(minimum_places=4)


@pytest.mark.django_db
def test_objects_holding_the_key_never_print_it(allow_sim, canary):
    """What ends up in tracebacks, error reports and task arguments: reprs, strings, pickles."""
    from integrations.services.connections import connection_create

    connection = connection_create(
        provider_key="jumpcloud",
        name="Acme",
        credentials={"api_key": canary},
        permission="read_only",
        base_url=allow_sim.base_url,
        start_sync=False,
    )
    credentials = connection_credentials(connection)
    client = JumpCloudClient(canary, base_url=allow_sim.base_url)
    scan = SecretScan(canary)
    scan.check("repr(credentials)", repr(credentials))
    scan.check("str(credentials)", str(credentials))
    scan.check("repr(client)", repr(client))
    scan.check("repr(client auth)", repr(client._auth))
    scan.check("repr(connection)", repr(connection) + str(connection) + repr(vars(connection)))
    with pytest.raises(TypeError):
        pickle.dumps(client)
    with pytest.raises(InvalidApiKey) as caught:
        JumpCloudClient(WRONG_KEY, base_url=allow_sim.base_url, max_retries=0).list_organizations()
    error = caught.value
    wrong = SecretScan(WRONG_KEY)
    copied = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object (what Celery would carry)
    wrong.check("error", repr(error) + str(error) + str(error.args) + error.detail + repr(copied))
    wrong.assert_clean()
    scan.assert_clean(minimum_places=5)


# --- FIELD_ENCRYPTION_KEYS rotation ------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_rotating_the_encryption_key_keeps_every_connection_working(allow_sim, canary, settings):
    from cryptography.fernet import Fernet

    from integrations.services.connections import connection_create

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    first = connection_create(
        provider_key="jumpcloud",
        name="Acme",
        credentials={"api_key": canary},
        permission="read_only",
        base_url=allow_sim.base_url,
        start_sync=False,
    )
    second = connection_create(
        provider_key="jumpcloud",
        name="Initech",
        credentials={"api_key": allow_sim.keys["no_di"]},
        permission="read_only",
        base_url=allow_sim.base_url,
        start_sync=False,
    )
    stored_before = {c.pk: c.credentials for c in Connection.objects.all()}

    # 1. Add the new key first (the old one still decrypts), 2. re-encrypt, 3. drop the old key.
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    call_command("rotate_encryption_keys")
    settings.FIELD_ENCRYPTION_KEYS = [new]
    for connection in Connection.objects.all():
        assert connection.credentials != stored_before[connection.pk]
        assert connection_credentials(connection).api_key in (canary, allow_sim.keys["no_di"])
        assert canary not in connection.credentials
        run = run_sync_now(connection)
        assert run.status in (SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL), run.error_message
    # The old key alone no longer opens anything: the data really moved to the new key.
    settings.FIELD_ENCRYPTION_KEYS = [old]
    with pytest.raises(crypto.CredentialsUnreadable):
        connection_credentials(Connection.objects.get(pk=first.pk))
    assert second.pk != first.pk


@pytest.mark.django_db(transaction=True)
def test_dropping_the_old_key_before_rotating_fails_clearly_without_the_key(allow_sim, canary, settings):
    from cryptography.fernet import Fernet

    from integrations.services.connections import connection_create

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    connection = connection_create(
        provider_key="jumpcloud",
        name="Acme",
        credentials={"api_key": canary},
        permission="read_only",
        base_url=allow_sim.base_url,
        start_sync=False,
    )
    settings.FIELD_ENCRYPTION_KEYS = [new]  # the operator forgot to run the rotation
    run = run_sync_now(connection)
    assert run.status == SyncRun.Status.FAILED
    assert "FIELD_ENCRYPTION_KEYS" in run.error_message
    connection.refresh_from_db()
    assert connection.status == Connection.Status.FAILED
    scan = SecretScan(canary)
    scan.check("run", run.error_message + connection.status_message)
    scan.assert_clean()
