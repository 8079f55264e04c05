"""UsageEvent partitioned by month: exactly once still, partitions ahead, retention by whole partitions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection as db
from django.db import transaction
from django.utils import timezone

from integrations import bulk
from integrations.models import (
    Application,
    AppUser,
    ConnectionStats,
    DailyUsage,
    LastUse,
    SyncRun,
    UsageEvent,
)
from integrations.selectors.applications import application_daily_usage
from integrations.selectors.usage import logins_per_day
from integrations.services.partitions import (
    DEFAULT_PARTITION,
    partition_name,
    retention_cutoff,
    usage_partition_create,
    usage_partitions,
    usage_partitions_drop_expired,
    usage_partitions_ensure,
    usage_partitions_maintain,
)
from jumpcloud.simulator import Simulator, SimulatorConfig
from jumpcloud.streams.events import EVENT_COLUMNS, EVENT_KEY
from tests.factories import ConnectionFactory
from tests.integrations.test_bulk import _row
from tests.integrations.test_sync import run_sync

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def sim():
    """A tenant with 70 days of history: its oldest month can fall past a short retention."""
    simulator = Simulator(SimulatorConfig(seed=5, users=60, apps=5, days=70, events=3000)).start(port=0)
    yield simulator
    simulator.stop()


def _where(connection_id: int, external_id: str) -> str:
    """The partition an event is stored in."""
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM integrations_usageevent WHERE connection_id = %s AND external_id = %s",
            [connection_id, external_id],
        )
        return cursor.fetchone()[0]


def _insert(rows: list[tuple]) -> int:
    with transaction.atomic():
        return bulk.insert_ignore(
            table="integrations_usageevent", columns=EVENT_COLUMNS, rows=rows, conflict=EVENT_KEY
        )


def test_the_table_is_partitioned_by_month_with_a_default_and_the_months_ahead():
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT partstrat, pg_get_partkeydef(%s::regclass) FROM pg_partitioned_table "
            "WHERE partrelid = %s::regclass",
            ["integrations_usageevent", "integrations_usageevent"],
        )
        assert cursor.fetchone() == ("r", "RANGE (occurred_at)")
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [DEFAULT_PARTITION])
        assert cursor.fetchone()[0]
    months = {p.month for p in usage_partitions()}
    this_month = timezone.now().date().replace(day=1)
    ahead = this_month
    for _ in range(3):
        ahead = (ahead + timedelta(days=32)).replace(day=1)
        assert ahead in months, f"no partition {ahead:%Y-%m} ahead"
    assert retention_cutoff().date().replace(day=1) in months


def test_an_event_is_stored_once_in_its_month_and_a_redelivery_is_ignored():
    connection = ConnectionFactory()
    when = timezone.now().replace(microsecond=0) - timedelta(days=40)
    row = _row(connection.pk, "e1", occurred_at=when)
    assert _insert([row]) == 1
    assert _insert([row, _row(connection.pk, "e2", occurred_at=when)]) == 1
    with transaction.atomic():
        # The COPY path refuses the page with a stored event (the staged path then takes over).
        assert bulk.copy_new(table="integrations_usageevent", columns=EVENT_COLUMNS, rows=[row]) is None
    assert UsageEvent.objects.filter(connection=connection).count() == 2
    assert _where(connection.pk, "e1") == partition_name(when.date().replace(day=1))
    # Reads through the ORM work on the partitioned table.
    assert UsageEvent.objects.get(connection=connection, external_id="e1").occurred_at == when


def test_an_event_of_a_month_without_partition_is_kept_then_moved_into_its_partition():
    connection = ConnectionFactory()
    far = datetime(2035, 5, 17, 8, 30, tzinfo=UTC)
    assert _insert([_row(connection.pk, "future", occurred_at=far)]) == 1
    assert _where(connection.pk, "future") == DEFAULT_PARTITION
    assert usage_partition_create(month=date(2035, 5, 1)) is True
    assert usage_partition_create(month=date(2035, 5, 1)) is False  # exists: nothing to do
    assert _where(connection.pk, "future") == partition_name(date(2035, 5, 1))
    # Still exactly once after the move.
    assert _insert([_row(connection.pk, "future", occurred_at=far)]) == 0
    assert UsageEvent.objects.filter(connection=connection).count() == 1


def test_beat_keeps_partitions_ahead_and_drops_only_whole_months_past_retention(settings):
    settings.EVENT_RETENTION_DAYS = 60
    now = datetime(2027, 8, 10, 12, 0, tzinfo=UTC)  # ahead of the migration's partitions
    created = usage_partitions_ensure(now=now)
    assert {"integrations_usageevent_p2027_09", "integrations_usageevent_p2027_11"} <= set(created)
    assert usage_partitions_ensure(now=now) == []
    usage_partition_create(month=date(2027, 5, 1))  # a month the sync filled before its retention ended
    connection = ConnectionFactory()
    rows = [
        _row(
            connection.pk, "old", occurred_at=datetime(2027, 5, 20, tzinfo=UTC)
        ),  # month ended before cutoff
        _row(connection.pk, "edge", occurred_at=datetime(2027, 6, 2, tzinfo=UTC)),  # cutoff's month: kept
        _row(connection.pk, "new", occurred_at=datetime(2027, 8, 9, tzinfo=UTC)),
    ]
    assert _insert(rows) == 3
    dropped = usage_partitions_drop_expired(now=now)
    assert "integrations_usageevent_p2027_05" in dropped
    assert "integrations_usageevent_p2027_06" not in dropped  # the cutoff (June 11) is inside June
    left = set(UsageEvent.objects.filter(connection=connection).values_list("external_id", flat=True))
    assert left == {"edge", "new"}
    months = {p.month for p in usage_partitions()}
    assert date(2027, 5, 1) not in months and date(2027, 6, 1) in months
    # A stray event older than the cutoff in the default partition goes too; a newer one stays.
    with db.cursor() as cursor:
        cursor.execute("DELETE FROM integrations_usageevent_default")
    assert _insert([_row(connection.pk, "stray-future", occurred_at=datetime(2036, 1, 1, tzinfo=UTC))]) == 1
    with db.cursor() as cursor:
        cursor.execute("DROP TABLE integrations_usageevent_p2027_06")
    assert _insert([_row(connection.pk, "stray-old", occurred_at=datetime(2027, 6, 3, tzinfo=UTC))]) == 1
    assert _where(connection.pk, "stray-old") == DEFAULT_PARTITION
    usage_partitions_drop_expired(now=now + timedelta(days=30))  # cutoff July 11: June is past it
    left = set(UsageEvent.objects.filter(connection=connection).values_list("external_id", flat=True))
    assert left == {"new", "stray-future"}


def _rollups(connection) -> dict[str, object]:
    apps = list(Application.objects.filter(connection=connection).order_by("id"))
    return {
        "last_uses": sorted(
            LastUse.objects.filter(connection=connection).values_list(
                "application_id", "person_external_id", "last_used_at"
            )
        ),
        "appusers": sorted(
            AppUser.objects.filter(connection=connection).values_list(
                "id", "last_used_at", "admin_last_login_at"
            )
        ),
        "apps": [(a.pk, a.last_used_at) for a in apps],
        "daily": sorted(
            DailyUsage.objects.filter(connection=connection).values_list(
                "application_id", "day", "successes", "failures", "active_users"
            )
        ),
        "logins_chart": logins_per_day(connections=[connection], days=120),
        "app_charts": [application_daily_usage(a, days=120) for a in apps],
    }


def test_after_retention_drops_old_partitions_last_used_dates_and_daily_charts_are_unchanged(
    connect, settings
):
    connection = connect()
    assert run_sync(connection).status == SyncRun.Status.SUCCEEDED
    events = UsageEvent.objects.filter(connection=connection)
    before = _rollups(connection)
    assert before["last_uses"] and before["daily"]
    assert any(day.successes for chart in before["app_charts"] for day in chart)
    oldest = events.order_by("occurred_at").first().occurred_at
    total = events.count()
    # Retention so short that the months of the oldest synced events are past it.
    now = timezone.now()
    settings.EVENT_RETENTION_DAYS = max(1, (now - oldest).days - 35)
    result = usage_partitions_maintain(now=now)
    assert partition_name(oldest.date().replace(day=1)) in result["dropped"]
    assert events.count() < total
    assert not events.filter(occurred_at__lt=retention_cutoff(now=now).replace(day=1)).exists()
    assert _rollups(connection) == before
    # The read models count what is left, not what the sync stored.
    stats = ConnectionStats.objects.get(connection=connection)
    assert stats.events == events.count()
    assert stats.oldest_event_at == events.order_by("occurred_at").first().occurred_at
