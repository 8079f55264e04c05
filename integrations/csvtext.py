"""Rows as CSV text for PostgreSQL's COPY (no Django here: the event fetcher process uses it too)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any


def csv_text(rows: Iterable[Sequence[Any]]) -> str:
    """csv.writer's text, rows ending in LF. csv.writer leaves a lone CR in a field unquoted, and
    COPY ends a line at an unquoted CR (a name with one would fail its page on every retry): then
    the rows are written again ending in CRLF, which makes csv.writer quote every CR."""
    rows = rows if isinstance(rows, (list, tuple)) else list(rows)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    text = buf.getvalue()
    if "\r" in text:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n").writerows(rows)
        text = buf.getvalue()
    return text


# What makes csv.writer (QUOTE_MINIMAL, ',' and '"') quote a field, and a lone CR, which it leaves
# bare but COPY would take for the end of the line.
CSV_SPECIAL = re.compile(r'[,"\r\n]')


def csv_field(value: str) -> str:
    """A text field as csv.writer writes it, with a CR quoted as well: COPY reads it back as it was."""
    return '"' + value.replace('"', '""') + '"' if CSV_SPECIAL.search(value) else value
