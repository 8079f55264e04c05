"""Re-encrypt every alert channel's signing secret under the first key of FIELD_ENCRYPTION_KEYS.

Run it beside `rotate_encryption_keys` when rotating keys, before removing the old key.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from alerts.services import channel_reencrypt_all
from integrations.crypto import CredentialsUnreadable


class Command(BaseCommand):
    help = "Re-encrypt all alert channel secrets under the newest FIELD_ENCRYPTION_KEYS key."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            count = channel_reencrypt_all()
        except CredentialsUnreadable as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {count} alert channel secret(s)."))
