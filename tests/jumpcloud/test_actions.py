"""Every user action against the JumpCloud simulator over HTTP, through the action services.

Each test checks what JumpCloud received (sim.requests), the mirror row in torii, and the audit
record; refusals check that nothing was sent at all.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db.models import Q
from django.utils import timezone

from integrations.models import ActionRun, AppUser, Connection, ConnectionStats
from integrations.services import actions as services
from integrations.services.audit import action_run_start
from jumpcloud.client import JumpCloudClient
from jumpcloud.simulator import FaultConfig
from tests.api.support import (
    IDEMPOTENCY_KEY,
    acting_connection,
    directory_users,
    running_simulator,
    user_requests,
    writes,
)
from tests.factories import ApplicationFactory, AppUserFactory
from tests.read_models import refresh

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.fixture
def sim():
    with running_simulator() as s:
        yield s


@pytest.fixture
def connection(sim, settings):
    settings.TORII_ACTION_TIMEOUT_SECONDS = 5
    return acting_connection(sim, settings)


@pytest.fixture
def target(connection):
    return directory_users(connection)[0]


def app_user_create(*, connection, actor, idempotency_key, **params):
    """JumpCloud's create_user action through the core's one path (what the page and the API call)."""
    return services.action_run_request(
        connection=connection,
        action="create_user",
        actor=actor,
        idempotency_key=idempotency_key,
        params=params,
    )


def _key(n: int = 0) -> str:
    return f"{IDEMPOTENCY_KEY[:-2]}{n:02d}"


# --- suspend / unsuspend ---------------------------------------------------------------------
def test_suspend_sends_state_and_suspended_updates_mirror_and_audits(
    sim, connection, target, admin_user, django_capture_on_commit_callbacks
):
    refresh(connection)
    before = ConnectionStats.objects.get(connection=connection)
    with django_capture_on_commit_callbacks(execute=True):
        result = services.app_user_act(
            action="suspend_user", app_user=target, actor=admin_user, idempotency_key=_key()
        )
    # The mirrored change refreshes the counts shown beside it once it is committed.
    after = ConnectionStats.objects.get(connection=connection)
    assert after.refreshed_at > before.refreshed_at
    active = AppUser.objects.filter(
        connection=connection, directory_user__isnull=True, removed_at__isnull=True, status="active"
    )
    assert (
        after.inactive_90
        == active.filter(
            Q(last_used_any__isnull=True) | Q(last_used_any__lt=timezone.now() - timedelta(days=90))
        ).count()
    )

    run = result.run
    assert not result.replayed
    sent = writes(sim)
    assert len(sent) == 1
    assert sent[0].method == "PUT" and sent[0].path == f"/api/systemusers/{target.external_id}"
    assert sent[0].json_body == {"state": "SUSPENDED", "suspended": True}
    assert sim.tenant().user(target.external_id)["state"] == "SUSPENDED"
    target.refresh_from_db()
    assert target.status == AppUser.Status.SUSPENDED
    assert run.status == ActionRun.Status.SUCCEEDED
    assert run.category == ActionRun.Category.USER_ACTION and run.action == "suspend_user"
    assert run.actor == admin_user and run.actor_username == admin_user.username
    assert run.connection == connection and run.connection_name == connection.name
    assert (run.target_external_id, run.target_username) == (target.external_id, target.username)
    assert run.request_id == sent[0].request_id
    assert run.finished_at is not None and run.error_message == ""


def test_unsuspend_sends_activated_and_not_suspended(sim, connection, target, admin_user):
    services.app_user_act(action="suspend_user", app_user=target, actor=admin_user, idempotency_key=_key(1))
    sim.clear_requests()
    target.refresh_from_db()

    run = services.app_user_act(
        action="unsuspend_user", app_user=target, actor=admin_user, idempotency_key=_key(2)
    ).run

    assert [r.json_body for r in writes(sim)] == [{"state": "ACTIVATED", "suspended": False}]
    assert run.status == ActionRun.Status.SUCCEEDED
    target.refresh_from_db()
    assert target.status == AppUser.Status.ACTIVE


# --- create ----------------------------------------------------------------------------------
def test_create_sends_dotted_username_and_the_user_appears_at_once(sim, connection, admin_user):
    result = app_user_create(
        connection=connection,
        actor=admin_user,
        idempotency_key=_key(),
        first_name="Jane",
        last_name="Doe",
        email="jane.doe@newhire.example",
        username="Jane Doe",
        state="STAGED",
    )

    sent = writes(sim)
    assert len(sent) == 1 and sent[0].method == "POST" and sent[0].path == "/api/systemusers"
    assert sent[0].json_body == {
        "username": "Jane.Doe",
        "email": "jane.doe@newhire.example",
        "firstname": "Jane",
        "lastname": "Doe",
        "state": "STAGED",
    }
    run = result.run
    created = sim.tenant().user_by_username("Jane.Doe")
    assert run.status == ActionRun.Status.SUCCEEDED
    assert run.target_external_id == created["_id"] and run.target_username == "Jane.Doe"
    assert run.parameters["username"] == "Jane.Doe"
    row = AppUser.objects.get(connection=connection, external_id=created["_id"])
    assert (row.username, row.email, row.status, row.application.kind) == (
        "Jane.Doe",
        "jane.doe@newhire.example",
        AppUser.Status.INVITED,
        "directory",
    )


@pytest.mark.parametrize(
    ("username", "problem"),
    [
        ("9lives", "start with a letter"),
        ("jane@doe", "cannot contain '@'"),
        ("a" * 31, "30 characters or fewer"),
    ],
)
def test_create_refuses_a_username_jumpcloud_would_refuse_before_sending(
    sim, connection, admin_user, username, problem
):
    with pytest.raises(services.ActionInvalid) as refused:
        app_user_create(
            connection=connection,
            actor=admin_user,
            idempotency_key=_key(),
            first_name="",
            last_name="",
            email="ok@newhire.example",
            username=username,
        )
    assert problem in " ".join(refused.value.errors["username"])
    assert sim.requests == []
    assert not ActionRun.objects.exists()


def test_create_refuses_a_collision_with_a_synced_user_case_insensitively(
    sim, connection, target, admin_user
):
    with pytest.raises(services.ActionConflict) as refused:
        app_user_create(
            connection=connection,
            actor=admin_user,
            idempotency_key=_key(),
            first_name="X",
            last_name="Y",
            email=target.email.upper(),
            username=target.username.upper(),
        )
    assert "already exists" in refused.value.errors["username"][0]
    assert "already belongs to" in refused.value.errors["email"][0]
    assert sim.requests == [] and not ActionRun.objects.exists()


def test_jumpcloud_refusal_of_a_duplicate_is_recorded_with_its_message(sim, connection, admin_user):
    # Someone created the user in JumpCloud after the last sync: torii's mirror does not know it.
    with JumpCloudClient(sim.keys["admin"], base_url=sim.base_url) as other:
        other.create_system_user(username="late.arrival", email="late@newhire.example")
    sim.clear_requests()

    run = app_user_create(
        connection=connection,
        actor=admin_user,
        idempotency_key=_key(),
        first_name="",
        last_name="",
        email="other@newhire.example",
        username="late.arrival",
    ).run

    assert len(writes(sim)) == 1
    assert run.status == ActionRun.Status.FAILED
    assert "already has a user with this username or email" in run.error_message
    assert "late.arrival" in run.error_message  # JumpCloud's own words are kept
    assert run.request_id == writes(sim)[0].request_id
    assert not AppUser.objects.filter(connection=connection, username="late.arrival").exists()


# --- delete ----------------------------------------------------------------------------------
def test_delete_keeps_a_snapshot_first_then_deletes_and_marks_the_mirror_removed(
    sim, connection, target, admin_user
):
    app = ApplicationFactory(connection=connection)
    membership = AppUserFactory(application=app, external_id=target.external_id, directory_user=target)
    raw = sim.tenant().user(target.external_id)

    run = services.app_user_act(
        action="delete_user", app_user=target, actor=admin_user, idempotency_key=_key()
    ).run

    calls = [(r.method, r.path) for r in user_requests(sim)]
    assert calls == [
        ("GET", f"/api/systemusers/{target.external_id}"),
        ("DELETE", f"/api/systemusers/{target.external_id}"),
    ]
    assert run.status == ActionRun.Status.SUCCEEDED
    assert run.snapshot["_id"] == target.external_id and run.snapshot["username"] == raw["username"]
    assert run.snapshot["email"] == raw["email"]
    assert sim.tenant().user(target.external_id) is None
    target.refresh_from_db()
    membership.refresh_from_db()
    assert target.status == AppUser.Status.REMOVED and target.removed_at is not None
    assert membership.removed_at is not None


def test_delete_of_a_user_already_gone_upstream_counts_as_done(sim, connection, target, admin_user):
    with JumpCloudClient(sim.keys["admin"], base_url=sim.base_url) as other:
        other.delete_system_user(target.external_id)
    sim.clear_requests()

    run = services.app_user_act(
        action="delete_user", app_user=target, actor=admin_user, idempotency_key=_key()
    ).run

    assert run.status == ActionRun.Status.SUCCEEDED
    assert "already deleted" in run.result["message"]
    assert run.result["outcome"] == "already_gone"
    assert [r.method for r in writes(sim)] == []  # a 404 on the read: nothing left to delete
    target.refresh_from_db()
    assert target.status == AppUser.Status.REMOVED


# --- at most once ----------------------------------------------------------------------------
def test_the_same_key_twice_sends_once_and_replays_the_first_outcome(sim, connection, target, admin_user):
    first = services.app_user_act(
        action="suspend_user", app_user=target, actor=admin_user, idempotency_key=_key()
    )
    second = services.app_user_act(
        action="suspend_user", app_user=target, actor=admin_user, idempotency_key=_key()
    )

    assert len(writes(sim)) == 1
    assert second.replayed and second.run.pk == first.run.pk
    assert ActionRun.objects.count() == 1


def test_a_double_click_on_create_replays_instead_of_reporting_a_collision(sim, connection, admin_user):
    kwargs = {
        "connection": connection,
        "actor": admin_user,
        "idempotency_key": _key(),
        "first_name": "Jo",
        "last_name": "Bloggs",
        "email": "jo@newhire.example",
        "username": "Jo Bloggs",
    }
    first = app_user_create(**kwargs)
    second = app_user_create(**kwargs)  # the mirror now has Jo.Bloggs: replay must come first

    assert second.replayed and second.run.pk == first.run.pk
    assert len(writes(sim)) == 1


def test_a_key_reused_for_another_request_is_refused(sim, connection, admin_user):
    one, two = directory_users(connection)[:2]
    services.app_user_act(action="suspend_user", app_user=one, actor=admin_user, idempotency_key=_key())
    with pytest.raises(services.IdempotencyKeyReused):
        services.app_user_act(action="suspend_user", app_user=two, actor=admin_user, idempotency_key=_key())
    assert len(writes(sim)) == 1


def test_a_retried_execution_of_a_run_never_sends_twice(sim, connection, target, admin_user):
    run = action_run_start(
        connection=connection,
        action="suspend_user",
        actor=admin_user,
        parameters={"app_user_id": target.pk},
        idempotency_key=_key(),
        target_external_id=target.external_id,
        target_username=target.username,
    )

    services.action_run_execute(run_id=run.pk)
    again = services.action_run_execute(run_id=run.pk)  # e.g. a task redelivered after a crash

    assert len(writes(sim)) == 1
    assert again.status == ActionRun.Status.SUCCEEDED


@pytest.mark.parametrize("key", ["", "short", "x" * 65, "with space!"])
def test_an_action_without_a_usable_key_is_refused(sim, connection, target, admin_user, key):
    with pytest.raises(services.ActionInvalid):
        services.app_user_act(action="suspend_user", app_user=target, actor=admin_user, idempotency_key=key)
    assert sim.requests == []


# --- refusals: nothing is sent ---------------------------------------------------------------
def test_a_read_only_connection_is_refused_without_calling_jumpcloud(sim, connection, target, admin_user):
    Connection.objects.filter(pk=connection.pk).update(permission=Connection.Permission.READ_ONLY)
    target.connection.refresh_from_db()

    for action in ("suspend_user", "unsuspend_user", "delete_user"):
        with pytest.raises(services.ActionForbidden, match="read-only"):
            services.app_user_act(app_user=target, action=action, actor=admin_user, idempotency_key=_key())
    with pytest.raises(services.ActionForbidden):
        app_user_create(
            connection=target.connection,
            actor=admin_user,
            idempotency_key=_key(),
            first_name="",
            last_name="",
            email="a@b.example",
            username="someone",
        )
    assert sim.requests == []
    assert not ActionRun.objects.exists()


def test_a_viewer_is_refused_without_calling_jumpcloud(sim, connection, target, viewer_user):
    with pytest.raises(services.ActionForbidden, match="Admins"):
        services.app_user_act(
            action="suspend_user", app_user=target, actor=viewer_user, idempotency_key=_key()
        )
    assert sim.requests == [] and not ActionRun.objects.exists()


def test_a_disconnected_connection_is_refused(sim, connection, target, admin_user):
    Connection.objects.filter(pk=connection.pk).update(status=Connection.Status.DISCONNECTED, credentials="")
    target.connection.refresh_from_db()
    with pytest.raises(services.ActionForbidden):
        services.app_user_act(
            action="suspend_user", app_user=target, actor=admin_user, idempotency_key=_key()
        )
    assert sim.requests == []


def test_a_key_of_a_read_only_administrator_is_refused(sim, connection, target, admin_user):
    Connection.objects.filter(pk=connection.pk).update(
        capabilities={"admin_read_only": True, "admin_role": "Read Only"}
    )
    target.connection.refresh_from_db()
    with pytest.raises(services.ActionForbidden, match="read-only role"):
        services.app_user_act(
            action="suspend_user", app_user=target, actor=admin_user, idempotency_key=_key()
        )
    assert sim.requests == []


# --- timeouts after the request was sent: re-read, never re-send -----------------------------
@pytest.fixture
def slow_jumpcloud(sim, settings):
    """JumpCloud answers after 1.5 s; torii's action waits 0.5 s, so every write times out after
    it was sent (and JumpCloud still carries it out)."""
    settings.TORII_ACTION_TIMEOUT_SECONDS = 0.5
    sim.set_faults(FaultConfig(latency_ms=1500, path_prefixes=("/api/systemusers",)))
    yield
    sim.set_faults(None)


def test_a_suspend_that_timed_out_is_reread_not_resent(sim, connection, target, admin_user, slow_jumpcloud):
    run = services.app_user_act(
        action="suspend_user", app_user=target, actor=admin_user, idempotency_key=_key()
    ).run

    assert [r.method for r in user_requests(sim)] == ["PUT", "GET"]
    assert run.status == ActionRun.Status.SUCCEEDED
    assert run.result["outcome"] == "confirmed_by_reread"
    assert "re-reading shows" in run.result["message"]
    target.refresh_from_db()
    assert target.status == AppUser.Status.SUSPENDED


def test_a_create_that_timed_out_is_looked_up_by_username(sim, connection, admin_user, slow_jumpcloud):
    run = app_user_create(
        connection=connection,
        actor=admin_user,
        idempotency_key=_key(),
        first_name="Tim",
        last_name="Out",
        email="tim.out@newhire.example",
        username="Tim Out",
    ).run

    calls = user_requests(sim)
    assert [r.method for r in calls] == ["POST", "GET"]
    assert calls[1].query["filter"] == ["username:$eq:Tim.Out"]
    assert run.status == ActionRun.Status.SUCCEEDED and run.result["outcome"] == "confirmed_by_reread"
    created = sim.tenant().user_by_username("Tim.Out")
    assert run.target_external_id == created["_id"]
    assert AppUser.objects.filter(connection=connection, external_id=created["_id"]).exists()


def test_a_delete_that_timed_out_is_reread(sim, connection, target, admin_user, settings):
    settings.TORII_ACTION_TIMEOUT_SECONDS = 0.5
    # Only the DELETE is slow: the snapshot read before it must succeed.
    sim.set_faults(FaultConfig(latency_ms=1500, path_prefixes=(f"/api/systemusers/{target.external_id}",)))
    run = services.app_user_act(
        action="delete_user", app_user=target, actor=admin_user, idempotency_key=_key()
    ).run
    sim.set_faults(None)

    assert [r.method for r in user_requests(sim)] == ["GET", "DELETE", "GET"]
    assert run.status == ActionRun.Status.SUCCEEDED and run.result["outcome"] == "confirmed_by_reread"
    assert run.snapshot["_id"] == target.external_id


def test_a_create_whose_outcome_cannot_be_learned_is_recorded_as_unknown(
    sim, connection, admin_user, settings, monkeypatch
):
    settings.TORII_ACTION_TIMEOUT_SECONDS = 0.5
    sim.set_faults(FaultConfig(latency_ms=1500, path_prefixes=("/api/systemusers",)))
    from jumpcloud import actions as jc_actions
    from jumpcloud.errors import UpstreamError

    def unreachable(self, **kwargs):
        raise UpstreamError("JumpCloud is unreachable.")

    monkeypatch.setattr(jc_actions.JumpCloudClient, "find_system_users", unreachable)
    run = app_user_create(
        connection=connection,
        actor=admin_user,
        idempotency_key=_key(),
        first_name="",
        last_name="",
        email="unknown@newhire.example",
        username="un.known",
    ).run
    sim.set_faults(None)
    # The simulator records the POST once it has (slowly) carried it out: wait for that, not for a time.
    deadline = time.monotonic() + 60
    while not writes(sim) and time.monotonic() < deadline:
        time.sleep(0.05)

    assert run.status == ActionRun.Status.FAILED
    assert run.result["outcome"] == "unknown"
    assert "may or may not have been applied" in run.error_message
    assert [r.method for r in writes(sim)] == ["POST"]


# --- bulk ------------------------------------------------------------------------------------
def test_bulk_suspend_gives_each_user_an_outcome_and_replays_as_a_whole(sim, connection, admin_user):
    users = directory_users(connection)[:3]
    gone = users[2]
    with JumpCloudClient(sim.keys["admin"], base_url=sim.base_url) as other:
        other.delete_system_user(gone.external_id)
    sim.clear_requests()

    items = services.app_users_bulk_act(
        action="suspend_user", app_users=users, actor=admin_user, idempotency_key=_key()
    )

    assert [i.succeeded for i in items] == [True, True, False]
    assert "deleted" in items[2].run.error_message or "no such" in items[2].run.error_message.lower()
    assert len([r for r in writes(sim) if r.method == "PUT"]) == 3
    again = services.app_users_bulk_act(
        action="suspend_user", app_users=users, actor=admin_user, idempotency_key=_key()
    )
    assert all(i.replayed for i in again)
    assert len(writes(sim)) == 3
    assert ActionRun.objects.filter(action="suspend_user").count() == 3


# --- rate limits and unanswered creates: always a definite outcome ---------------------------
def _create(connection, admin_user, n: int):
    return app_user_create(
        connection=connection,
        actor=admin_user,
        idempotency_key=_key(n),
        first_name="Rate",
        last_name=f"Limited{n}",
        email=f"rate.limited{n}@newhire.example",
        username=f"rate.limited{n}",
    ).run


def test_a_create_answered_429_is_sent_again_after_the_wait(sim, connection, admin_user):
    # Every 429 carries Retry-After: 0; seed 3 answers the first two POSTs 429, then lets one through.
    sim.set_faults(
        FaultConfig(
            rate_429=0.6,
            retry_after_share=1.0,
            retry_after_seconds=0,
            seed=3,
            path_prefixes=("/api/systemusers",),
        )
    )
    run = _create(connection, admin_user, 1)
    sim.set_faults(None)

    posts = [r for r in writes(sim) if r.method == "POST"]
    assert [r.status for r in posts][:-1] == [429] * (len(posts) - 1) and len(posts) >= 2
    assert posts[-1].status == 200
    assert all(r.retry_after == 0 for r in posts[:-1])
    assert run.status == ActionRun.Status.SUCCEEDED, run.error_message
    assert sim.tenant().user_by_username("rate.limited1") is not None


def test_a_create_rate_limited_past_the_bounded_wait_says_nothing_was_done(sim, connection, admin_user):
    sim.set_faults(
        FaultConfig(
            rate_429=1.0, retry_after_share=1.0, retry_after_seconds=0, path_prefixes=("/api/systemusers",)
        )
    )
    run = _create(connection, admin_user, 2)
    sim.set_faults(None)

    from jumpcloud.actions import RATE_LIMIT_RETRIES

    assert [r.status for r in writes(sim)] == [429] * (RATE_LIMIT_RETRIES + 1)
    assert run.status == ActionRun.Status.FAILED
    assert run.result["outcome"] == "not_applied"
    assert "nothing was changed" in run.error_message
    assert "retried later" not in run.error_message  # nothing would retry it
    assert sim.tenant().user_by_username("rate.limited2") is None


def test_a_create_answered_503_is_looked_up_and_sent_again(sim, connection, admin_user):
    # seed 1: the first POST is answered 503 (JumpCloud did not create the user); the lookup and
    # the second POST get through.
    sim.set_faults(FaultConfig(rate_503=0.5, seed=1, path_prefixes=("/api/systemusers",)))
    run = _create(connection, admin_user, 3)
    sim.set_faults(None)

    calls = [(r.method, r.status) for r in user_requests(sim)]
    assert calls[0] == ("POST", 503)
    assert ("GET", 200) in calls and calls[-1] == ("POST", 200)
    assert calls.index(("GET", 200)) < len(calls) - 1  # looked up before sending again
    assert run.status == ActionRun.Status.SUCCEEDED, run.error_message
    assert run.result["outcome"] == "applied"
    assert sim.tenant().user_by_username("rate.limited3") is not None


def test_creates_under_heavy_429_and_503_each_get_a_definite_outcome(sim, connection, admin_user):
    """The outside check's scenario: 30 % of requests answered 429 (half with Retry-After), 5 % 503.
    Every create ends succeeded and made exactly once, never "unknown" nor a duplicate."""
    sim.set_faults(
        FaultConfig(
            rate_429=0.3, rate_503=0.05, retry_after_seconds=0, seed=17, path_prefixes=("/api/systemusers",)
        )
    )
    runs = [_create(connection, admin_user, n) for n in range(10, 18)]
    sim.set_faults(None)

    faults = {r.fault for r in user_requests(sim)}
    assert {"429", "503"} <= faults, faults  # both kinds were really injected
    for n, run in zip(range(10, 18), runs, strict=True):
        assert run.status == ActionRun.Status.SUCCEEDED, (n, run.result, run.error_message)
        matches = [u for u in sim.tenant().users if u["username"] == f"rate.limited{n}"]
        assert len(matches) == 1
