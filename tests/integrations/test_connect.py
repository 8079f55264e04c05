"""Connecting accounts against the simulator: each way a key can be wrong gets a specific message."""

from __future__ import annotations

import pytest

from integrations import crypto
from integrations.models import ActionRun, Connection, SyncRun
from integrations.providers import CredentialsError
from integrations.services.connections import (
    ConnectRateLimited,
    connection_disconnect,
    connection_update,
)

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_connect_saves_an_encrypted_key_and_detects_capabilities(connect, sim, admin_user):
    connection = connect(permission="read_write", created_by=admin_user)
    assert connection.org_id == sim.org_ids["primary"]
    assert connection.org_name
    assert sim.keys["admin"] not in connection.credentials
    assert crypto.decrypt_json(connection.credentials) == {"api_key": sim.keys["admin"]}
    assert connection.secret_hint == "••••" + sim.keys["admin"][-4:]
    assert connection.capabilities["usage_events"] is True
    assert connection.capabilities["multi_tenant"] is False
    assert ActionRun.objects.filter(connection=connection, action="connection.connected").exists()


def test_connect_queues_the_first_sync(connect, sim):
    connection = connect(start_sync=True)  # Celery is eager in unit tests: the sync runs now
    run = SyncRun.objects.get(connection=connection)
    assert run.trigger == SyncRun.Trigger.CONNECT
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_message
    connection.refresh_from_db()
    assert connection.status == Connection.Status.CONNECTED


def test_rejected_key_is_refused_and_nothing_saved(connect, sim, allow_sim):
    from integrations.services.connections import connection_create

    with pytest.raises(CredentialsError) as err:
        connection_create(
            provider_key="jumpcloud",
            name="x",
            credentials={"api_key": "0" * 40},
            permission="read_only",
            base_url=sim.base_url,
        )
    assert err.value.code == "invalid_key" and "rejected" in err.value.message
    assert Connection.objects.count() == 0


def test_multi_tenant_key_without_org_lists_the_organizations(connect, sim):
    with pytest.raises(CredentialsError) as err:
        connect("multi_tenant")
    assert err.value.code == "org_required"
    ids = {oid for oid, _ in err.value.choices}
    assert ids == set(sim.org_ids.values())
    for oid, name in err.value.choices:
        assert oid in err.value.message and name in err.value.message
    assert Connection.objects.count() == 0


def test_multi_tenant_key_connects_each_organization_once(connect, sim):
    a = connect("multi_tenant", org_id=sim.org_ids["primary"], name="Primary")
    b = connect("multi_tenant", org_id=sim.org_ids["secondary"], name="Secondary")
    assert a.capabilities["multi_tenant"] and b.org_id == sim.org_ids["secondary"]
    with pytest.raises(CredentialsError) as err:
        connect("multi_tenant", org_id=sim.org_ids["primary"], name="Again")
    assert err.value.code == "duplicate" and "Primary" in err.value.message
    with pytest.raises(CredentialsError) as err:
        connect("admin", name="Same org, other key")
    assert err.value.code == "duplicate"


def test_unknown_org_id_is_refused(connect, sim):
    with pytest.raises(CredentialsError) as err:
        connect("multi_tenant", org_id="0123456789abcdef01234567")
    assert err.value.code == "org_not_found"


def test_read_only_admin_cannot_be_connected_for_actions(connect, sim):
    with pytest.raises(CredentialsError) as err:
        connect("read_only", permission="read_write")
    assert err.value.code == "no_write_rights" and "Read only" in err.value.message
    connection = connect("read_only", permission="read_only")
    assert connection.capabilities["admin_read_only"] is True


def test_admin_without_rights_is_refused(connect, sim):
    with pytest.raises(CredentialsError) as err:
        connect("billing_only")
    assert err.value.code == "no_rights" and "cannot read JumpCloud users" in err.value.message


def test_command_runner_key_is_refused(connect, sim):
    with pytest.raises(CredentialsError) as err:
        connect("command_runner")
    assert err.value.code == "no_rights"


def test_base_url_must_be_an_allowed_origin(settings, db):
    from integrations.services.connections import connection_create

    settings.JUMPCLOUD_ALLOWED_BASE_URLS = ["http://127.0.0.1:8765"]
    for url in (
        "http://127.0.0.1:9999",
        "http://169.254.169.254",
        "http://127.0.0.1:8765/api/../x",
        "http://user:pw@127.0.0.1:8765",
        "file:///etc/passwd",
        "gopher://127.0.0.1:8765",
    ):
        with pytest.raises(CredentialsError) as err:
            connection_create(
                provider_key="jumpcloud",
                name="x",
                credentials={"api_key": "k" * 40},
                permission="read_only",
                base_url=url,
            )
        assert err.value.code == "base_url_not_allowed", url


