"""A mid-size tenant paged end to end over HTTP (counts and uniqueness only; speed lives in
bench/simulator_serving.py)."""

from __future__ import annotations

import pytest

from jumpcloud.simulator import Simulator, SimulatorConfig
from tests.jumpcloud.simulator.support import ANCHOR, Api

pytestmark = pytest.mark.slow


def test_page_5000_users_and_100000_events() -> None:
    config = SimulatorConfig(seed=21, users=5000, apps=60, days=30, events=100_000, anchor=ANCHOR)
    with Simulator(config).start() as sim:
        a = Api(sim)
        ids: list[str] = []
        skip = 0
        while True:
            page = a.get("/api/systemusers", params={"limit": 100, "skip": skip, "sort": "_id"}).json()[
                "results"
            ]
            ids.extend(u["_id"] for u in page)
            skip += len(page)
            if len(page) < 100:
                break
        assert len(ids) == len(set(ids)) == 5000

        events = a.all_events({"service": ["all"], "start_time": "2024-12-01T00:00:00Z", "limit": 10000})
        event_ids = [e["id"] for e in events]
        assert len(event_ids) == len(set(event_ids)) == 100_000
        assert [e["timestamp"][:19] for e in events] == sorted(e["timestamp"][:19] for e in events)

        backwards = a.all_events(
            {"service": ["sso"], "start_time": "2024-12-01T00:00:00Z", "limit": 7000, "sort": "DESC"}
        )
        assert len({e["id"] for e in backwards}) == len(backwards) == 60_000
