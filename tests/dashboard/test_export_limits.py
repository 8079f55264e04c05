"""CSV exports cannot hold the web workers: at most TORII_EXPORTS_PER_USER downloads per person and
TORII_EXPORTS_TOTAL in all stream at once; the next one is refused at once with 429 and
Retry-After (it never waits inside a worker), and a slot comes back when a download ends. Pages
such as the login form are never behind an export.

The Django test client keeps a streamed response open until its body is read: an unread download
is a download still streaming.
"""

from __future__ import annotations

import pytest
from django.core.signals import request_finished
from django.db import close_old_connections
from django.test import Client
from django.urls import reverse

from accounts.models import ConcurrencySlot
from tests.dashboard.builders import build_tenant
from tests.factories import ViewerFactory
from tests.security.support import body_of

pytestmark = [pytest.mark.django_db]


def viewer(name: str) -> Client:
    client = Client()
    client.force_login(ViewerFactory(username=name))
    return client


@pytest.fixture
def tenant():
    return build_tenant(people=30, apps=2)


def test_five_concurrent_exports_cannot_hold_the_workers(settings, tenant):
    settings.TORII_EXPORTS_PER_USER = 1
    settings.TORII_EXPORTS_TOTAL = 2
    url = reverse("dashboard:users_export")
    people = [viewer(f"exporter{n}") for n in range(5)]
    responses = [c.get(url) for c in people]  # five people start a download each, none finished
    codes = [r.status_code for r in responses]
    assert codes.count(200) == 2 and codes.count(429) == 3, codes
    for refused in (r for r in responses if r.status_code == 429):
        assert refused["Retry-After"].isdigit()
        assert "busy with other exports" in refused.content.decode()
    # Meanwhile an anonymous visitor gets the login form, and a viewer the pages.
    assert Client().get(reverse("login")).status_code == 200
    assert people[4].get(reverse("dashboard:users")).status_code == 200
    # One download ends: its slot is free again.
    first = next(r for r in responses if r.status_code == 200)
    assert "person1" in body_of(first)
    waiting = people[codes.index(429)]
    retry = waiting.get(url)
    assert retry.status_code == 200
    for response in (retry, *[r for r in responses if r.status_code == 200 and r is not first]):
        body_of(response)
    assert not ConcurrencySlot.objects.exists(), "every finished download gave its slot back"


def test_one_person_streams_one_export_at_a_time(settings, tenant):
    settings.TORII_EXPORTS_PER_USER = 1
    settings.TORII_EXPORTS_TOTAL = 5
    me = viewer("eager.exporter")
    first = me.get(reverse("dashboard:users_export"))
    assert first.status_code == 200
    second = me.get(reverse("dashboard:audit_log_csv"))
    assert second.status_code == 429 and "previous export" in second.content.decode()
    assert viewer("someone.else").get(reverse("dashboard:audit_log_csv")).status_code == 200
    body_of(first)
    assert me.get(reverse("dashboard:audit_log_csv")).status_code == 200


def test_a_download_broken_off_frees_its_slot(settings, tenant):
    settings.TORII_EXPORTS_TOTAL = 1
    me = viewer("impatient")
    response = me.get(reverse("dashboard:users_export"))
    assert ConcurrencySlot.objects.count() == 2
    # The browser went away before the end: the server closes the response. (As the test client
    # does, without request_finished closing the test's database connection.)
    request_finished.disconnect(close_old_connections)
    try:
        response.close()
    finally:
        request_finished.connect(close_old_connections)
    assert not ConcurrencySlot.objects.exists()
    assert viewer("next.in.line").get(reverse("dashboard:users_export")).status_code == 200


def test_a_slot_held_by_a_dead_process_expires(settings, tenant):
    from datetime import timedelta

    from django.utils import timezone

    settings.TORII_EXPORTS_TOTAL = 1
    viewer("crashed").get(reverse("dashboard:users_export"))  # never read, never closed
    assert viewer("waiting").get(reverse("dashboard:users_export")).status_code == 429
    ConcurrencySlot.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert viewer("waiting2").get(reverse("dashboard:users_export")).status_code == 200


def test_exports_are_rate_limited_per_person(settings, tenant):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "exports": "3/hour"},
    }
    me = viewer("busy.bee")
    for _ in range(3):
        assert body_of(me.get(reverse("dashboard:users_export")))
    refused = me.get(reverse("dashboard:audit_log_csv"))
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert viewer("fresh.bee").get(reverse("dashboard:users_export")).status_code == 200
