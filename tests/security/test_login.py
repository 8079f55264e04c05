"""Property 3: logging in (and connecting keys) is hard to abuse.

django-axes locks a username at one client address after AXES_FAILURE_LIMIT failures (made-up
usernames lock out nobody; attempts while locked do not count; behind a proxy:
test_lockout_proxy.py); `next` never leaves the site; sessions end at browser close and after
SESSION_COOKIE_AGE on the server, and are renewed at login; the connect form is rate limited per
user, so it cannot be used to guess keys.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.factories import AdminFactory

pytestmark = [pytest.mark.django_db]

PASSWORD = "correct horse battery staple"


def login(client: Client, username: str, password: str, address: str = "203.0.113.10", **data: str):
    return client.post(
        reverse("login"), {"username": username, "password": password, **data}, REMOTE_ADDR=address
    )


def logged_in(client: Client) -> bool:
    return client.get(reverse("dashboard:home")).status_code == 200


def is_lockout(response) -> bool:
    return response.status_code in (403, 429) and "locked" in response.content.decode().lower()


# --- lockout ---------------------------------------------------------------------------------------
def test_a_username_is_locked_at_the_address_after_the_failure_limit():
    AdminFactory(username="ann")
    limit = settings.AXES_FAILURE_LIMIT
    assert 3 <= limit <= 10
    for n in range(limit):
        response = login(Client(), "ann", f"guess-{n}", address="198.51.100.1")
        assert response.status_code in (200, 429), response.status_code
    client = Client()
    response = login(client, "ann", PASSWORD, address="198.51.100.1")
    assert is_lockout(response), response.status_code
    assert not logged_in(client), "the right password does not open a locked username at that address"
    # The lock is on ann at that address: ann elsewhere, and other people there, are not affected.
    elsewhere = Client()
    assert login(elsewhere, "ann", PASSWORD, address="198.51.100.200").status_code == 302
    assert logged_in(elsewhere)
    AdminFactory(username="bob")
    other = Client()
    assert login(other, "bob", PASSWORD, address="198.51.100.1").status_code == 302


def test_made_up_usernames_from_one_address_lock_out_nobody_else():
    """The outside probe's finding: 5 failures with made-up usernames from one address (all
    clients behind a proxy share one) locked out everyone, the only Admin included."""
    AdminFactory(username="carol")
    shared = "192.0.2.66"
    for n in range(settings.AXES_FAILURE_LIMIT + 3):
        response = login(Client(), f"user{n}", "Winter2024!", address=shared)
        assert response.status_code == 200, response.status_code
    client = Client()
    assert login(client, "carol", PASSWORD, address=shared).status_code == 302
    assert logged_in(client)


def test_an_attempt_while_locked_is_not_another_failure():
    from axes.models import AccessAttempt

    AdminFactory(username="cy")
    limit = settings.AXES_FAILURE_LIMIT
    for n in range(limit):
        login(Client(), "cy", f"nope-{n}", address="203.0.113.44")
    attempt = AccessAttempt.objects.get(username="cy", ip_address="203.0.113.44")
    assert attempt.failures_since_start == limit
    locked_at = attempt.attempt_time
    for n in range(3):
        assert is_lockout(login(Client(), "cy", f"more-{n}", address="203.0.113.44"))
    attempt.refresh_from_db()
    assert attempt.failures_since_start == limit, "refused attempts are not counted"
    assert attempt.attempt_time == locked_at, "and do not restart the cool-off"


def test_failures_below_the_limit_do_not_lock_and_the_lock_lifts_after_the_cool_off():
    from axes.models import AccessAttempt

    AdminFactory(username="dave")
    for n in range(settings.AXES_FAILURE_LIMIT - 1):
        login(Client(), "dave", f"nope-{n}", address="203.0.113.5")
    assert login(Client(), "dave", PASSWORD, address="203.0.113.5").status_code == 302
    # Reset on success: the count starts again.
    for n in range(settings.AXES_FAILURE_LIMIT):
        login(Client(), "dave", f"nope-{n}", address="203.0.113.5")
    assert is_lockout(login(Client(), "dave", PASSWORD, address="203.0.113.5"))
    assert timedelta(minutes=5) <= settings.AXES_COOLOFF_TIME
    AccessAttempt.objects.update(
        attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    )
    assert login(Client(), "dave", PASSWORD, address="203.0.113.5").status_code == 302


def test_failed_logins_record_no_password():
    from axes.models import AccessAttempt, AccessFailureLog

    AdminFactory(username="erin")
    login(Client(), "erin", "my-secret-guess-123", address="203.0.113.20")
    stored = " ".join(str(v) for row in AccessAttempt.objects.values() for v in row.values())
    stored += " ".join(str(v) for row in AccessFailureLog.objects.values() for v in row.values())
    assert "erin" in stored
    assert "my-secret-guess-123" not in stored


# --- next ------------------------------------------------------------------------------------------
OFF_SITE = [
    "//evil.example",
    "https://evil.example",
    "http://evil.example/login/",
    "/\\evil.example",
    "\\\\evil.example",
    "https:evil.example",
    "///evil.example",
    " //evil.example",
    "/\t/evil.example",
    "\t//evil.example",
    "javascript:alert(1)",
    "//evil.example@testserver",
    "https://testserver.evil.example/",
]


def _stays_on_site(location: str) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(location.strip())
    return (
        not parts.scheme
        and not parts.netloc
        and location.startswith("/")
        and not location.startswith(("//", "/\\"))
        and "evil" not in location
    )


@pytest.mark.parametrize("target", OFF_SITE)
def test_next_cannot_send_anyone_off_site(target):
    AdminFactory(username="fay")
    client = Client()
    page = client.get(reverse("login"), {"next": target})
    assert "evil" not in page.content.decode() and "javascript:" not in page.content.decode()
    response = login(client, "fay", PASSWORD, next=target)
    assert response.status_code == 302
    assert _stays_on_site(response["Location"]), response["Location"]
    # Already logged in, the login page redirects too: still on the site.
    again = client.get(reverse("login"), {"next": target})
    assert again.status_code == 302 and _stays_on_site(again["Location"]), again["Location"]
    # And logging out.
    out = client.post(reverse("logout") + "?next=" + target, {"next": target})
    assert out.status_code == 302 and _stays_on_site(out["Location"]), out["Location"]


def test_next_on_the_site_is_honoured():
    AdminFactory(username="gus")
    response = login(Client(), "gus", PASSWORD, next="/users/?q=x")
    assert response["Location"] == "/users/?q=x"


# --- sessions --------------------------------------------------------------------------------------
def test_sessions_end_at_browser_close_and_after_their_age_on_the_server():
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE is True
    assert 0 < settings.SESSION_COOKIE_AGE <= 12 * 3600
    assert settings.SESSION_COOKIE_HTTPONLY is True
    assert settings.SESSION_COOKIE_SAMESITE in ("Lax", "Strict")
    AdminFactory(username="hal")
    client = Client()
    response = login(client, "hal", PASSWORD)
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert not cookie["max-age"] and not cookie["expires"], (
        "a browser-session cookie (no Max-Age, no Expires)"
    )
    assert cookie["httponly"]
    session = Session.objects.get(session_key=cookie.value)
    lifetime = session.expire_date - timezone.now()
    assert timedelta(0) < lifetime <= timedelta(seconds=settings.SESSION_COOKIE_AGE)
    assert logged_in(client)
    Session.objects.filter(pk=session.pk).update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get(reverse("dashboard:home"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_login_renews_the_session_and_logout_ends_it_on_the_server():
    AdminFactory(username="ivy")
    client = Client()
    client.get(reverse("login"))
    session = client.session
    session["planted"] = "by an attacker"  # a session id fixed before login must not survive it
    session.save()
    before = session.session_key
    login(client, "ivy", PASSWORD)
    after = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert after != before
    assert not Session.objects.filter(session_key=before).exists()
    client.post(reverse("logout"))
    replay = Client()
    replay.cookies[settings.SESSION_COOKIE_NAME] = after  # a stolen cookie, after logout
    response = replay.get(reverse("dashboard:home"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


# --- connect attempts --------------------------------------------------------------------------
def _connect(client: Client, sim, key: str):
    return client.post(
        reverse("dashboard:connect", args=["jumpcloud"]),
        {
            "api_key": key,
            "permission": "read_only",
            "region": "us",
            "base_url": sim.base_url,
            "name": "",
        },
    )


def test_the_connect_form_is_rate_limited_per_user(allow_sim, admin_client, settings):
    settings.CONNECT_ATTEMPTS_PER_HOUR = 4
    for n in range(4):
        # Each attempt asks JumpCloud about a guessed key.
        response = _connect(admin_client, allow_sim, f"{n:040x}")
        assert response.status_code == 400
        assert "rejected" in response.content.decode()
    asked = len(allow_sim.requests)
    response = _connect(admin_client, allow_sim, allow_sim.keys["admin"])  # even the right key now waits
    assert response.status_code == 429
    assert "Too many connection attempts" in response.content.decode()
    assert len(allow_sim.requests) == asked, "a refused attempt sends nothing to JumpCloud"
    # Rotating a key is a connect attempt too (same counter).
    from tests.factories import ConnectionFactory

    connection = ConnectionFactory(base_url=allow_sim.base_url, region="custom")
    response = admin_client.post(
        reverse("dashboard:connection_rotate_key", args=[connection.pk]), {"api_key": allow_sim.keys["admin"]}
    )
    assert response.status_code == 429
    assert len(allow_sim.requests) == asked
    # Another Admin has their own allowance.
    other = Client()
    other.force_login(AdminFactory(username="jan"))
    assert _connect(other, allow_sim, allow_sim.keys["admin"]).status_code == 302
