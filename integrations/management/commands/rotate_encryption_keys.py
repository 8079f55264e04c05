"""Re-encrypt every stored credential under the first key of FIELD_ENCRYPTION_KEYS.

Rotation: put a new key first in FIELD_ENCRYPTION_KEYS (keep the old one after it), run this and
`alerts_rotate_secrets` (the alert channels' signing secrets use the same keys), then remove the
old key.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from integrations.crypto import CredentialsUnreadable
from integrations.services.connections import connection_reencrypt_all


class Command(BaseCommand):
    help = "Re-encrypt all connection credentials under the newest FIELD_ENCRYPTION_KEYS key."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            count = connection_reencrypt_all()
        except CredentialsUnreadable as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Re-encrypted {count} connection(s). Run alerts_rotate_secrets too before removing "
                "the old key."
            )
        )
