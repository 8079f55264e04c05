"""The indexes the dashboard's reads need on integrations_appuser (dashboard migrations, raw SQL
outside Django's model state) are there after migrating. (tests/test_embedded_db.py checks them on
the embedded default too.)"""

from __future__ import annotations

import pytest
from django.db import connection as db

READ_INDEXES = {
    "dash_appuser_diruser_lastused",
    "dash_appuser_member_last_used",
    "dash_appuser_live_app_lastused",
    "dash_appuser_admin_roles",
}


@pytest.mark.django_db
def test_the_read_indexes_are_on_the_test_database():
    with db.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'integrations_appuser'")
        found = dict(cursor.fetchall())
    assert set(found) >= READ_INDEXES, sorted(found)
    assert "last_used_at IS NOT NULL" in found["dash_appuser_member_last_used"]
