"""The foundation: URL protection, production settings, first admin, health."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.processes import ROOT

# favicon: a GET-only redirect to the static icon (browsers ask for it on every site).
PUBLIC = {"login", "health", "favicon"}


def _named_routes(resolver: URLResolver | None = None, prefix: str = "") -> list[str]:
    names: list[str] = []
    for p in (resolver or get_resolver()).url_patterns:
        if isinstance(p, URLResolver):
            ns = f"{prefix}{p.namespace}:" if p.namespace else prefix
            if p.app_name == "admin":
                continue  # Django's admin site has its own login
            names += _named_routes(p, ns)
        elif isinstance(p, URLPattern) and p.name and not p.pattern.regex.groups:
            names.append(prefix + p.name)
    return names


@pytest.mark.django_db
def test_every_page_but_login_and_health_redirects_anonymous_visitors_to_login(client):
    routes = [n for n in _named_routes() if n not in PUBLIC]
    assert "dashboard:home" in routes and len(routes) > 5
    for name in routes:
        url = reverse(name)
        response = client.get(url)
        if url.startswith("/api/"):
            assert response.status_code in (401, 403), f"{name} answered {response.status_code} to anonymous"
        else:
            assert response.status_code == 302, f"{name} answered {response.status_code} to anonymous"
            assert response["Location"].startswith(reverse("login")), name


@pytest.mark.django_db
def test_login_page_is_public(client):
    assert client.get(reverse("login")).status_code == 200


@pytest.mark.django_db
def test_user_without_role_is_refused(client):
    user = get_user_model().objects.create_user("norole", password="x" * 20)
    client.force_login(user)
    assert client.get(reverse("dashboard:home")).status_code == 403


@pytest.mark.django_db
def test_viewer_and_admin_see_the_dashboard(viewer_client, admin_client):
    assert viewer_client.get(reverse("dashboard:home")).status_code == 200
    assert admin_client.get(reverse("dashboard:home")).status_code == 200


def test_production_settings_pass_check_deploy_with_zero_warnings():
    from cryptography.fernet import Fernet

    env = {
        # Not DJANGO_ALLOW_ASYNC_UNSAFE: the browser tests set it for this process only.
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "TORII_ENV": "production",
        "SECRET_KEY": "k" * 10 + "Zq8!vB2#pL0@xR5$wT7%yU9^" + "m" * 30,
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "torii.example.com",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues (0 silenced)." in output
    assert "WARNING" not in output.replace("axes", "")


def test_production_refuses_to_start_without_a_secret_key():
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "FIELD_ENCRYPTION_KEYS")}
    env["TORII_ENV"] = "production"
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


@pytest.mark.django_db
def test_create_first_admin_generates_a_password_once(capsys, monkeypatch):
    monkeypatch.delenv("TORII_ADMIN_PASSWORD", raising=False)
    call_command("create_first_admin", "--username", "root-admin")
    first = capsys.readouterr().out
    assert "password:" in first
    password = first.split("password:")[1].split()[0]
    user = get_user_model().objects.get(username="root-admin")
    assert user.check_password(password)
    from accounts.roles import is_admin

    assert is_admin(user)
    call_command("create_first_admin", "--username", "root-admin")
    again = capsys.readouterr().out
    assert "already exists" in again and password not in again


@pytest.mark.django_db
def test_create_first_admin_takes_the_password_from_the_environment(capsys, monkeypatch):
    monkeypatch.setenv("TORII_ADMIN_PASSWORD", "a-long-and-fine-passphrase")
    call_command("create_first_admin", "--username", "env-admin")
    out = capsys.readouterr().out
    assert "a-long-and-fine-passphrase" not in out
    assert get_user_model().objects.get(username="env-admin").check_password("a-long-and-fine-passphrase")


@pytest.mark.django_db
def test_security_headers_are_sent(admin_client):
    response = admin_client.get(reverse("dashboard:home"))
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
