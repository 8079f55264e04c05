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


def _cell(value: Any) -> Any:
    if value is None:
        return NULL
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, str) and value == NULL:
        return "\\\\N"  # a literal backslash-N string, never confused with NULL
    return value


def _csv_buffer(rows: Iterable[Sequence[Any]]) -> io.StringIO:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerows([_cell(v) for v in row] for row in rows)
    buf.seek(0)
    return buf


def _copy_to_temp(cursor: Any, table: str, temp: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cols = ", ".join(columns)
    # ON COMMIT DROP: the staging table lives exactly as long as the transaction it serves.
    cursor.execute(f'CREATE TEMP TABLE "{temp}" ON COMMIT DROP AS SELECT {cols} FROM "{table}" WITH NO DATA')
    raw = cursor.cursor if hasattr(cursor, "cursor") else cursor
    raw.copy_expert(
        f"COPY \"{temp}\" ({cols}) FROM STDIN WITH (FORMAT csv, NULL '{NULL}')", _csv_buffer(rows)
    )


def insert_ignore(*, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], conflict: Sequence[str]) -> int:
    """Insert rows, skipping those whose conflict key exists. Returns how many were inserted.
    Must run inside a transaction (the staging table is dropped on commit)."""
    if not rows:
        return 0
    cols = ", ".join(columns)
    with db.cursor() as cursor:
        if is_postgres():
            _copy_to_temp(cursor, table, f"stage_{table}", columns, rows)
            cursor.execute(
                f'INSERT INTO "{table}" ({cols}) SELECT {cols} FROM "stage_{table}" '
                f"ON CONFLICT ({', '.join(conflict)}) DO NOTHING"
            )
            return cursor.rowcount
        placeholders = ", ".join(["%s"] * len(columns))
        before = db.connection.total_changes
        cursor.executemany(
            f'INSERT INTO "{table}" ({cols}) VALUES ({placeholders}) ON CONFLICT ({", ".join(conflict)}) DO NOTHING',
            [tuple(_sqlite_value(v) for v in row) for row in rows],
        )
        return db.connection.total_changes - before


def _sqlite_value(value: Any) -> Any:
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
            _copy_to_temp(cursor, table, f"stage_{table}", columns, rows)
            cursor.execute(
                f'INSERT INTO "{table}" AS t ({cols}) SELECT {cols} FROM "stage_{table}" '
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
