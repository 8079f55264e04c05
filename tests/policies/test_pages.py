"""The policy pages through Django's test client: roles, the form's dry run, CSV, run, approve, undo."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from policies.models import Policy, PolicyRun
from policies.services import policies_run_due
from tests.policies.conftest import make_policy

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


def _form(synced, **extra):
    return {
        "name": "Dormant",
        "connections": [synced.pk],
        "inactive_days": "3",
        "use_scope": "directory",
        "exclude_admins": "on",
        "exclude_invited": "on",
        "min_account_age_days": "14",
        "action": "suspend",
        "schedule": "manual",
        "schedule_hour": "6",
        "schedule_weekday": "0",
        "max_people": "100",
        "max_percent": "100",
        "enabled": "on",
        **extra,
    }


def test_viewers_see_pages_but_no_buttons_and_cannot_post(viewer_client, synced, admin_user):
    policy = make_policy([synced], schedule=Policy.Schedule.DAILY, created_by=admin_user)
    assert viewer_client.get("/policies/").status_code == 200
    page = viewer_client.get(f"/policies/{policy.pk}/").content.decode()
    assert "Dry run: whom it would touch today" in page and "Run now" not in page
    assert viewer_client.get("/policies/new/").status_code == 403
    assert viewer_client.post(f"/policies/{policy.pk}/run/").status_code == 403
    Policy.objects.filter(pk=policy.pk).update(next_run_at=timezone.now() - timedelta(minutes=1))
    [run] = policies_run_due()
    assert "Approve" not in viewer_client.get(f"/policies/runs/{run.pk}/").content.decode()
    assert viewer_client.post(f"/policies/runs/{run.pk}/approve/").status_code == 403
    assert PolicyRun.objects.get(pk=run.pk).status == "awaiting_approval"


def test_the_form_dry_runs_without_saving_then_saves(admin_client, synced):
    preview = admin_client.post("/policies/new/", {**_form(synced), "preview": "1"})
    assert preview.status_code == 200
    html = preview.content.decode()
    assert "would be touched" in html and "No successful use of JumpCloud" in html
    assert not Policy.objects.exists()
    bad = admin_client.post("/policies/new/", {**_form(synced), "inactive_days": "abc", "connections": []})
    assert bad.status_code == 200 and not Policy.objects.exists()
    assert (
        "Correct the policy above" in bad.content.decode()
        or "correct the highlighted" in bad.content.decode().lower()
    )
    saved = admin_client.post("/policies/new/", _form(synced))
    assert saved.status_code == 302
    policy = Policy.objects.get()
    assert policy.created_by.username == "alice.admin"
    csv = admin_client.get(f"/policies/{policy.pk}/dry-run.csv")
    body = b"".join(csv.streaming_content).decode("utf-8-sig")
    assert body.splitlines()[0] == '"account","username","email","last_used_at","reason"'
    assert len(body.splitlines()) > 1


def test_run_now_then_undo_from_the_pages(admin_client, synced, sim):
    policy = make_policy([synced])
    response = admin_client.post(f"/policies/{policy.pk}/run/")
    assert response.status_code == 302
    run = PolicyRun.objects.get()
    assert response["Location"] == f"/policies/runs/{run.pk}/"
    page = admin_client.get(response["Location"]).content.decode()
    assert "Suspended" in page and "Undo this run" in page
    admin_client.post(f"/policies/runs/{run.pk}/undo/")
    assert set(run.items.values_list("undo", flat=True)) == {"unsuspended"}
    assert "Undo this run" not in admin_client.get(f"/policies/runs/{run.pk}/").content.decode()


def test_a_queued_run_page_refreshes_itself_until_the_run_ends(viewer_client, synced):
    policy = make_policy([synced])
    run = PolicyRun.objects.create(policy=policy, action=policy.action, status=PolicyRun.Status.QUEUED)
    assert 'hx-trigger="every 2s"' in viewer_client.get(f"/policies/runs/{run.pk}/").content.decode()
    PolicyRun.objects.filter(pk=run.pk).update(status=PolicyRun.Status.SUCCEEDED)
    assert 'hx-trigger="every 2s"' not in viewer_client.get(f"/policies/runs/{run.pk}/").content.decode()
