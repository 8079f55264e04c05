"""The fast COPY text of new assignment rows is exactly what csv-formatting the rows gives."""

from __future__ import annotations

from datetime import UTC, datetime

from integrations.bulk import _csv_buffer
from jumpcloud.parsing import AppBinding
from jumpcloud.sync import AssignmentCsv, assignment_row

PEOPLE = {
    "a1": (11, "plain", "plain@example.test", "Plain", "Person", "Plain Person"),
    "b2": (12, "comma,user", 'quote"d@example.test', "Line\nBreak", "Ünïcödé", "Tab\there, and \"more\""),
    "c3": (13, "", "", "", "", ""),
    "d4": (14, "trailing\\", "x@example.test", "  spaced  ", "\r\n", "🙂"),
}


def test_assignment_csv_equals_formatted_rows():
    ordered = sorted([*PEOPLE, "unknown-person"])
    direct = {"b2", "unknown-person"}
    used = {"a1": datetime(2026, 11, 1, 8, 30, tzinfo=UTC), "d4": datetime(2026, 11, 2, 9, 0, 0, 123456, tzinfo=UTC)}
    formatter = AssignmentCsv(7, PEOPLE)
    rows = [assignment_row(7, 42, AppBinding(user_id=uid, direct=uid in direct), PEOPLE.get(uid), used.get(uid))
            for uid in ordered]
    expected = _csv_buffer(rows).getvalue()
    assert formatter.csv(42, ordered, direct, used) == expected
    # Cached per person: a second app gets its own id and assignment types, same people.
    rows = [assignment_row(7, 43, AppBinding(user_id=uid, direct=False), PEOPLE.get(uid)) for uid in ordered]
    assert formatter.csv(43, ordered, set(), {}) == _csv_buffer(rows).getvalue()
