"""Every page of torii, at 1440×900 and 390×844, against a seeded demo: no serious or critical
accessibility violation (axe-core), nothing blocked by the Content-Security-Policy, no page wider
than the screen, and the icons drawn from files (no font glyphs)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.demo import PAGES
from tests.browser.test_dashboard import run_axe

# django_db: so the test database is set up when this module runs alone (each test only reads,
# in a transaction rolled back at its end; the seeded data was committed before).
pytestmark = [pytest.mark.browser, pytest.mark.django_db]


@pytest.fixture(scope="module", autouse=True)
def _site(demo_site, desktop, phone):
    """Seed and sign in before any test opens its database transaction."""


SIZES = ("desktop", "phone")
# The outermost elements that stick out of the screen (to say which one, when a page is too wide).
WIDEST = """(w) => [...document.querySelectorAll('main *')]
  .filter(e => e.getBoundingClientRect().right > w + 1 && !(e.parentElement && e.parentElement.getBoundingClientRect().right > w + 1))
  .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right) + ' ' + ((e.querySelector('caption') || {}).textContent || '').slice(0, 40))"""


def open_page(context, demo_site, item) -> tuple[Page, list[str]]:
    live, demo, _ = demo_site
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(live.url + item.path(demo))
    page.wait_for_selector(item.ready)
    page.wait_for_load_state("networkidle")
    return page, problems


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("item", PAGES, ids=[p.name for p in PAGES])
def test_page_is_accessible_and_fits(request, demo_site, item, size):
    context = request.getfixturevalue(size)
    page, problems = open_page(context, demo_site, item)
    try:
        violations = run_axe(page)
        assert violations == [], violations
        # Nothing refused by the CSP, no script error (a 404 page logs its own 404: not a problem).
        assert [p for p in problems if "404" not in p] == []
        if item.name != "api-docs":
            width = page.evaluate("() => document.documentElement.scrollWidth")
            viewport = page.viewport_size["width"]
            wide = page.evaluate(WIDEST, viewport) if width > viewport else []
            assert width <= viewport, f"{item.name} is {width} px wide on a {viewport} px screen: {wide}"
    finally:
        page.close()


def test_login_page_is_accessible_at_both_sizes(browser, demo_site):
    live = demo_site[0]
    for viewport in ({"width": 1440, "height": 900}, {"width": 390, "height": 844}):
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        page.goto(f"{live.url}/login/")
        assert run_axe(page) == []
        assert page.evaluate("() => document.documentElement.scrollWidth") <= viewport["width"]
        context.close()


def test_icons_are_files_not_glyphs_and_there_is_a_favicon(desktop, demo_site):
    live = demo_site[0]
    page = desktop.new_page()
    page.goto(f"{live.url}/integrations/")
    # The logo is an image that loaded; every icon is a CSS mask over an SVG from lucide-static.
    assert page.evaluate("() => document.querySelector('.brand img').naturalWidth") > 0
    masks = page.evaluate(
        "() => [...document.querySelectorAll('.icon')].map(i => getComputedStyle(i).maskImage || getComputedStyle(i).webkitMaskImage)"
    )
    assert masks and all("/static/vendor/lucide/" in m for m in masks), masks[:3]
    for symbol in ("⛩", "⧗", "⟳", "✔", "✖", "▲"):
        assert symbol not in page.content()
    icon = page.request.get(f"{live.url}/favicon.ico")
    assert icon.ok and "svg" in icon.headers["content-type"]
    svg = page.request.get(f"{live.url}/static/vendor/lucide/circle-check.svg")
    assert svg.ok
    page.close()


def test_swagger_ui_renders_under_the_csp(desktop, demo_site):
    live = demo_site[0]
    page = desktop.new_page()
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
    response = page.goto(f"{live.url}/api/docs/")
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("torii API")
    expect(page.locator(".opblock").first).to_be_visible()
    assert blocked == []
    page.close()


@pytest.mark.parametrize("path", ["/integrations/", "/users/", "user"])
def test_phone_layout(phone, demo_site, path):
    live, demo, _ = demo_site
    page = phone.new_page()
    page.goto(live.url + (f"/users/{demo.person.pk}/" if path == "user" else path))
    page.wait_for_load_state("networkidle")
    header = page.locator(".site-header").bounding_box()
    assert header["height"] <= 80, header
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    # The menu folds behind one button and opens on demand.
    nav = page.get_by_role("navigation", name="Main")
    expect(nav).to_be_hidden()
    page.get_by_role("button", name="Menu").click()
    expect(nav.get_by_role("link", name="Users")).to_be_visible()
    if path == "/users/":
        # The table starts above the fold: the first person is on the first screen.
        first = page.locator("#users-results tbody tr").first.bounding_box()
        page.get_by_role("button", name="Menu").click()
        first = page.locator("#users-results tbody tr").first.bounding_box()
        assert first["y"] < 844, first
    page.close()
