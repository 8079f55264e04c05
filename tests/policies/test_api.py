"""The policies API: Viewers read, Admins write; dry run, run now, approve, reject, undo."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from policies.models import Policy, PolicyRun
from policies.services import policies_run_due
from tests.policies.conftest import make_policy

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

BASE = "/api/v1"


def _post(client: Client, url: str, data: dict | None = None):
    return client.post(url, data=json.dumps(data or {}), content_type="application/json")


def _body(synced, **extra):
    return {
        "name": "Dormant people",
        "connections": [synced.pk],
        "inactive_days": 3,
        "use_scope": "directory",
        "action": "suspend",
        "dry_run": False,
        "max_people": 100,
        "max_percent": "100",
        "min_account_age_days": 14,
        **extra,
    }


def test_anonymous_callers_get_nothing(client, synced):
    policy = make_policy([synced])
    assert client.get(f"{BASE}/policies/").status_code in (401, 403)
    assert client.get(f"{BASE}/policies/{policy.pk}/dry-run/").status_code in (401, 403)
    assert _post(client, f"{BASE}/policies/", _body(synced)).status_code in (401, 403)


def test_viewers_read_but_cannot_write(viewer_client, synced, sim, admin_user):
    policy = make_policy([synced], schedule=Policy.Schedule.DAILY, created_by=admin_user)
    assert viewer_client.get(f"{BASE}/policies/").json()["results"][0]["name"] == policy.name
    dry = viewer_client.get(f"{BASE}/policies/{policy.pk}/dry-run/").json()
    assert dry["count"] == len(dry["people"]) > 0 and dry["brakes"] == []
    assert _post(viewer_client, f"{BASE}/policies/", _body(synced, name="x")).status_code == 403
    assert (
        viewer_client.patch(
            f"{BASE}/policies/{policy.pk}/", data='{"inactive_days": 1}', content_type="application/json"
        ).status_code
        == 403
    )
    assert _post(viewer_client, f"{BASE}/policies/{policy.pk}/run/").status_code == 403
    Policy.objects.filter(pk=policy.pk).update(next_run_at=timezone.now() - timedelta(minutes=1))
    [run] = policies_run_due()
    for verb in ("approve", "reject", "undo"):
        assert _post(viewer_client, f"{BASE}/policy-runs/{run.pk}/{verb}/").status_code == 403
    assert viewer_client.delete(f"{BASE}/policies/{policy.pk}/").status_code == 403
    assert PolicyRun.objects.get(pk=run.pk).status == "awaiting_approval"
    assert Policy.objects.get(pk=policy.pk).inactive_days == 3
    assert not [r for r in sim.requests if r.method == "PUT"]


def test_admin_creates_dry_runs_runs_and_undoes(admin_client, synced, sim):
    bad = _post(admin_client, f"{BASE}/policies/", _body(synced, use_scope="application", inactive_days=0))
    assert bad.status_code == 400
    assert "inactive_days" in bad.json() or "application" in bad.json()
    assert not Policy.objects.exists()

    created = _post(admin_client, f"{BASE}/policies/", _body(synced))
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    dry = admin_client.get(f"{BASE}/policies/{pk}/dry-run/").json()
    people = {p["username"] for p in dry["people"]}
    assert people and all(p["reason"] for p in dry["people"])

    ran = _post(admin_client, f"{BASE}/policies/{pk}/run/")
    assert ran.status_code == 201
    run_id = ran.json()["id"]
    detail = admin_client.get(f"{BASE}/policy-runs/{run_id}/").json()
    assert detail["status"] == "succeeded"
    assert {i["username"] for i in detail["items"]} == people
    assert all(i["outcome"] == "suspended" and i["jumpcloud_request_id"] for i in detail["items"])

    # Approving a run that is not waiting is a conflict, not a change.
    assert _post(admin_client, f"{BASE}/policy-runs/{run_id}/approve/").status_code == 409
    undone = _post(admin_client, f"{BASE}/policy-runs/{run_id}/undo/")
    assert undone.status_code == 200
    assert {i["undo"] for i in undone.json()["items"]} == {"unsuspended"}
    assert _post(admin_client, f"{BASE}/policy-runs/{run_id}/undo/").status_code == 409
    assert admin_client.get(f"{BASE}/policy-runs/?policy={pk}").json()["count"] == 1


def test_admin_approves_a_waiting_run(admin_client, synced, admin_user):
    policy = make_policy([synced], schedule=Policy.Schedule.DAILY, created_by=admin_user)
    Policy.objects.filter(pk=policy.pk).update(next_run_at=timezone.now() - timedelta(minutes=1))
    [run] = policies_run_due()
    approved = _post(admin_client, f"{BASE}/policy-runs/{run.pk}/approve/")
    assert approved.status_code == 200
    assert approved.json()["status"] == "succeeded" and approved.json()["approved_by"] == admin_user.username


def test_a_policy_cannot_lose_all_its_accounts_and_a_patch_keeps_them(admin_client, synced):
    policy = make_policy([synced])
    url = f"{BASE}/policies/{policy.pk}/"
    emptied = admin_client.patch(url, data='{"connections": []}', content_type="application/json")
    assert emptied.status_code == 400 and "connections" in emptied.json()
    assert list(Policy.objects.get(pk=policy.pk).connections.all()) == [synced]
    renamed = admin_client.patch(url, data='{"name": "Renamed"}', content_type="application/json")
    assert renamed.status_code == 200, renamed.content
    assert renamed.json()["connections"] == [synced.pk]
