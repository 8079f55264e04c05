"""The read pages: what they show, that upstream data renders inert, and fixed query counts."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from integrations.models import AppUser, Connection, SyncRun
from tests.dashboard.builders import add_admin, add_daily, add_events, add_people, build_tenant
from tests.factories import SyncRunFactory

pytestmark = pytest.mark.django_db

XSS = "<script>alert(1)</script>"


def html(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def assert_csp_clean(body: str) -> None:
    """No inline script, no inline style, no htmx eval hooks: the CSP forbids them."""
    for tag in re.findall(r"<script\b[^>]*>", body):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    assert not re.search(r"\sstyle=", body)
    assert "hx-on" not in body and "javascript:" not in body.lower().replace("javascript:alert(1)</code>", "")


def badge(tone: str, text: str) -> re.Pattern[str]:
    """A status badge: its tone, an icon, and the words."""
    return re.compile(
        rf'<span class="status status-{tone}"><span class="icon [^"]*" aria-hidden="true"></span> {re.escape(text)}</span>'
    )


def queries(client, url: str, **headers) -> int:
    with CaptureQueriesContext(db) as ctx:
        response = client.get(url, **headers)
        assert response.status_code == 200
    return len(ctx.captured_queries)


# --- empty states ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["home", "integrations", "users", "applications", "insights"])
def test_empty_state_calls_admins_to_connect(admin_client, name):
    body = html(admin_client.get(reverse(f"dashboard:{name}")))
    assert "No account connected yet" in body
    assert reverse("dashboard:connect", args=["jumpcloud"]) in body
    assert_csp_clean(body)


def test_empty_state_tells_viewers_to_ask_an_admin(viewer_client):
    body = html(viewer_client.get(reverse("dashboard:users")))
    assert "Ask a torii Admin" in body
    assert reverse("dashboard:connect", args=["jumpcloud"]) not in body


# --- integrations ---------------------------------------------------------------------------------
def test_integrations_page_shows_each_connection(admin_client):
    t = build_tenant(people=3, apps=2, name="Acme Prod")
    add_events(t, t.people[1], count=2)
    SyncRunFactory(connection=t.connection, status=SyncRun.Status.FAILED, error_message="JumpCloud said 503")
    other = build_tenant(people=1, apps=1, usage=False, name="Subsidiary")
    Connection.objects.filter(pk=other.connection.pk).update(status="needs_reconnect", permission="read_only")
    body = html(admin_client.get(reverse("dashboard:integrations")))
    assert "Acme Prod" in body and "Subsidiary" in body
    # The latest run failed: the card says so (whatever the connection row says), with the cause.
    assert badge("bad", "Needs attention").search(body) and badge("bad", "Reconnect").search(body)
    assert "Read and take action" in body and "Read only" in body
    assert "2 events held" in body
    assert "Unavailable</span> — no usage events" in body
    assert "JumpCloud said 503." in body
    assert_csp_clean(body)


def test_integrations_page_query_count_does_not_grow_with_connections(admin_client):
    one = build_tenant(people=2, apps=1, name="One")
    SyncRunFactory(connection=one.connection, status=SyncRun.Status.SUCCEEDED)
    few = queries(admin_client, reverse("dashboard:integrations"))
    for n in range(6):
        t = build_tenant(people=2, apps=1, name=f"More {n}")
        SyncRunFactory(connection=t.connection, status=SyncRun.Status.RUNNING)
    assert queries(admin_client, reverse("dashboard:integrations")) == few


def test_capabilities_dialog_partial_and_page(admin_client):
    build_tenant(people=1, apps=0, usage=False, name="No DI")
    url = reverse("dashboard:capabilities")
    partial = html(admin_client.get(url, headers={"HX-Request": "true"}))
    assert "<html" not in partial and "Usage: SSO events" in partial and "No DI" in partial
    assert "No Directory Insights for this organization" in partial
    page = html(admin_client.get(url))
    assert "<html" in page and "Integration capabilities" in page


def test_gaps_are_listed_on_the_card(admin_client):
    t = build_tenant(people=1, apps=0)
    SyncRunFactory(
        connection=t.connection,
        kind="events",
        status="partial",
        streams={
            "events_directory": {
                "status": "failed",
                "error": "timeout",
                "window": ["2026-01-01T00:00:00+00:00", "2026-01-01T01:00:00+00:00"],
            }
        },
        created_at=None,
    )
    SyncRun.objects.update(created_at=SyncRun.objects.first().created_at)  # within the lookback
    body = html(admin_client.get(reverse("dashboard:integrations")))
    assert "1 gap in the usage record" in body


# --- users ----------------------------------------------------------------------------------------
def test_users_table_renders_untrusted_names_as_text(admin_client):
    t = build_tenant(people=2, apps=1)
    AppUser.objects.filter(pk=t.people[1].pk).update(display_name=XSS, username="=cmd()", email="x@y.test")
    body = html(admin_client.get(reverse("dashboard:users")))
    assert XSS not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert_csp_clean(body)


def test_users_query_count_is_the_same_for_5_and_50_rows(admin_client):
    t = build_tenant(people=5, apps=3)
    add_admin(t)
    url = reverse("dashboard:users") + "?ordering=-last_used&status=active&per_page=100"
    few = queries(admin_client, url)
    add_people(t, 45)
    body = html(admin_client.get(url))
    assert body.count('href="/users/') >= 50
    assert queries(admin_client, url) == few


def test_users_filters_via_htmx_return_only_the_results(admin_client):
    build_tenant(people=12, apps=1)
    response = admin_client.get(
        reverse("dashboard:users") + "?q=person11",
        headers={"HX-Request": "true", "HX-Target": "users-results"},
    )
    body = html(response)
    assert "<html" not in body and 'id="users-results"' in body
    assert "person11" in body and "person10" not in body
    assert "<strong>1</strong> user matches the filters" in body


def test_users_sort_headers_toggle_and_announce(admin_client):
    build_tenant(people=2, apps=1)
    body = html(admin_client.get(reverse("dashboard:users") + "?ordering=-last_used"))
    assert 'aria-sort="descending"' in body
    assert "?ordering=last_used" in body  # clicking again sorts the other way


def test_invalid_filter_is_reported(admin_client):
    build_tenant(people=2, apps=1)
    body = html(admin_client.get(reverse("dashboard:users") + "?inactive_days=-4"))
    assert "form-error" in body and "<strong>0</strong> users" in body


def test_last_used_says_unavailable_without_usage_events(admin_client):
    build_tenant(people=2, apps=1, usage=False)
    body = html(admin_client.get(reverse("dashboard:users")))
    table = body[body.index('id="users-results"') :]
    assert "not measured" in table and ">never<" not in table
    assert "inactivity cannot be measured" in body


def test_users_include_the_action_buttons_only_for_admins(admin_client, viewer_client):
    build_tenant(people=2, apps=1)
    assert "Suspend person1" in html(admin_client.get(reverse("dashboard:users")))
    assert "Suspend person1" not in html(viewer_client.get(reverse("dashboard:users")))


def test_csv_export_streams_the_filtered_set_formula_safe(admin_client):
    t = build_tenant(people=4, apps=1)
    AppUser.objects.filter(pk=t.people[2].pk).update(display_name='=HYPERLINK("http://x")', username="@evil")
    response = admin_client.get(
        reverse("dashboard:users_export") + "?q=person&ordering=username&status=active"
    )
    assert response.status_code == 200 and response.streaming
    assert response["Content-Disposition"].startswith('attachment; filename="torii-users-')
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode().lstrip("\ufeff"))))
    assert rows[0][:3] == ["name", "username", "email"]
    assert len(rows) == 5
    assert ['\'=HYPERLINK("http://x")', "'@evil"] in [r[:2] for r in rows]


def test_user_page_shows_profile_apps_and_timeline(admin_client):
    t = build_tenant(people=3, apps=2)
    person = t.people[2]
    AppUser.objects.filter(pk=person.pk).update(
        is_admin=True, role="Administrator With Billing", admin_mfa_enabled=False
    )
    add_events(t, person, count=3, app=t.apps[0])
    body = html(admin_client.get(reverse("dashboard:user_detail", args=[person.pk])))
    assert "Pat Person2" in body and "Administrator With Billing" in body
    assert "App 0" in body and "App 1" in body and "JumpCloud" in body
    # Event types in words, not JumpCloud's codes.
    assert (
        "Signed in to an SSO app</strong>: App 0" in body
        and "sso_auth" not in body
        and "bad password" in body
    )
    assert_csp_clean(body)


def test_user_page_pages_the_activity(admin_client):
    t = build_tenant(people=2, apps=1)
    person = t.people[1]
    add_events(t, person, count=30, app=t.apps[0])
    url = reverse("dashboard:user_detail", args=[person.pk])
    first = html(admin_client.get(url))
    assert first.count('class="timeline-when"') == 25 and "?activity_page=2#activity" in first
    second = html(admin_client.get(url + "?activity_page=2"))
    assert second.count('class="timeline-when"') == 5 and "?activity_page=1#activity" in second
    assert "activity_page=3" not in second
    assert html(admin_client.get(url + "?activity_page=nonsense")).count('class="timeline-when"') == 25


def test_user_page_query_count_is_bounded(admin_client):
    t = build_tenant(people=2, apps=2)
    add_events(t, t.people[1], count=2, app=t.apps[0])
    url = reverse("dashboard:user_detail", args=[t.people[1].pk])
    few = queries(admin_client, url)
    more = build_tenant(
        people=1,
        apps=20,
        connection=t.connection.__class__.objects.create(
            provider="jumpcloud", name="x", org_id="zz", capabilities={"usage_events": True}
        ),
    )
    assert more
    from tests.factories import ApplicationFactory

    for n in range(10):
        app = ApplicationFactory(connection=t.connection, label=f"Extra {n}")
        AppUser.objects.create(
            connection=t.connection,
            application=app,
            external_id=t.people[1].external_id,
            directory_user=t.people[1],
            username="person1",
        )
        add_events(t, t.people[1], count=2, app=app)
    assert queries(admin_client, url) == few


def test_user_page_404(admin_client):
    assert admin_client.get(reverse("dashboard:user_detail", args=[999999])).status_code == 404


# --- applications ---------------------------------------------------------------------------------
def test_applications_page_per_account_with_usage(admin_client):
    build_tenant(people=10, apps=2, name="Measured")
    build_tenant(people=3, apps=1, usage=False, name="Unmeasured")
    body = html(admin_client.get(reverse("dashboard:applications")))
    assert "Measured" in body and "Unmeasured" in body
    assert "Usage is unavailable for this account" in body
    assert "(directory — its users are the directory's people)" in body
    assert_csp_clean(body)


def test_applications_query_count_does_not_grow(admin_client):
    build_tenant(people=3, apps=2)
    few = queries(admin_client, reverse("dashboard:applications"))
    build_tenant(people=3, apps=30, name="Big")
    assert queries(admin_client, reverse("dashboard:applications") + "?ordering=-utilization") == few


def test_application_page_links_only_http_sso_urls(admin_client):
    t = build_tenant(people=3, apps=2)
    bad, good = t.apps
    bad.sso_url, bad.label = "javascript:alert(1)", XSS
    bad.save()
    good.sso_url = "https://sso.jumpcloud.com/saml2/app1"
    good.save()
    body = html(admin_client.get(reverse("dashboard:application_detail", args=[bad.pk])))
    assert 'href="javascript' not in body and ">javascript:alert(1)</code>" in body
    assert XSS not in body
    body = html(admin_client.get(reverse("dashboard:application_detail", args=[good.pk])))
    assert 'href="https://sso.jumpcloud.com/saml2/app1"' in body


def test_application_page_chart_and_table_alternative(admin_client):
    t = build_tenant(people=5, apps=1)
    add_daily(t, days=3)
    body = html(admin_client.get(reverse("dashboard:application_detail", args=[t.apps[0].pk]) + "?days=30"))
    match = re.search(r'<script id="app-usage-data" type="application/json">(.*?)</script>', body, re.S)
    assert match
    data = json.loads(match.group(1))
    assert len(data["labels"]) == 30 and data["datasets"][0]["label"] == "Active users"
    assert "Show the numbers as a table" in body
    assert 'data-chart="app-usage-data"' in body
    assert "vendor/chartjs/chart.umd.min.js" in body
    assert_csp_clean(body)


def test_application_page_query_count_constant(admin_client):
    t = build_tenant(people=5, apps=1)
    url = reverse("dashboard:application_detail", args=[t.apps[0].pk])
    few = queries(admin_client, url)
    add_people(t, 45)
    assert queries(admin_client, url) == few


# --- insights -------------------------------------------------------------------------------------
def test_insights_page(admin_client):
    t = build_tenant(people=10, apps=3)
    add_daily(t, days=5)
    add_admin(t, role="Help Desk", mfa=False, last_login_days=120)
    build_tenant(people=2, apps=1, usage=False, name="Unmeasured")
    body = html(admin_client.get(reverse("dashboard:insights") + "?inactive_days=30"))
    assert "Usage is unavailable for <strong>Unmeasured</strong>" in body
    assert 'id="logins-data"' in body and 'id="active-data"' in body
    assert "Top applications" in body and "Least-used applications" in body
    # Inactive people: person 0 never used anything (of the measured account only).
    assert 'name="app_user_ids"' in body and reverse("dashboard:bulk_suspend_confirm") in body
    assert "Help Desk" in body and "Without MFA (1)" in body
    assert_csp_clean(body)


def test_insights_viewer_gets_no_selection_form(viewer_client):
    t = build_tenant(people=3, apps=1)
    assert t
    body = html(viewer_client.get(reverse("dashboard:insights")))
    assert 'name="app_user_ids"' not in body


def test_insights_without_any_usage_says_so(admin_client):
    build_tenant(people=3, apps=1, usage=False)
    body = html(admin_client.get(reverse("dashboard:insights")))
    assert "No usage figures" in body and 'id="logins-data"' not in body


def test_insights_query_count_constant(admin_client):
    # More inactive people than the reclaim list shows from the start (its first page is read
    # another way when the list is shorter than a page).
    t = build_tenant(people=15, apps=2)
    add_daily(t, days=3)
    few = queries(admin_client, reverse("dashboard:insights"))
    add_people(t, 45)
    build_tenant(people=5, apps=10, name="More")
    for _ in range(5):
        add_admin(t)
    assert queries(admin_client, reverse("dashboard:insights")) == few


def test_home_overview(admin_client):
    build_tenant(people=3, apps=1, name="Acme")
    body = html(admin_client.get(reverse("dashboard:home")))
    assert "Acme" in body and "Accounts" in body


# --- every page of the navigation: no query per row ---------------------------------------------
def _nav_urls(client) -> list[str]:
    from dashboard.nav import nav_links

    return [link.url for link in nav_links("/", is_admin=True)]


def test_every_page_of_the_navigation_costs_the_same_queries_at_ten_times_the_data(admin_client):
    """The pages read the read models: the number of queries of each page of the menu (and the
    users table sorted by last use, filtered by app) does not grow with people, apps or events."""
    t = build_tenant(people=4, apps=2)
    add_events(t, t.people[1], count=3, app=t.apps[0])
    SyncRunFactory(connection=t.connection)
    urls = [*_nav_urls(admin_client), f"/users/?ordering=-last_used&app={t.apps[0].pk}"]
    small = {url: queries(admin_client, url) for url in urls}
    bigger = build_tenant(people=40, apps=20, name="Bigger")
    for person in bigger.people[:10]:
        add_events(bigger, person, count=3, app=bigger.apps[1])
    add_people(t, 36)
    SyncRunFactory(connection=bigger.connection)
    assert {url: queries(admin_client, url) for url in urls} == small


def test_applications_are_paged_a_hundred_at_a_time(admin_client):
    build_tenant(people=1, apps=120)
    first = html(admin_client.get(reverse("dashboard:applications"), {"ordering": "name"}))
    second = html(admin_client.get(reverse("dashboard:applications"), {"ordering": "name", "page": 2}))
    assert first.count('class="app-name"') == 100
    assert second.count('class="app-name"') == 21  # 120 apps and JumpCloud itself
    assert "Page 1 of 2" in first and "Page 2 of 2" in second
