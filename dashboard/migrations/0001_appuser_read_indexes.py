"""Indexes the dashboard's reads need on integrations_appuser (indexes only: no model change).

They live in the dashboard app, as SQL outside Django's model state, so that they neither collide
with the integrations app's migration graph nor make `makemigrations` propose to drop them. If they
move into AppUser.Meta.indexes later, use SeparateDatabaseAndState with the same names (state
only) so the database is not touched twice. Measured on a 50k-people / 400k-assignment tenant.

- dash_appuser_diruser_lastused (directory_user_id, last_used_at): a person's latest app use and
  app count for the users table, the "no use in N days" anti-join; index-only probes instead of
  heap reads of every assignment (sorting all people by last use: 280 ms → 80 ms).
- dash_appuser_member_last_used (last_used_at) WHERE directory_user_id IS NOT NULL: app assignments
  newest use first, so the users table sorted by last use reads a few thousand index entries
  instead of computing every person's latest use (→ 25 ms).
- dash_appuser_live_app_lastused (application_id, last_used_at DESC NULLS LAST)
  INCLUDE (directory_user_id) WHERE removed_at IS NULL: assigned/active users per application
  index-only (applications page, insights: 155 ms → 85 ms), an application's users most recent
  first without sorting them, and "people who can use app X" without the heap.
- dash_appuser_admin_roles (application_id, role) WHERE is_admin: administrators are a few dozen
  rows among hundreds of thousands (role filter choices, administrator hygiene: 12–25 ms → < 1 ms).

"""

from django.db import migrations

TABLE = "integrations_appuser"
INDEXES = {
    "dash_appuser_diruser_lastused": "(directory_user_id, last_used_at)",
    "dash_appuser_member_last_used": "(last_used_at) WHERE directory_user_id IS NOT NULL",
    "dash_appuser_live_app_lastused": (
        "(application_id, last_used_at DESC NULLS LAST) INCLUDE (directory_user_id) WHERE removed_at IS NULL"
    ),
    "dash_appuser_admin_roles": "(application_id, role) WHERE is_admin",
}


def create(apps, schema_editor):
    for name, definition in INDEXES.items():
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {TABLE} {definition}")


def drop(apps, schema_editor):
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("integrations", "0001_initial")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
