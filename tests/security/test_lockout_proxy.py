"""Login lockouts behind the documented TLS proxy cannot be turned against everyone.

Every client reaches torii from the proxy's address. A child process starts torii with production
settings (TORII_ENV=production, BEHIND_TLS_PROXY=true, TRUSTED_PROXY_COUNT=1) on the test database
and logs in through the "proxy" (REMOTE_ADDR = the proxy, X-Forwarded-For = whatever the client
sent, then the address the proxy saw): made-up usernames from one client lock out nobody else,
guesses at the Admin's username lock only that username at the attacker's address, an attempt
while locked does not count as another failure, and a forged X-Forwarded-For does not move the
attacker to another address.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from cryptography.fernet import Fernet

from tests.processes import ROOT, child_env

CHILD = r"""
import json, django
django.setup()
from django.conf import settings
from django.test import Client
from django.test.utils import override_settings, setup_test_environment
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from accounts.roles import ADMIN, grant_role

setup_test_environment()
override_settings(STORAGES={**settings.STORAGES, "staticfiles": {
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}).enable()
PASSWORD = "correct horse battery staple"
admin = get_user_model().objects.create_user("root.admin", password=PASSWORD)
grant_role(admin, ADMIN)
PROXY = "10.0.0.2"
ATTACKER = "198.51.100.7"
ADMIN_HOME = "192.0.2.10"

def login(username, password, client_ip, forged=None):
    xff = f"{forged}, {client_ip}" if forged else client_ip
    client = Client(HTTP_HOST="torii.example.com")
    response = client.post("/login/", {"username": username, "password": password}, secure=True,
                           REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=xff)
    return response.status_code

out = {"limit": settings.AXES_FAILURE_LIMIT, "num_proxies": settings.REST_FRAMEWORK["NUM_PROXIES"]}
limit = settings.AXES_FAILURE_LIMIT
# 1. Made-up usernames, each with a forged X-Forwarded-For entry in front.
out["made_up"] = [login(f"nobody{n}", "guess", ATTACKER, forged=f"203.0.113.{n}") for n in range(limit + 3)]
out["admin_after_made_up"] = login("root.admin", PASSWORD, ADMIN_HOME)
out["admin_same_address_after_made_up"] = login("root.admin", PASSWORD, ATTACKER)
# 2. Guessing the Admin's password from the attacker's address, past the limit.
out["guesses"] = [login("root.admin", f"wrong-{n}", ATTACKER, forged=f"203.0.113.{n}") for n in range(limit + 4)]
locked = AccessAttempt.objects.get(username="root.admin", ip_address=ATTACKER)
out["failures_recorded"] = locked.failures_since_start
out["attacker_with_right_password"] = login("root.admin", PASSWORD, ATTACKER, forged="192.0.2.10")
out["admin_from_home"] = login("root.admin", PASSWORD, ADMIN_HOME)
out["addresses"] = sorted(set(AccessAttempt.objects.values_list("ip_address", flat=True)))
print("REPORT" + json.dumps(out))
"""


_REPORT: dict[str, Any] = {}


@pytest.fixture
def behind_proxy(transactional_db) -> dict[str, Any]:
    """The child's report; made once for this module (its rows are flushed after each test)."""
    if not _REPORT:
        _REPORT.update(_run_child())
    return _REPORT


def _run_child() -> dict[str, Any]:
    env = child_env(
        TORII_ENV="production",
        SECRET_KEY="k" * 10 + "Zq8!vB2#pL0@xR5$wT7%yU9^" + "s" * 30,
        FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="torii.example.com",
        BEHIND_TLS_PROXY="true",
        TRUSTED_PROXY_COUNT="1",
        DJANGO_SETTINGS_MODULE="torii.settings",
    )
    for name in ("DEBUG", "AXES_FAILURE_LIMIT"):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-c", CHILD],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("REPORT"))
    return json.loads(line[len("REPORT") :])


def test_one_client_behind_the_proxy_cannot_lock_out_everyone(behind_proxy):
    report = behind_proxy
    limit = report["limit"]
    # Made-up usernames are refused as wrong logins (200: the form again), never a lockout of others.
    assert all(code == 200 for code in report["made_up"]), report["made_up"]
    assert report["admin_after_made_up"] == 302, "the Admin logs in from elsewhere"
    assert report["admin_same_address_after_made_up"] == 302, "even from the same client address"
    # Guessing the Admin's password locks that username at the attacker's address only.
    assert report["guesses"][: limit - 1] == [200] * (limit - 1)
    assert all(code == 429 for code in report["guesses"][limit:]), report["guesses"]
    assert report["attacker_with_right_password"] == 429, "a forged X-Forwarded-For entry changes nothing"
    assert report["admin_from_home"] == 302, "the Admin is not locked out elsewhere"


def test_lockouts_key_on_the_real_client_and_locked_attempts_do_not_count(behind_proxy):
    report = behind_proxy
    assert report["addresses"] == ["198.51.100.7"], "the client the proxy saw: not the proxy, not forged"
    assert report["failures_recorded"] == report["limit"], "attempts while locked are not more failures"
    assert report["num_proxies"] == 1, "API throttles read the client address the same way"
