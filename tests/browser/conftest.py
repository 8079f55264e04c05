"""Browser fixtures: a live server with real data, and logging in through the real login page."""

from __future__ import annotations

import os

import pytest

# Playwright's sync API keeps an event loop running in the test thread, which makes Django's ORM
# refuse the test's own queries (SynchronousOnlyOperation). The live server runs in its own thread.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from tests.factories import AdminFactory, ViewerFactory

PASSWORD = "correct horse battery staple"


@pytest.fixture
def live(live_server, transactional_db):
    return live_server


def login(page, live_server, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


@pytest.fixture
def browser_admin(live):
    return AdminFactory(username="ada.admin")


@pytest.fixture
def browser_viewer(live):
    return ViewerFactory(username="vera.viewer")


@pytest.fixture
def admin_page(page, live, browser_admin):
    login(page, live, browser_admin.username)
    page.wait_for_url(f"{live.url}/")
    return page


@pytest.fixture
def viewer_page(page, live, browser_viewer):
    login(page, live, browser_viewer.username)
    page.wait_for_url(f"{live.url}/")
    return page
