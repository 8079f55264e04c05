"""CSV downloads that spreadsheet programs cannot turn into formulas, streamed row by row.

Everything torii exports came from an upstream system (names, e-mails, app labels) and is
untrusted: a cell such as `=HYPERLINK("http://evil", "x")` would run as a formula when the file is
opened in Excel or LibreOffice (CSV injection, OWASP). `safe_cell` neutralises any text cell that
starts with a formula trigger by prefixing an apostrophe, which spreadsheets treat as "this is
text". Every field is quoted as well (csv.QUOTE_ALL): a spreadsheet that splits on another
separator (`;` in many European locales) would otherwise cut an unquoted cell such as
`Dee;=cmd|' /C calc'!A0;` into pieces, and the second piece would start with `=`. Quoted, the
whole text stays one cell whatever the separator. Use `csv_response` for every CSV torii serves.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator, Sequence
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
    writer = csv.writer(_Echo(), quoting=csv.QUOTE_ALL)
    # A UTF-8 byte-order mark so Excel reads accented names correctly.
    yield "\ufeff" + writer.writerow(safe_row(header))
    for row in rows:
        yield writer.writerow(safe_row(row))


class _ClosingLines:
    """The lines of a download, and what to do when the download ends (finished, broken off or
    never started): Django calls close() on a streamed response's iterator when the response is
    closed."""

    def __init__(self, lines: Iterator[str], on_close: Sequence[Callable[[], None]]) -> None:
        self._lines = lines
        self._on_close = on_close

    def __iter__(self) -> _ClosingLines:
        return self

    def __next__(self) -> str:
        return next(self._lines)

    def close(self) -> None:
        try:
            close = getattr(self._lines, "close", None)
            if close is not None:
                close()
        finally:
            for callback in self._on_close:
                callback()


def csv_response(
    filename: str,
    header: Sequence[str],
    rows: Iterable[Iterable[Any]],
    *,
    on_close: Sequence[Callable[[], None]] = (),
) -> StreamingHttpResponse:
    """A streamed CSV download; `rows` should be a lazy iterator (e.g. QuerySet.iterator()).
    `on_close` runs when the response is closed, however the download ended."""
    safe_name = "".join(ch for ch in filename if ch.isalnum() or ch in "._-") or "export.csv"
    response = StreamingHttpResponse(
        _ClosingLines(csv_lines(header, rows), on_close), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{safe_name}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store"
    return response
