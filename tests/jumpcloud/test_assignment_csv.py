"""The fast COPY text of new assignment rows says what csv-formatting the rows says."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from integrations.csvtext import csv_text
from jumpcloud.streams.assignments import AssignmentCsv, AssignmentDigests, assignment_row

PEOPLE = {
    "a1": (11, "plain", "plain@example.test", "Plain", "Person", "Plain Person"),
    "b2": (12, "comma,user", 'quote"d@example.test', "Line\nBreak", "Ünïcödé", 'Tab\there, and "more"'),
    "c3": (13, "", "", "", "", ""),
    "d4": (14, "trailing\\", "x@example.test", "  spaced  ", "\r\n", "🙂"),
    "e5": (15, "cr\ronly", "semi;colon@example.test", "'single'", "#hash", "{}"),
    'quote"id': (16, "q", "q@example.test", "Q", "Q", "Q"),
}


def test_assignment_csv_equals_formatted_rows():
    ordered = sorted([*PEOPLE, "unknown-person"])
    direct = {"b2", "unknown-person"}
    used = {
        "a1": datetime(2026, 11, 1, 8, 30, tzinfo=UTC),
        "d4": datetime(2026, 11, 2, 9, 0, 0, 123456, tzinfo=UTC),
    }
    formatter = AssignmentCsv(7, PEOPLE)
    rows = [assignment_row(7, 42, uid, uid in direct, PEOPLE.get(uid), used.get(uid)) for uid in ordered]
    text = formatter.csv(42, ordered, direct, used)
    # The same fields, row for row (csv_text ends rows in CRLF when a value holds a CR; this text
    # keeps LF and quotes the CR, which COPY reads the same way).
    assert _parsed(text) == _parsed(csv_text(rows))
    assert '"cr\ronly"' in text and '"\r\n"' in text
    plain = [row for row in rows if "\r" not in "".join(map(str, row))]
    plain_ids = {row[2] for row in plain}
    # Without a CR anywhere, the very same text.
    assert formatter.csv(42, [u for u in ordered if u in plain_ids], direct, used) == csv_text(plain)
    # A second app: its own id and assignment types, same people.
    rows = [assignment_row(7, 43, uid, False, PEOPLE.get(uid)) for uid in ordered]
    assert _parsed(formatter.csv(43, ordered, set(), {})) == _parsed(csv_text(rows))


def _parsed(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_assignment_digest_changes_exactly_when_the_rows_would():
    people = {
        "u1": (1, "ann", "ann@x", "Ann", "A", "Ann A"),
        "u2": (2, "bob", "bob@x", "Bob", "B", "Bob B"),
        "u3": (3, "cy", "cy@x", "Cy", "C", "Cy C"),
    }
    base = AssignmentDigests(people).of({"u1"}, {"g1": frozenset({"u2", "u3"})})
    assert AssignmentDigests(people).of({"u1"}, {"g1": frozenset({"u3", "u2"})}) == base
    # Who, how (direct or through a group), and what each person's row holds all count.
    assert AssignmentDigests(people).of({"u1"}, {"g1": frozenset({"u2"})}) != base
    assert AssignmentDigests(people).of({"u1", "u2"}, {"g1": frozenset({"u3"})}) != base
    assert AssignmentDigests(people).of(set(), {"g1": frozenset({"u1", "u2", "u3"})}) != base
    assert AssignmentDigests(people).of({"u1"}, {"g2": frozenset({"u2", "u3"})}) != base
    renamed = {**people, "u3": (3, "cy", "cy@x", "Cyrus", "C", "Cyrus C")}
    assert AssignmentDigests(renamed).of({"u1"}, {"g1": frozenset({"u2", "u3"})}) != base
    # A person outside the directory (no row yet) differs from one in it.
    assert AssignmentDigests({}).of({"u1"}, {"g1": frozenset({"u2", "u3"})}) != base
    # An app without the renamed person keeps its digest.
    other = AssignmentDigests(people).of({"u1"}, {})
    assert AssignmentDigests(renamed).of({"u1"}, {}) == other
