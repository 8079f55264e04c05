"""Recompute every connection's read models now (after an upgrade that added them, or to check a
suspicion); syncs and the daily beat task otherwise keep them current."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from integrations.services.read_models import read_models_refresh_all


class Command(BaseCommand):
    help = "Recompute the read models (per-app, per-person and per-connection counts) of every connection."

    def handle(self, *args: Any, **options: Any) -> None:
        done = read_models_refresh_all()
        self.stdout.write(f"Refreshed the read models of {done} connection(s).")
