"""Bulk writes for syncs: COPY into a temporary table, then one set-based statement.

PostgreSQL path: COPY (CSV) into a temp table and `INSERT … SELECT … ON CONFLICT`. Upserts only
touch rows whose values changed (`WHERE (…) IS DISTINCT FROM (…)`), so a re-sync with no upstream
change writes nothing. The SQLite path (embedded default) does the same with executemany; it is for
small demo tenants, not for speed.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from django.db import connection as db

NULL = r"\N"


def is_postgres() -> bool:
    return db.vendor == "postgresql"


def _bool(value: bool) -> str:
    return "t" if value else "f"


def _isoformat(value: date | datetime) -> str:
    return value.isoformat()


def _json(value: Any) -> str:
    return json.dumps(value)


_CONVERT: dict[type, Any] = {
    type(None): lambda _: NULL, bool: _bool, datetime: _isoformat, date: _isoformat, dict: _json, list: _json,
}
_TEXT_COLUMNS: dict[str, str] = {}


def _cell(value: Any) -> Any:
    convert = _CONVERT.get(type(value))
    if convert is not None:
        return convert(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value  # str (and str-based choices), int, float: csv writes them as they are


def _csv_buffer(rows: Iterable[Sequence[Any]], *, preformatted: bool = False) -> io.StringIO:
    """CSV for COPY. Rows are converted cell by cell unless the caller already produced COPY text
    (str cells, NULL for None, 't'/'f' for booleans), which the hot event path does."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerows(rows if preformatted else ([_cell(v) for v in row] for row in rows))
    buf.seek(0)
    return buf


def _stage(cursor: Any, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, preformatted: bool = False) -> str:
    """COPY rows into a per-session staging table emptied at commit; returns its name.

    The staging table is created once per database session and reused (creating a table per page
    costs catalog writes on every page). Commits of sync writes are asynchronous: a crash can lose
    the last transactions, data and checkpoint together, which the next run simply fetches again.
    """
    cols = ", ".join(columns)
    temp = f"stage_{table}_{abs(hash(tuple(columns))) % 10**8}"
    cursor.execute("SET LOCAL synchronous_commit TO OFF")
    cursor.execute(
        f'CREATE TEMP TABLE IF NOT EXISTS "{temp}" ON COMMIT DELETE ROWS AS SELECT {cols} FROM "{table}" WITH NO DATA'
    )
    # Text columns never hold NULL; exempting them from NULL matching keeps a hostile value that
    # happens to read "\N" exactly as it came.
    text_columns = _TEXT_COLUMNS.get(temp)
    if text_columns is None:
        cursor.execute(
            "SELECT string_agg(quote_ident(attname), ', ') FROM pg_attribute WHERE attrelid = %s::regclass "
            "AND attnum > 0 AND atttypid IN ('text'::regtype, 'varchar'::regtype)",
            [temp],
        )
        text_columns = _TEXT_COLUMNS[temp] = cursor.fetchone()[0] or ""
    force = f", FORCE_NOT_NULL ({text_columns})" if text_columns else ""
    raw = cursor.cursor if hasattr(cursor, "cursor") else cursor
    raw.copy_expert(
        f"COPY \"{temp}\" ({cols}) FROM STDIN WITH (FORMAT csv, NULL '{NULL}'{force})",
        _csv_buffer(rows, preformatted=preformatted),
    )
    return temp


def insert_ignore(
    *, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], conflict: Sequence[str], preformatted: bool = False
) -> int:
    """Insert rows, skipping those whose conflict key exists. Returns how many were inserted.
    Must run inside a transaction (the staging table is dropped on commit)."""
    if not rows:
        return 0
    cols = ", ".join(columns)
    with db.cursor() as cursor:
        if is_postgres():
            temp = _stage(cursor, table, columns, rows, preformatted=preformatted)
            cursor.execute(
                f'INSERT INTO "{table}" ({cols}) SELECT {cols} FROM "{temp}" '
                f"ON CONFLICT ({', '.join(conflict)}) DO NOTHING"
            )
            return cursor.rowcount
        placeholders = ", ".join(["%s"] * len(columns))
        before = db.connection.total_changes
        cursor.executemany(
            f'INSERT INTO "{table}" ({cols}) VALUES ({placeholders}) ON CONFLICT ({", ".join(conflict)}) DO NOTHING',
            [tuple(_sqlite_value(v, preformatted) for v in row) for row in rows],
        )
        return db.connection.total_changes - before


def _sqlite_value(value: Any, preformatted: bool = False) -> Any:
    if preformatted:  # COPY text: undo the NULL and boolean spellings
        return None if value == NULL else {"t": True, "f": False}.get(value, value) if value in ("t", "f") else value
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, datetime):
        # Django keeps SQLite datetimes as naive UTC text; match it so unchanged rows compare equal.
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return str(value)
    return value


def upsert(
    *,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    conflict: Sequence[str],
    update: Sequence[str],
) -> tuple[int, int]:
    """Insert new rows and update changed ones; unchanged rows are not written.

    Returns (created, updated). Must run inside a transaction.
    """
    if not rows:
        return 0, 0
    cols = ", ".join(columns)
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in update)
    if is_postgres():
        changed = " OR ".join(f't."{c}" IS DISTINCT FROM EXCLUDED."{c}"' for c in update)
        with db.cursor() as cursor:
            temp = _stage(cursor, table, columns, rows)
            cursor.execute(
                f'INSERT INTO "{table}" AS t ({cols}) SELECT {cols} FROM "{temp}" '
                f"ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {sets} WHERE {changed} "
                "RETURNING (xmax = 0)"
            )
            flags = cursor.fetchall()
        created = sum(1 for (inserted,) in flags if inserted)
        return created, len(flags) - created
    # SQLite: count what exists first so created and updated can be told apart.
    key_idx = [columns.index(c) for c in conflict]
    keys = {tuple(row[i] for i in key_idx) for row in rows}
    with db.cursor() as cursor:
        existing = 0
        key_list = list(keys)
        for start in range(0, len(key_list), 300):
            chunk = key_list[start : start + 300]
            where = " OR ".join("(" + " AND ".join(f'"{c}" = %s' for c in conflict) + ")" for _ in chunk)
            cursor.execute(f'SELECT COUNT(*) FROM "{table}" WHERE {where}', [v for k in chunk for v in k])
            existing += cursor.fetchone()[0]
        changed = " OR ".join(f'"{table}"."{c}" IS NOT EXCLUDED."{c}"' for c in update)
        placeholders = ", ".join(["%s"] * len(columns))
        before = db.connection.total_changes
        cursor.executemany(
            f'INSERT INTO "{table}" ({cols}) VALUES ({placeholders}) '
            f"ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {sets} WHERE {changed}",
            [tuple(_sqlite_value(v) for v in row) for row in rows],
        )
        written = db.connection.total_changes - before
    created = len(keys) - existing
    return created, max(written - created, 0)
