"""People and roles in torii's own UI (Admins): add a person, give Admin/Viewer/no role, deactivate,
lift a login lockout; every change audited. The README sends nobody to /admin/ for roles, and the
first Admin can still open /admin/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from accounts.roles import ADMIN, VIEWER, role_of
from integrations.models import ActionRun
from tests.factories import AdminFactory, ViewerFactory, api_token_for

pytestmark = [pytest.mark.django_db]
ROOT = Path(__file__).resolve().parents[2]


def _audit(action: str) -> list[ActionRun]:
    return list(ActionRun.objects.filter(category="access", action=action))


def test_the_people_page_lists_everyone_for_admins_only(admin_client, viewer_client, viewer_user):
    page = admin_client.get(reverse("dashboard:people"))
    assert page.status_code == 200
    body = page.content.decode()
    assert "victor.viewer" in body and "alice.admin" in body
    assert viewer_client.get(reverse("dashboard:people")).status_code == 403
    target = reverse("dashboard:person_role", args=[viewer_user.pk])
    assert viewer_client.post(target, {"role": ADMIN}).status_code == 403
    assert role_of(get_user_model().objects.get(pk=viewer_user.pk)) == VIEWER


def test_an_admin_adds_a_person_who_can_log_in_with_the_password_shown_once(admin_client, admin_user):
    response = admin_client.post(
        reverse("dashboard:person_create"),
        {"username": "nina.new", "email": "n@example.test", "role": VIEWER},
    )
    assert response.status_code == 200
    assert response["Cache-Control"] and "no-store" in response["Cache-Control"]
    password = re.search(r'<code id="new-password">([^<]+)</code>', response.content.decode()).group(1)
    person = get_user_model().objects.get(username="nina.new")
    assert role_of(person) == VIEWER and person.check_password(password)
    assert password not in admin_client.get(reverse("dashboard:people")).content.decode(), "shown once"
    fresh = Client()
    assert fresh.post(reverse("login"), {"username": "nina.new", "password": password}).status_code == 302
    [record] = _audit("person.created")
    assert record.actor == admin_user and record.target_username == "nina.new"
    assert password not in str(record.parameters)
    # A taken username is refused with a reason, nothing added.
    again = admin_client.post(reverse("dashboard:person_create"), {"username": "NINA.new", "role": VIEWER})
    assert again.status_code == 400 and "already" in again.content.decode()


def test_roles_are_given_and_taken_on_the_page_and_audited(admin_client, admin_user):
    person = ViewerFactory(username="rory")
    url = reverse("dashboard:person_role", args=[person.pk])
    assert admin_client.post(url, {"role": ADMIN}).status_code == 303
    assert role_of(get_user_model().objects.get(pk=person.pk)) == ADMIN
    assert admin_client.post(url, {"role": ""}).status_code == 303
    assert role_of(get_user_model().objects.get(pk=person.pk)) is None
    changes = [(r.parameters["from"], r.parameters["to"]) for r in _audit("person.role_changed")]
    assert sorted(changes) == sorted([(VIEWER, ADMIN), (ADMIN, "none")])
    # A person without a role sees nothing.
    c = Client()
    c.force_login(person)
    assert c.get(reverse("dashboard:users")).status_code == 403


def test_the_last_active_admin_cannot_be_demoted_or_deactivated(admin_client, admin_user):
    url = reverse("dashboard:person_role", args=[admin_user.pk])
    response = admin_client.post(url, {"role": VIEWER}, follow=True)
    assert "at least one active Admin" in response.content.decode()
    assert role_of(get_user_model().objects.get(pk=admin_user.pk)) == ADMIN
    other = AdminFactory(username="second.admin")
    admin_client.post(reverse("dashboard:person_deactivate", args=[other.pk]))
    assert not get_user_model().objects.get(pk=other.pk).is_active
    response = admin_client.post(reverse("dashboard:person_deactivate", args=[admin_user.pk]), follow=True)
    assert "cannot deactivate yourself" in response.content.decode()
    assert get_user_model().objects.get(pk=admin_user.pk).is_active


def test_deactivating_ends_sessions_and_api_tokens(admin_client, admin_user):
    person = ViewerFactory(username="dora")
    token = api_token_for(person)
    session = Client()
    session.force_login(person)
    assert session.get(reverse("dashboard:home")).status_code == 200
    assert admin_client.post(reverse("dashboard:person_deactivate", args=[person.pk])).status_code == 303
    assert session.get(reverse("dashboard:home")).status_code == 302
    api = Client(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/v1/users/").status_code == 401
    assert len(_audit("person.deactivated")) == 1
    admin_client.post(reverse("dashboard:person_reactivate", args=[person.pk]))
    assert get_user_model().objects.get(pk=person.pk).is_active
    assert len(_audit("person.reactivated")) == 1


def test_admins_see_and_lift_login_lockouts(admin_client, admin_user, settings):
    ViewerFactory(username="locked.larry")
    for n in range(settings.AXES_FAILURE_LIMIT):
        Client().post(
            reverse("login"), {"username": "locked.larry", "password": f"x{n}"}, REMOTE_ADDR="203.0.113.8"
        )
    refused = Client().post(
        reverse("login"),
        {"username": "locked.larry", "password": "correct horse battery staple"},
        REMOTE_ADDR="203.0.113.8",
    )
    assert refused.status_code == 429
    page = admin_client.get(reverse("dashboard:people")).content.decode()
    assert "locked.larry" in page and "203.0.113.8" in page
    from axes.models import AccessAttempt

    attempt = AccessAttempt.objects.get(username="locked.larry")
    assert admin_client.post(reverse("dashboard:lockout_reset", args=[attempt.pk])).status_code == 303
    again = Client().post(
        reverse("login"),
        {"username": "locked.larry", "password": "correct horse battery staple"},
        REMOTE_ADDR="203.0.113.8",
    )
    assert again.status_code == 302
    [record] = _audit("login.unlocked")
    assert record.target_username == "locked.larry" and record.parameters == {"address": "203.0.113.8"}


def test_the_readme_gives_roles_in_torii_not_in_the_admin_site():
    readme = (ROOT / "README.md").read_text()
    roles = readme[readme.index("## Roles") :]
    roles = roles[: roles.index("\n## ", 4)]
    assert "People" in roles
    assert "/admin/" not in roles, "roles are given on the People page"


def test_the_first_admin_can_use_the_admin_site(monkeypatch, capsys):
    monkeypatch.setenv("TORII_ADMIN_PASSWORD", "a long enough first password 42")
    call_command("create_first_admin", "--username", "first.admin")
    client = Client()
    assert (
        client.post(
            reverse("login"), {"username": "first.admin", "password": "a long enough first password 42"}
        ).status_code
        == 302
    )
    assert client.get("/admin/auth/user/").status_code == 200
    assert client.get(reverse("dashboard:people")).status_code == 200
