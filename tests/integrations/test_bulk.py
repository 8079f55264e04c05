"""integrations.bulk's PostgreSQL fast path: COPY straight into the table, falling back cleanly."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import transaction

from integrations import bulk
from integrations.models import UsageEvent
from jumpcloud.streams.events import EVENT_COLUMNS, EVENT_KEY
from tests.factories import ConnectionFactory

pytestmark = [pytest.mark.django_db]

WHEN = datetime(2026, 5, 1, 12, 0, 1, 250000, tzinfo=UTC)


def _row(connection_id: int, external_id: str, **overrides: object) -> tuple[object, ...]:
    values = {
        "connection_id": connection_id,
        "external_id": external_id,
        "kind": "sso",
        "event_type": "sso_auth",
        "occurred_at": WHEN,
        "success": True,
        "actor_external_id": "u1",
        "actor_type": "user",
        "actor_username": "jane.doe",
        "actor_email": "",
        "application_external_id": "app1",
        "application_name": 'Quote "and", comma',
        "client_ip": "198.51.100.7",
        "error_message": "",
        **overrides,
    }
    return tuple(values[c] for c in EVENT_COLUMNS)


def test_copy_new_writes_every_row_with_its_values():
    connection = ConnectionFactory()
    with transaction.atomic():
        written = bulk.copy_new(
            table="integrations_usageevent",
            columns=EVENT_COLUMNS,
            rows=[_row(connection.pk, "e1"), _row(connection.pk, "e2", success=None)],
        )
    assert written == 2
    first = UsageEvent.objects.get(external_id="e1")
    assert (first.occurred_at, first.success, first.application_name, first.actor_email) == (
        WHEN,
        True,
        'Quote "and", comma',
        "",
    )  # empty text stays empty, not NULL
    assert UsageEvent.objects.get(external_id="e2").success is None


def test_copy_new_writes_nothing_when_a_row_exists_and_the_staged_path_takes_over():
    connection = ConnectionFactory()
    with transaction.atomic():
        bulk.copy_new(
            table="integrations_usageevent", columns=EVENT_COLUMNS, rows=[_row(connection.pk, "e1")]
        )
    page = [_row(connection.pk, "e0"), _row(connection.pk, "e1"), _row(connection.pk, "e2")]
    with transaction.atomic():
        assert bulk.copy_new(table="integrations_usageevent", columns=EVENT_COLUMNS, rows=page) is None
        # The transaction is still usable: the failed COPY was rolled back to its savepoint only.
        assert UsageEvent.objects.filter(connection=connection).count() == 1
        inserted = bulk.insert_ignore(
            table="integrations_usageevent",
            columns=EVENT_COLUMNS,
            rows=page,
            conflict=EVENT_KEY,
        )
    assert inserted == 2
    assert sorted(UsageEvent.objects.filter(connection=connection).values_list("external_id", flat=True)) == [
        "e0",
        "e1",
        "e2",
    ]


def test_copy_new_takes_preformatted_csv_and_replaces_nul():
    connection = ConnectionFactory()
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(_row(connection.pk, "e1", actor_username="bad\x00name"))
    with transaction.atomic():
        assert bulk.copy_new(table="integrations_usageevent", columns=EVENT_COLUMNS, rows=buf.getvalue()) == 1
    assert UsageEvent.objects.get(external_id="e1").actor_username == "bad\ufffdname"


def test_a_lone_carriage_return_in_a_value_survives_copy_and_the_staged_path():
    connection = ConnectionFactory()
    names = {"e-cr": "Line\rBreak", "e-crlf": "two\r\nlines", "e-lf": "only\nnewline"}
    with transaction.atomic():
        written = bulk.copy_new(
            table="integrations_usageevent",
            columns=EVENT_COLUMNS,
            rows=[_row(connection.pk, ext, actor_username=name) for ext, name in names.items()],
        )
    assert written == 3
    with transaction.atomic():
        inserted = bulk.insert_ignore(
            table="integrations_usageevent",
            columns=EVENT_COLUMNS,
            rows=[_row(connection.pk, "e-cr2", actor_username="\r=1+1")],
            conflict=EVENT_KEY,
        )
    assert inserted == 1
    stored = dict(
        UsageEvent.objects.filter(connection=connection).values_list("external_id", "actor_username")
    )
    assert stored == {**names, "e-cr2": "\r=1+1"}
