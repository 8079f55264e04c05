"""A second provider (tests/integrations/fake_provider.py) registered with one line connects, syncs
and acts through the core, the pages and the API unchanged: the core names no provider."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from integrations import crypto
from integrations.models import ActionRun, Application, AppUser, Connection, SyncRun
from integrations.providers import registry
from integrations.services import actions as action_services
from integrations.services.connections import connection_create
from integrations.services.sync import sync_run_execute, sync_run_request
from tests.integrations.fake_provider import TOKEN, UPSTREAM, AcmeProvider, reset_upstream

CONNECT = reverse("dashboard:connect", args=["acme"])
KEY = "acme-idempotency-0001"


@pytest.fixture
def acme():
    registry.register(AcmeProvider)  # the one line a provider needs
    reset_upstream()
    yield AcmeProvider
    registry.unregister(AcmeProvider.key)


def _connect(**overrides):
    return connection_create(
        provider_key="acme",
        name="",
        credentials={"token": TOKEN, "tenant": "north"},
        permission=Connection.Permission.READ_WRITE,
        start_sync=False,
        **overrides,
    )


def _sync(connection: Connection) -> SyncRun:
    run = sync_run_request(connection=connection, kind="full", trigger="manual", enqueue=False)
    done = sync_run_execute(run_id=run.pk)
    assert done is not None
    return done


# --- connect: the form and the service are built from the provider's credential fields ----------
@pytest.mark.django_db
def test_the_connect_form_asks_for_the_providers_own_fields(admin_client, acme):
    body = admin_client.get(CONNECT).content.decode()
    token = re.search(r'<input type="password" name="token"[^>]*>', body)
    assert token is not None and "value=" not in token.group(0)
    assert "Settings → Tokens in Acme." in body and "never shown again" in body
    assert re.search(r'<select name="tenant"[^>]*>', body)
    assert '<option value="north">North</option>' in body
    assert "Worldwide (GLOBAL)" in body
    assert "api_key" not in body and "JumpCloud" not in body.split("<main", 1)[-1]


@pytest.mark.django_db
def test_a_wrong_token_is_refused_beside_its_field_and_never_shown(admin_client, acme):
    wrong = "not-the-token-987654"
    response = admin_client.post(
        CONNECT,
        {"permission": "read_only", "token": wrong, "tenant": "north", "name": "", "region": "global"},
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert 'id="id_token_error"' in body and "Acme refused this token." in body
    assert wrong not in body
    assert not Connection.objects.exists()
    assert response.wsgi_request.sensitive_post_parameters == ("token",)


@pytest.mark.django_db
def test_a_missing_field_says_which(admin_client, acme):
    response = admin_client.post(CONNECT, {"permission": "read_only", "token": TOKEN, "region": "global"})
    assert response.status_code == 400
    assert 'id="id_tenant_error"' in response.content.decode()


@pytest.mark.django_db
def test_connecting_stores_the_credentials_dict_encrypted(admin_client, acme):
    response = admin_client.post(
        CONNECT,
        {"permission": "read_write", "token": TOKEN, "tenant": "north", "name": "", "region": "global"},
    )
    assert response.status_code == 302
    connection = Connection.objects.get()
    assert (connection.provider, connection.org_id, connection.name) == ("acme", "north", "Acme North")
    assert crypto.decrypt_json(connection.credentials) == {"token": TOKEN, "tenant": "north"}
    assert TOKEN not in connection.credentials
    assert connection.secret_hint == "••••" + TOKEN[-4:]
    audit = ActionRun.objects.get(action="connection.connected")
    assert TOKEN not in str(audit.parameters)


# --- sync and act ----------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_it_syncs_through_the_cores_canvas(acme, admin_client):
    connection = _connect()
    run = _sync(connection)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_message
    assert {t.stream for t in run.tasks.all()} == {"apps", "people"}
    apps = {a.external_id: a for a in Application.objects.filter(connection=connection)}
    assert set(apps) == {"acme", "wiki", "crm"} and apps["acme"].kind == Application.Kind.DIRECTORY
    people = AppUser.objects.filter(application=apps["acme"])
    assert sorted(people.values_list("username", flat=True)) == ["ana", "bo"]
    crm = AppUser.objects.get(application=apps["crm"])
    assert crm.directory_user is not None and crm.directory_user.username == "bo"

    # The pages and the API read the same rows, with the provider's capabilities.
    listed = admin_client.get(f"/api/v1/applications/{apps['wiki'].pk}/users/").json()["results"]
    assert sorted(u["username"] for u in listed) == ["ana", "bo"]
    caps = admin_client.get(f"/api/v1/connections/{connection.pk}/capabilities/").json()
    assert {c["key"] for c in caps if c["supported"]} >= {"users", "applications", "action_suspend_user"}
    assert admin_client.get(reverse("dashboard:applications")).status_code == 200

    # A second sync changes nothing.
    assert _sync(connection).status == SyncRun.Status.SUCCEEDED
    assert AppUser.objects.filter(connection=connection).count() == 5


@pytest.mark.django_db(transaction=True)
def test_it_acts_through_the_cores_action_service(acme, admin_user):
    connection = _connect()
    _sync(connection)
    bo = AppUser.objects.get(connection=connection, username="bo", directory_user__isnull=True)

    result = action_services.app_user_act(
        app_user=bo, action="suspend_user", actor=admin_user, idempotency_key=KEY
    )
    assert result.run.status == ActionRun.Status.SUCCEEDED and result.run.request_id == "acme-1"
    assert UPSTREAM["north"]["users"]["u2"]["suspended"] is True
    bo.refresh_from_db()
    assert bo.status == AppUser.Status.SUSPENDED
    again = action_services.app_user_act(
        app_user=bo, action="suspend_user", actor=admin_user, idempotency_key=KEY
    )
    assert again.replayed and again.run.pk == result.run.pk

    # The provider's check normalises the input; the core adds its collision check.
    created = action_services.action_run_request(
        connection=connection,
        action="create_user",
        actor=admin_user,
        idempotency_key=KEY + "-create",
        params={"username": " Cy ", "email": "cy@acme.example"},
    )
    assert created.run.status == ActionRun.Status.SUCCEEDED and created.run.target_username == "cy"
    assert AppUser.objects.filter(connection=connection, username="cy").exists()
    with pytest.raises(action_services.ActionInvalid) as bad:
        action_services.action_run_request(
            connection=connection,
            action="create_user",
            actor=admin_user,
            idempotency_key=KEY + "-bad",
            params={"username": "c y!", "email": "c@acme.example"},
        )
    assert bad.value.errors == {"username": ["Letters and digits only."]}
    with pytest.raises(action_services.ActionConflict):
        action_services.action_run_request(
            connection=connection,
            action="create_user",
            actor=admin_user,
            idempotency_key=KEY + "-twice",
            params={"username": "ana", "email": "other@acme.example"},
        )
    # What the provider does not declare, the core does not run.
    with pytest.raises(action_services.ActionForbidden, match="Unknown action"):
        action_services.app_user_act(
            app_user=bo, action="delete_user", actor=admin_user, idempotency_key=KEY + "-d"
        )
