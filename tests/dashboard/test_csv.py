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
