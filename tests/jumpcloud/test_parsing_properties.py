"""Property tests: whatever JSON arrives, parsers return a record or raise MalformedRecord."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from jumpcloud.parsing import (
    MalformedRecord,
    parse_administrator,
    parse_app_binding,
    parse_application,
    parse_event,
    parse_organization,
    parse_system_user,
    parse_timestamp,
)

PARSERS = [
    parse_system_user,
    parse_administrator,
    parse_application,
    parse_app_binding,
    parse_event,
    parse_organization,
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
# Keys the parsers actually read, so generated dicts hit the interesting paths.
KEYS = [
    "_id",
    "id",
    "username",
    "email",
    "firstname",
    "lastname",
    "displayname",
    "state",
    "activated",
    "suspended",
    "account_locked",
    "password_expired",
    "mfa",
    "totp_enabled",
    "mfaEnrollment",
    "created",
    "department",
    "jobTitle",
    "employeeType",
    "admin",
    "roleName",
    "roleNames",
    "enableMultiFactor",
    "totpEnrolled",
    "name",
    "displayName",
    "displayLabel",
    "ssoUrl",
    "active",
    "sso",
    "paths",
    "service",
    "event_type",
    "timestamp",
    "success",
    "sso_token_success",
    "initiated_by",
    "application",
    "client_ip",
    "error_message",
    "organization",
]
records = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), json_values, max_size=12)
timestamps = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.just(UTC)
)


def _call(parser, raw):
    try:
        return parser(raw)
    except MalformedRecord:
        return None


@settings(max_examples=300, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=json_values | records)
def test_parsers_only_ever_raise_malformed_record(raw):
    for parser in PARSERS:
        _call(parser, raw)


@settings(max_examples=200, database=None)
@given(raw=records, ts=timestamps)
def test_events_with_a_valid_id_and_timestamp_always_parse(raw, ts):
    raw = {**raw, "id": "e1", "timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    event = parse_event(raw)
    assert event.timestamp == ts
    for name in (
        "service",
        "event_type",
        "actor_id",
        "actor_type",
        "actor_username",
        "actor_email",
        "app_id",
        "app_name",
        "app_label",
        "app_sso_url",
        "client_ip",
        "error_message",
        "organization",
    ):
        assert isinstance(getattr(event, name), str)
    assert event.success in (True, False, None)


@settings(max_examples=200, database=None)
@given(raw=records, user_id=st.text(min_size=1))
def test_users_with_an_id_always_parse(raw, user_id):
    user = parse_system_user({**raw, "_id": user_id})
    assert user.id == user_id
    assert user.state in ("ACTIVATED", "STAGED", "SUSPENDED", "")
    assert isinstance(user.suspended, bool) and user.mfa_enabled in (True, False, None)
    assert user.created is None or user.created.tzinfo is UTC


@settings(max_examples=500, database=None)
@given(
    ts=timestamps,
    digits=st.integers(min_value=0, max_value=9),
    offset_minutes=st.integers(-14 * 60, 14 * 60),
    zulu=st.booleans(),
    extra=st.text(alphabet="0123456789", min_size=9, max_size=9),
)
def test_timestamps_with_any_precision_and_offset(ts, digits, offset_minutes, zulu, extra):
    fraction = (f"{ts.microsecond:06d}" + extra)[:digits]
    if zulu:
        suffix, local = "Z", ts
    else:
        local = ts + timedelta(minutes=offset_minutes)
        sign = "+" if offset_minutes >= 0 else "-"
        hours, minutes = divmod(abs(offset_minutes), 60)
        suffix = f"{sign}{hours:02d}:{minutes:02d}"
    text = local.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if digits else "") + suffix
    expected = ts.replace(microsecond=int(fraction[:6].ljust(6, "0")) if digits else 0)
    parsed = parse_timestamp(text)
    assert parsed == expected and parsed.tzinfo is UTC


@settings(database=None)
@given(value=json_values)
def test_parse_timestamp_never_raises_anything_else(value):
    _call(parse_timestamp, value)


@settings(max_examples=100, database=None)
@given(text=st.text(min_size=1, max_size=50), size=st.integers(min_value=1, max_value=200_000))
def test_odd_unicode_and_huge_strings_survive(text, size):
    assume(text.strip("\x00") != "")
    huge = (text * (size // len(text) + 1))[:size]
    raw = {
        "id": huge,
        "timestamp": "2024-05-01T12:00:00Z",
        "service": huge,
        "error_message": huge,
        "initiated_by": {"id": huge, "username": huge, "email": text},
        "application": {"display_label": huge},
    }
    event = parse_event(json.loads(json.dumps(raw)))
    assert event.id == huge and event.app_label == huge
    user = parse_system_user({"_id": huge, "username": huge, "displayname": "\u202e" + text, "state": huge})
    assert user.username == huge and user.state in ("ACTIVATED", "STAGED", "SUSPENDED", "")
