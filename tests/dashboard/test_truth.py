"""Statuses, capabilities, errors and the Overview derived from the latest runs; the column
chooser; the readable audit parameters; the username suggestion."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from dashboard.tables import default_columns, table_columns_get, table_columns_set
from dashboard.templatetags.torii_dash import sentence
from integrations.models import ActionRun, SyncRun
from integrations.selectors.audit import audit_parameters
from integrations.selectors.connections import capability_tables
from integrations.selectors.health import connection_health, error_cause
from jumpcloud.usernames import suggest_username
from tests.dashboard.builders import add_admin, add_people, build_tenant
from tests.dashboard.test_pages import html, queries
from tests.factories import SyncRunFactory
from tests.read_models import refresh

pytestmark = pytest.mark.django_db

INTERNAL = "Internal error while syncing this stream (see the worker log)."


def full_run(connection, **streams):
    base = {
        key: {"label": key, "status": "succeeded"} for key in ("users", "applications", "app_assignments")
    }
    return SyncRunFactory(
        connection=connection, status="succeeded", finished_at=timezone.now(), streams={**base, **streams}
    )


def test_a_failed_stream_makes_its_capabilities_failing_until_a_run_succeeds_with_it():
    t = build_tenant(people=1, apps=1)
    full_run(t.connection, events_sso={"label": "Usage: SSO events", "status": "succeeded"})
    SyncRunFactory(
        connection=t.connection,
        kind="events",
        status="partial",
        finished_at=timezone.now(),
        streams={
            "events_sso": {"status": "failed", "error": INTERNAL, "error_ref": "ab12cd"},
            "events_directory": {"status": "succeeded"},
        },
    )
    rows = {r.capability.key: r.per_connection[0] for r in capability_tables()[0].rows}
    assert (rows["usage_sso"].tone, rows["usage_sso"].label, rows["usage_sso"].ref) == (
        "bad",
        "Failing",
        "ab12cd",
    )
    assert rows["last_used"].label == "Partly failing"  # the directory events still work
    assert rows["usage_directory"].label == "Available" and rows["users"].label == "Available"
    health = connection_health(t.connection)
    assert (health.tone, health.label) == ("warn", "Partial: 1 stream failing")
    assert health.last_complete_at is not None  # the full run, not the partial one
    # A later run where the stream succeeds clears it.
    SyncRunFactory(
        connection=t.connection,
        kind="events",
        status="succeeded",
        finished_at=timezone.now(),
        streams={"events_sso": {"status": "succeeded"}},
    )
    rows = {r.capability.key: r.per_connection[0] for r in capability_tables()[0].rows}
    assert rows["usage_sso"].label == "Available" and connection_health(t.connection).tone == "ok"


def test_a_partial_run_is_not_a_complete_sync():
    t = build_tenant(people=1, apps=0)
    SyncRunFactory(
        connection=t.connection,
        status="partial",
        finished_at=timezone.now(),
        streams={"events_sso": {"status": "failed", "error": "HTTP 503"}},
    )
    assert connection_health(t.connection).last_complete_at is None


@pytest.mark.parametrize(
    "raw, clean",
    [
        (
            "Usage: SSO events: Internal error (see the worker log).; Users: boom.",
            "Usage: SSO events: Internal error; Users: boom.",
        ),
        ("HTTP 503", "HTTP 503."),
        ("Done..", "Done."),
        ("  spaced   out ;", "spaced out."),
        ("", ""),
    ],
)
def test_sentences_never_double_their_punctuation(raw, clean):
    text = sentence(raw)
    assert ".;" not in text and ".." not in text
    if raw.startswith("Usage"):
        assert text.startswith("Usage: SSO events: Internal error (see the worker log).")
    else:
        assert text == clean


def test_the_cause_leaves_out_advice_the_admin_cannot_follow():
    assert error_cause(INTERNAL) == "torii hit an unexpected error while syncing this data."
    assert error_cause("JumpCloud said 503.;") == "JumpCloud said 503."


def test_overview_numbers_and_a_bounded_query_count(admin_client):
    t = build_tenant(people=5, apps=2, name="Acme")
    add_admin(t, mfa=False)
    add_admin(t, mfa=True)
    url = reverse("dashboard:home")
    few = queries(admin_client, url)
    body = html(admin_client.get(url))
    # Person i used app j i+j days ago: persons 1..4 are active in 30 days; person 0 never used anything.
    assert '<span class="kpi-value">4</span><span class="kpi-label">Active in 30 days</span>' in body
    assert '<span class="kpi-value">1</span><span class="kpi-label">Admins without MFA</span>' in body
    assert "?role=admin&amp;admin_mfa=off" in body
    # Inactive licences: person 0 on both apps (never), nobody else past 30 days.
    assert '<span class="kpi-value">2</span><span class="kpi-label">Inactive licences</span>' in body
    add_people(t, 40)
    build_tenant(people=3, apps=4, name="Other", usage=False)
    assert queries(admin_client, url) == few


def test_the_users_admin_mfa_filter(admin_client):
    t = build_tenant(people=2, apps=0)
    off = add_admin(t, mfa=False)
    add_admin(t, mfa=True)
    body = html(admin_client.get(reverse("dashboard:users") + "?role=admin&admin_mfa=off"))
    assert "<strong>1</strong> user matches the filters" in body and f"/users/{off.pk}/" in body


def test_columns_are_remembered_per_user(admin_client, admin_user, viewer_user):
    assert table_columns_get(user=admin_user) == default_columns()
    response = admin_client.post(
        reverse("dashboard:users_columns"), {"columns": ["email", "apps", "bogus"], "q": "x"}
    )
    assert response.status_code == 302 and response["Location"].endswith("?q=x")
    assert table_columns_get(user=admin_user) == ["email", "apps"]
    assert table_columns_get(user=viewer_user) == default_columns()  # someone else's choice
    table_columns_set(user=viewer_user, keys=[])
    assert table_columns_get(user=viewer_user) == []


def test_audit_parameters_read_as_words():
    run = ActionRun(
        parameters={
            "permission": "read_write",
            "region": "custom",
            "base_url": "",
            "org_id": "x1",
            "reason": "invalid_key",
            "app_user_id": 7,
        }
    )
    assert audit_parameters(run) == [
        ("Permission", "Read and take action"),
        ("Region", "Custom endpoint"),
        ("Organization ID", "x1"),
        ("Why", "the key was rejected"),
    ]


@pytest.mark.parametrize(
    "first, last, email, expected",
    [
        ("Zoë", "Müller", "", "zoe.muller"),
        ("Jane", "Doe", "jd@x.example", "jane.doe"),
        ("", "", "j.smith+test@x.example", "j.smithtest"),
        ("", "", "9lives@x.example", ""),
        ("", "", "", ""),
    ],
)
def test_username_suggestions(first, last, email, expected):
    assert suggest_username(first, last, email) == expected


def test_top_applications_say_nothing_was_used_instead_of_listing_zeros(admin_client):
    t = build_tenant(people=2, apps=2)
    t.connection.app_users.update(last_used_at=None)
    refresh(t.connection)
    SyncRun.objects.all().delete()
    body = html(admin_client.get(reverse("dashboard:insights")))
    assert "No SSO application was used in the last 30 days" in body
