"""API throttles: every call counts against a per-person rate (anonymous callers: per client
address), and calls that act (user actions, starting a sync) against a tighter one. A throttled
call is a 429 with Retry-After, and nothing is sent or recorded."""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings as django_settings
from django.test import RequestFactory
from rest_framework.test import APIClient

from api.throttles import AnonThrottle
from integrations.models import ActionRun, SyncRun
from tests.factories import AdminFactory, ConnectionFactory, api_token_for

pytestmark = [pytest.mark.django_db]


def rates(settings, **changes: str) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **changes},
    }


def test_every_api_call_is_throttled_per_person_and_per_anonymous_address():
    classes = django_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"]
    assert "api.throttles.AnonThrottle" in classes and "api.throttles.UserThrottle" in classes
    rates_set = django_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    assert {"anon", "user", "actions", "exports"} <= set(rates_set)


def test_a_person_over_the_rate_gets_429_and_others_do_not(settings, admin_api, viewer_api):
    rates(settings, user="5/hour")
    codes = [admin_api.get("/api/v1/users/").status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    refused = admin_api.get("/api/v1/connections/")
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert viewer_api.get("/api/v1/users/").status_code == 200


def test_actions_have_a_tighter_rate_than_reads(settings, admin_user):
    rates(settings, actions="2/hour", user="100/hour")
    connection = ConnectionFactory(permission="read_write")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {api_token_for(admin_user)}")

    def act():
        return api.post(
            "/api/v1/actions/suspend-user/",
            {"user": 999999},  # no such user: refused as invalid, nothing sent
            format="json",
            HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        )

    assert [act().status_code for _ in range(2)] == [400, 400]
    assert act().status_code == 429
    sync = api.post("/api/v1/sync-runs/", {"connection": connection.pk}, format="json")
    assert sync.status_code == 429, "starting a sync counts as an action"
    assert not SyncRun.objects.exists() and not ActionRun.objects.exists()
    assert api.get("/api/v1/actions/").status_code == 200, "reading goes on"
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Token {api_token_for(AdminFactory(username='other.admin'))}")
    assert other.post("/api/v1/sync-runs/", {"connection": connection.pk}, format="json").status_code == 202


def test_dashboard_actions_count_against_the_actions_rate(settings, admin_client):
    from django.urls import reverse

    rates(settings, actions="1/hour")
    url = reverse("dashboard:user_create_submit")
    assert admin_client.post(url, {"connection": "x"}).status_code == 400
    refused = admin_client.post(url, {"connection": "x"})
    assert refused.status_code == 429 and "Try again" in refused.content.decode()


def test_anonymous_callers_are_counted_per_real_client_address_behind_the_proxy(settings):
    """With TRUSTED_PROXY_COUNT=1 the client is the last X-Forwarded-For entry (the proxy's own
    address is REMOTE_ADDR): forging entries in front of it does not make a new caller."""
    rates(settings, anon="3/hour")
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    factory = RequestFactory()

    def allowed(client_ip: str, forged: str) -> bool:
        request = factory.get(
            "/api/v1/users/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=f"{forged}, {client_ip}"
        )
        from django.contrib.auth.models import AnonymousUser

        request.user = AnonymousUser()
        return AnonThrottle().allow_request(request, None)

    assert [allowed("198.51.100.7", f"203.0.113.{n}") for n in range(4)] == [True, True, True, False]
    assert allowed("198.51.100.8", "203.0.113.1"), "another client behind the same proxy"
