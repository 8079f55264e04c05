"""A group's membership read with pages in flight equals the one-page-at-a-time read, against the
simulator over HTTP, including under rate limits and outages."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from jumpcloud.assignment_reader import read_group
from jumpcloud.client import PAGE_LIMIT, PAGES_AHEAD, JumpCloudClient
from jumpcloud.simulator import FaultConfig, Simulator, SimulatorConfig


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator(SimulatorConfig(seed=3, users=450, apps=4, days=1)).start(host="127.0.0.1", port=0)
    yield simulator
    simulator.stop()


def _client(sim: Simulator) -> JumpCloudClient:
    return JumpCloudClient(sim.keys["admin"], base_url=sim.base_url, backoff_factor=0.01, retry_after_max=1)


def test_pages_in_flight_read_what_one_page_at_a_time_reads(sim):
    groups = sim.tenant("primary").groups
    with _client(sim) as client, ThreadPoolExecutor(PAGES_AHEAD) as pool:
        for group in groups:
            expected = read_group(client, group.id)
            assert read_group(client, group.id, pool=pool) == expected
    sizes = [len(read_group(_client(sim), g.id)[0]) for g in groups]
    # A group of several pages is needed, or this test would prove nothing about paging.
    assert max(sizes) > 2 * PAGE_LIMIT


def test_pages_in_flight_survive_rate_limits_and_outages(sim):
    everyone = max(sim.tenant("primary").groups, key=lambda g: len(read_group(_client(sim), g.id)[0]))
    expected = read_group(_client(sim), everyone.id)
    sim.set_faults(
        FaultConfig(rate_429=0.3, retry_after_share=0.5, retry_after_seconds=0, rate_503=0.1, seed=5)
    )
    with _client(sim) as client, ThreadPoolExecutor(PAGES_AHEAD) as pool:
        assert read_group(client, everyone.id, pool=pool)[0] == expected[0]
