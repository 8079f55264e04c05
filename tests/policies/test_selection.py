"""Whom a policy selects, against data synced from the simulator: thresholds in each of the three
"use" modes, each exclusion, and the brakes (stale usage, Partial sync, no Directory Insights, caps).

Expected sets are computed here from the synced rows (LastUse, AppUser) independently of the
selector, so a wrong filter in the selector fails the comparison."""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Max
from django.utils import timezone

from integrations.models import Application, AppUser, LastUse, SyncCheckpoint, SyncRun
from policies.models import Policy, PolicyRun
from policies.selectors import policy_selection
from policies.services import policy_run_create
from tests.policies.conftest import make_policy

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


def _people(connection):
    return AppUser.objects.filter(
        connection=connection, application__kind="directory", directory_user__isnull=True, kind="user"
    )


def _expected(connection, *, days, age_days, scope, app=None, admins_out=True, invited_out=True, names=()):
    now = timezone.now()
    uses = LastUse.objects.filter(connection=connection)
    if scope == "directory":
        uses = uses.filter(application__kind="directory")
    elif scope == "application":
        uses = uses.filter(application=app)
    last = dict(
        uses.values("person_external_id")
        .annotate(t=Max("last_used_at"))
        .values_list("person_external_id", "t")
    )
    rows = _people(connection)
    if app is not None:
        rows = rows.filter(app_memberships__application=app, app_memberships__removed_at__isnull=True)
    out = set()
    for p in rows:
        allowed = {"active"} if invited_out else {"active", "invited"}
        if p.status not in allowed or (admins_out and p.is_admin):
            continue
        if p.username.lower() in names or p.email.lower() in names:
            continue
        if age_days and (
            p.upstream_created_at is None or p.upstream_created_at > now - timedelta(days=age_days)
        ):
            continue
        t = last.get(p.external_id)
        if t is None or t < now - timedelta(days=days):
            out.add(p.username)
    return out


def _selected(policy):
    return {c.app_user.username for c in policy_selection(policy=policy).candidates}


@pytest.mark.parametrize("days", [1, 3, 6])
def test_directory_use_threshold_matches_the_synced_last_uses(synced, days):
    policy = make_policy([synced], inactive_days=days, use_scope=Policy.UseScope.DIRECTORY)
    selection = policy_selection(policy=policy)
    expected = _expected(synced, days=days, age_days=14, scope="directory")
    assert {c.app_user.username for c in selection.candidates} == expected
    assert expected, "the simulator's data should leave someone inactive"
    assert not selection.brakes
    # Why: every person carries their last use (or none) and the reason names the threshold.
    for c in selection.candidates:
        assert (
            ("on record" in c.reason)
            if c.last_used_at is None
            else (f"last {c.last_used_at:%Y-%m-%d}" in c.reason)
        )


def test_thresholds_differ_and_a_longer_one_selects_a_subset(synced):
    short = _selected(make_policy([synced], name="short", inactive_days=1))
    long = _selected(make_policy([synced], name="long", inactive_days=5))
    assert long < short


def test_application_use_mode_counts_only_that_app_and_only_its_people(synced):
    app = Application.objects.filter(connection=synced, kind="sso").order_by("-last_used_at").first()
    policy = make_policy([synced], inactive_days=2, use_scope=Policy.UseScope.APPLICATION, application=app)
    selected = _selected(policy)
    assert selected == _expected(synced, days=2, age_days=14, scope="application", app=app)
    assigned = set(
        AppUser.objects.filter(application=app, removed_at__isnull=True).values_list("username", flat=True)
    )
    assert selected <= assigned
    # Someone active in the directory but not in this app is still selected here.
    directory_active = set(_people(synced).values_list("username", flat=True)) - _expected(
        synced, days=2, age_days=14, scope="directory"
    )
    assert selected & directory_active


def test_anywhere_mode_needs_no_use_of_anything(synced):
    policy = make_policy([synced], inactive_days=2, use_scope=Policy.UseScope.ANYWHERE)
    anywhere = _selected(policy)
    assert anywhere == _expected(synced, days=2, age_days=14, scope="anywhere")
    directory_only = _selected(make_policy([synced], name="dir", inactive_days=2))
    assert anywhere <= directory_only


