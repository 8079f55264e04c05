"""Create the first torii Admin without prompts (a superuser, so /admin/ works for them too).

The password comes from TORII_ADMIN_PASSWORD; without it one is generated and printed once. Running
it again when the user exists changes nothing (and prints no password), so `make run` can call it
every time.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.roles import ADMIN, grant_role


class Command(BaseCommand):
    help = "Create the first torii Admin (password from TORII_ADMIN_PASSWORD, or generated and printed once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default=os.environ.get("TORII_ADMIN_USERNAME", "admin"))
        parser.add_argument("--email", default=os.environ.get("TORII_ADMIN_EMAIL", ""))

    def handle(self, *args: Any, username: str, email: str, **options: Any) -> None:
        User = get_user_model()
        existing = User.objects.filter(username=username).first()
        if existing is not None:
            grant_role(existing, ADMIN)
            if not (existing.is_staff and existing.is_superuser):
                existing.is_staff = existing.is_superuser = True
                existing.save(update_fields=["is_staff", "is_superuser"])
            self.stdout.write(f"Admin '{username}' already exists; password unchanged.")
            return
        password = os.environ.get("TORII_ADMIN_PASSWORD", "")
        generated = not password
        if generated:
            password = secrets.token_urlsafe(18)
        # A superuser: the Django admin site (/admin/) works for the first Admin as a fallback.
        # Roles are given on torii's People page.
        user = User(username=username, email=email, is_staff=True, is_superuser=True)
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise CommandError("TORII_ADMIN_PASSWORD is too weak: " + " ".join(exc.messages)) from exc
        user.set_password(password)
        user.save()
        grant_role(user, ADMIN)
        self.stdout.write(self.style.SUCCESS(f"Created torii Admin '{username}'."))
        if generated:
            self.stdout.write(f"Log in as '{username}' with password: {password}")
            self.stdout.write("(shown once; set TORII_ADMIN_PASSWORD to choose it yourself)")
