"""Tolerant parsers on the record shapes JumpCloud really sends (and the ones it sometimes sends)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jumpcloud.parsing import (
    AppBinding,
    Event,
    MalformedRecord,
    Page,
    parse_administrator,
    parse_app_binding,
    parse_application,
    parse_event,
    parse_organization,
    parse_system_user,
    parse_timestamp,
)

BASE = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


# --------------------------------------------------------------------------------------------------
# timestamps


@pytest.mark.parametrize(
    ("text", "micro"),
    [
        ("2024-05-01T12:00:00Z", 0),
        ("2024-05-01T12:00:00.1Z", 100_000),
        ("2024-05-01T12:00:00.12Z", 120_000),
        ("2024-05-01T12:00:00.123Z", 123_000),
        ("2024-05-01T12:00:00.1234Z", 123_400),
        ("2024-05-01T12:00:00.12345Z", 123_450),
        ("2024-05-01T12:00:00.123456Z", 123_456),
        ("2024-05-01T12:00:00.1234567Z", 123_456),
        ("2024-05-01T12:00:00.12345678Z", 123_456),
        ("2024-05-01T12:00:00.123456789Z", 123_456),
        ("2024-05-01T12:00:00.999999999Z", 999_999),
        ("2024-05-01T12:00:00.123+00:00", 123_000),
        ("2024-05-01t12:00:00.123z", 123_000),
        (" 2024-05-01T12:00:00.123456789Z ", 123_456),
        ("2024-05-01T12:00:00,5Z", 500_000),
        ("2024-05-01T12:00:00", 0),
    ],
)
def test_timestamp_precisions(text, micro):
    parsed = parse_timestamp(text)
    assert parsed == BASE.replace(microsecond=micro)
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "2024-05-01T14:00:00+02:00",
        "2024-05-01T14:00:00+0200",
        "2024-05-01T07:00:00-05:00",
        "2024-05-01T14:00:00.000000000+02:00",
    ],
)
def test_timestamp_offsets_are_converted_to_utc(text):
    assert parse_timestamp(text) == BASE
    assert parse_timestamp(text).utcoffset() == timedelta(0)


def test_epoch_numbers():
    assert parse_timestamp(1714564800) == BASE
    assert parse_timestamp(1714564800000) == BASE
    assert parse_timestamp("1714564800000") == BASE


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not-a-date",
        "2024-13-01T00:00:00Z",
        "9999-12-31T23:59:59-05:00",
        None,
        True,
        [],
        {},
        float("nan"),
        "２０２４-05-01T12:00:00Z",
        "x" * 100_000,
    ],
)
def test_bad_timestamps_are_malformed(value):
    with pytest.raises(MalformedRecord):
        parse_timestamp(value)


# --------------------------------------------------------------------------------------------------
# users


def test_full_user():
    raw = {
        "_id": "64b0c0ffee0000000000a001",
        "username": "jane.doe",
        "email": "jane.doe@acme.io",
        "firstname": "Jane",
        "lastname": "Doe",
        "displayname": "Jane Doe",
        "state": "ACTIVATED",
        "activated": True,
        "suspended": False,
        "account_locked": False,
        "password_expired": False,
        "mfa": {"configured": True, "exclusion": False},
        "totp_enabled": True,
        "department": "IT",
        "jobTitle": "Engineer",
        "employeeType": "FTE",
        "created": "2024-01-15T10:00:00.000Z",
        "admin": {"id": "a1", "roleName": "Manager"},
    }
    user = parse_system_user(raw)
    assert (user.id, user.username, user.state, user.activated, user.suspended) == (
        "64b0c0ffee0000000000a001",
        "jane.doe",
        "ACTIVATED",
        True,
        False,
    )
    assert user.mfa_enabled is True and user.job_title == "Engineer" and user.employee_type == "FTE"
    assert user.created == datetime(2024, 1, 15, 10, tzinfo=UTC)
    assert user.admin_role == "Manager"
    assert user.raw is raw
    assert "raw" not in repr(user)


def test_minimal_user_defaults():
    user = parse_system_user({"_id": "u1"})
    assert (
        user.username,
        user.email,
        user.state,
        user.activated,
        user.suspended,
        user.mfa_enabled,
        user.created,
        user.admin_role,
    ) == ("", "", "", False, False, None, None, "")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"mfa": {"configured": False}}, False),
        ({"totp_enabled": True}, True),
        ({"mfaEnrollment": {"overallStatus": "ENROLLED"}}, True),
        ({"mfaEnrollment": {"overallStatus": "PENDING_ACTIVATION"}, "totp_enabled": False}, False),
        ({"mfa": None, "mfaEnrollment": None}, None),
        ({"mfa": {"configured": "yes"}}, True),
    ],
)
def test_user_mfa(fields, expected):
    assert parse_system_user({"_id": "u1", **fields}).mfa_enabled is expected


@pytest.mark.parametrize(
    ("fields", "state", "suspended"),
    [
        ({"state": "SUSPENDED"}, "SUSPENDED", True),
        ({"state": "suspended", "suspended": "yes"}, "SUSPENDED", True),
        ({"suspended": "true"}, "", True),
        ({"suspended": 1}, "", True),
        ({"suspended": "maybe"}, "", False),
        ({"state": "WEIRD", "suspended": None}, "", False),
        ({"state": None, "suspended": False}, "", False),
    ],
)
def test_user_state_coercion(fields, state, suspended):
    user = parse_system_user({"_id": "u1", **fields})
    assert (user.state, user.suspended) == (state, suspended)


def test_user_wrong_types_are_coerced():
    user = parse_system_user(
        {
            "_id": 123,
            "username": 42,
            "email": None,
            "firstname": ["x"],
            "created": "junk",
            "admin": {"roleNames": ["Read Only"]},
        }
    )
    assert (user.id, user.username, user.email, user.firstname, user.created, user.admin_role) == (
        "123",
        "42",
        "",
        "",
        None,
        "Read Only",
    )


@pytest.mark.parametrize(
    "raw", [None, [], "u1", 5, {}, {"_id": None}, {"_id": ""}, {"_id": True}, {"_id": {}}]
)
def test_unusable_users_are_malformed(raw):
    with pytest.raises(MalformedRecord):
        parse_system_user(raw)


# --------------------------------------------------------------------------------------------------
# admins, apps, bindings, orgs


def test_administrator():
    admin = parse_administrator(
        {
            "_id": "a1",
            "email": "root@acme.io",
            "roleNames": ["Help Desk"],
            "totpEnrolled": True,
            "suspended": "false",
            "created": "2023-03-01T00:00:00Z",
        }
    )
    assert (admin.role_name, admin.mfa_enabled, admin.suspended) == ("Help Desk", True, False)
    assert parse_administrator({"_id": "a2", "roleName": "Administrator"}).mfa_enabled is None
    assert parse_administrator({"_id": "a3", "enableMultiFactor": False}).mfa_enabled is False


def test_application_labels():
    assert (
        parse_application(
            {"_id": "p", "name": "zoom", "displayLabel": "Zoom SSO", "displayName": "Zoom"}
        ).display_label
        == "Zoom SSO"
    )
    assert parse_application({"_id": "p", "name": "zoom", "displayName": "Zoom"}).display_label == "Zoom"
    app = parse_application({"_id": "p", "name": "zoom"})
    assert (app.display_label, app.active, app.sso_type, app.sso_url) == ("zoom", True, "", "")
    assert parse_application({"_id": "p", "active": False}).active is False


def test_app_binding_directness():
    group = [{"to": {"id": "g", "type": "user_group"}}, {"to": {"id": "u", "type": "user"}}]
    direct = [{"to": {"id": "u", "type": "user"}}]
    assert parse_app_binding({"id": "u", "paths": [group]}) == AppBinding("u", False)
    assert parse_app_binding({"id": "u", "paths": [group, direct]}) == AppBinding("u", True)
    assert parse_app_binding({"id": "u", "paths": []}) == AppBinding("u", True)
    assert parse_app_binding({"id": "u"}) == AppBinding("u", True)
    assert parse_app_binding({"id": "u", "paths": "junk"}) == AppBinding("u", True)
    with pytest.raises(MalformedRecord):
        parse_app_binding({"type": "user"})


def test_organization():
    assert parse_organization({"_id": "o", "displayName": "Acme"}).name == "Acme"
    assert parse_organization({"id": "o", "name": "Acme"}).name == "Acme"


# --------------------------------------------------------------------------------------------------
# events


SSO = {
    "id": "6407359ff5c3cc91c4d4608b",
    "service": "sso",
    "event_type": "sso_auth",
    "timestamp": "2023-03-07T13:01:19.218123456Z",
    "initiated_by": {"id": "5ee8", "type": "user", "username": "jane.doe"},
    "organization": "5bf6",
    "application": {
        "id": "5fad",
        "name": "zoom",
        "display_label": "Zoom",
        "sso_url": "https://sso.jumpcloud.com/saml2/zoom",
        "sso_type": "saml",
    },
    "client_ip": "1.2.3.4",
    "idp_initiated": False,
    "sso_token_success": True,
    "error_message": "",
    "provider": "",
    "geoip": {},
    "useragent": {},
}


def test_sso_event():
    event = parse_event(SSO)
    assert event == Event(
        id="6407359ff5c3cc91c4d4608b",
        service="sso",
        event_type="sso_auth",
        timestamp=datetime(2023, 3, 7, 13, 1, 19, 218123, tzinfo=UTC),
        success=True,
        actor_id="5ee8",
        actor_type="user",
        actor_username="jane.doe",
        actor_email="",
        app_id="5fad",
        app_name="zoom",
        app_label="Zoom",
        app_sso_url="https://sso.jumpcloud.com/saml2/zoom",
        client_ip="1.2.3.4",
        error_message="",
        organization="5bf6",
    )


@pytest.mark.parametrize(
    ("fields", "success"),
    [
        ({"sso_token_success": False, "error_message": "not authorized"}, False),
        ({"sso_token_success": False, "error_message": ""}, None),  # MFA challenge step
        ({"sso_token_success": False, "error_message": None}, None),
        ({"sso_token_success": None}, None),
        ({"sso_token_success": "true"}, True),
        ({"sso_token_success": "false", "error_message": "user denied"}, False),
    ],
)
def test_sso_outcomes(fields, success):
    raw = {**SSO, **fields}
    assert parse_event(raw).success is success


def test_sso_without_token_success_falls_back_to_success():
    raw = {k: v for k, v in SSO.items() if k != "sso_token_success"}
    assert parse_event(raw).success is None
    assert parse_event({**raw, "success": True}).success is True


def test_sso_failure_with_only_sso_url():
    raw = {
        **SSO,
        "sso_token_success": False,
        "error_message": "application unreachable",
        "application": {
            "id": "",
            "name": "",
            "display_label": "",
            "sso_url": "https://sso.jumpcloud.com/saml2/x",
        },
    }
    event = parse_event(raw)
    assert (event.app_id, event.app_sso_url, event.success) == (
        "",
        "https://sso.jumpcloud.com/saml2/x",
        False,
    )
    assert parse_event({**SSO, "application": {}}).app_id == ""
    assert parse_event({**SSO, "application": None}).app_name == ""


def test_directory_events_and_actor_shapes():
    admin_login = {
        "id": "e1",
        "service": "directory",
        "event_type": "admin_login_attempt",
        "timestamp": "2024-05-01T12:00:00.123Z",
        "success": False,
        "error_message": "bad password",
        "initiated_by": {"id": "a1", "type": "admin", "email": "root@acme.io"},
        "provider": None,
    }
    event = parse_event(admin_login)
    assert (event.success, event.actor_type, event.actor_email, event.actor_username) == (
        False,
        "admin",
        "root@acme.io",
        "",
    )
    user_update = {
        "id": "e2",
        "service": "directory",
        "event_type": "user_update",
        "timestamp": "2024-05-01T12:00:00Z",
        "initiated_by": {"type": "systemuser", "username": "x"},
    }
    event = parse_event(user_update)
    assert (event.success, event.actor_id, event.actor_type) == (None, "", "systemuser")
    # a failed directory event stays a failure even without a message
    assert parse_event({**user_update, "success": False}).success is False


def test_event_wrong_types():
    event = parse_event(
        {
            "id": 42,
            "timestamp": "2024-05-01T12:00:00Z",
            "service": None,
            "client_ip": 7,
            "initiated_by": "someone",
            "application": ["x"],
            "organization": {"id": "o"},
        }
    )
    assert (event.id, event.service, event.client_ip, event.actor_id, event.app_id, event.organization) == (
        "42",
        "",
        "7",
        "",
        "",
        "",
    )


@pytest.mark.parametrize(
    "raw",
    [
        None,
        [],
        "e",
        {"timestamp": "2024-05-01T12:00:00Z"},
        {"id": "", "timestamp": "2024-05-01T12:00:00Z"},
        {"id": "e"},
        {"id": "e", "timestamp": "not-a-date"},
        {"id": "e", "timestamp": None},
    ],
)
def test_unusable_events_are_malformed(raw):
    with pytest.raises(MalformedRecord):
        parse_event(raw)


def test_records_are_frozen_and_slotted():
    event = parse_event(SSO)
    with pytest.raises(AttributeError):
        event.id = "x"  # type: ignore[misc]
    assert not hasattr(event, "__dict__")
    page = Page(items=[event], skipped=0, raw_count=1)
    assert page.items[0] is event
    assert hash(parse_event(SSO)) == hash(event)
