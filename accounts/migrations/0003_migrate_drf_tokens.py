"""Existing REST framework tokens (stored in plaintext by rest_framework.authtoken) become hashed,
expiring API tokens, and the plaintext table is dropped.

A script holding an old token keeps working until the new token expires (API_TOKEN_MAX_DAYS from
this migration). rest_framework.authtoken is no longer installed, so its table is read with SQL
when it exists, then dropped (a leftover table would keep the plaintext keys, and its foreign key
to auth_user would block `flush`). Should rest_framework.authtoken ever be installed again, run
`manage.py migrate authtoken zero --fake` first.
"""

import hashlib
from datetime import timedelta

from django.conf import settings
from django.db import migrations
from django.utils import timezone

DRF_TABLE = "authtoken_token"


def convert(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if DRF_TABLE not in connection.introspection.table_names(cursor):
            return
        cursor.execute(f"SELECT key, user_id FROM {DRF_TABLE}")  # noqa: S608 - a constant
        rows = cursor.fetchall()
    ApiToken = apps.get_model("accounts", "ApiToken")
    expiry = timezone.now() + timedelta(days=getattr(settings, "API_TOKEN_MAX_DAYS", 90))
    ApiToken._default_manager.bulk_create(
        [
            ApiToken(
                # knox's digest: SHA-512 of the token's UTF-8 bytes; knox finds it by its first 15
                # characters.
                digest=hashlib.sha512(key.encode()).hexdigest(),
                token_key=key[:15],
                user_id=user_id,
                expiry=expiry,
                name="Token from before hashed tokens",
            )
            for key, user_id in rows
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {DRF_TABLE}")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_api_tokens_and_limits")]
    operations = [migrations.RunPython(convert, migrations.RunPython.noop)]
