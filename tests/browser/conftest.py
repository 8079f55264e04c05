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


# --- A seeded torii shared by a whole module ----------------------------------------------------
# Seeding (two accounts synced from the simulator) takes seconds; the page checks only read, so
# a module seeds once, signs in once per screen size, and every test opens pages in that session.
# The module's data is committed for real (the live server's thread must see it) and flushed at
# the end, so the next module starts from an empty database as transactional tests expect.
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


class _Server:
    def __init__(self, url: str) -> None:
        self.url = url


@pytest.fixture(scope="module")
def demo_site(django_db_setup, django_db_blocker):
    """(server, demo, simulator). The server is a thread of its own rather than pytest-django's
    live_server: a test using that one is made transactional, and its data flushed after every
    test."""
    from django.conf import settings
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.management import call_command
    from django.test.testcases import LiveServerThread

    from tests.browser.demo import demo_simulator, seed_demo

    sim = demo_simulator().start(host="127.0.0.1", port=0)
    allowed = settings.JUMPCLOUD_ALLOWED_BASE_URLS
    server = LiveServerThread("localhost", StaticFilesHandler, port=0)
    server.daemon = True
    try:
        with django_db_blocker.unblock():
            from django.core.cache import cache

            cache.clear()
            demo = seed_demo(sim)
        with django_db_blocker.unblock():
            server.start()
            server.is_ready.wait()
        if server.error:
            raise server.error
        yield _Server(f"http://localhost:{server.port}"), demo, sim
    finally:
        server.terminate()
        settings.JUMPCLOUD_ALLOWED_BASE_URLS = allowed
        sim.stop()
        with django_db_blocker.unblock():
            call_command("flush", interactive=False, verbosity=0)


def _signed_in_context(browser, live_server, viewport, blocker):
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    # Module fixtures run before a test opens the database: let the server thread use it.
    with blocker.unblock():
        login(page, live_server, "ada.admin")
        page.wait_for_url(f"{live_server.url}/")
    page.close()
    return context


@pytest.fixture(scope="module")
def desktop(browser, demo_site, django_db_blocker):
    context = _signed_in_context(browser, demo_site[0], DESKTOP, django_db_blocker)
    yield context
    context.close()


@pytest.fixture(scope="module")
def phone(browser, demo_site, django_db_blocker):
    context = _signed_in_context(browser, demo_site[0], PHONE, django_db_blocker)
    yield context
    context.close()
