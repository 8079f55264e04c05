"""Fixtures for sync and connect tests: a JumpCloud simulator over real HTTP and a connection to it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from jumpcloud.simulator import Simulator, SimulatorConfig

SMALL = SimulatorConfig(seed=7, users=240, apps=8, days=10, events=6000, admins=10, groups=10)


@pytest.fixture(scope="module")
def sim():
    # The history ends ten minutes ago: every late-arriving event of it is visible from the start
    # (they arrive at most ~3 minutes late), so no test sees the simulator's own events trickle in
    # between two syncs; tests add the new events they reason about.
    config = dataclasses.replace(SMALL, anchor=datetime.now(UTC) - timedelta(minutes=10))
    simulator = Simulator(config).start(host="127.0.0.1", port=0)
    yield simulator
    simulator.stop()


@pytest.fixture
def allow_sim(settings, sim):
    settings.JUMPCLOUD_ALLOWED_BASE_URLS = [sim.base_url]
    return sim


@pytest.fixture
def connect(allow_sim, db):
    """connect(key_role="admin", **kwargs) -> Connection, through the real connect service."""
    from integrations.services.connections import connection_create

    def _connect(key_role: str = "admin", *, permission: str = "read_only", **kwargs):
        return connection_create(
            provider_key="jumpcloud",
            name=kwargs.pop("name", f"Sim {key_role}"),
            credentials={"api_key": allow_sim.keys[key_role]},
            permission=permission,
            base_url=allow_sim.base_url,
            start_sync=kwargs.pop("start_sync", False),
            **kwargs,
        )

    return _connect
