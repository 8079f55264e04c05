"""Full and incremental syncs against the simulator over real HTTP, on the test database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Count
from django.utils import timezone

from integrations.models import (
    Application,
    AppUser,
    Connection,
    ConnectionStats,
    DailyUsage,
    SyncCheckpoint,
    SyncRun,
    UsageEvent,
)
from integrations.services.sync import sync_run_execute, sync_run_request
from jumpcloud.streams.common import DIRECTORY_APP_ID
from jumpcloud.streams.events import EVENT_LAG

pytestmark = [pytest.mark.django_db(transaction=True)]


def run_sync(connection: Connection, kind: str = "full") -> SyncRun:
    run = sync_run_request(connection=connection, kind=kind, trigger="manual", enqueue=False)
    return sync_run_execute(run_id=run.pk)


def test_full_sync_mirrors_the_tenant(connect, sim):
    connection = connect()
    run = run_sync(connection)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_message
    connection.refresh_from_db()
    assert connection.status == Connection.Status.CONNECTED
    assert connection.capabilities["usage_events"] is True
    tenant = sim.tenant("primary")
    directory = Application.objects.get(connection=connection, external_id=DIRECTORY_APP_ID)

    users = {u["_id"]: u for u in tenant.users}
    rows = {r.external_id: r for r in AppUser.objects.filter(application=directory, kind="user")}
    assert set(rows) == set(users)
    for uid, u in users.items():
        expected = (
            "suspended"
            if u.get("suspended")
            else "locked"
            if u.get("account_locked")
            else "invited"
            if u.get("state") == "STAGED"
            else "active"
        )
        assert rows[uid].status == expected, (u, rows[uid].status)
        assert rows[uid].password_expired == bool(u.get("password_expired"))
        assert rows[uid].username == u["username"]

    # Administrators: matched to users by email, the others get a row of their own; nobody twice.
    emails = {u["email"].lower(): uid for uid, u in users.items() if u.get("email")}
    admins = tenant.admins if hasattr(tenant, "admins") else []
    for admin in admins:
        uid = emails.get(admin["email"].lower())
        row = (
            rows[uid]
            if uid
            else AppUser.objects.get(application=directory, kind="admin", external_id=admin["_id"])
        )
        if uid:
            row.refresh_from_db()
        assert row.is_admin and row.role == (admin.get("roleName") or "Administrator")
        assert row.admin_external_id == admin["_id"]
    assert AppUser.objects.filter(application=directory, kind="admin").count() == sum(
        1 for a in admins if a["email"].lower() not in emails
    )

    # Applications and who can use them (direct and via nested groups).
    apps = {a["_id"]: a for a in tenant.apps} if hasattr(tenant, "apps") else {}
    assert set(
        Application.objects.filter(connection=connection, kind="sso").values_list("external_id", flat=True)
    ) == set(apps)
    for app_id in apps:
        app = Application.objects.get(connection=connection, external_id=app_id)
        assigned = set(
            AppUser.objects.filter(application=app, removed_at__isnull=True).values_list(
                "external_id", flat=True
            )
        )
        assert assigned == set(tenant.app_user_ids(app_id)), app_id

    # Events: every event in the window, once.
    assert (
        UsageEvent.objects.filter(connection=connection).count()
        == UsageEvent.objects.filter(connection=connection).values("external_id").distinct().count()
    )
    assert UsageEvent.objects.filter(connection=connection, kind="sso").exists()
    assert UsageEvent.objects.filter(connection=connection, event_type="admin_login_attempt").exists()


def test_last_used_counts_only_successful_logins(connect, sim):
    connection = connect()
    run_sync(connection)
    directory = Application.objects.get(connection=connection, external_id=DIRECTORY_APP_ID)
    expected: dict[str, datetime] = {}
    for e in UsageEvent.objects.filter(connection=connection, event_type="user_login_attempt", success=True):
        expected[e.actor_external_id] = max(expected.get(e.actor_external_id, e.occurred_at), e.occurred_at)
    failures_only = set(
        UsageEvent.objects.filter(
            connection=connection, event_type="user_login_attempt", success=False
        ).values_list("actor_external_id", flat=True)
    ) - set(expected)
    rows = AppUser.objects.filter(application=directory, kind="user", admin_external_id="")
    checked = 0
    for row in rows:
        if row.external_id in expected:
            assert row.last_used_at == expected[row.external_id]
            checked += 1
        elif row.external_id in failures_only:
            assert row.last_used_at is None
    assert checked > 10

    sso_expected: dict[tuple[str, str], datetime] = {}
    for e in UsageEvent.objects.filter(connection=connection, event_type="sso_auth", success=True):
        key = (e.application_external_id, e.actor_external_id)
        sso_expected[key] = max(sso_expected.get(key, e.occurred_at), e.occurred_at)
    sso_rows = AppUser.objects.filter(connection=connection, application__kind="sso").select_related(
        "application"
    )
    matched = 0
    for row in sso_rows:
        key = (row.application.external_id, row.external_id)
        assert row.last_used_at == sso_expected.get(key), key
        matched += key in sso_expected
    assert matched > 10

    daily = DailyUsage.objects.filter(connection=connection).aggregate(n=Count("id"))
    assert daily["n"] > 0


def test_second_sync_without_upstream_change_writes_nothing(connect, sim):
    connection = connect()
    run_sync(connection)
    before = _table_counts(connection)
    second = run_sync(connection)
    assert second.status == SyncRun.Status.SUCCEEDED
    for key, stats in second.streams.items():
        assert (
            stats.get("created", 0) == 0 and stats.get("updated", 0) == 0 and stats.get("removed", 0) == 0
        ), (key, stats)
    assert _table_counts(connection) == before


def _read_models_from_scratch(connection: Connection) -> tuple[dict, dict, dict]:
    """What the read models should hold, counted from the synced rows themselves."""
    apps = {
        a.pk: (
            AppUser.objects.filter(application=a, removed_at__isnull=True).count(),
            AppUser.objects.filter(
                application=a, removed_at__isnull=True, last_used_at__gte=timezone.now() - timedelta(days=30)
            ).count(),
        )
        for a in Application.objects.filter(connection=connection)
    }
    people = {}
    for p in AppUser.objects.filter(connection=connection, directory_user__isnull=True):
        uses = [m.last_used_at for m in p.app_memberships.all() if m.last_used_at] + (
            [p.last_used_at] if p.last_used_at else []
        )
        people[p.pk] = (p.app_memberships.filter(removed_at__isnull=True).count(), max(uses, default=None))
    events = {"events": UsageEvent.objects.filter(connection=connection).count()}
    return apps, people, events


def _read_models(connection: Connection) -> tuple[dict, dict, dict]:
    apps = {
        a.pk: (a.stats.assigned_count, a.stats.active_30)
        for a in Application.objects.filter(connection=connection).select_related("stats")
    }
    people = {
        p.pk: (p.apps_count, p.last_used_any)
        for p in AppUser.objects.filter(connection=connection, directory_user__isnull=True)
    }
    return apps, people, {"events": ConnectionStats.objects.get(connection=connection).events}


def test_a_sync_keeps_the_read_models_equal_to_a_count_from_scratch(connect, sim):
    """After a full sync, a sync that wrote nothing and an events sync that added some, the read
    models the pages show equal what counting the synced rows gives."""
    connection = connect()
    run_sync(connection)
    truth = _read_models_from_scratch(connection)
    assert _read_models(connection) == truth
    assert any(n for n, _ in truth[0].values()) and any(n for n, _ in truth[1].values())
    assert truth[2]["events"] > 0
    refreshed = ConnectionStats.objects.get(connection=connection).refreshed_at

    second = run_sync(connection)
    assert second.status == SyncRun.Status.SUCCEEDED
    assert _read_models(connection) == truth
    assert ConnectionStats.objects.get(connection=connection).refreshed_at > refreshed

    ids = sim.add_events(
        count=5, service="sso", spread_seconds=60, at=datetime.now(UTC) - EVENT_LAG - timedelta(minutes=2)
    )
    third = run_sync(connection, kind="events")
    assert third.streams["events_sso"]["created"] == len(ids)
    after = _read_models(connection)
    assert after == _read_models_from_scratch(connection)
    assert after[2]["events"] == truth[2]["events"] + len(ids)


def test_incremental_events_sync_picks_up_new_and_late_events(connect, sim):
    connection = connect()
    run_sync(connection)
    count_before = UsageEvent.objects.filter(connection=connection).count()
    # New events inside the window, one batch of which only becomes visible later (indexing delay).
    ids = sim.add_events(
        count=300, spread_seconds=60, at=datetime.now(UTC) - EVENT_LAG - timedelta(minutes=2)
    )
    run = run_sync(connection, kind="events")
    assert run.status == SyncRun.Status.SUCCEEDED
    assert UsageEvent.objects.filter(connection=connection).count() == count_before + len(ids)
    assert UsageEvent.objects.filter(connection=connection, external_id__in=ids).count() == len(ids)
    state = SyncCheckpoint.objects.get(connection=connection, stream="events_sso").state
    assert "until" in state and "window" not in state


def test_an_sso_window_begun_oldest_first_is_resumed_oldest_first(connect, sim, settings):
    """A window that older code began (oldest first, no order in its checkpoint) goes on in that
    order: its cursor means "after this event" only in the order it came from."""
    connection = connect()
    assert run_sync(connection).status == SyncRun.Status.SUCCEEDED
    sso = UsageEvent.objects.filter(connection=connection, kind="sso")
    listed = list(sso.order_by("occurred_at", "external_id").values_list("external_id", "occurred_at"))
    assert len(listed) > 40
    # Interrupted after its first page of 20, oldest first.
    page = listed[:20]
    sso.exclude(external_id__in=[ext for ext, _ in page]).delete()
    checkpoint = SyncCheckpoint.objects.get(connection=connection, stream="events_sso")
    start = listed[0][1] - timedelta(seconds=1)
    end = datetime.fromisoformat(checkpoint.state["until"])
    last_ext, last_at = page[-1]
    checkpoint.state = {
        "window": [start.isoformat(), end.isoformat()],
        "rollup_from": start.isoformat(),
        "search_after": [int(last_at.timestamp() * 1000), last_ext],
    }
    checkpoint.save()
    settings.JUMPCLOUD_EVENT_PAGE_SIZE = 20

    assert run_sync(connection, kind="events").status == SyncRun.Status.SUCCEEDED
    assert set(sso.values_list("external_id", flat=True)) >= {ext for ext, _ in listed}
    state = SyncCheckpoint.objects.get(connection=connection, stream="events_sso").state
    assert "window" not in state and "newest_first" not in state and "search_after" not in state


def test_users_that_vanish_are_soft_deleted_and_restored(connect, sim):
    connection = connect(permission="read_write")
    run_sync(connection)
    tenant = sim.tenant("primary")
    victim = tenant.users[5]
    saved = dict(victim)
    tenant.delete_user(
        victim["_id"],
        actor={"_id": "f" * 24, "email": "ops@example.test"},
        now_ms=int(datetime.now(UTC).timestamp() * 1000),
    )
    run = run_sync(connection)
    row = AppUser.objects.get(connection=connection, application__kind="directory", external_id=saved["_id"])
    assert row.status == AppUser.Status.REMOVED and row.removed_at is not None
    assert run.streams["users"]["removed"] == 1
    with tenant.lock:  # put the record back as it was (same id), as if restored upstream
        tenant._insert_user(saved)  # noqa: SLF001
        tenant.version += 1
    run_sync(connection)
    row.refresh_from_db()
    assert row.removed_at is None and row.status != AppUser.Status.REMOVED


def test_unchanged_assignments_are_skipped_but_rows_lost_locally_are_written_again(connect, sim):
    connection = connect()
    run_sync(connection)
    row = AppUser.objects.filter(
        connection=connection, application__kind="sso", removed_at__isnull=True
    ).first()
    digest = row.application.assignments_digest
    assert digest, "the full sync did not record what it wrote"
    second = run_sync(connection)
    assert second.streams["app_assignments"]["fetched"] == first_fetched(connection)
    AppUser.objects.filter(pk=row.pk).delete()
    third = run_sync(connection)
    assert third.streams["app_assignments"]["created"] == 1
    assert AppUser.objects.filter(
        application=row.application, external_id=row.external_id, removed_at__isnull=True
    ).exists()


def first_fetched(connection):
    return AppUser.objects.filter(connection=connection, application__kind="sso").count()


def test_a_user_deleted_upstream_loses_their_app_assignments(connect, sim):
    connection = connect()
    run_sync(connection)
    counts = (
        AppUser.objects.filter(connection=connection, application__kind="sso", removed_at__isnull=True)
        .values("external_id")
        .annotate(n=Count("id"))
        .order_by("-n")
    )
    victim, assigned = counts[0]["external_id"], counts[0]["n"]
    sim.tenant("primary").delete_user(
        victim,
        actor={"_id": "f" * 24, "email": "ops@example.test"},
        now_ms=int(datetime.now(UTC).timestamp() * 1000),
    )
    run = run_sync(connection)
    assert run.streams["app_assignments"]["removed"] == assigned
    assert not AppUser.objects.filter(
        connection=connection, application__kind="sso", external_id=victim, removed_at__isnull=True
    ).exists()
    # Apps the user was not in were not rewritten: their digests did not change.
    assert run.streams["app_assignments"]["updated"] == 0


def _table_counts(connection):
    return {
        "users": AppUser.objects.filter(connection=connection).count(),
        "apps": Application.objects.filter(connection=connection).count(),
        "events": UsageEvent.objects.filter(connection=connection).count(),
        "daily": DailyUsage.objects.filter(connection=connection).count(),
    }
