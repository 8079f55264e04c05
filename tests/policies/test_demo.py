"""`make run`'s demo account ships one example policy, in dry-run mode."""

from __future__ import annotations

import pytest

from integrations.models import SyncRun
from jumpcloud.demo import connect_demo
from policies.demo import EXAMPLE_NAME
from policies.models import Policy
from policies.services import policy_run_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


def test_the_demo_ships_one_example_policy_in_dry_run_mode(sim, settings, admin_user):
    settings.JUMPCLOUD_ALLOWED_BASE_URLS = [sim.base_url]
    connection = connect_demo(base_url=sim.base_url, api_key=sim.keys["admin"])
    assert connection is not None
    again = connect_demo(base_url=sim.base_url, api_key=sim.keys["admin"])
    assert again.pk == connection.pk
    policy = Policy.objects.get()
    assert policy.name == EXAMPLE_NAME and policy.dry_run and policy.action == Policy.Action.SUSPEND
    assert list(policy.connections.all()) == [connection]
    assert policy.next_run_at is not None
    assert not SyncRun.objects.filter(connection=connection, status__in=SyncRun.ACTIVE).exists()
    sim.clear_requests()
    run = policy_run_create(policy=policy, actor=admin_user)
    assert run.dry_run and run.status in ("succeeded", "stopped")
    assert not [r for r in sim.requests if r.method == "PUT"]
