"""At most once under a worker kill: a real Celery worker runs a policy run against the simulator
over HTTP and is SIGKILLed mid-run; a second worker resumes the run. JumpCloud's request log must
show at most one suspension per person, and every person of the run ends with a definite outcome
(or "unknown" for the one call the kill cut off — never sent again)."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from django.utils import timezone

from jumpcloud.simulator import FaultConfig
from policies.models import PolicyRun, PolicyRunItem
from policies.services import STALE_AFTER, policy_run_create, policy_run_execute, policy_runs_recover_stale
from tests.policies.conftest import make_policy
from tests.processes import CeleryProcess, child_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


def _wait(predicate, timeout: float, workers: list[CeleryProcess], what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    logs = "\n".join(w.log()[-3000:] for w in workers)
    raise AssertionError(f"{what} did not happen within {timeout}s\n{logs}")


def _suspensions(sim) -> Counter[str]:
    return Counter(
        r.path.rsplit("/", 1)[-1]
        for r in sim.requests
        if r.method == "PUT"
        and r.path.startswith("/api/systemusers/")
        and (r.json_body or {}).get("state") == "SUSPENDED"
    )


def test_a_run_killed_mid_way_and_resumed_suspends_each_person_at_most_once(
    synced, sim, admin_user, tmp_path, celery_not_eager
):
    policy = make_policy([synced])
    # Each call to JumpCloud's user endpoint takes a while, so the kill lands in the middle.
    sim.set_faults(FaultConfig(latency_ms=400, path_prefixes=("/api/systemusers",)))
    env = child_env()
    first = CeleryProcess("worker", log=tmp_path / "first.log", env=env, name="policy-a")
    workers = [first]
    second = None
    try:
        first.wait_for_log("ready.")
        run = policy_run_create(policy=policy, actor=admin_user)
        items = PolicyRunItem.objects.filter(run=run)
        total = items.count()
        assert total >= 8, "the simulator's data should give a run long enough to interrupt"
        _wait(lambda: items.filter(outcome="suspended").count() >= 3, 120, workers, "three suspensions")
        first.kill()
        state = PolicyRun.objects.get(pk=run.pk)
        assert state.status == PolicyRun.Status.RUNNING
        assert items.filter(outcome="pending").exists(), "the kill landed after the run ended"
        done_before = set(items.filter(outcome="suspended").values_list("external_id", flat=True))

        second = CeleryProcess("worker", log=tmp_path / "second.log", env=env, name="policy-b")
        workers.append(second)
        second.wait_for_log("ready.")
        # Beat's recovery once the dead worker's heartbeat is old enough.
        assert policy_runs_recover_stale(now=timezone.now() + STALE_AFTER * 2) == 1
        _wait(lambda: PolicyRun.objects.get(pk=run.pk).is_finished, 180, workers, "the resumed run's end")
    finally:
        for w in workers:
            w.stop()
        sim.set_faults(None)

    run.refresh_from_db()
    assert run.attempts == 2
    outcomes = Counter(items.values_list("outcome", flat=True))
    assert outcomes["pending"] == 0
    # At most one call was cut off by the kill; its outcome is "unknown", not a guess.
    assert outcomes["unknown"] <= 1
    assert outcomes["suspended"] + outcomes["unknown"] == total, outcomes
    sent = _suspensions(sim)
    # The heart of it: nobody was sent a suspension twice, whatever the kill and the resume did.
    assert all(n == 1 for n in sent.values()), sent
    for item in items.filter(outcome="suspended"):
        assert sent[item.external_id] == 1
        assert sim.tenant().user(item.external_id)["state"] == "SUSPENDED"
    assert done_before <= set(sent)
    # A late redelivery of the task (the killed worker's unacknowledged message) changes nothing.
    before = sum(sent.values())
    assert policy_run_execute(run_id=run.pk).status == run.status
    assert sum(_suspensions(sim).values()) == before
