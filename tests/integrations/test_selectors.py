"""Selectors: what the dashboard reads, and that reading it costs a fixed number of queries."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations.filters import AppUserFilter
from integrations.models import AppUser, Connection, DailyUsage, SyncRun
from integrations.selectors import applications as app_sel
from integrations.selectors import connections as conn_sel
from integrations.selectors import usage as usage_sel
from integrations.selectors import users as user_sel
from tests.dashboard.builders import add_admin, add_daily, add_events, add_people, ago, build_tenant
from tests.factories import SyncRunFactory, UsageEventFactory
from tests.read_models import refresh

pytestmark = pytest.mark.django_db


def _count_queries(fn) -> int:
    with CaptureQueriesContext(db) as ctx:
        fn()
    return len(ctx.captured_queries)


# --- people ---------------------------------------------------------------------------------------
def test_people_are_the_directory_rows_with_apps_count_and_latest_use_anywhere():
    t = build_tenant(people=3, apps=2)
    rows = {u.username: u for u in user_sel.directory_user_search({}).page.object_list}
    assert set(rows) == {"person0", "person1", "person2"}
    assert rows["person1"].apps_count == 2
    # person 1: JumpCloud 1 day ago, apps 1 and 2 days ago → the latest is 1 day ago.
    assert abs((rows["person1"].last_used_any - ago(1)).total_seconds()) < 5
    assert rows["person0"].last_used_any is None
    assert all(u.application_id == t.directory.pk for u in rows.values())


def test_latest_use_anywhere_counts_app_use_newer_than_the_portal_login():
    t = build_tenant(people=2, apps=1)
    person = t.people[1]
    AppUser.objects.filter(directory_user=person).update(last_used_at=ago(0.1))
    refresh(t.connection)
    row = user_sel.directory_user_get(person.pk)
    assert abs((row.last_used_any - ago(0.1)).total_seconds()) < 5


def test_people_search_sort_and_paginate_in_a_fixed_number_of_queries():
    t = build_tenant(people=5, apps=3)
    params = {"ordering": "-last_used", "status": "active", "q": "pat"}

    def render():
        result = user_sel.directory_user_search(params, per_page=25)
        return [(u.apps_count, u.last_used_any, u.connection.name) for u in result.page.object_list]

    small = _count_queries(render)
    add_people(t, 45)
    assert len(render()) == 25
    assert _count_queries(render) == small


def test_people_sorted_by_last_use_put_never_last_when_newest_first():
    build_tenant(people=4, apps=1)
    newest_first = [u.username for u in user_sel.directory_user_search({"ordering": "-last_used"}).page]
    assert newest_first == ["person1", "person2", "person3", "person0"]
    oldest_first = [u.username for u in user_sel.directory_user_search({"ordering": "last_used"}).page]
    assert oldest_first == ["person0", "person3", "person2", "person1"]


def test_user_page_reads_are_bounded():
    t = build_tenant(people=2, apps=5)
    person = t.people[1]
    add_events(t, person, count=5)

    def read():
        p = user_sel.directory_user_get(person.pk)
        memberships = user_sel.directory_user_memberships(p)
        events = user_sel.directory_user_events(p)
        user_sel.application_names(p.connection_id, {e.application_external_id for e in events})
        return memberships, events

    memberships, events = read()
    assert memberships[0].is_directory and len(memberships) == 6
    # Most recently used app first after JumpCloud itself.
    assert memberships[1].application == t.apps[0]
    assert len(events) == 5 and events[0].occurred_at >= events[-1].occurred_at
    assert _count_queries(read) <= 4


def test_user_events_include_the_administrator_identity():
    t = build_tenant(people=1, apps=0)
    admin = add_admin(t, kind=AppUser.Kind.USER)
    UsageEventFactory(
        connection=t.connection, actor_external_id=admin.admin_external_id, event_type="admin_login_attempt"
    )
    UsageEventFactory(connection=t.connection, actor_external_id=admin.external_id)
    UsageEventFactory(connection=t.connection, actor_external_id="someone-else")
    assert {e.event_type for e in user_sel.directory_user_events(admin)} == {
        "admin_login_attempt",
        "user_login_attempt",
    }


def test_csv_rows_stream_every_filtered_person_and_say_unavailable_without_usage():
    build_tenant(people=3, apps=1, name="Measured")
    build_tenant(people=2, apps=1, usage=False, name="Unmeasured")
    rows = list(user_sel.directory_user_export_rows({"ordering": "username"}))
    assert len(rows) == 5
    header = user_sel.EXPORT_HEADER
    by_account = {}
    for r in rows:
        by_account.setdefault(r[header.index("account")], []).append(r)
    assert {r[header.index("last_used_anywhere")] for r in by_account["Unmeasured"]} == {"unavailable"}
    assert any(r[header.index("last_used_anywhere")] for r in by_account["Measured"])


# --- applications ---------------------------------------------------------------------------------
def _app_stats() -> dict[int, app_sel.AppStats]:
    rows = app_sel.application_rows(connections=list(Connection.objects.all()), include_removed=True)
    return {r.application.pk: r.stats for r in rows}


def test_application_stats_count_assigned_and_active_per_window():
    t = build_tenant(people=10, apps=1)
    # App 0: person i used it i days ago (person 0 never) → active in 7 days: persons 1..6 (person 7
    # is exactly on the edge, and a moment has passed since).
    stats = _app_stats()
    s = stats[t.apps[0].pk]
    assert s.assigned == 10
    assert s.active_7 == 6 and s.active_30 == 9 and s.active_90 == 9
    directory = stats[t.directory.pk]
    assert directory.assigned == 10 and directory.active_7 == 6


def test_removed_assignments_are_not_counted():
    t = build_tenant(people=3, apps=1)
    AppUser.objects.filter(application=t.apps[0], directory_user=t.people[1]).update(
        removed_at=timezone.now(), status="removed"
    )
    assert _app_stats()[t.apps[0].pk].assigned == 3  # until the read models are refreshed
    refresh(t.connection)
    assert _app_stats()[t.apps[0].pk].assigned == 2


def test_application_rows_say_when_usage_is_not_measured():
    build_tenant(people=2, apps=2, usage=False)
    rows = app_sel.application_rows(connections=list(Connection.objects.all()))
    assert len(rows) == 3
    assert rows[0].application.kind == "directory"  # JumpCloud first
    assert all(r.utilization is None and not r.usage_available for r in rows)


def test_application_rows_cost_the_same_for_few_and_many_apps():
    build_tenant(people=3, apps=2)
    conns = list(Connection.objects.all())
    small = _count_queries(lambda: app_sel.application_rows(connections=conns))
    build_tenant(people=3, apps=20, name="Other")
    conns = list(Connection.objects.all())
    assert _count_queries(lambda: app_sel.application_rows(connections=conns)) == small


def test_application_users_filter_inactive_and_sort_by_last_use():
    t = build_tenant(people=10, apps=1)
    app = app_sel.application_get(t.apps[0].pk)
    result = app_sel.application_users(app, {"inactive_days": "5"})
    # Never used (person 0) and persons 5..9 (used 5+ days ago).
    assert result.paginator.count == 6
    assert [u.directory_user.username for u in result.page][:1] == ["person5"]


def test_daily_usage_is_none_before_usage_data_starts_and_zero_after():
    t = build_tenant(people=2, apps=1)
    add_daily(t, days=2)
    DailyUsage.objects.create(
        connection=t.connection,
        application=t.directory,
        day=timezone.localdate() - dt.timedelta(days=5),
        successes=1,
    )
    app = app_sel.application_get(t.apps[0].pk)
    days = app_sel.application_daily_usage(app, days=10)
    assert len(days) == 10
    assert days[0].active_users is None  # 9 days ago: before torii's usage data starts
    assert days[-1].active_users == 2  # today: measured
    assert days[-4].active_users == 0  # 3 days ago: covered, no usage


def test_daily_usage_is_all_none_without_usage_events():
    t = build_tenant(people=1, apps=1, usage=False)
    days = app_sel.application_daily_usage(app_sel.application_get(t.apps[0].pk), days=5)
    assert all(d.successes is None for d in days)


# --- insights -------------------------------------------------------------------------------------
def test_logins_per_day_split_directory_and_sso_from_the_rollup():
    t = build_tenant(people=2, apps=2)
    add_daily(t, days=3)
    build_tenant(people=1, apps=1, usage=False, name="Unmeasured")
    days = usage_sel.logins_per_day(connections=list(Connection.objects.all()), days=7)
    assert len(days) == 7
    today = days[-1]
    assert today.directory_success == 10 and today.directory_failure == 1
    assert today.sso_success == 6 and today.app_active_sum == 4 and today.directory_active == 5
    assert days[0].sso_success == 0


def test_rankings_and_inactive_seats():
    build_tenant(people=10, apps=3)
    r = usage_sel.app_rankings(connections=list(Connection.objects.all()), window=30, inactive_days=30)
    assert [row.application.label for row in r.top][:1] == ["App 0"]
    assert r.assigned_seats == 30
    # App j: person i used it i+j days ago; inactive in 30 days = never used (person 0) only.
    assert r.inactive_seats == 3


def test_admin_hygiene_groups_roles_and_flags_missing_mfa_and_stale_logins():
    t = build_tenant(people=1, apps=0)
    add_admin(t, role="Administrator With Billing", mfa=True, last_login_days=1)
    add_admin(t, role="Administrator With Billing", mfa=False, last_login_days=200)
    add_admin(t, role="Help Desk", mfa=None, last_login_days=None)
    h = usage_sel.admin_hygiene(days=90)
    assert h.total == 3
    assert h.by_role == [("Administrator With Billing", 2), ("Help Desk", 1)]
    assert len(h.without_mfa) == 1 and h.mfa_unknown == 1
    assert len(h.no_recent_login) == 2


# --- connections ----------------------------------------------------------------------------------
def test_connection_cards_counts_runs_and_usage_in_fixed_queries():
    t = build_tenant(people=4, apps=2)
    add_events(t, t.people[1], count=3)
    SyncRunFactory(connection=t.connection, status=SyncRun.Status.SUCCEEDED)
    active = SyncRunFactory(connection=t.connection, status=SyncRun.Status.RUNNING)
    cards = conn_sel.connection_cards()
    assert len(cards) == 1
    card = cards[0]
    assert (card.counts.users, card.counts.apps, card.counts.events) == (4, 2, 3)
    assert card.active_run == active and card.last_run == active
    assert card.usage_available and card.counts.oldest_event_at is not None
    few = _count_queries(conn_sel.connection_cards)
    for n in range(5):
        build_tenant(people=1, apps=1, name=f"More {n}")
    assert _count_queries(conn_sel.connection_cards) == few


def _run_with_window(connection, status, start_days, end_days, stream="events_sso"):
    return SyncRunFactory(
        connection=connection,
        kind=SyncRun.Kind.EVENTS,
        status=SyncRun.Status.PARTIAL if status == "failed" else SyncRun.Status.SUCCEEDED,
        streams={
            stream: {
                "label": "Usage: SSO events",
                "status": status,
                "window": [ago(start_days).isoformat(), ago(end_days).isoformat()],
            }
        },
    )


def test_gaps_are_failed_windows_no_later_run_covered():
    t = build_tenant(people=1, apps=0)
    _run_with_window(t.connection, "failed", 10, 9)  # recovered below
    _run_with_window(t.connection, "succeeded", 10.5, 8)
    _run_with_window(t.connection, "failed", 5, 4)  # half recovered
    _run_with_window(t.connection, "succeeded", 4.5, 3)
    gaps = conn_sel.connection_gaps([t.connection])[t.connection.pk]
    assert len(gaps) == 1
    g = gaps[0]
    assert g.stream == "events_sso" and g.label == "Usage: SSO events"
    assert abs((g.start - ago(5)).total_seconds()) < 5 and abs((g.end - ago(4.5)).total_seconds()) < 5


def test_sync_run_progress_follows_the_provider_stream_order():
    t = build_tenant(people=1, apps=0)
    run = SyncRunFactory(
        connection=t.connection,
        status=SyncRun.Status.RUNNING,
        current_stream="users",
        streams={
            "users": {"status": "running", "fetched": "7", "pages": 1},
            "applications": {"status": "succeeded", "fetched": 240, "created": 240, "label": "Applications"},
            "mystery": {"status": "pending"},
        },
    )
    progress = conn_sel.sync_run_progress(run, provider_key="jumpcloud")
    assert [p.key for p in progress] == [
        "applications",
        "users",
        "mystery",
    ]  # the provider's order, unknown last
    assert progress[1].is_current and progress[1].fetched == 7 and progress[0].created == 240


def test_capability_tables_come_from_the_provider_declarations():
    from integrations.providers import registry

    t = build_tenant(people=1, apps=0, usage=False)
    Connection.objects.filter(pk=t.connection.pk).update(permission="read_only")
    tables = conn_sel.capability_tables()
    jc = next(tb for tb in tables if tb.provider_key == "jumpcloud")
    assert [r.capability.key for r in jc.rows] == [c.key for c in registry.get("jumpcloud").capabilities()]
    by_key = {r.capability.key: r for r in jc.rows}
    assert by_key["usage_sso"].supported.supported
    assert not by_key["usage_sso"].per_connection[0].available
    assert "Read and take action" in by_key["action_suspend_user"].per_connection[0].reason


def test_connection_data_counts_for_the_disconnect_page():
    t = build_tenant(people=3, apps=2)
    add_events(t, t.people[1], count=4)
    counts = conn_sel.connection_data_counts(t.connection)
    assert (counts.users, counts.apps, counts.assignments, counts.events) == (3, 2, 6, 4)


# --- sorting on the read model -------------------------------------------------------------------
@pytest.mark.parametrize("ordering", ["-last_used", "last_used"])
@pytest.mark.parametrize("params", [{}, {"status": "active"}, {"inactive_days": "3"}, {"q": "pat"}])
def test_pages_sorted_by_last_use_follow_each_persons_latest_use_anywhere(ordering, params):
    """The users table sorted by last use pages through people by the latest of their own login
    and their use of any app (the read model), never-used people last newest-first, first
    oldest-first; the primary key breaks ties in the same direction (one index serves both)."""
    t = build_tenant(people=40, apps=3)
    # App use newer than portal use for some people, older for others, none for a few.
    for i, person in enumerate(t.people):
        AppUser.objects.filter(directory_user=person).update(
            last_used_at=None if i % 7 == 0 else ago((i * 37) % 50 / 3)
        )
        AppUser.objects.filter(pk=person.pk).update(
            last_used_at=None if i % 5 == 0 else ago((i * 11) % 40 / 2)
        )
    refresh(t.connection)
    latest = {}
    for person in AppUser.objects.filter(pk__in=[p.pk for p in t.people]):
        uses = [m.last_used_at for m in AppUser.objects.filter(directory_user=person) if m.last_used_at]
        latest[person.pk] = max(
            [*uses, *([person.last_used_at] if person.last_used_at else [])], default=None
        )
    f = AppUserFilter({**params, "ordering": "username"}, queryset=user_sel.directory_user_queryset())
    assert f.is_valid()
    members = set(f.qs.values_list("pk", flat=True))
    assert members

    def key(pk: int) -> tuple[float, int]:
        # Oldest first: never used first, then by time, ties by id; newest first is its reverse.
        return (latest[pk].timestamp() if latest[pk] else float("-inf"), pk)

    expected = sorted(members, key=key, reverse=ordering.startswith("-"))
    got: list[int] = []
    for page in range(1, len(expected) // 25 + 2):
        result = user_sel.directory_user_search({**params, "ordering": ordering}, page=page, per_page=25)
        got.extend(u.pk for u in result.page.object_list)
    assert got == expected


def test_a_search_page_and_its_total_come_from_one_query():
    build_tenant(people=30, apps=1)
    result = user_sel.directory_user_search({"q": "person1", "ordering": "username"}, per_page=25)
    assert result.paginator.count == 11  # person1, person10..19
    assert [u.username for u in result.page][:2] == ["person1", "person10"]
    beyond = user_sel.directory_user_search({"q": "person1", "ordering": "username"}, page=9, per_page=25)
    assert beyond.page.number == 1 and beyond.paginator.count == 11


def test_inactive_people_first_page_equals_the_users_table_oldest_first():
    t = build_tenant(people=60, apps=2)
    # 55 people never used anything.
    AppUser.objects.filter(connection=t.connection).exclude(
        username__in=[f"person{i}" for i in range(1, 6)]
    ).update(last_used_at=None)
    refresh(t.connection)
    conns = list(Connection.objects.all())
    page = usage_sel.inactive_people(connections=conns, days=30, per_page=50)
    expected = user_sel.directory_user_search(
        {"inactive_days": "30", "status": "active", "ordering": "last_used"}, per_page=50
    )
    assert [u.pk for u in page] == [u.pk for u in expected.page]
    assert page.paginator.count == expected.paginator.count == 55
    assert page.has_next()


@pytest.mark.parametrize(
    "params",
    [{}, {"status": "active"}, {"connection": "first"}, {"connection": "first", "status": "active"}],
)
def test_users_table_totals_from_the_read_models_equal_a_count(params):
    """The unfiltered table and its account / "active" views take their total from the read
    models; it equals counting the people (removed and suspended people included in the data)."""
    t = build_tenant(people=12, apps=2)
    build_tenant(people=5, apps=1, name="Other")
    AppUser.objects.filter(pk=t.people[3].pk).update(status="suspended")
    AppUser.objects.filter(pk=t.people[4].pk).update(status="removed", removed_at=timezone.now())
    refresh()
    if params.get("connection") == "first":
        params = {**params, "connection": str(t.connection.pk)}
    f = AppUserFilter(params, queryset=user_sel.directory_user_queryset())
    assert f.is_valid()
    assert user_sel.count_from_read_models(f.form.cleaned_data) == f.qs.count()
    result = user_sel.directory_user_search(params, per_page=25)
    assert result.paginator.count == f.qs.count()


def test_other_filters_are_counted_for_real():
    build_tenant(people=3, apps=1)
    f = AppUserFilter({"q": "person1"}, queryset=user_sel.directory_user_queryset())
    assert f.is_valid()
    assert user_sel.count_from_read_models(f.form.cleaned_data) is None