def test_exclusions_admins_named_new_and_invited(synced):
    base = make_policy([synced], name="base", inactive_days=3, min_account_age_days=0)
    everyone = policy_selection(policy=base)
    usernames = {c.app_user.username for c in everyone.candidates}
    rows = {c.app_user.username: c.app_user for c in everyone.candidates}
    # Administrators.
    with_admins = make_policy(
        [synced], name="admins", inactive_days=3, min_account_age_days=0, exclude_admins=False
    )
    admins = _selected(with_admins) - usernames
    assert all(
        AppUser.objects.get(connection=synced, username=u, directory_user__isnull=True).is_admin
        for u in admins
    )
    assert not any(r.is_admin for r in rows.values())
    assert everyone.excluded["admin"] > 0
    # Named people, by username or e-mail, whatever the case.
    first, second = sorted(usernames)[:2]
    named = make_policy(
        [synced],
        name="named",
        inactive_days=3,
        min_account_age_days=0,
        excluded_people=f"{first.upper()}\n\n  {rows[second].email}  \n",
    )
    assert _selected(named) == usernames - {first, second}
    # Created recently (the simulator's newest people all signed in already: make one younger).
    young_row = rows[sorted(usernames)[-1]]
    AppUser.objects.filter(pk=young_row.pk).update(upstream_created_at=timezone.now() - timedelta(days=2))
    young = {u for u, r in rows.items() if r.upstream_created_at > timezone.now() - timedelta(days=14)}
    young.add(young_row.username)
    aged = make_policy([synced], name="aged", inactive_days=3, min_account_age_days=14)
    assert _selected(aged) == usernames - young
    # Invited (staged) people are left alone unless the policy says otherwise.
    with_invited = make_policy(
        [synced], name="inv", inactive_days=3, min_account_age_days=0, exclude_invited=False
    )
    invited = _selected(with_invited) - usernames
    assert invited and all(
        AppUser.objects.get(connection=synced, username=u, directory_user__isnull=True).status == "invited"
        for u in invited
    )
    assert all(r.status == "active" for r in rows.values())


def test_stale_usage_stops_the_run_with_a_reason_and_touches_nobody(synced, sim, admin_user):
    policy = make_policy([synced])
    old = (timezone.now() - timedelta(days=2)).isoformat()
    SyncCheckpoint.objects.filter(connection=synced, stream="events_sso").update(state={"until": old})
    selection = policy_selection(policy=policy)
    assert selection.brakes and "stale" in selection.brakes[0]
    run = policy_run_create(policy=policy, actor=admin_user)
    assert run.status == PolicyRun.Status.STOPPED and "stale" in run.stop_reason
    assert set(run.items.values_list("outcome", flat=True)) == {"skipped"}
    assert not [r for r in sim.requests if r.method == "PUT"]


def test_a_partial_latest_sync_stops_the_run(synced, sim, admin_user):
    policy = make_policy([synced])
    SyncRun.objects.create(
        connection=synced, kind="events", status=SyncRun.Status.PARTIAL, finished_at=timezone.now()
    )
    run = policy_run_create(policy=policy, actor=admin_user)
    assert run.status == PolicyRun.Status.STOPPED and "Partial" in run.stop_reason
    assert not [r for r in sim.requests if r.method == "PUT"]


def test_an_account_without_directory_insights_stops_the_run(synced, sim, admin_user):
    synced.capabilities = {**synced.capabilities, "usage_events": False}
    synced.save(update_fields=["capabilities"])
    policy = make_policy([synced])
    run = policy_run_create(policy=policy, actor=admin_user)
    assert run.status == PolicyRun.Status.STOPPED and "no Directory Insights" in run.stop_reason
    assert not [r for r in sim.requests if r.method == "PUT"]


def test_caps_by_count_and_by_share_of_the_account(synced, sim, admin_user):
    n = len(_selected(make_policy([synced], name="probe")))
    assert n >= 3
    by_count = make_policy([synced], name="count", max_people=n - 1)
    run = policy_run_create(policy=by_count, actor=admin_user)
    assert run.status == PolicyRun.Status.STOPPED and f"cap of {n - 1}" in run.stop_reason
    size = policy_selection(policy=by_count).account_size
    # A share that allows one person fewer than selected.
    share = Decimal(math.ceil((n - 1) * 10000 / size)) / 100
    assert share * size / 100 < n
    by_share = make_policy([synced], name="share", max_percent=share)
    selection = policy_selection(policy=by_share)
    assert selection.limit == n - 1 and selection.over_cap
    assert policy_run_create(policy=by_share, actor=admin_user).status == PolicyRun.Status.STOPPED
    # At the cap exactly, the run goes ahead.
    exact = make_policy([synced], name="exact", max_people=n, dry_run=True)
    assert policy_run_create(policy=exact, actor=admin_user).status == PolicyRun.Status.SUCCEEDED
    assert not [r for r in sim.requests if r.method == "PUT"]
