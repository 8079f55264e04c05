"""Connect a JumpCloud account from the command line (automation, the demo).

The API key is read from a file or an environment variable, never from the command line, where it
would land in shell history and in every process listing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from integrations.models import Connection
from integrations.providers import CredentialsError
from integrations.services.connections import ConnectRateLimited, connection_create


class Command(BaseCommand):
    help = "Connect a JumpCloud organization. Prints the new connection's id."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # No abbreviations: nothing that looks like "--api-key VALUE" may ever be accepted.
        return super().create_parser(prog_name, subcommand, allow_abbrev=False, **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", default="", help="Display name (default: the organization's name)")
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--api-key-file", type=Path, help="File holding the API key (first line)")
        source.add_argument(
            "--api-key-env",
            default="JUMPCLOUD_API_KEY",
            help="Environment variable holding the API key (default JUMPCLOUD_API_KEY)",
        )
        parser.add_argument("--org-id", default="", help="Organization ID (required for multi-tenant keys)")
        parser.add_argument("--region", default="us", choices=["us", "eu", "in"])
        parser.add_argument(
            "--base-url", default="", help="An origin allowed by JUMPCLOUD_ALLOWED_BASE_URLS (the simulator)"
        )
        parser.add_argument(
            "--permission", default="read_only", choices=[c for c, _ in Connection.Permission.choices]
        )
        parser.add_argument("--no-sync", action="store_true", help="Do not queue the first sync")

    def handle(self, *args: Any, **opts: Any) -> None:
        api_key = self._read_key(opts)
        try:
            connection = connection_create(
                provider_key="jumpcloud",
                name=opts["name"],
                credentials={"api_key": api_key},
                permission=opts["permission"],
                region=opts["region"],
                base_url=opts["base_url"],
                org_id=opts["org_id"],
                start_sync=not opts["no_sync"],
            )
        except CredentialsError as exc:
            raise CommandError(exc.message) from None
        except ConnectRateLimited as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write(f"Connected “{connection.name}” (organization {connection.org_id}).")
        for notice in (connection.capabilities or {}).get("notices", []):
            self.stderr.write(self.style.WARNING(f"Note: {notice}"))
        self.stdout.write(str(connection.pk))

    def _read_key(self, opts: dict[str, Any]) -> str:
        if opts.get("api_key_file"):
            path: Path = opts["api_key_file"]
            try:
                lines = path.read_text().splitlines()
            except OSError as exc:
                raise CommandError(f"Cannot read the API key file {path}: {exc.strerror}") from None
            key = lines[0].strip() if lines else ""
            if not key:
                raise CommandError(f"The API key file {path} is empty.")
            return key
        key = os.environ.get(opts["api_key_env"], "").strip()
        if not key:
            raise CommandError(
                f"Set {opts['api_key_env']} or pass --api-key-file: the key is never taken from the command line."
            )
        return key
