"""The action pages and the audit page, through Django's test client, against the simulator."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import reverse

from accounts.context_processors import roles
from integrations.models import ActionRun, AppUser, Connection
from tests.api.support import acting_connection, directory_users, running_simulator, writes
from tests.factories import ActionRunFactory, ApplicationFactory, AppUserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.fixture
def sim():
    with running_simulator() as s:
        yield s


@pytest.fixture
def connection(sim, settings):
    return acting_connection(sim, settings)


@pytest.fixture
def target(connection):
    return directory_users(connection)[0]


def hidden_key(html: str) -> str:
    match = re.search(r'name="idempotency_key" value="([^"]+)"', html)
    assert match, "the form carries an idempotency key"
    return match.group(1)


# --- the buttons included in the users table -------------------------------------------------
def render_buttons(user, app_user) -> str:
    request = RequestFactory().get("/users/")
    request.user = user
    return render_to_string(
        "dashboard/actions/_user_actions.html", {"app_user": app_user, **roles(request)}, request=request
    )


def test_admins_see_action_buttons_viewers_see_none(target, admin_user, viewer_user):
    html = render_buttons(admin_user, target)
    assert reverse("dashboard:user_suspend_confirm", args=[target.pk]) in html
    assert reverse("dashboard:user_delete_confirm", args=[target.pk]) in html
    assert render_buttons(viewer_user, target).strip() == ""


def test_a_suspended_user_offers_unsuspend(target, admin_user):
    AppUser.objects.filter(pk=target.pk).update(status=AppUser.Status.SUSPENDED)
    target.refresh_from_db()
    html = render_buttons(admin_user, target)
    assert reverse("dashboard:user_unsuspend_confirm", args=[target.pk]) in html
    assert reverse("dashboard:user_suspend_confirm", args=[target.pk]) not in html


def test_a_read_only_account_explains_instead_of_offering_buttons(connection, target, admin_user):
    Connection.objects.filter(pk=connection.pk).update(permission=Connection.Permission.READ_ONLY)
    target = AppUser.objects.select_related("connection").get(pk=target.pk)
    html = render_buttons(admin_user, target)
    assert "Connected read-only — reconnect with Read and take action to enable." in html
    assert "suspend" not in html.lower().replace("read-only", "")


# --- suspend ---------------------------------------------------------------------------------
def test_suspend_confirmation_names_the_user_and_the_consequence_then_acts(sim, target, admin_client):
    page = admin_client.get(reverse("dashboard:user_suspend_confirm", args=[target.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert f"Suspend {target.username}" in html
    assert "lose access to every SSO application and to device logins" in html
    assert sim.requests == []  # showing the confirmation sends nothing

    response = admin_client.post(
        reverse("dashboard:user_suspend", args=[target.pk]), {"idempotency_key": hidden_key(html)}
    )
    run = ActionRun.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "dashboard:action_run", args=[run.pk]
    )
    result = admin_client.get(response["Location"]).content.decode()
    assert "Succeeded" in result and f"Suspended “{target.username}”" in result
    assert [r.json_body for r in writes(sim)] == [{"state": "SUSPENDED", "suspended": True}]

    # A double click (the same form posted again) replays instead of sending again.
    again = admin_client.post(
        reverse("dashboard:user_suspend", args=[target.pk]), {"idempotency_key": hidden_key(html)}
    )
    assert again["Location"] == response["Location"]
    assert len(writes(sim)) == 1


def test_acting_endpoints_refuse_get(target, admin_client):
    for name in ("user_suspend", "user_unsuspend", "user_delete"):
        assert admin_client.get(reverse(f"dashboard:{name}", args=[target.pk])).status_code == 405
    for name in ("user_create_submit", "bulk_suspend"):
        assert admin_client.get(reverse(f"dashboard:{name}")).status_code == 405


def test_viewers_get_403_on_every_action_page_and_nothing_is_sent(sim, target, viewer_client):
    for name in ("user_suspend_confirm", "user_unsuspend_confirm", "user_delete_confirm"):
        assert viewer_client.get(reverse(f"dashboard:{name}", args=[target.pk])).status_code == 403
    for name in ("user_suspend", "user_unsuspend", "user_delete"):
        response = viewer_client.post(
            reverse(f"dashboard:{name}", args=[target.pk]), {"idempotency_key": "k" * 32}
        )
        assert response.status_code == 403
    assert viewer_client.get(reverse("dashboard:user_create")).status_code == 403
    assert (
        viewer_client.post(reverse("dashboard:bulk_suspend"), {"app_user_ids": [target.pk]}).status_code
        == 403
    )
    assert sim.requests == [] and not ActionRun.objects.exists()


def test_a_read_only_account_gets_the_note_and_a_403_without_calling_jumpcloud(
    sim, connection, target, admin_client
):
    Connection.objects.filter(pk=connection.pk).update(permission=Connection.Permission.READ_ONLY)
    page = admin_client.get(reverse("dashboard:user_suspend_confirm", args=[target.pk])).content.decode()
    assert "reconnect with Read and take action to enable" in page
    assert 'name="idempotency_key"' not in page
    response = admin_client.post(
        reverse("dashboard:user_suspend", args=[target.pk]), {"idempotency_key": "k" * 32}
    )
    assert response.status_code == 403
    assert sim.requests == [] and not ActionRun.objects.exists()


def test_posting_without_csrf_is_refused(target, admin_user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    response = client.post(reverse("dashboard:user_suspend", args=[target.pk]), {"idempotency_key": "k" * 32})
    assert response.status_code == 403
    assert not ActionRun.objects.exists()


# --- delete ----------------------------------------------------------------------------------
def test_delete_confirmation_shows_what_the_user_has_and_needs_the_typed_username(
    sim, connection, target, admin_client
):
    app = ApplicationFactory(connection=connection, label="Zoom <script>")
    AppUserFactory(application=app, external_id=target.external_id, directory_user=target)
    AppUser.objects.filter(pk=target.pk).update(is_admin=True, role="Help Desk")
    page = admin_client.get(reverse("dashboard:user_delete_confirm", args=[target.pk])).content.decode()
    assert "Zoom &lt;script&gt;" in page and "Help Desk" in page
    assert f"Type <strong>{target.username}</strong> to confirm" in page

    url = reverse("dashboard:user_delete", args=[target.pk])
    wrong = admin_client.post(url, {"idempotency_key": hidden_key(page), "confirm_username": "someone.else"})
    assert wrong.status_code == 400 and "not the username" in wrong.content.decode()
    assert sim.requests == []

    right = admin_client.post(url, {"idempotency_key": hidden_key(page), "confirm_username": target.username})
    assert right.status_code == 302
    run = ActionRun.objects.get()
    assert run.status == "succeeded" and run.snapshot["_id"] == target.external_id
    detail = admin_client.get(right["Location"]).content.decode()
    assert "JumpCloud record kept before deletion" in detail


# --- create ----------------------------------------------------------------------------------
def test_the_preview_shows_the_dotted_username_and_every_problem(connection, target, admin_client):
    url = reverse("dashboard:user_create_preview")
    ok = admin_client.get(
        url, {"connection": connection.pk, "username": "Jane Doe", "email": "jane@new.example"}
    )
    # Said once: the note names what JumpCloud will receive; no second sentence repeats it.
    assert ok.content.decode().count("Jane.Doe") == 1
    assert "Spaces become dots: JumpCloud will receive “Jane.Doe”" in ok.content.decode()
    bad = admin_client.get(url, {"connection": connection.pk, "username": "9 lives@home!"}).content.decode()
    assert "must start with a letter" in bad and "cannot contain &#x27;@&#x27;" in bad
    taken = admin_client.get(
        url, {"connection": connection.pk, "username": target.username.upper()}
    ).content.decode()
    assert "already exists" in taken


def test_create_form_then_the_user_appears_at_once(sim, connection, admin_client):
    form = admin_client.get(reverse("dashboard:user_create")).content.decode()
    assert 'hx-get="' + reverse("dashboard:user_create_preview") in form
    response = admin_client.post(
        reverse("dashboard:user_create_submit"),
        {
            "idempotency_key": hidden_key(form),
            "connection": connection.pk,
            "first_name": "Jane",
            "last_name": "Doe",
            "email": "jane.doe@new.example",
            "username": "Jane Doe",
            "state": "ACTIVATED",
        },
    )
    assert response.status_code == 302
    assert writes(sim)[0].json_body["username"] == "Jane.Doe"
    assert AppUser.objects.filter(connection=connection, username="Jane.Doe", status="active").exists()


def test_create_collision_is_shown_on_the_form_and_nothing_is_sent(sim, connection, target, admin_client):
    form = admin_client.get(reverse("dashboard:user_create")).content.decode()
    response = admin_client.post(
        reverse("dashboard:user_create_submit"),
        {
            "idempotency_key": hidden_key(form),
            "connection": connection.pk,
            "email": "fresh@new.example",
            "username": target.username,
        },
    )
    assert response.status_code == 409
    assert "already exists in" in response.content.decode()
    assert sim.requests == []


def test_jumpcloud_refusing_a_create_shows_its_message_and_a_fresh_form(sim, connection, admin_client):
    from jumpcloud.client import JumpCloudClient

    with JumpCloudClient(sim.keys["admin"], base_url=sim.base_url) as other:
        other.create_system_user(username="taken.name", email="taken@new.example")
    form = admin_client.get(reverse("dashboard:user_create")).content.decode()
    key = hidden_key(form)
    response = admin_client.post(
        reverse("dashboard:user_create_submit"),
        {
            "idempotency_key": key,
            "connection": connection.pk,
            "email": "mine@new.example",
            "username": "taken.name",
        },
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "JumpCloud did not create the user." in html and "already has a user" in html
    assert hidden_key(html) != key  # a corrected attempt is a new action
    run = ActionRun.objects.get()
    assert reverse("dashboard:action_run", args=[run.pk]) in html


def test_create_on_a_read_only_account_is_a_403(sim, connection, admin_client):
    Connection.objects.filter(pk=connection.pk).update(permission=Connection.Permission.READ_ONLY)
    response = admin_client.post(
        reverse("dashboard:user_create_submit"),
        {
            "idempotency_key": "k" * 32,
            "connection": connection.pk,
            "email": "x@new.example",
            "username": "xavier",
        },
    )
    assert response.status_code == 403
    assert sim.requests == []


# --- bulk suspend ----------------------------------------------------------------------------
def test_bulk_suspend_one_confirmation_then_an_outcome_per_user(sim, connection, admin_client):
    users = directory_users(connection)[:3]
    ids = [u.pk for u in users]
    page = admin_client.get(reverse("dashboard:bulk_suspend_confirm"), {"app_user_ids": ids}).content.decode()
    for u in users:
        assert u.username in page
    assert "Suspend 3 users?" in page
    # The selection may also arrive by POST (the inactive-users form).
    assert (
        admin_client.post(reverse("dashboard:bulk_suspend_confirm"), {"app_user_ids": ids}).status_code == 200
    )
    assert sim.requests == []

    result = admin_client.post(
        reverse("dashboard:bulk_suspend"), {"idempotency_key": hidden_key(page), "app_user_ids": ids}
    )
    html = result.content.decode()
    assert result.status_code == 200 and "3 suspended, 0 not suspended" in html
    assert len(writes(sim)) == 3
    assert ActionRun.objects.filter(action="suspend_user", status="succeeded").count() == 3


# --- the audit log page ----------------------------------------------------------------------
def test_the_audit_page_filters_and_exports_csv_safely(connection, admin_client, viewer_client, admin_user):
    ActionRunFactory(
        connection=connection,
        action="delete_user",
        status="failed",
        error_message="=cmd|' /C calc'!A0",
        target_username="@evil",
        actor=admin_user,
        actor_username=admin_user.username,
        request_id="r-9",
    )
    ActionRunFactory(
        connection=connection,
        category="connection",
        action="connection.permission_changed",
        status="succeeded",
        parameters={"from": "read_only", "to": "read_write"},
        actor_username="system",
    )
    page = viewer_client.get(reverse("dashboard:audit"), {"status": "failed"}).content.decode()
    assert "@evil" in page and ">Delete user</a>" in page and ">Permission changed</td>" not in page
    everything = viewer_client.get(reverse("dashboard:audit")).content.decode()
    assert ">Permission changed</td>" in everything
    # Readable parameters, not raw keys and codes.
    assert "Before:</span> Read only" in everything and "After:</span> Read and take action" in everything
    assert "read_only" not in everything.split("<tbody>")[1]

    response = viewer_client.get(reverse("dashboard:audit_log_csv"), {"action": "delete_user"})
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0][:4] == ["created_at", "finished_at", "category", "action"]
    assert len(rows) == 2
    assert all(not cell.startswith(("=", "+", "-", "@")) for cell in rows[1])
    assert "r-9" in rows[1]


def test_audit_records_cannot_be_changed_in_the_admin_site(connection, django_user_model):
    from django.test import Client

    superuser = django_user_model.objects.create_superuser(
        "root", "root@example.test", "correct horse battery staple"
    )
    client = Client()
    client.force_login(superuser)
    run = ActionRunFactory(connection=connection)
    base = "/admin/integrations/actionrun/"
    assert client.get(base).status_code == 200
    assert client.get(f"{base}add/").status_code == 403
    assert client.post(f"{base}{run.pk}/change/", {"status": "failed"}).status_code == 403
    assert client.post(f"{base}{run.pk}/delete/", {"post": "yes"}).status_code == 403
    assert ActionRun.objects.filter(pk=run.pk, status="pending").exists()


def test_a_removed_user_has_nothing_to_confirm(target, admin_client):
    AppUser.objects.filter(pk=target.pk).update(status=AppUser.Status.REMOVED)
    page = admin_client.get(reverse("dashboard:user_delete_confirm", args=[target.pk])).content.decode()
    assert "was removed from" in page and 'name="idempotency_key"' not in page
