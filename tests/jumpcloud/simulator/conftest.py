"""Fixtures for the simulator's own tests: simulators over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jumpcloud.simulator import Simulator, SimulatorConfig
from tests.jumpcloud.simulator.support import ANCHOR, SMALL, Api


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    """Shared by a module's read-only tests; tests that write use fresh_sim."""
    simulator = Simulator(SMALL).start()
    yield simulator
    simulator.stop()


@pytest.fixture
def fresh_sim() -> Iterator[Simulator]:
    simulator = Simulator(
        SimulatorConfig(seed=5, users=60, apps=6, days=5, events=1500, admins=8, groups=12, anchor=ANCHOR)
    ).start()
    yield simulator
    simulator.stop()


@pytest.fixture
def api(sim: Simulator) -> Iterator[Api]:
    client = Api(sim)
    yield client
    client.close()
