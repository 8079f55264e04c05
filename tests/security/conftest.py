"""Fixtures of the security suite: a small JumpCloud simulator, a canary key, and sample objects
for every kind of id a URL takes (so the URL walkers can reverse every route)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jumpcloud.simulator import Simulator, SimulatorConfig

# Small: the security suite exercises paths, not volume.
SIM_CONFIG = SimulatorConfig(seed=17, users=24, apps=3, days=2, events=400, admins=3, groups=4)


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    simulator = Simulator(SIM_CONFIG).start(host="127.0.0.1", port=0)
    yield simulator
    simulator.stop()


@pytest.fixture
def allow_sim(settings, sim: Simulator) -> Iterator[Simulator]:
    settings.JUMPCLOUD_ALLOWED_BASE_URLS = [sim.base_url]
    sim.set_faults(None)
    sim.clear_requests()
    yield sim
    sim.set_faults(None)


@pytest.fixture
def canary(sim: Simulator) -> str:
    """A real key (the simulator accepts only its own) that is easy to search for: 40 hex chars."""
    key = sim.keys["admin"]
    assert len(key) >= 32
    return key


@pytest.fixture(scope="module")
def hostile_sim() -> Iterator[Simulator]:
    """A tiny tenant with hostile records planted in it (tests/security/hostile.py)."""
    from tests.security import hostile

    simulator = Simulator(SimulatorConfig(seed=23, users=10, apps=2, days=1, events=120, admins=2, groups=3))
    simulator.start(host="127.0.0.1", port=0)
    hostile.plant(simulator)
    yield simulator
    simulator.stop()
