"""Connect the local JumpCloud simulator as a demo account (used by `make run`)."""

from __future__ import annotations

import contextlib
import logging

from integrations.models import Connection, SyncRun
from integrations.providers import CredentialsError
from integrations.services.connections import connection_create
from integrations.services.sync import SyncAlreadyRunning, SyncNotAllowed, sync_run_request
from integrations.urlsafety import normalize_origin

logger = logging.getLogger(__name__)
DEMO_NAME = "Demo (JumpCloud simulator)"


def connect_demo(*, base_url: str, api_key: str) -> Connection | None:
    """Idempotent: reuse a live demo connection to this simulator, else connect one."""
    origin = normalize_origin(base_url)
    existing = (
        Connection.objects.filter(provider="jumpcloud", base_url=origin)
        .exclude(status=Connection.Status.DISCONNECTED)
        .first()
    )
    if existing:
        with contextlib.suppress(SyncAlreadyRunning, SyncNotAllowed):
            sync_run_request(connection=existing, kind=SyncRun.Kind.FULL, trigger=SyncRun.Trigger.MANUAL)
        _example_policy(existing)
        return existing
    try:
        connection = connection_create(
            provider_key="jumpcloud",
            name=DEMO_NAME,
            credentials={"api_key": api_key},
            permission=Connection.Permission.READ_WRITE,
            base_url=origin,
        )
    except CredentialsError as exc:
        logger.error("demo account not connected: %s", exc.message)
        return None
    _example_policy(connection)
    return connection


def _example_policy(connection: Connection) -> None:
    """The demo ships one example policy in dry-run mode. Imported here, not at the top: the
    demo is wiring for `make run`, and the core itself never depends on policies."""
    from policies.demo import policy_demo_ensure

    policy_demo_ensure(connection=connection)
