"""Answers to signed-in people are private: `Cache-Control: private, no-store` on every page and
every API answer (session or token), so no shared cache or browser disk keeps people's records;
pages htmx may fetch as fragments say `Vary: HX-Request`. The deleted person's JumpCloud record
(`snapshot`) is shown to Admins only."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils.cache import get_max_age
from rest_framework.test import APIClient

from integrations.models import ActionRun
from tests.factories import api_token_for
from tests.security.support import make_world, walk_get

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def world(allow_sim):
    return make_world(allow_sim, users=3)


def _private(response) -> bool:
    directives = {d.strip().split("=")[0] for d in response.get("Cache-Control", "").split(",")}
    return {"private", "no-store"} <= directives and "public" not in directives


def test_every_page_and_fragment_for_a_signed_in_person_is_private(admin_client, viewer_client, world):
    checked = 0
    for client in (admin_client, viewer_client):
        for htmx in (False, True):
            for url, response, _ in walk_get(client, world, api=False, htmx=htmx):
                assert _private(response), (url, response.status_code, response.get("Cache-Control"))
                assert get_max_age(response) in (None, 0), url
                if response.get("Content-Type", "").startswith("text/html"):
                    vary = {v.strip().lower() for v in response.get("Vary", "").split(",")}
                    assert "hx-request" in vary, (url, response.get("Vary"))
                checked += 1
    assert checked > 60


def test_every_api_answer_is_private_with_session_or_token(admin_user, viewer_user, world):
    token = APIClient()
    token.credentials(HTTP_AUTHORIZATION=f"Token {api_token_for(viewer_user)}")
    session = APIClient()
    session.force_login(admin_user)
    checked = 0
    for client in (token, session):
        for url, response, _ in walk_get(client, world, api=True):
            assert response.status_code < 500, url
            assert _private(response), (url, response.get("Cache-Control"))
            checked += 1
    assert checked > 20


def test_htmx_fragments_vary_on_hx_request(admin_client, world):
    full = admin_client.get(reverse("dashboard:users"))
    fragment = admin_client.get(
        reverse("dashboard:users"), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="users-results"
    )
    assert "<html" in full.content.decode() and "<html" not in fragment.content.decode()
    for response in (full, fragment):
        assert "HX-Request" in response["Vary"]


@pytest.fixture
def deletion(world):
    return ActionRun.objects.create(
        category="user_action",
        action="delete_user",
        connection=world.connection,
        connection_name=world.connection.name,
        actor_username="alice.admin",
        target_username="gone.person",
        status="succeeded",
        snapshot={"_id": "5f00", "phoneNumbers": [{"number": "+1 555 0100"}], "sshKeys": ["ssh-rsa AAAA"]},
    )


def test_viewers_never_read_a_deleted_persons_record(viewer_user, viewer_client, deletion):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {api_token_for(viewer_user)}")
    for url in (f"/api/v1/audit-log/{deletion.pk}/", f"/api/v1/actions/{deletion.pk}/"):
        body = api.get(url).json()
        assert body["snapshot"] is None and body["has_snapshot"] is True, url
    for url in ("/api/v1/audit-log/", "/api/v1/actions/"):
        assert "+1 555 0100" not in api.get(url).content.decode(), url
    for url in (
        reverse("dashboard:action_run", args=[deletion.pk]),
        reverse("dashboard:audit"),
        reverse("dashboard:audit_log_csv"),
    ):
        response = viewer_client.get(url)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert b"+1 555 0100" not in body and b"ssh-rsa" not in body, url
    assert (
        "only Admins"
        in viewer_client.get(reverse("dashboard:action_run", args=[deletion.pk])).content.decode()
    )


def test_admins_read_the_kept_record(admin_user, admin_client, deletion):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {api_token_for(admin_user)}")
    assert api.get(f"/api/v1/audit-log/{deletion.pk}/").json()["snapshot"]["sshKeys"] == ["ssh-rsa AAAA"]
    assert (
        "+1 555 0100"
        in admin_client.get(reverse("dashboard:action_run", args=[deletion.pk])).content.decode()
    )
