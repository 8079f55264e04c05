"""CSV downloads that spreadsheet programs cannot turn into formulas, streamed row by row.

Everything torii exports came from an upstream system (names, e-mails, app labels) and is
untrusted: a cell such as `=HYPERLINK("http://evil", "x")` would run as a formula when the file is
opened in Excel or LibreOffice (CSV injection, OWASP). `safe_cell` neutralises any text cell that
starts with a formula trigger by prefixing an apostrophe, which spreadsheets treat as "this is
text". Use `csv_response` for every CSV torii serves.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import Any

from django.http import StreamingHttpResponse

# The four the OWASP guidance names, plus tab and carriage return, which some spreadsheet
# programs strip before deciding whether a cell is a formula.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """One cell as written to CSV: numbers and booleans as they are, text neutralised."""
    if value is None:
        return ""
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    text = str(value)
    if text.startswith(FORMULA_TRIGGERS):
        return "'" + text
    return text


def safe_row(row: Iterable[Any]) -> list[Any]:
    return [safe_cell(v) for v in row]


class _Echo:
    """A file-like object whose write() hands the line back, so csv.writer can stream."""

    def write(self, value: str) -> str:
        return value


def csv_lines(header: Sequence[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    # A UTF-8 byte-order mark so Excel reads accented names correctly.
    yield "\ufeff" + writer.writerow(safe_row(header))
    for row in rows:
        yield writer.writerow(safe_row(row))


def csv_response(
    filename: str, header: Sequence[str], rows: Iterable[Iterable[Any]]
) -> StreamingHttpResponse:
    """A streamed CSV download; `rows` should be a lazy iterator (e.g. QuerySet.iterator())."""
    safe_name = "".join(ch for ch in filename if ch.isalnum() or ch in "._-") or "export.csv"
    response = StreamingHttpResponse(csv_lines(header, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{safe_name}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store"
    return response
