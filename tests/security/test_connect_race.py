"""The connect-attempt limit holds under concurrent requests, whatever the cache backend.

Each connect attempt asks JumpCloud about a candidate key, so the limit (CONNECT_ATTEMPTS_PER_HOUR)
is what keeps the form from being a key-guessing oracle. Counted with a cache read-modify-write
(the file cache of development), 40 concurrent POSTs once let 27 keys through a limit of 10. Here
40 threads post at once to a live server running on the file cache; the simulator counts the keys
that reached "JumpCloud".
"""

from __future__ import annotations

import re
import threading
import time

import pytest
import requests
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse

from tests.factories import AdminFactory

ATTEMPTS = 40


@pytest.mark.django_db(transaction=True)
def test_forty_concurrent_connect_attempts_reach_jumpcloud_at_most_ten_times(
    live_server, allow_sim, settings, tmp_path
):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path / "cache"),
        }
    }
    settings.CONNECT_ATTEMPTS_PER_HOUR = 10
    admin = AdminFactory(username="racing.admin")
    browser = Client()
    browser.force_login(admin)
    cookie = browser.cookies[django_settings.SESSION_COOKIE_NAME].value
    connect_url = live_server.url + reverse("dashboard:connect", args=["jumpcloud"])

    session = requests.Session()
    session.cookies.set(django_settings.SESSION_COOKIE_NAME, cookie)
    page = session.get(connect_url, timeout=30)
    assert page.status_code == 200
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    allow_sim.clear_requests()

    barrier = threading.Barrier(ATTEMPTS)
    codes: list[int] = []

    def attempt(n: int) -> None:
        s = requests.Session()
        s.cookies.update(session.cookies)
        barrier.wait(timeout=60)
        for _ in range(20):
            try:
                response = s.post(
                    connect_url,
                    data={
                        "csrfmiddlewaretoken": csrf,
                        "api_key": "0" * 36 + f"{n:04d}",  # a wrong key each time, told apart by its end
                        "permission": "read_only",
                        "region": "us",
                        "base_url": allow_sim.base_url,
                        "name": "",
                    },
                    headers={"Referer": connect_url},
                    timeout=120,
                )
            except requests.ConnectionError:
                # The test server's listen queue is short: a refused connection never reached
                # torii, so knock again.
                time.sleep(0.05)
                continue
            codes.append(response.status_code)
            return

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(ATTEMPTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(codes) == ATTEMPTS
    keys_seen = {r.headers.get("x-api-key") for r in allow_sim.requests}
    assert 1 <= len(keys_seen) <= 10, f"{len(keys_seen)} candidate keys reached JumpCloud"
    assert codes.count(429) >= ATTEMPTS - 10, sorted(codes)
    assert set(codes) <= {400, 429}, sorted(codes)
