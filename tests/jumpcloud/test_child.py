"""The child processes a sync starts (app-assignment reader, Directory Insights fetcher): the key
travels on stdin only, answers come back in order, and JumpCloud's errors arrive typed."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jumpcloud import errors
from jumpcloud.assignment_reader import AssignmentReader, read_app
from jumpcloud.child import Child
from jumpcloud.client import JumpCloudClient
from jumpcloud.event_pipeline import prepared_event_pages
from jumpcloud.rows import events_csv
from jumpcloud.simulator import FaultConfig, Simulator, SimulatorConfig


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator(SimulatorConfig(seed=5, users=120, apps=5, days=1)).start(host="127.0.0.1", port=0)
    yield simulator
    simulator.stop()


def test_the_key_is_in_neither_the_childs_command_line_nor_its_environment(sim):
    key = sim.keys["admin"]
    sim.set_faults(FaultConfig(latency_ms=400))  # keeps the child busy while it is looked at
    apps = [a["_id"] for a in sim.tenant("primary").apps]
    child = Child(
        "jumpcloud.assignment_reader",
        {"api_key": key, "client_options": {"base_url": sim.base_url}, "app_ids": apps},
        "reader",
    )
    try:
        proc = Path(f"/proc/{child._process.pid}")  # noqa: SLF001
        deadline = time.monotonic() + 5
        while not sim.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sim.requests, "the child never called the simulator"
        assert key.encode() not in (proc / "cmdline").read_bytes()
        assert key.encode() not in (proc / "environ").read_bytes()
    finally:
        child.stop()


def test_the_reader_answers_every_app_in_order_as_read_in_this_process(sim):
    apps = [a["_id"] for a in sim.tenant("primary").apps]
    expected = {}
    seen: set[str] = set()
    with JumpCloudClient(sim.keys["admin"], base_url=sim.base_url) as client:
        for app_id in apps:
            answer = read_app(client, app_id, seen)
            seen.update(answer.memberships)
            expected[app_id] = (answer.direct, answer.groups, answer.memberships)
    reader = AssignmentReader(sim.keys["admin"], {"base_url": sim.base_url}, apps, _never())
    try:
        for app_id in apps:
            answer = reader.take(app_id)
            assert answer is not None and answer.error is None
            assert (answer.direct, answer.groups, answer.memberships) == expected[app_id]
    finally:
        reader.close()


def test_a_rejected_key_reaches_the_stream_as_the_same_error(sim):
    apps = [a["_id"] for a in sim.tenant("primary").apps]
    reader = AssignmentReader("0" * 40, {"base_url": sim.base_url}, apps, _never())
    try:
        answer = reader.take(apps[0])
        assert answer is not None and isinstance(answer.error, errors.InvalidApiKey)
        assert reader.take(apps[1]) is None  # the reader stopped: nothing more comes
    finally:
        reader.close()


def test_a_rate_limit_keeps_its_retry_time(sim):
    sim.set_faults(FaultConfig(rate_429=1.0, retry_after_share=1.0, retry_after_seconds=120))
    apps = [a["_id"] for a in sim.tenant("primary").apps]
    reader = AssignmentReader(
        sim.keys["admin"], {"base_url": sim.base_url, "retry_after_max": 1}, apps, _never()
    )
    try:
        answer = reader.take(apps[0])
        assert answer is not None and isinstance(answer.error, errors.RateLimited)
        assert answer.error.retry_after is not None and answer.error.retry_after >= 60
    finally:
        reader.close()


def test_the_event_fetcher_sends_every_page_formatted_and_jumpcloud_errors_typed(sim):
    end = datetime.now(UTC)
    start = end - timedelta(days=2)
    options = {"base_url": sim.base_url}
    params = {
        "client_options": options,
        "service": "sso",
        "start": start,
        "end": end,
        "limit": 40,
        "search_after": None,
        "connection_id": 3,
        "app_by_url": {},
    }
    pages = list(prepared_event_pages(api_key=sim.keys["admin"], **params))
    with JumpCloudClient(sim.keys["admin"], **options) as client:
        expected = list(client.iter_event_pages("sso", start, end, limit=40))
    assert len(expected) >= 3  # the next page was requested while the last was formatted
    assert [p.csv for p in pages] == [events_csv(3, page.events, {}) for page in expected]
    assert [p.count for p in pages] == [len(page.events) for page in expected]
    assert [p.search_after for p in pages] == [page.search_after for page in expected]
    with pytest.raises(errors.InvalidApiKey):
        list(prepared_event_pages(api_key="0" * 40, **params))


def test_frames_arrive_whole_while_the_child_is_stopped_and_continued():
    """SIGSTOP/SIGCONT (Ctrl-Z and fg on `integrations_sync --wait`, a paused container, a
    sampling profiler) interrupts the child's big pipe writes part-way; every frame must still
    arrive whole and in order. Python's buffered stdout lost bytes of a frame there."""
    child = Child("tests.jumpcloud.frame_source", {"count": 30, "size": 4_000_000}, "test source")
    pid = child._process.pid  # noqa: SLF001
    reading = threading.Event()

    def poke() -> None:
        while not reading.is_set():
            try:
                os.kill(pid, signal.SIGSTOP)
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                return
            time.sleep(0.003)

    poker = threading.Thread(target=poke, daemon=True)
    poker.start()
    try:
        received = [payload for _kind, payload in child.frames()]
    finally:
        reading.set()
        poker.join()
        child.stop()
    assert [n for n, _, _ in received] == list(range(30))
    for _n, text, digest in received:
        assert len(text) == 4_000_000 and hashlib.sha256(text.encode()).hexdigest() == digest


def test_a_damaged_frame_is_an_upstream_error_the_sync_retries():
    child = Child("tests.jumpcloud.frame_source", {"count": 0, "size": 0, "damaged": True}, "test source")
    try:
        with pytest.raises(errors.UpstreamError, match="test source sent a damaged answer"):
            list(child.frames())
    finally:
        child.stop()


def _never():
    import threading

    return threading.Event()
