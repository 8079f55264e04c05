"""Shared fixtures: torii users per role, Celery eager by default, the browser harness."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from torii.celery import app as celery_app

# Property tests check correctness, never speed: no per-example deadline and no "too slow" health
# check, both of which measure wall-clock time and fail on a loaded machine.
settings.register_profile("torii", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("torii")

CHROMIUM = os.environ.get("TORII_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(autouse=True, scope="session")
def _celery_eager():
    """Unit tests run tasks in-process; integration tests start a real worker and turn this off."""
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield


@pytest.fixture(autouse=True, scope="session")
def _close_request_budget(django_db_setup, django_db_blocker):
    """The request budget holds a database session of its own: close it before the test database
    is dropped."""
    yield
    from integrations.sync import budget

    budget.close()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit counters and the like live in the cache (Redis in CI): start every test clean."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def admin_user(db):
    from tests.factories import AdminFactory

    return AdminFactory(username="alice.admin")


@pytest.fixture
def viewer_user(db):
    from tests.factories import ViewerFactory

    return ViewerFactory(username="victor.viewer")


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def viewer_client(client, viewer_user):
    from django.test import Client

    c = Client()
    c.force_login(viewer_user)
    return c


# --- Browser harness: Debian's chromium driven by Playwright (no browser download) -------------
@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"{CHROMIUM} is missing: browser tests need Debian's chromium (apt-get install chromium); "
            "`make test` installs it when run as root."
        )
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1280, "height": 900}}


@pytest.fixture
def page(page):
    """Waits sized for a loaded 2-core machine: a wait is synchronisation, never a speed check.
    (Playwright's defaults, 5 s for expect and 30 s for actions, fail on a busy machine.)"""
    from playwright.sync_api import expect

    expect.set_options(timeout=60_000)
    page.set_default_timeout(60_000)
    page.set_default_navigation_timeout(60_000)
    return page


@pytest.fixture
def celery_not_eager():
    """Send tasks through the real broker (for tests with a real worker)."""
    celery_app.conf.task_always_eager = False
    yield
    celery_app.conf.task_always_eager = True
