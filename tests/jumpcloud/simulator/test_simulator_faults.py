"""Fault injection (429 with/without Retry-After, 503, latency, truncated bodies, malformed records)
and the request log tests use to check client behaviour."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from jumpcloud.simulator import FaultConfig, Simulator, SimulatorConfig
from tests.jumpcloud.simulator.support import ANCHOR, Api

CONFIG = SimulatorConfig(seed=2, users=40, apps=4, days=3, events=3000, anchor=ANCHOR)
DI = {"service": ["all"], "start_time": "2025-02-01T00:00:00Z", "limit": 1000}


@pytest.fixture
def fsim() -> Iterator[Simulator]:
    simulator = Simulator(CONFIG).start()
    yield simulator
    simulator.stop()


def _statuses(a: Api, n: int, path: str = "/api/systemusers") -> list[requests.Response]:
    return [a.get(path) for _ in range(n)]


def test_429_rate_and_retry_after_share(fsim: Simulator) -> None:
    fsim.set_faults(FaultConfig(rate_429=0.3, retry_after_share=0.5, retry_after_seconds=2, seed=1))
    responses = _statuses(Api(fsim), 400)
    limited = [r for r in responses if r.status_code == 429]
    assert 80 <= len(limited) <= 160  # 120 expected; binomial sd ~9
    with_header = [r for r in limited if "Retry-After" in r.headers]
    assert 0.3 <= len(with_header) / len(limited) <= 0.7
    assert {r.headers["Retry-After"] for r in with_header} == {"2"}
    assert all(r.json() == {"message": "Too Many Requests", "error": "Too Many Requests"} for r in limited)
    assert all(r.status_code == 200 for r in responses if r not in limited)
    records = fsim.requests
    assert sum(1 for rec in records if rec.status == 429 and rec.fault == "429") == len(limited)


def test_503_rate(fsim: Simulator) -> None:
    fsim.set_faults(FaultConfig(rate_503=0.1, seed=3))
    responses = _statuses(Api(fsim), 300)
    unavailable = [r for r in responses if r.status_code == 503]
    assert 12 <= len(unavailable) <= 50
    assert all({"message", "error"} <= set(r.json()) and r.headers["X-Request-Id"] for r in unavailable)


def test_faults_are_deterministic_for_a_seed(fsim: Simulator) -> None:
    a = Api(fsim)
    fsim.set_faults(FaultConfig(rate_429=0.3, rate_503=0.1, seed=42))
    first = [r.status_code for r in _statuses(a, 60)]
    fsim.set_faults(FaultConfig(rate_429=0.3, rate_503=0.1, seed=42))
    second = [r.status_code for r in _statuses(a, 60)]
    assert first == second
    assert {200, 429, 503} <= set(first)


def test_faults_never_touch_control_routes(fsim: Simulator) -> None:
    fsim.set_faults(FaultConfig(rate_429=0.6, rate_503=0.4, truncate_rate=1.0, latency_ms=0))
    for _ in range(50):
        assert requests.get(fsim.base_url + "/__simulator__/info", timeout=10).status_code == 200
    assert fsim.requests == []  # control calls are not recorded either


def test_path_prefixes_limit_where_faults_apply(fsim: Simulator) -> None:
    fsim.set_faults(FaultConfig(rate_503=1.0, path_prefixes=("/insights/",)))
    a = Api(fsim)
    assert a.get("/api/systemusers").status_code == 200
    assert a.events(DI).status_code == 503


def test_latency_is_added(fsim: Simulator) -> None:
    fsim.set_faults(FaultConfig(latency_ms=120))
    a = Api(fsim)
    started = time.monotonic()
    assert a.get("/api/organizations").status_code == 200
    assert time.monotonic() - started >= 0.12  # a lower bound: sleep never returns early


def test_truncated_bodies_break_the_read_and_are_recorded(fsim: Simulator) -> None:
    fsim.set_faults(FaultConfig(truncate_rate=1.0))
    a = Api(fsim)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        a.get("/api/systemusers", params={"limit": 100})
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        a.events(DI)
    assert [(r.status, r.fault) for r in fsim.requests] == [(200, "truncate"), (200, "truncate")]
    # Errors are never truncated, and the next connection works once faults are off.
    assert Api(fsim, None).get("/api/systemusers").status_code == 401
    fsim.set_faults(None)
    assert a.get("/api/systemusers").status_code == 200


def test_truncate_rate_share(fsim: Simulator) -> None:
    fsim.set_faults(FaultConfig(truncate_rate=0.2, seed=5))
    broken = 0
    for _ in range(150):
        try:
            requests.get(
                fsim.base_url + "/api/organizations", headers={"x-api-key": fsim.keys["admin"]}, timeout=10
            )
        except requests.exceptions.ChunkedEncodingError:
            broken += 1
    assert 12 <= broken <= 50


def test_malformed_records_in_pages(fsim: Simulator) -> None:
    fsim.set_faults(FaultConfig(malformed_rate=0.05, seed=7))
    a = Api(fsim)
    events = a.events({**DI, "limit": 3000}).json()
    bad_time = [e for e in events if e.get("timestamp") == "not-a-date"]
    no_id = [e for e in events if "id" not in e]
    assert bad_time and no_id
    assert 60 <= len(bad_time) + len(no_id) <= 250  # 150 expected
    users: list[dict[str, Any]] = []
    for skip in range(0, 40, 10):
        users += a.get("/api/systemusers", params={"skip": skip}).json()["results"]
    for _ in range(20):
        users += a.get("/api/systemusers", params={"limit": 40}).json()["results"]
    assert any(u["_id"] is None for u in users)
    graph = []
    app = fsim.tenant().apps[0]["_id"]
    for _ in range(20):
        graph += a.get(f"/api/v2/applications/{app}/users", params={"limit": 100}).json()
    assert any(item["id"] is None for item in graph)


def test_malformed_pages_keep_a_valid_cursor(fsim: Simulator) -> None:
    """The cursor comes from the real last event, so a client that skips broken records still pages."""
    clean = Api(fsim).all_events({**DI, "limit": 400})
    fsim.set_faults(FaultConfig(malformed_rate=0.1, seed=8))
    dirty = Api(fsim).all_events({**DI, "limit": 400})
    assert len(dirty) == len(clean)
    assert {e["id"] for e in dirty if "id" in e} <= {e["id"] for e in clean}


def test_request_log(fsim: Simulator) -> None:
    a = Api(fsim)
    a.get("/api/systemusers", params={"limit": 5, "filter": "state:$eq:ACTIVATED"})
    a.post("/api/systemusers", json={"username": "logged.user", "email": "logged.user@acme.example"})
    a.events(DI)
    Api(fsim, None).get("/api/organizations")
    records = fsim.requests
    assert [(r.method, r.path, r.status) for r in records] == [
        ("GET", "/api/systemusers", 200),
        ("POST", "/api/systemusers", 200),
        ("POST", "/insights/directory/v1/events", 200),
        ("GET", "/api/organizations", 401),
    ]
    assert records[0].query == {"limit": ["5"], "filter": ["state:$eq:ACTIVATED"]}
    assert records[1].json_body == {"username": "logged.user", "email": "logged.user@acme.example"}
    assert [r.role for r in records] == ["admin", "admin", "admin", None]
    for record in records:
        assert fsim.keys["admin"] not in repr(record)
        assert record.request_id
    assert records[0].headers["x-api-key"].startswith("***")
    ats = [r.at for r in records]
    assert ats == sorted(ats) and ats[0] <= time.monotonic()
    assert fsim.clear_requests() == 4 and fsim.requests == []


def test_a_client_honouring_retry_after_is_visible_in_the_log(fsim: Simulator) -> None:
    """What the client tests assert: no retry before Retry-After has passed (here: a naive loop)."""
    fsim.set_faults(FaultConfig(rate_429=1.0, retry_after_share=1.0, retry_after_seconds=1))
    a = Api(fsim)
    r = a.get("/api/systemusers")
    time.sleep(float(r.headers["Retry-After"]))
    fsim.set_faults(None)
    assert a.get("/api/systemusers").status_code == 200
    first, second = fsim.requests
    assert first.status == 429 and second.status == 200
    assert second.at - first.at >= 1.0
