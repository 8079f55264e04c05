"""Bulk writes for syncs: COPY into a staging table, then one set-based statement.

COPY (CSV) into a per-session temporary table and `INSERT … SELECT … ON CONFLICT`. Upserts only
touch rows whose values changed (`WHERE (…) IS DISTINCT FROM (…)`), so a re-sync with no upstream
change writes nothing.

Row contract (what keeps a million-row sync cheap: no per-cell conversion in Python): cells are
str, int, float, bool, None, date or datetime, and JSON columns arrive already serialised as str.
The csv module writes these natively; PostgreSQL reads `True`/`False` as booleans, an unquoted
empty field as NULL, and text columns are exempt from NULL matching (FORCE_NOT_NULL), so an empty
string stays an empty string.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from django.db import connection as db

from integrations.csvtext import csv_text

_TEXT_COLUMNS: dict[str, str] = {}


# A connection whose data is being purged counts as gone: nothing may be written for it any more.
_HOLD_CONNECTION = "SELECT 1 FROM integrations_connection WHERE id = %s AND purge_requested_at IS NULL"


def hold_connection(connection_id: int) -> bool:
    """Inside a transaction about to write AppUser or UsageEvent rows of this connection: lock its
    row until commit, or return False when it no longer exists.

    Those two tables carry no foreign-key constraints (PostgreSQL checks one per row at commit,
    seconds over a million-row backfill), so this does once per transaction what a constraint did
    for every row: FOR KEY SHARE on the connection's row, the lock a constraint check takes. A
    disconnect that deletes the data locks the row FOR UPDATE first, so it waits for a writing
    transaction to commit and then deletes its rows too; a transaction that comes later finds
    the connection gone and writes nothing.
    """
    with db.cursor() as cursor:
        cursor.execute(_HOLD_CONNECTION + " FOR KEY SHARE", [connection_id])
        return cursor.fetchone() is not None


def _csv_buffer(rows: Sequence[Sequence[Any]] | str) -> io.BytesIO:
    """COPY input from rows, or from CSV text already formatted.

    As UTF-8 bytes (the connection's encoding): io.StringIO keeps four bytes a character, so an
    app's 50,000 assignment rows (7 MB of text) took 30 MB more while two writers COPY them."""
    text = rows if isinstance(rows, str) else csv_text(rows)
    if "\x00" in text or "\\u0000" in text:
        # PostgreSQL text and jsonb cannot hold NUL (raw, or JSON-escaped in a serialised column):
        # one upstream value with it would fail the page on every retry. A C-speed scan per page.
        text = text.replace("\x00", "\ufffd").replace("\\u0000", "\\ufffd")
    return io.BytesIO(text.encode())


def _copy_options(cursor: Any, relation: str) -> str:
    """COPY options for `relation`: CSV, with its text columns exempt from NULL matching."""
    text_columns = _TEXT_COLUMNS.get(relation)
    if text_columns is None:
        cursor.execute(
            "SELECT string_agg(quote_ident(attname), ', ') FROM pg_attribute WHERE attrelid = %s::regclass "
            "AND attnum > 0 AND NOT attisdropped AND atttypid IN ('text'::regtype, 'varchar'::regtype)",
            [f'"{relation}"'],
        )
        text_columns = _TEXT_COLUMNS[relation] = cursor.fetchone()[0] or ""
    return f"FORMAT csv, FORCE_NOT_NULL ({text_columns})" if text_columns else "FORMAT csv"


def copy_new(*, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]] | str) -> int | None:
    """COPY rows straight into `table`, for rows that are expected to be new.

    Returns how many were written, or None when one of them already exists (a unique violation):
    then nothing is written and the caller takes the staged path (insert_ignore / upsert). Skipping
    the staging table and the per-row conflict handling of `INSERT … ON CONFLICT` roughly halves
    the cost of a row on a first sync. Must run inside a transaction.
    """
    if not rows:
        return 0
    import psycopg2.errors

    with db.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO OFF")
        options = _copy_options(cursor, table)
        raw = cursor.cursor if hasattr(cursor, "cursor") else cursor
        raw.execute("SAVEPOINT torii_copy_new")
        try:
            raw.copy_expert(
                f'COPY "{table}" ({", ".join(columns)}) FROM STDIN WITH ({options})', _csv_buffer(rows)
            )
        except psycopg2.errors.UniqueViolation:
            raw.execute("ROLLBACK TO SAVEPOINT torii_copy_new")
            return None
        written = raw.rowcount
        raw.execute("RELEASE SAVEPOINT torii_copy_new")
        return written


def _stage(cursor: Any, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]] | str) -> str:
    """COPY rows into this session's staging table for (table, columns); returns its name.

    The staging table is created once per database session and reused: creating a table per page
    costs catalog writes on every page. Sync writes commit asynchronously: a crash can lose the
    last transactions — data and checkpoint together — which the next run simply fetches again.
    """
    cols = ", ".join(columns)
    temp = f"stage_{table}_{abs(hash(tuple(columns))) % 10**8}"
    cursor.execute("SET LOCAL synchronous_commit TO OFF")
    cursor.execute(
        f'CREATE TEMP TABLE IF NOT EXISTS "{temp}" ON COMMIT DELETE ROWS AS SELECT {cols} FROM "{table}" WITH NO DATA'
    )
    options = _copy_options(cursor, temp)
    # Emptied at commit; emptied here as well for a second batch in the same transaction.
    cursor.execute(f'DELETE FROM "{temp}"')
    raw = cursor.cursor if hasattr(cursor, "cursor") else cursor
    raw.copy_expert(f'COPY "{temp}" ({cols}) FROM STDIN WITH ({options})', _csv_buffer(rows))
    return temp


def insert_ignore_csv(*, table: str, columns: Sequence[str], csv_text: str, conflict: Sequence[str]) -> int:
    """insert_ignore for rows already formatted as COPY CSV."""
    if not csv_text:
        return 0
    cols = ", ".join(columns)
    with db.cursor() as cursor:
        temp = _stage(cursor, table, columns, csv_text)
        cursor.execute(
            f'INSERT INTO "{table}" ({cols}) SELECT {cols} FROM "{temp}" ON CONFLICT ({", ".join(conflict)}) DO NOTHING'
        )
        return cursor.rowcount


def insert_ignore(
    *, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], conflict: Sequence[str]
) -> int:
    """Insert rows, skipping those whose conflict key exists. Returns how many were inserted.
    Must run inside a transaction."""
    if not rows:
        return 0
    cols = ", ".join(columns)
    with db.cursor() as cursor:
        temp = _stage(cursor, table, columns, rows)
        cursor.execute(
            f'INSERT INTO "{table}" ({cols}) SELECT {cols} FROM "{temp}" '
            f"ON CONFLICT ({', '.join(conflict)}) DO NOTHING"
        )
        return cursor.rowcount


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
    # A page that repeats a record: one row per key, the last wins (PostgreSQL refuses an upsert
    # that touches the same row twice, and the page would fail on every retry).
    key_idx = [columns.index(c) for c in conflict]
    rows = list({tuple(row[i] for i in key_idx): row for row in rows}.values())
    cols = ", ".join(columns)
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in update)
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
