"""How a run ends when JumpCloud refuses part of it: truthful messages, nothing left running, and
one detail never failing the whole run (against the simulator over real HTTP)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from integrations.models import Application, AppUser, LastUse, SyncRun, SyncTask, UsageEvent
from integrations.selectors.applications import app_stats, application_unassigned_users
from integrations.services.sync import sync_run_execute, sync_run_request
from jumpcloud.simulator.api import error_response
from jumpcloud.streams.usage import apply_sso_last_use, fold_last_use

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def refuse(sim, monkeypatch):
    """refuse(path_prefix, status, message): the simulator answers those requests with an error."""
    real = sim._api.handle

    def install(prefix: str, status: int, message: str) -> None:
        def handle(req, malform=None):
            if req.path.startswith(prefix):
                return error_response(status, message)
            return real(req, malform) if malform is not None else real(req)

        monkeypatch.setattr(sim._api, "handle", handle)

    return install


def _run(connection, kind: str = "full") -> SyncRun:
    run = sync_run_request(connection=connection, kind=kind, trigger="manual", enqueue=False)
    return sync_run_execute(run_id=run.pk)


def _nothing_left_running(run: SyncRun) -> None:
    assert not SyncTask.objects.filter(run=run, status__in=["pending", "running"]).exists()
    assert {s["status"] for s in run.streams.values()} <= {"succeeded", "failed", "skipped", "cancelled"}


def test_a_required_stream_that_fails_fails_the_run_skips_what_needs_it_and_leaves_nothing_running(
    connect, refuse
):
    connection = connect()
    refuse("/api/systemusers", 400, "Bad Request: something JumpCloud did not like")
    run = _run(connection)
    assert run.status == SyncRun.Status.FAILED
    assert run.streams["users"]["status"] == "failed"
    assert "did not like" in run.streams["users"]["error"]
    for blocked in ("administrators", "app_assignments"):
        assert run.streams[blocked]["status"] == "skipped"
        assert "Users did not complete" in run.streams[blocked]["error"]
    assert run.streams["events_sso"]["status"] == "succeeded", "what does not need the users goes on"
    assert run.error_message.startswith("Users: ") and run.error_message.count("Users:") == 1
    _nothing_left_running(run)


def test_the_assignments_wait_for_the_sso_logins_but_not_for_their_success(connect, refuse):
    """app_assignments is ordered after the SSO events (its rows take their last use as they are
    written) without depending on them: SSO events that fail leave the assignments synced."""
    connection = connect()
    refuse("/insights/directory/v1/events", 400, "Bad Request: no such query")
    run = _run(connection)
    assert run.status == SyncRun.Status.PARTIAL, run.error_message
    assert run.streams["events_sso"]["status"] == "failed"
    assert run.streams["app_assignments"]["status"] == "succeeded"
    assert run.streams["app_assignments"]["created"] > 0
    assert AppUser.objects.filter(connection=connection, application__kind="sso").exists()
    sso_done = SyncTask.objects.filter(run=run, stream="events_sso").order_by("-finished_at").first()
    rows_started = (
        SyncTask.objects.filter(run=run, stream="app_assignments").order_by("started_at")[0].started_at
    )
    assert rows_started >= sso_done.finished_at, "the rows were written after the SSO events ended"
    _nothing_left_running(run)


def test_a_sync_writes_each_assignment_row_with_its_last_use_once(connect):
    """The rows are written after the SSO slices folded their logins, so each takes its last use
    as it is written: the SSO events' finish step finds no row behind LastUse to write again."""
    connection = connect()
    run = _run(connection)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_message
    assert run.streams["events_sso"]["rows_caught_up"] == 0
    rows = AppUser.objects.filter(connection=connection, application__kind="sso", kind="user")
    used = {
        (u.application_id, u.person_external_id): u.last_used_at
        for u in LastUse.objects.filter(connection=connection, application__kind="sso")
    }
    assert used and rows.exclude(last_used_at=None).count() == sum(
        1 for r in rows.only("application_id", "external_id") if (r.application_id, r.external_id) in used
    )
    for row in rows.exclude(last_used_at=None):
        assert row.last_used_at == used[(row.application_id, row.external_id)]


