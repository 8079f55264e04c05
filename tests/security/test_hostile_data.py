"""Property 5: hostile data stays inert.

A tenant full of markup (user names, an administrator, application labels and SSO URLs, event
fields, the organization's name) is synced into torii; then every page renders it only escaped,
with no inline handler, no inline script, no javascript:/data: link; CSV exports neutralise
formulas; the API serves it as JSON; and every HTML page carries a strict Content-Security-Policy.
The same pages in a real browser fire no dialog: tests/security/test_hostile_data_browser.py.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from integrations.models import ActionRun, Application, AppUser, Connection, SyncRun
from integrations.services.sync import sync_run_execute, sync_run_request
from jumpcloud.simulator import Simulator
from tests.security import hostile
from tests.security.support import (
    all_routes,
    body_of,
    inertness_problems,
    make_world,
    samples_from_db,
    walk_get,
)

pytestmark = [pytest.mark.integration]


def connect_and_sync(client: Client, sim: Simulator) -> tuple[Connection, Any]:
    """Connect through the form (the toast names the hostile organization), sync, then act on the
    hostile user so the audit log holds its name too."""
    response = client.post(
        reverse("dashboard:connect", args=["jumpcloud"]),
        {
            "api_key": sim.keys["admin"],
            "permission": "read_write",
            "region": "us",
            "base_url": sim.base_url,
            "name": "",
        },
        follow=True,
    )
    assert response.status_code == 200
    connection = Connection.objects.get()
    run = connection.sync_runs.order_by("-pk").first()
    if run is None or run.status != SyncRun.Status.SUCCEEDED:
        run = sync_run_request(connection=connection, kind="full", trigger="manual", enqueue=False)
        run = sync_run_execute(run_id=run.pk)
    assert run.status in (SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL), run.error_message
    target = AppUser.objects.get(
        connection=connection, application__kind="directory", username=hostile.SCRIPT
    )
    confirm = body_of(client.get(reverse("dashboard:user_suspend_confirm", args=[target.pk])))
    key = re.search(r'name="idempotency_key" value="([^"]+)"', confirm).group(1)
    client.post(reverse("dashboard:user_suspend", args=[target.pk]), {"idempotency_key": key})
    return connection, response


@pytest.fixture
def hostile_world(admin_client, settings, hostile_sim):
    settings.JUMPCLOUD_ALLOWED_BASE_URLS = [hostile_sim.base_url]
    connection, first_page = connect_and_sync(admin_client, hostile_sim)
    samples = samples_from_db()
    samples.directory_user = AppUser.objects.get(
        connection=connection, application__kind="directory", username=hostile.SCRIPT
    )
    samples.application = Application.objects.get(connection=connection, external_id=hostile.XSS_APP_ID)
    samples.action_run = ActionRun.objects.filter(category="user_action").order_by("-pk").first()
    assert samples.action_run is not None and samples.action_run.target_username == hostile.SCRIPT
    return samples, first_page


def extra_pages(samples) -> list[str]:
    """Pages that show the data differently: searches, filters, other periods, every app."""
    users = reverse("dashboard:users")
    urls = [
        f"{users}?q=script",
        f"{users}?q=%3Cscript",
        f"{users}?status=suspended",
        f"{users}?role=admin",
        f"{users}?ordering=-last_used",
        reverse("dashboard:applications") + "?q=img",
        reverse("dashboard:insights") + "?days=7",
        reverse("dashboard:insights") + "?days=90&inactive_days=90",
        reverse("dashboard:audit") + "?target=script",
        reverse("dashboard:capabilities"),
    ]
    urls += [reverse("dashboard:application_detail", args=[a.pk]) for a in Application.objects.all()]
    urls += [
        reverse("dashboard:user_detail", args=[u.pk])
        for u in AppUser.objects.filter(
            application__kind="directory", username__in=[hostile.SCRIPT, hostile.FORMULA_USERNAME]
        )
    ]
    urls += [
        reverse("dashboard:user_delete_confirm", args=[samples.directory_user.pk]),
        reverse("dashboard:user_unsuspend_confirm", args=[samples.directory_user.pk]),
        reverse("dashboard:bulk_suspend_confirm") + f"?app_user_ids={samples.directory_user.pk}",
    ]
    return urls


@pytest.mark.django_db(transaction=True)
def test_hostile_records_render_only_escaped_on_every_page(admin_client, hostile_world):
    samples, first_page = hostile_world
    pages: dict[str, str] = {"connect → toast": body_of(first_page)}
    for htmx in (False, True):
        for url, response, body in walk_get(admin_client, samples, api=False, htmx=htmx):
            if response.get("Content-Type", "").startswith("text/html"):
                pages[f"{url} htmx={htmx}"] = body
    for url in extra_pages(samples):
        response = admin_client.get(url)
        assert response.status_code == 200, url
        pages[url] = body_of(response)
    # htmx partials swapped into the users table (the filter form targets it).
    response = admin_client.get(
        reverse("dashboard:users") + "?q=script", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="users-results"
    )
    pages["users htmx results"] = body_of(response)

    problems = {url: p for url, body in pages.items() if (p := inertness_problems(body, hostile.MARKUP))}
    assert not problems, problems
    everything = "\n".join(pages.values())
    for payload in hostile.MARKUP:
        assert hostile.escaped(payload) in everything or payload in everything.replace("\\u003C", "<"), (
            f"{payload!r} never reached a page: the test would prove nothing about it"
        )
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[f"{reverse('dashboard:users')}?q=script"]
    for url in JS_URL_PAGES(samples):
        assert not re.search(
            r"(?i)(href|src|action)\s*=\s*[\"']?\s*(javascript|data|vbscript):", pages[url]
        ), url
    assert len(pages) > 30


def JS_URL_PAGES(samples) -> list[str]:  # noqa: N802 - reads as a constant
    return [
        reverse("dashboard:application_detail", args=[a.pk])
        for a in Application.objects.filter(sso_url__iregex=r"^\s*(javascript|data):")
    ]


@pytest.mark.django_db(transaction=True)
def test_exports_neutralise_formulas(admin_client, hostile_world):
    exports = [r for r in all_routes() if not r.is_api and ("export" in r.name or "csv" in r.name)]
    assert {r.name for r in exports} >= {"dashboard:users_export", "dashboard:audit_log_csv"}
    samples, _ = hostile_world
    cells_seen = 0
    for route in exports:
        for query in ("", "?status=suspended", "?q=1"):
            response = admin_client.get(route.reverse(samples) + query)
            assert response.status_code == 200
            assert response["Content-Type"].startswith("text/csv")
            assert response["Content-Disposition"].startswith("attachment")
            rows = list(csv.reader(io.StringIO(body_of(response).lstrip("\ufeff"), newline="")))
            for row in rows:
                for cell in row:
                    cells_seen += 1
                    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (route.name, cell)
    users_csv = body_of(admin_client.get(reverse("dashboard:users_export")))
    assert "'" + hostile.FORMULA_USERNAME.replace('"', '""') in users_csv
    for value in (hostile.FORMULAS[3], "=1+1@acme.example"):  # the name shown, the e-mail
        assert "'" + value in users_csv, value
    audit_csv = body_of(admin_client.get(reverse("dashboard:audit_log_csv")))
    assert "<script>" in audit_csv or "Suspend" in audit_csv
    assert cells_seen > 50


@pytest.mark.django_db(transaction=True)
def test_the_api_serves_hostile_data_as_json_only(admin_user, hostile_world):
    samples, _ = hostile_world
    api = APIClient()
    api.force_login(admin_user)
    for url, response, _body in walk_get(api, samples, api=True):
        if response.status_code != 200 or url.startswith("/api/docs"):
            continue
        assert response["Content-Type"].startswith(("application/json", "application/vnd.oai.openapi")), url
        assert response["X-Content-Type-Options"] == "nosniff"
    user = api.get(f"/api/v1/users/{samples.directory_user.pk}/")
    assert user.json()["username"] == hostile.SCRIPT  # data, not markup: stored as JumpCloud sent it
    # The browsable API (text/html) is a page like any other: escaped, inert, under the CSP.
    for url in ("/api/v1/users/", f"/api/v1/users/{samples.directory_user.pk}/", "/api/v1/applications/"):
        response = api.get(url, HTTP_ACCEPT="text/html")
        if response["Content-Type"].startswith("text/html"):
            assert not inertness_problems(body_of(response), hostile.MARKUP), url
            assert_strict_csp(response, url)


# --- Content-Security-Policy -----------------------------------------------------------------
def _directives(header: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            out[words[0].lower()] = [w.lower() for w in words[1:]]
    return out


def assert_strict_csp(response: Any, where: str) -> None:
    header = response.get("Content-Security-Policy", "")
    assert header, f"{where}: no Content-Security-Policy"
    d = _directives(header)
    scripts = d.get("script-src", d.get("default-src"))
    assert scripts, f"{where}: no script-src/default-src"
    for bad in ("'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:", "https:", "'unsafe-hashes'"):
        assert bad not in scripts, f"{where}: script-src allows {bad}"
    assert d.get("object-src") == ["'none'"], where
    assert d.get("frame-ancestors") == ["'none'"], where
    assert d.get("base-uri") in (["'self'"], ["'none'"]), where
    assert "form-action" in d, where
    assert response["X-Frame-Options"] == "DENY", where
    assert response["X-Content-Type-Options"] == "nosniff", where


@pytest.mark.django_db
def test_every_html_page_sends_a_strict_content_security_policy(admin_client, allow_sim, settings):
    samples = make_world(allow_sim, users=3)
    seen = 0
    for htmx in (False, True):
        for url, response, _ in walk_get(admin_client, samples, api=False, htmx=htmx):
            if response.get("Content-Type", "").startswith("text/html"):
                assert_strict_csp(response, url)
                seen += 1
    api = APIClient()
    api.force_login(samples.connection.created_by or _admin(admin_client))
    for url in ("/api/docs/",):
        assert_strict_csp(api.get(url), url)
    # Pages outside the dashboard: login, lockout, error pages, the CSRF failure page.
    anonymous = Client()
    assert_strict_csp(anonymous.get(reverse("login")), "login")
    settings.DEBUG = False
    assert_strict_csp(admin_client.get("/no-such-page/"), "404")
    assert_strict_csp(admin_client.get(reverse("dashboard:users") + "../../admin/"), "admin redirect or page")
    viewer = Client()
    from tests.factories import ViewerFactory

    viewer.force_login(ViewerFactory(username="csp.viewer"))
    assert_strict_csp(viewer.get(reverse("dashboard:connect", args=["jumpcloud"])), "403")
    strict = Client(enforce_csrf_checks=True)
    assert_strict_csp(strict.post(reverse("login"), {"username": "x", "password": "y"}), "CSRF failure")
    for n in range(settings.AXES_FAILURE_LIMIT + 1):
        locked = Client().post(
            reverse("login"), {"username": "csp.locked", "password": f"bad{n}"}, REMOTE_ADDR="198.18.0.1"
        )
    assert locked.status_code in (403, 429)
    assert_strict_csp(locked, "lockout page")
    assert seen > 25


def _admin(client: Client) -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username="alice.admin")


@pytest.mark.django_db
def test_a_server_error_page_sends_the_policy_too(admin_user, settings, monkeypatch):
    settings.DEBUG = False
    monkeypatch.setattr(
        "dashboard.views.pages.HomeView.get_context_data",
        lambda self, **kw: (_ for _ in ()).throw(RuntimeError("boom")),
    )
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    response = client.get(reverse("dashboard:home"))
    assert response.status_code == 500
    assert_strict_csp(response, "500")
    assert "boom" not in body_of(response) and "Traceback" not in body_of(response)
