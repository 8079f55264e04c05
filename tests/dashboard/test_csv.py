"""dashboard.csv: formula-safe, streamed CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest

from dashboard.csv import csv_response, safe_cell


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://evil","x")', '\'=HYPERLINK("http://evil","x")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("alice", "alice"),
        ("a=b", "a=b"),
        ("", ""),
        (None, ""),
        (5, 5),
        (-5, -5),
        (True, True),
        (dt.date(2026, 1, 2), "2026-01-02"),
    ],
)
def test_safe_cell(value, expected):
    assert safe_cell(value) == expected


def test_csv_response_streams_neutralised_rows():
    rows = iter([("=cmd|' /C calc'!A0", "bob", 3), ("carol", "-x", None)])
    response = csv_response("users export.csv", ["name", "@user", "n"], rows)
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == 'attachment; filename="usersexport.csv"'
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")
    parsed = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert parsed == [["name", "'@user", "n"], ["'=cmd|' /C calc'!A0", "bob", "3"], ["carol", "'-x", ""]]


def test_every_field_is_quoted_so_another_separator_cannot_split_out_a_formula():
    """A display name such as `Dee;=cmd|' /C calc'!A0;`, unquoted, becomes a formula cell when a
    spreadsheet reads the file with `;` as the separator (the default in many European locales)."""
    name = "Dee;=cmd|' /C calc'!A0;"
    response = csv_response("x.csv", ["name", "n"], iter([(name, 3), ("plain", None)]))
    body = b"".join(response.streaming_content).decode("utf-8").lstrip("\ufeff")
    for delimiter in (",", ";", "\t", "|"):
        for row in csv.reader(io.StringIO(body, newline=""), delimiter=delimiter):
            for cell in row:
                assert not cell.lstrip().startswith(("=", "+", "-", "@")), (delimiter, cell)
    assert all(line.startswith('"') and line.endswith('"') for line in body.splitlines())


@pytest.mark.django_db
def test_the_users_export_read_with_semicolons_has_no_formula_cell(admin_client):
    from django.urls import reverse

    from tests.dashboard.builders import build_tenant

    tenant = build_tenant(people=2, apps=1)
    person = tenant.people[0]
    person.display_name = "Dee;=cmd|' /C calc'!A0;"
    person.first_name = "Dee;=cmd|' /C calc'!A0;"
    person.save()
    response = admin_client.get(reverse("dashboard:users_export"))
    body = b"".join(response.streaming_content).decode("utf-8").lstrip("\ufeff")
    assert "Dee;=cmd" in body
    cells = [cell for row in csv.reader(io.StringIO(body, newline=""), delimiter=";") for cell in row]
    assert cells and not [c for c in cells if c.lstrip().startswith(("=", "+", "-", "@"))]