def test_no_administrators_list_is_a_missing_detail_not_a_deleted_object(connect, refuse):
    connection = connect()
    refuse("/api/users", 404, "Not Found")
    run = _run(connection)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_message
    admins = run.streams["administrators"]
    assert admins["status"] == "skipped"
    assert "does not offer the list /api/users" in admins["error"] and "deleted" not in admins["error"]
    connection.refresh_from_db()
    assert connection.capabilities["administrators"] is False
    _nothing_left_running(run)


def test_organization_details_refused_for_a_multi_tenant_key_name_the_real_cause(connect, sim, refuse):
    connection = connect("multi_tenant", org_id=sim.org_ids["primary"])
    refuse("/api/organizations/", 401, "Unauthorized: no organization selected")
    run = _run(connection)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_message
    org = run.streams["organization"]
    assert org["status"] == "skipped"
    assert f"for organization {sim.org_ids['primary']}" in org["error"]
    assert "Choose an organization" not in org["error"]
    assert AppUser.objects.filter(connection=connection).exists(), "the rest of the run went on"


def test_an_apps_last_use_counts_people_not_assigned_to_it_and_lists_them(connect, sim):
    connection = connect()
    assert _run(connection).status == SyncRun.Status.SUCCEEDED
    app = Application.objects.filter(connection=connection, kind="sso", app_users__isnull=False).first()
    assigned = set(AppUser.objects.filter(application=app).values_list("external_id", flat=True))
    outsider = (
        AppUser.objects.filter(connection=connection, application__kind="directory", kind="user")
        .exclude(external_id__in=assigned)
        .first()
    )
    latest = max(
        filter(
            None,
            [
                app.last_used_at,
                *AppUser.objects.filter(application=app).values_list("last_used_at", flat=True),
            ],
        )
    )
    later = latest + timedelta(minutes=5)
    UsageEvent.objects.create(
        connection=connection,
        external_id="outsider-login",
        kind="sso",
        event_type="sso_auth",
        occurred_at=later,
        success=True,
        actor_external_id=outsider.external_id,
        application_external_id=app.external_id,
    )
    fold_last_use(connection=connection, kind="sso", start=later, end=later)
    apply_sso_last_use(connection=connection, since=later)
    app.refresh_from_db()
    assert app.last_used_at == later, "a login by someone not assigned is still a use of the app"
    assert app_stats(app).last_used_at == later
    rows = application_unassigned_users(app)
    assert [(r.person.external_id, r.last_used_at) for r in rows] == [(outsider.external_id, later)]
    assert LastUse.objects.get(application=app, person_external_id=outsider.external_id).last_used_at == later


def test_a_login_folded_after_its_assignment_row_was_written_reaches_the_row_at_the_finish(connect):
    """Slices fold into LastUse without locking the assignment rows; the SSO events' finish step
    moves the rows written before a fold (and leaves alone those already as late or later)."""
    connection = connect()
    assert _run(connection).status == SyncRun.Status.SUCCEEDED
    row = AppUser.objects.filter(
        connection=connection, application__kind="sso", kind="user", last_used_at__isnull=False
    ).first()
    other = (
        AppUser.objects.filter(application=row.application, kind="user", last_used_at__isnull=False)
        .exclude(pk=row.pk)
        .first()
    )
    later = row.last_used_at + timedelta(days=1)
    earlier = other.last_used_at - timedelta(days=1)
    for ident, who, when in (("late-login", row, later), ("old-login", other, earlier)):
        UsageEvent.objects.create(
            connection=connection,
            external_id=ident,
            kind="sso",
            event_type="sso_auth",
            occurred_at=when,
            success=True,
            actor_external_id=who.external_id,
            application_external_id=row.application.external_id,
        )
    since = min(earlier, later)
    fold_last_use(connection=connection, kind="sso", start=since, end=max(earlier, later))
    row.refresh_from_db()
    assert row.last_used_at == later - timedelta(days=1), "a fold leaves the rows to the finish step"
    assert (
        LastUse.objects.get(application=row.application, person_external_id=row.external_id).last_used_at
        == later
    )
    apply_sso_last_use(connection=connection, since=since)
    row.refresh_from_db()
    other_before = other.last_used_at
    other.refresh_from_db()
    assert row.last_used_at == later
    assert other.last_used_at == other_before, "an older login never moves a row back"
