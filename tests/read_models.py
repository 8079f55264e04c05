"""Tests that write synced rows by hand refresh the read models afterwards, as a sync's finish
step does (integrations.services.read_models), before reading pages or selectors."""

from __future__ import annotations

from integrations.models import Connection
from integrations.services.read_models import read_models_refresh


def refresh(connection: Connection | None = None) -> None:
    """One connection's read models, or every connection's."""
    connections = [connection] if connection is not None else list(Connection.objects.all())
    for c in connections:
        read_models_refresh(connection=c)
