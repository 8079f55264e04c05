"""Property 6: production settings are safe by default.

A child process starts torii the way production does (TORII_ENV=production and the secrets in the
environment, nothing else) and reports its settings and the headers and cookies of real responses.
`manage.py check --deploy` with zero warnings is tests/test_foundation.py's job.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from cryptography.fernet import Fernet

from tests.processes import ROOT

REPORT = r"""
import json, django
django.setup()
from django.conf import settings
from django.test import Client
from django.test.utils import setup_test_environment

names = ["DEBUG", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD",
         "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "SESSION_COOKIE_SAMESITE",
         "SESSION_EXPIRE_AT_BROWSER_CLOSE", "SESSION_COOKIE_AGE", "CSRF_COOKIE_SECURE", "CSRF_COOKIE_HTTPONLY",
         "X_FRAME_OPTIONS", "SECURE_CONTENT_TYPE_NOSNIFF", "SECURE_REFERRER_POLICY", "ALLOWED_HOSTS",
         "INSTALLED_APPS", "MIDDLEWARE", "JUMPCLOUD_ALLOWED_BASE_URLS", "PASSWORD_HASHERS",
         "CELERY_TASK_ALWAYS_EAGER", "AXES_FAILURE_LIMIT", "AXES_LOCKOUT_PARAMETERS", "SECURE_PROXY_SSL_HEADER",
         "CSRF_TRUSTED_ORIGINS", "DEFAULT_EXCEPTION_REPORTER_FILTER"]
out = {n: getattr(settings, n, None) for n in names}
out["PASSWORD_HASHERS"] = list(settings.PASSWORD_HASHERS)
out["ROOT_HANDLER_FILTERS"] = [f for h in settings.LOGGING["root"]["handlers"]
                               for f in settings.LOGGING["handlers"][h].get("filters", [])]
setup_test_environment()
# The manifest storage needs collectstatic; pages render the same without it.
from django.test.utils import override_settings
override_settings(STORAGES={**settings.STORAGES, "staticfiles": {
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}).enable()
client = Client(HTTP_HOST="torii.example.com")
plain = client.get("/login/")
secure = client.get("/login/", secure=True)
out["plain_http"] = {"status": plain.status_code, "location": plain.get("Location", "")}
out["https"] = {"status": secure.status_code, "headers": dict(secure.headers),
                "cookies": {k: {a: str(m[a]) for a in ("secure", "httponly", "samesite", "max-age", "expires")}
                            for k, m in secure.cookies.items()}}
out["bad_host"] = Client(HTTP_HOST="evil.example").get("/login/", secure=True).status_code
print("REPORT" + json.dumps(out, default=str))
"""


@pytest.fixture(scope="module")
def production() -> dict[str, Any]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DEBUG", "SECURE_", "JUMPCLOUD_", "CELERY_"))
    }
    env.update(
        {
            "TORII_ENV": "production",
            "SECRET_KEY": "p" * 10 + "Zq8!vB2#pL0@xR5$wT7%yU9^" + "s" * 30,
            "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "ALLOWED_HOSTS": "torii.example.com",
            "DJANGO_SETTINGS_MODULE": "torii.settings",
        }
    )
    result = subprocess.run(
        [sys.executable, "-c", REPORT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("REPORT"))
    return json.loads(line[len("REPORT") :])


def test_debug_is_off_and_no_debugging_aid_is_installed(production):
    assert production["DEBUG"] is False
    for name in ("debug_toolbar", "django_extensions", "silk", "debug_panel"):
        assert not any(name in app for app in production["INSTALLED_APPS"]), name
        assert not any(name in m for m in production["MIDDLEWARE"]), name
    assert not any("MD5" in h for h in production["PASSWORD_HASHERS"]), "the fast test hasher is test-only"
    assert production["CELERY_TASK_ALWAYS_EAGER"] is False


def test_https_everywhere_with_hsts(production):
    assert production["SECURE_SSL_REDIRECT"] is True
    assert production["SECURE_HSTS_SECONDS"] >= 31536000
    assert production["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert production["plain_http"]["status"] == 301
    assert production["plain_http"]["location"].startswith("https://torii.example.com/")
    headers = production["https"]["headers"]
    assert production["https"]["status"] == 200
    assert "max-age=31536000" in headers["Strict-Transport-Security"]
    assert "includeSubDomains" in headers["Strict-Transport-Security"]


def test_cookies_are_secure_and_out_of_reach_of_scripts(production):
    assert production["SESSION_COOKIE_SECURE"] is True
    assert production["SESSION_COOKIE_HTTPONLY"] is True
    assert production["CSRF_COOKIE_SECURE"] is True
    assert production["CSRF_COOKIE_HTTPONLY"] is True
    assert production["SESSION_COOKIE_SAMESITE"] in ("Lax", "Strict")
    assert production["SESSION_EXPIRE_AT_BROWSER_CLOSE"] is True
    csrf = production["https"]["cookies"]["csrftoken"]
    assert (
        csrf["secure"] == "True" and csrf["httponly"] == "True" and csrf["samesite"] in ("Lax", "Strict")
    ), csrf


def test_framing_sniffing_and_scripts_are_locked_down(production):
    headers = production["https"]["headers"]
    assert production["X_FRAME_OPTIONS"] == "DENY"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp


def test_hosts_endpoints_and_logins_are_closed_by_default(production):
    assert production["ALLOWED_HOSTS"] == ["torii.example.com"] and "*" not in production["ALLOWED_HOSTS"]
    assert production["bad_host"] == 400
    assert production["JUMPCLOUD_ALLOWED_BASE_URLS"] == [], (
        "no custom JumpCloud origin unless an operator lists one"
    )
    assert production["CSRF_TRUSTED_ORIGINS"] == []
    assert production["SECURE_PROXY_SSL_HEADER"] is None, (
        "trusting X-Forwarded-Proto is opt-in (BEHIND_TLS_PROXY)"
    )
    assert 3 <= production["AXES_FAILURE_LIMIT"] <= 10
    assert "redact_secrets" in production["ROOT_HANDLER_FILTERS"]


def test_production_refuses_to_start_without_its_secrets():
    # Production never falls back to the embedded database: DATABASE_URL is required too.
    for missing in ("SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "DATABASE_URL"):
        env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "FIELD_ENCRYPTION_KEYS")}
        env.setdefault("DATABASE_URL", "postgres://torii@127.0.0.1:5432/torii")
        env.update(
            {
                "TORII_ENV": "production",
                "ALLOWED_HOSTS": "torii.example.com",
                "SECRET_KEY": "p" * 50,
                "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            }
        )
        del env[missing]
        result = subprocess.run(
            [sys.executable, "manage.py", "check"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode != 0, missing
        assert missing in result.stderr, result.stderr[-2000:]
