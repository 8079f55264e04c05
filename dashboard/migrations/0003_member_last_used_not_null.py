"""dash_appuser_member_last_used leaves out the assignments nobody used (last_used_at IS NULL).

Its one reader (the users table newest-use-first, integrations.selectors.users._newest_first)
asks for used assignments only, and any `last_used_at >= …` filter implies the same, so the
smaller index serves what the old one did. A first sync writes a million or more assignment rows,
most of them never used: each was an index entry (COPY of 1.37 million assignment rows: 9.4 s
with the old index, 8.7 s with this one). Same name, so nothing that refers to it changes.

It also puts back the other indexes of 0001 where they are missing, which only happened on the
SQLite default torii once had (Django rebuilt the table to drop a foreign-key constraint in
integrations 0003); on PostgreSQL nothing is missing and CREATE INDEX IF NOT EXISTS does nothing.
"""

from importlib import import_module

from django.db import migrations

TABLE = "integrations_appuser"
INDEX = "dash_appuser_member_last_used"
NEW = "(last_used_at) WHERE directory_user_id IS NOT NULL AND last_used_at IS NOT NULL"
OLD = "(last_used_at) WHERE directory_user_id IS NOT NULL"
READ_INDEXES = import_module("dashboard.migrations.0001_appuser_read_indexes").INDEXES


def _replace(schema_editor, definition: str) -> None:
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")
    schema_editor.execute(f"CREATE INDEX {INDEX} ON {TABLE} {definition}")


def forwards(apps, schema_editor):
    _replace(schema_editor, NEW)
    for name, definition in READ_INDEXES.items():
        if name != INDEX:
            schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {TABLE} {definition}")


def backwards(apps, schema_editor):
    _replace(schema_editor, OLD)


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0002_people_search_trigram"),
        ("integrations", "0003_bulk_tables_without_fk_constraints"),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
