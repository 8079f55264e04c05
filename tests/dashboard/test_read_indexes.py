"""The indexes the dashboard's reads need on integrations_appuser (dashboard migrations, raw SQL
outside Django's model state) are there after migrating, on PostgreSQL and on the embedded SQLite
default, where Django rebuilds the table for some schema changes and drops indexes it does not
know of."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection as db

ROOT = Path(__file__).resolve().parents[2]
READ_INDEXES = {
    "dash_appuser_diruser_lastused",
    "dash_appuser_member_last_used",
    "dash_appuser_live_app_lastused",
    "dash_appuser_admin_roles",
}


@pytest.mark.django_db
def test_the_read_indexes_are_on_the_test_database():
    with db.cursor() as cursor:
        if db.vendor == "postgresql":
            cursor.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'integrations_appuser'"
            )
        else:
            cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'integrations_appuser'"
            )
        found = dict(cursor.fetchall())
    assert set(found) >= READ_INDEXES, sorted(found)
    assert "last_used_at IS NOT NULL" in found["dash_appuser_member_last_used"]


def test_the_read_indexes_survive_migrating_the_embedded_sqlite_default(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "TORII_ENV")}
    env["TORII_VAR_DIR"] = str(tmp_path)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    script = (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
        "print('\\n'.join(n for (n,) in c.execute(\"SELECT name FROM sqlite_master WHERE type = 'index'\")))"
    )
    names = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "db.sqlite3")],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.split()
    assert set(names) >= READ_INDEXES, sorted(names)