def test_connect_attempts_are_rate_limited_per_user(settings, allow_sim, sim, admin_user):
    from integrations.services.connections import connection_create

    settings.CONNECT_ATTEMPTS_PER_HOUR = 3
    for _ in range(3):
        with pytest.raises(CredentialsError):
            connection_create(
                provider_key="jumpcloud",
                name="x",
                credentials={"api_key": "1" * 40},
                permission="read_only",
                base_url=sim.base_url,
                created_by=admin_user,
            )
    sim.clear_requests()
    with pytest.raises(ConnectRateLimited):
        connection_create(
            provider_key="jumpcloud",
            name="x",
            credentials={"api_key": "2" * 40},
            permission="read_only",
            base_url=sim.base_url,
            created_by=admin_user,
        )
    assert sim.requests == [], "a rate-limited attempt must not reach JumpCloud"


def test_no_directory_insights_syncs_users_and_marks_usage_unavailable(connect, sim):
    from tests.integrations.test_sync import run_sync

    connection = connect("no_di")
    assert connection.capabilities["usage_events"] is False
    run = run_sync(connection)
    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.streams["events_sso"]["status"] == "skipped"
    connection.refresh_from_db()
    assert connection.status == Connection.Status.CONNECTED
    assert connection.app_users.filter(application__kind="directory", kind="user").count() == len(
        sim.tenant("no_di").users
    )
    assert connection.usage_events.count() == 0
    from jumpcloud.provider import JumpCloudProvider

    statuses = {s.capability.key: s for s in JumpCloudProvider.capability_statuses(connection)}
    assert not statuses["usage_sso"].available and "Directory Insights" in statuses["usage_sso"].reason
    assert statuses["users"].available


def test_revoked_key_marks_the_connection_needs_reconnect(connect, sim):
    from integrations.services.sync import sync_dispatch_due
    from tests.integrations.test_sync import run_sync

    connection = connect()
    Connection.objects.filter(pk=connection.pk).update(credentials=crypto.encrypt_json({"api_key": "9" * 40}))
    connection.refresh_from_db()
    run = run_sync(connection)
    assert run.status == SyncRun.Status.FAILED
    connection.refresh_from_db()
    assert connection.status == Connection.Status.NEEDS_RECONNECT
    assert "rejected" in connection.status_message.lower() or "key" in connection.status_message.lower()
    assert sync_dispatch_due() == []


def test_rotate_key_and_disconnect(connect, sim, admin_user):
    connection = connect(created_by=admin_user)
    connection_update(
        connection=connection,
        actor=admin_user,
        credentials={"api_key": sim.keys["admin"]},
        permission="read_write",
    )
    assert ActionRun.objects.filter(action="connection.key_rotated").exists()
    assert ActionRun.objects.filter(action="connection.permission_changed").exists()
    with pytest.raises(CredentialsError) as err:
        connection_update(connection=connection, actor=admin_user, credentials={"api_key": sim.keys["no_di"]})
    assert err.value.code in ("other_org", "org_not_found")
    connection_disconnect(connection=connection, actor=admin_user, delete_data=False)
    connection.refresh_from_db()
    assert connection.status == Connection.Status.DISCONNECTED and connection.credentials == ""
    assert ActionRun.objects.filter(action="connection.disconnected", connection=connection).exists()


def test_disconnect_and_delete_data(connect, sim, admin_user):
    from integrations.models import ApplicationLicence, ApplicationStats, ConnectionStats
    from integrations.services.licences import application_licence_set
    from tests.integrations.test_sync import run_sync

    connection = connect()
    run_sync(connection)
    app = connection.applications.filter(kind="sso").first()
    application_licence_set(application=app, actor=admin_user, seats_purchased=5, price_per_seat_month="3")
    assert ApplicationStats.objects.filter(connection=connection).exists()
    connection_disconnect(connection=connection, actor=admin_user, delete_data=True)
    assert not Connection.objects.filter(pk=connection.pk).exists()
    # The read models and what Admins entered about its apps go with it.
    assert not ApplicationStats.objects.filter(connection_id=connection.pk).exists()
    assert not ConnectionStats.objects.filter(connection_id=connection.pk).exists()
    assert not ApplicationLicence.objects.filter(application_id=app.pk).exists()
    record = ActionRun.objects.get(action="connection.disconnected")
    assert record.connection is None and record.connection_name == connection.name
