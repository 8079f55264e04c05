"""A BRIN index on UsageEvent.occurred_at, on PostgreSQL only (SQLite has no BRIN)."""

from django.db import migrations


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS usageevent_occurred_brin ON integrations_usageevent USING brin (occurred_at)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS usageevent_occurred_brin")


class Migration(migrations.Migration):
    dependencies = [("integrations", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
