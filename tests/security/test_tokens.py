"""REST API tokens: hashed at rest, expiring, rotatable, revoked on a password change, made and
revoked on a page that shows a new token once; old plaintext DRF tokens migrated."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken
from integrations.models import ActionRun
from tests.factories import AdminFactory, ViewerFactory, api_token_for
from tests.security.support import database_rows

pytestmark = [pytest.mark.django_db]


def api(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def made_on_the_page(client: Client, **data) -> str:
    fields = {"name": "nightly", "days": 30, "form_key": uuid.uuid4().hex, **data}
    response = client.post(reverse("dashboard:api_token_create"), fields)
    assert response.status_code == 200, response.content[:500]
    assert "no-store" in response["Cache-Control"]
    return re.search(r'<code id="new-token">([^<]+)</code>', response.content.decode()).group(1)


def test_a_token_is_shown_once_and_stored_only_as_a_hash(viewer_client, viewer_user):
    token = made_on_the_page(viewer_client)
    assert token.startswith("torii_") and len(token) >= 64
    assert api(token).get("/api/v1/users/").status_code == 200
    assert token not in viewer_client.get(reverse("dashboard:api_tokens")).content.decode(), "shown once"
    stored = ApiToken.objects.get(user=viewer_user)
    assert stored.digest != token and len(stored.digest) == 128
    assert token not in database_rows() and token[15:] not in database_rows()
    [record] = ActionRun.objects.filter(action="token.created")
    assert record.category == "access" and token not in str(record.parameters)


def test_every_token_expires(viewer_client, viewer_user, settings):
    token = made_on_the_page(viewer_client, days=7)
    stored = ApiToken.objects.get(user=viewer_user)
    assert timedelta(days=6) < stored.expiry - timezone.now() <= timedelta(days=7)
    ApiToken.objects.filter(pk=stored.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    response = api(token).get("/api/v1/users/")
    assert response.status_code == 401
    # A lifetime above the maximum is refused.
    settings.API_TOKEN_MAX_DAYS = 30
    refused = viewer_client.post(
        reverse("dashboard:api_token_create"), {"name": "x", "days": 365, "form_key": uuid.uuid4().hex}
    )
    assert refused.status_code == 400 and not ApiToken.objects.filter(user=viewer_user).exists()


def test_the_same_form_posted_twice_makes_one_token(viewer_client, viewer_user):
    data = {"name": "once", "days": 30, "form_key": uuid.uuid4().hex}
    first = viewer_client.post(reverse("dashboard:api_token_create"), data)
    again = viewer_client.post(reverse("dashboard:api_token_create"), data)
    assert first.status_code == 200 and again.status_code == 400
    assert "already sent" in again.content.decode()
    assert ApiToken.objects.filter(user=viewer_user).count() == 1


def test_rotating_replaces_the_token(viewer_client, viewer_user):
    old = made_on_the_page(viewer_client)
    key = ApiToken.objects.get(user=viewer_user).token_key
    response = viewer_client.post(reverse("dashboard:api_token_rotate", args=[key]))
    new = re.search(r'<code id="new-token">([^<]+)</code>', response.content.decode()).group(1)
    assert new != old
    assert api(old).get("/api/v1/users/").status_code == 401
    assert api(new).get("/api/v1/users/").status_code == 200
    assert ApiToken.objects.get(user=viewer_user).name == "nightly"


def test_revoking_stops_the_token_and_only_ones_own_can_be_touched(viewer_client, viewer_user):
    token = made_on_the_page(viewer_client)
    someone = api_token_for(ViewerFactory(username="someone.else"))
    theirs = ApiToken.objects.get(user__username="someone.else").token_key
    assert viewer_client.post(reverse("dashboard:api_token_revoke", args=[theirs])).status_code == 404
    assert viewer_client.post(reverse("dashboard:api_token_rotate", args=[theirs])).status_code == 404
    assert api(someone).get("/api/v1/users/").status_code == 200
    mine = ApiToken.objects.get(user=viewer_user).token_key
    assert viewer_client.post(reverse("dashboard:api_token_revoke", args=[mine])).status_code == 303
    assert api(token).get("/api/v1/users/").status_code == 401
    assert ActionRun.objects.filter(action="token.revoked", target_username="victor.viewer").count() == 1


def test_a_password_change_revokes_every_token(viewer_client, viewer_user):
    first, second = made_on_the_page(viewer_client), made_on_the_page(viewer_client)
    other = api_token_for(AdminFactory(username="unrelated.admin"))
    response = viewer_client.post(
        reverse("dashboard:password_change"),
        {
            "old_password": "correct horse battery staple",
            "new_password1": "a brand new passphrase 77",
            "new_password2": "a brand new passphrase 77",
        },
    )
    assert response.status_code == 302
    for token in (first, second):
        assert api(token).get("/api/v1/users/").status_code == 401
    assert api(other).get("/api/v1/users/").status_code == 200, "only that person's tokens"
    # However the password changes (admin site, changepassword, set_password + save).
    token = api_token_for(viewer_user)
    viewer_user.refresh_from_db()
    viewer_user.set_password("yet another passphrase 99")
    viewer_user.save()
    assert api(token).get("/api/v1/users/").status_code == 401
    # Saving the user without a password change keeps tokens.
    token = api_token_for(viewer_user)
    viewer_user.refresh_from_db()
    viewer_user.first_name = "Victor"
    viewer_user.save()
    assert api(token).get("/api/v1/users/").status_code == 200


def test_people_without_a_role_cannot_make_tokens(client):
    nobody = get_user_model().objects.create_user("no.role", password="x" * 20)
    client.force_login(nobody)
    data = {"name": "x", "days": 30, "form_key": uuid.uuid4().hex}
    assert client.post(reverse("dashboard:api_token_create"), data).status_code == 403
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize(
    "header",
    [
        b"Token \xff\xfe",
        b"Token torii_" + b"0" * 64,
        b"Token",
        b"Token a b",
        "Token ²".encode(),
        b"Token \x00",
    ],
)
def test_malformed_tokens_are_refused_not_errors(db, header):
    client = APIClient(raise_request_exception=False)
    response = client.get("/api/v1/users/", HTTP_AUTHORIZATION=header.decode("latin-1"))
    assert response.status_code == 401, response.content[:300]


def test_plaintext_drf_tokens_are_migrated_to_hashed_expiring_tokens(db, settings):
    """The data migration: a row of rest_framework.authtoken's table becomes a hashed token that
    still works until it expires, and the plaintext table is dropped."""
    import importlib

    from django.apps import apps

    migration = importlib.import_module("accounts.migrations.0003_migrate_drf_tokens")
    person = ViewerFactory(username="old.script")
    key = "0123456789abcdef0123456789abcdef01234567"  # DRF's format: 40 hex characters
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamptz, user_id int)"
        )
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, now(), %s)", [key, person.pk])
    with connection.schema_editor() as editor:
        migration.convert(apps, editor)
    with connection.cursor() as cursor:
        assert "authtoken_token" not in connection.introspection.table_names(cursor), "plaintext gone"
    stored = ApiToken.objects.get(user=person)
    assert stored.digest != key and key not in database_rows()
    assert stored.expiry - timezone.now() <= timedelta(days=settings.API_TOKEN_MAX_DAYS)
    assert api(key).get("/api/v1/users/").status_code == 200, "an existing script keeps working"
