"""A JumpCloud simulator over real HTTP, an account connected to it and fully synced (real sync
code, real PostgreSQL), and a helper to make policies."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.models import Connection, SyncRun
from integrations.services.connections import connection_create
from integrations.services.sync import sync_run_execute, sync_run_request
from jumpcloud.simulator import Simulator, SimulatorConfig
from policies.models import Policy

CONFIG = SimulatorConfig(seed=7, users=120, apps=5, days=10, events=3000, admins=6, groups=6)


@pytest.fixture
def sim():
    simulator = Simulator(CONFIG).start(host="127.0.0.1", port=0)
    yield simulator
    simulator.stop()


def connect_and_sync(
    sim: Simulator, settings: Any, *, permission: str = "read_write", name: str = "Acme"
) -> Connection:
    settings.JUMPCLOUD_ALLOWED_BASE_URLS = [*settings.JUMPCLOUD_ALLOWED_BASE_URLS, sim.base_url]
    settings.TORII_ACTION_TIMEOUT_SECONDS = 10
    connection = connection_create(
        provider_key="jumpcloud",
        name=name,
        credentials={"api_key": sim.keys["admin"]},
        permission=permission,
        base_url=sim.base_url,
        start_sync=False,
    )
    run = sync_run_request(connection=connection, kind="full", trigger="manual", enqueue=False)
    assert sync_run_execute(run_id=run.pk).status == SyncRun.Status.SUCCEEDED
    connection.refresh_from_db()
    sim.clear_requests()
    return connection


@pytest.fixture
def synced(sim, settings, db):
    return connect_and_sync(sim, settings)


def make_policy(connections: list[Connection], **fields: Any) -> Policy:
    defaults: dict[str, Any] = {
        "name": fields.pop("name", "Inactive people"),
        "inactive_days": 3,
        "min_account_age_days": 14,
        "max_people": 1000,
        "max_percent": 100,
        "dry_run": False,
        "action": Policy.Action.SUSPEND,
    }
    policy = Policy.objects.create(**{**defaults, **fields})
    policy.connections.set(connections)
    return policy
