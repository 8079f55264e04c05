"""A hundred connections due at once: real Celery workers sync every one of them, beat's dispatch
takes the longest-waiting first a tick's worth at a time, and the organization's request limit
holds at the simulator the whole time.

The simulator serves three organizations, and torii allows one live connection per organization
that it knows the id of; the hundred connections here are added without an organization id, so
all of them reach the simulator's one organization with the same key. That is the hard case for
the limit: every request of the hundred syncs shares one organization's budget.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.crypto import encrypt_json
from integrations.models import Connection, SyncCheckpoint, SyncRun
from integrations.services.sync import sync_dispatch_due
from jumpcloud.simulator import FaultConfig, Simulator, SimulatorConfig
from tests.processes import CeleryProcess, child_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

ACCOUNTS = 100
PER_TICK = 25
LIMIT = 2  # requests in flight to one organization, all workers together


@pytest.fixture(scope="module")
def busy_sim():
    config = SimulatorConfig(seed=21, users=30, apps=3, days=2, events=600, admins=2, groups=2)
    simulator = Simulator(config).start(host="127.0.0.1", port=0)
    # Each answer takes a little while, so that requests of different syncs overlap.
    simulator.set_faults(FaultConfig(latency_ms=20, seed=3))
    yield simulator
    simulator.stop()


def _accounts(sim: Simulator) -> list[Connection]:
    """ACCOUNTS connections whose usage sync is due, each having waited a different time; each
    synced before (its events read up to an hour ago), as the hourly sync finds them."""
    now = timezone.now()
    credentials = encrypt_json({"api_key": sim.keys["admin"]})
    connections = Connection.objects.bulk_create(
        Connection(
            provider="jumpcloud",
            name=f"Account {i:03d}",
            region="custom",
            base_url=sim.base_url,
            org_id="",
            credentials=credentials,
            secret_hint="••••" + sim.keys["admin"][-4:],
            status=Connection.Status.CONNECTED,
            capabilities={"usage_events": True},
            next_full_sync_at=now + timedelta(days=1),
            next_events_sync_at=now - timedelta(minutes=1),
            # Shuffled waiting times: the dispatch order is not the creation order.
            last_sync_at=now - timedelta(hours=1, minutes=(i * 37) % ACCOUNTS),
        )
        for i in range(ACCOUNTS)
    )
    until = (now - timedelta(hours=1)).isoformat()
    SyncCheckpoint.objects.bulk_create(
        SyncCheckpoint(connection=c, stream=stream, state={"until": until})
        for c in connections
        for stream in ("events_sso", "events_directory")
    )
    return connections


def test_a_hundred_accounts_due_at_once_are_all_synced_fairly_within_the_request_limit(
    busy_sim, settings, tmp_path, celery_not_eager
):
    sim = busy_sim
    settings.JUMPCLOUD_ALLOWED_BASE_URLS = [sim.base_url]
    settings.SYNC_DISPATCH_PER_TICK = PER_TICK
    connections = _accounts(sim)
    waiting_order = [
        c.pk for c in sorted(connections, key=lambda c: (c.last_sync_at, c.pk))
    ]  # longest-waiting first
    sim.clear_requests()
    env = child_env(SYNC_MAX_REQUESTS_PER_ACCOUNT=str(LIMIT))
    workers = [
        CeleryProcess("worker", log=tmp_path / f"worker{i}.log", env=env, name=f"many-{i}", concurrency=2)
        for i in range(2)
    ]
    try:
        for worker in workers:
            worker.wait_for_log("ready.")
        ticks: list[list[int]] = []
        deadline = time.monotonic() + 120
        # Beat's ticks, one a second instead of one a minute.
        while SyncRun.objects.count() < ACCOUNTS and time.monotonic() < deadline:
            queued = sync_dispatch_due()
            ticks.append(list(SyncRun.objects.filter(pk__in=queued).values_list("connection_id", flat=True)))
            time.sleep(1)
        deadline = time.monotonic() + 600
        while SyncRun.objects.filter(status__in=SyncRun.ACTIVE).exists() and time.monotonic() < deadline:
            time.sleep(1)
        logs = "\n".join(w.log()[-3000:] for w in workers)
    finally:
        for worker in workers:
            worker.stop()

    assert all(len(tick) <= PER_TICK for tick in ticks), [len(t) for t in ticks]
    # The first tick took exactly the longest-waiting quarter; every later tick the next ones.
    assert sorted(ticks[0]) == sorted(waiting_order[:PER_TICK])
    dispatched = [pk for tick in ticks for pk in tick]
    assert sorted(dispatched) == sorted(waiting_order), "some account was never dispatched, or twice"
    # No account starves: every one of them got its sync, once, and it succeeded.
    runs = SyncRun.objects.filter(connection__in=connections)
    assert runs.count() == ACCOUNTS
    failed = list(
        runs.exclude(status=SyncRun.Status.SUCCEEDED).values_list(
            "connection__name", "status", "error_message"
        )
    )
    assert not failed, f"{failed[:5]}\n{logs}"
    assert set(runs.values_list("connection_id", flat=True)) == {c.pk for c in connections}
    # The organization's limit held at the simulator, across the hundred syncs and four processes.
    requests = sim.requests
    assert len(requests) >= 2 * ACCOUNTS, len(requests)
    peak = sim.peak_in_flight()
    assert 1 <= peak.get("", 0) <= LIMIT, peak
