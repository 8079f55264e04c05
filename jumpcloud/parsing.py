"""Tolerant parsers: JumpCloud JSON in, small frozen dataclasses out.

JumpCloud's records drift (docs/jumpcloud-api.md, docs/directory-insights.md §2): fields are absent,
null or "" interchangeably, booleans sometimes arrive as strings, timestamps carry 0 to 9 fractional
digits. Every parser accepts all of that; only a record that cannot be used at all (not an object,
no id, an event without a readable timestamp) raises MalformedRecord, which the client counts and
skips so one bad row never fails a page.

parse_event runs a million times in a backfill, so it avoids helper calls on the common path (the
`type(v) is str` checks inline what _text() does) and never uses a regex unless fromisoformat fails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_fromisoformat = datetime.fromisoformat
_TRUE = frozenset({"true", "t", "yes", "y", "1", "on", "enabled"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "off", "disabled", ""})
_STATES = frozenset({"ACTIVATED", "STAGED", "SUSPENDED"})


class MalformedRecord(ValueError):
    """A record too broken to use; the client counts it in Page.skipped instead of failing."""


# --------------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True, slots=True)
class Organization:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class SystemUser:
    id: str
    username: str
    email: str
    firstname: str
    lastname: str
    displayname: str
    state: str  # 'ACTIVATED' | 'STAGED' | 'SUSPENDED' | '' (absent or unknown)
    activated: bool
    suspended: bool
    account_locked: bool
    password_expired: bool
    mfa_enabled: bool | None  # None: the record says nothing about MFA
    created: datetime | None
    department: str
    job_title: str
    employee_type: str
    admin_role: str
    # The original record, for snapshots; left out of ==, hash and repr (it can be large).
    raw: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)


@dataclass(frozen=True, slots=True)
class Administrator:
    id: str
    email: str
    firstname: str
    lastname: str
    role_name: str
    suspended: bool
    mfa_enabled: bool | None
    created: datetime | None


@dataclass(frozen=True, slots=True)
class Application:
    id: str
    name: str
    display_label: str
    sso_url: str
    active: bool
    created: datetime | None
    sso_type: str


@dataclass(frozen=True, slots=True)
class AppBinding:
    user_id: str
    direct: bool


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    service: str
    event_type: str
    timestamp: datetime  # aware, UTC, truncated to microseconds
    success: bool | None  # None: not an outcome (absent, or an sso_auth MFA challenge step)
    actor_id: str
    actor_type: str
    actor_username: str
    actor_email: str
    app_id: str
    app_name: str
    app_label: str
    app_sso_url: str
    client_ip: str
    error_message: str
    organization: str


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    skipped: int  # records dropped as malformed
    raw_count: int  # records JumpCloud returned (paging decisions use this, not len(items))


@dataclass(frozen=True, slots=True)
class EventPage:
    events: list[Event]
    skipped: int
    result_count: int  # X-Result-Count (falls back to the number of records received)
    limit: int  # X-Limit (falls back to the limit requested)
    search_after: list[Any] | None  # X-Search_after of this response: the cursor for the next page
    request_id: str
    is_last: bool


# --------------------------------------------------------------------------------------------------
# Coercion helpers


def _text(value: Any) -> str:
    """Any JSON value as text: null/objects/arrays/booleans become '', numbers their decimal form."""
    if type(value) is str:
        return value
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, str):  # str subclasses
        return str(value)
    if isinstance(value, int | float):
        return str(value)
    return ""


def _flag(value: Any, default: bool = False) -> bool:
    if value is True or value is False:
        return value
    if value is None:
        return default
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        return default
    if isinstance(value, int | float):
        return value != 0 and value == value  # NaN is neither
    return default


def _optional_flag(value: Any) -> bool | None:
    if value is True or value is False or value is None:
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE and lowered:
            return False
        return None
    if isinstance(value, int | float) and value == value:
        return value != 0
    return None


def _required_id(value: Any, what: str) -> str:
    if type(value) is str:
        if value:
            return value
    elif (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str) and value):
        return str(value)
    raise MalformedRecord(f"{what} without a usable id")


def _require_dict(raw: Any, what: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise MalformedRecord(f"{what} is not a JSON object")
    return raw


def _optional_time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        return parse_timestamp(value)
    except MalformedRecord:
        return None


# --------------------------------------------------------------------------------------------------
# Timestamps

# Only used when fromisoformat refuses: lowercase 'z'/'t', surrounding spaces, a comma separator.
_SLOW_TS = re.compile(
    r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2})?)(?:[.,](\d+))?\s*(Z|[+-]\d{2}(?::?\d{2})?)?",
    re.ASCII,
)


def parse_timestamp(value: Any) -> datetime:
    """An aware UTC datetime from an RFC 3339 string (0-9+ fractional digits, 'Z' or an offset).

    Python 3.11's fromisoformat already accepts 'Z' and truncates more than 6 fractional digits, so
    the common case is one C call. A missing offset means UTC (JumpCloud only emits UTC). Epoch
    numbers (seconds or milliseconds) are accepted for robustness.
    """
    if type(value) is str:
        try:
            parsed = _fromisoformat(value)
        except ValueError:
            parsed = _parse_timestamp_slow(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return _from_epoch(value)
    elif isinstance(value, str):
        return parse_timestamp(str(value))
    else:
        raise MalformedRecord("timestamp is not a string")
    tz = parsed.tzinfo
    if tz is UTC:
        return parsed
    if tz is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise MalformedRecord("timestamp out of range") from exc


def _parse_timestamp_slow(value: str) -> datetime:
    text = value.strip()
    if text.isascii() and text.isdigit():
        return _from_epoch(int(text))
    match = _SLOW_TS.fullmatch(text.upper()) if len(text) < 64 else None
    if match is None:
        raise MalformedRecord("unreadable timestamp")
    day, clock, fraction, offset = match.groups()
    if clock.count(":") == 1:
        clock += ":00"
    rebuilt = f"{day}T{clock}"
    if fraction:
        rebuilt += "." + fraction[:6].ljust(6, "0")
    if offset and offset != "Z":
        rebuilt += offset if ":" in offset or len(offset) == 3 else f"{offset[:3]}:{offset[3:]}"
    try:
        parsed = _fromisoformat(rebuilt)
    except ValueError as exc:
        raise MalformedRecord("unreadable timestamp") from exc
    return parsed


def _from_epoch(number: float) -> datetime:
    seconds = float(number)
    if seconds != seconds:
        raise MalformedRecord("timestamp is NaN")
    # DI cursors and some exports use epoch milliseconds; nothing here predates 1973 in seconds.
    if abs(seconds) >= 1e14:
        seconds /= 1e6
    elif abs(seconds) >= 1e11:
        seconds /= 1e3
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise MalformedRecord("timestamp out of range") from exc


# --------------------------------------------------------------------------------------------------
# Parsers


def parse_organization(raw: Any) -> Organization:
    record = _require_dict(raw, "organization")
    org_id = _required_id(record.get("_id", record.get("id")), "organization")
    name = _text(record.get("displayName")) or _text(record.get("name"))
    # Stored through the ORM (connection name): PostgreSQL text cannot hold NUL.
    return Organization(id=org_id, name=name.replace("\x00", "\ufffd"))


# The fields parse_system_user reads, for a listing's `fields` projection (space-separated).
SYSTEM_USER_FIELDS = (
    "_id username email firstname lastname displayname state activated suspended account_locked "
    "password_expired mfa totp_enabled mfaEnrollment created department jobTitle employeeType admin"
)


def parse_system_user(raw: Any) -> SystemUser:
    record = _require_dict(raw, "user")
    get = record.get
    user_id = _required_id(get("_id", get("id")), "user")

    state = _text(get("state")).strip().upper()
    if state not in _STATES:
        state = ""
    # JumpCloud keeps state and the booleans in step; when one side is missing, trust the other.
    suspended = _flag(get("suspended"), default=state == "SUSPENDED")
    activated = _flag(get("activated"), default=state == "ACTIVATED")

    mfa = get("mfa")
    configured = mfa.get("configured") if isinstance(mfa, dict) else None
    totp = get("totp_enabled")
    enrollment = get("mfaEnrollment")
    overall = enrollment.get("overallStatus") if isinstance(enrollment, dict) else None
    mfa_enabled: bool | None
    if configured is None and totp is None and overall is None:
        mfa_enabled = None
    else:
        mfa_enabled = _flag(configured) or _flag(totp) or _text(overall).strip().upper() == "ENROLLED"

    admin = get("admin")
    admin_role = ""
    if isinstance(admin, dict):
        admin_role = _text(admin.get("roleName"))
        names = admin.get("roleNames")
        if not admin_role and isinstance(names, list) and names:
            admin_role = _text(names[0])

    return SystemUser(
        id=user_id,
        username=_text(get("username")),
        email=_text(get("email")),
        firstname=_text(get("firstname")),
        lastname=_text(get("lastname")),
        displayname=_text(get("displayname")),
        state=state,
        activated=activated,
        suspended=suspended,
        account_locked=_flag(get("account_locked")),
        password_expired=_flag(get("password_expired")),
        mfa_enabled=mfa_enabled,
        created=_optional_time(get("created")),
        department=_text(get("department")),
        job_title=_text(get("jobTitle")),
        employee_type=_text(get("employeeType")),
        admin_role=admin_role,
        raw=record,
    )


def parse_administrator(raw: Any) -> Administrator:
    record = _require_dict(raw, "administrator")
    get = record.get
    admin_id = _required_id(get("_id", get("id")), "administrator")
    role_name = _text(get("roleName"))
    names = get("roleNames")
    if not role_name and isinstance(names, list) and names:
        role_name = _text(names[0])
    mfa_flag = get("enableMultiFactor")
    totp = get("totpEnrolled")
    mfa_enabled = None if mfa_flag is None and totp is None else (_flag(mfa_flag) or _flag(totp))
    return Administrator(
        id=admin_id,
        email=_text(get("email")),
        firstname=_text(get("firstname")),
        lastname=_text(get("lastname")),
        role_name=role_name,
        suspended=_flag(get("suspended")),
        mfa_enabled=mfa_enabled,
        created=_optional_time(get("created")),
    )


def parse_application(raw: Any) -> Application:
    record = _require_dict(raw, "application")
    get = record.get
    app_id = _required_id(get("_id", get("id")), "application")
    name = _text(get("name"))
    sso = get("sso")
    return Application(
        id=app_id,
        name=name,
        display_label=_text(get("displayLabel")) or _text(get("displayName")) or name,
        sso_url=_text(get("ssoUrl")),
        # A listed connector without the flag is configured; only an explicit false disables it.
        active=_flag(get("active"), default=True),
        created=_optional_time(get("created")),
        sso_type=_text(sso.get("type")) if isinstance(sso, dict) else "",
    )


def parse_app_binding(raw: Any) -> AppBinding:
    record = _require_dict(raw, "application binding")
    user_id = _required_id(record.get("id"), "application binding")
    paths = record.get("paths")
    # A path of length 1 is the app->user edge itself; longer paths go through user groups.
    if not isinstance(paths, list) or not paths:
        direct = True
    else:
        direct = any(isinstance(path, list) and len(path) == 1 for path in paths)
    return AppBinding(user_id=user_id, direct=direct)


def parse_event(raw: Any) -> Event:
    if type(raw) is not dict:
        _require_dict(raw, "event")
    get = raw.get

    event_id = get("id")
    if type(event_id) is not str or not event_id:
        event_id = _required_id(event_id, "event")
    timestamp = parse_timestamp(get("timestamp"))

    service = get("service")
    if type(service) is not str:
        service = _text(service)
    event_type = get("event_type")
    if type(event_type) is not str:
        event_type = _text(event_type)
    error_message = get("error_message")
    if type(error_message) is not str:
        error_message = _text(error_message)
    client_ip = get("client_ip")
    if type(client_ip) is not str:
        client_ip = _text(client_ip)
    organization = get("organization")
    if type(organization) is not str:
        organization = _text(organization)

    if event_type == "sso_auth":
        # sso_auth reports its outcome in sso_token_success; `success` is normally absent there.
        outcome = get("sso_token_success")
        if outcome is None:
            outcome = get("success")
        success = outcome if outcome is True or outcome is False else _optional_flag(outcome)
        if success is False and not error_message:
            success = None  # an MFA challenge step, not a failed login
    else:
        outcome = get("success")
        success = outcome if outcome is True or outcome is False else _optional_flag(outcome)

    actor = get("initiated_by")
    if type(actor) is dict:
        actor_get = actor.get
        actor_id = actor_get("id", "")
        if type(actor_id) is not str:
            actor_id = _text(actor_id)
        actor_type = actor_get("type", "")
        if type(actor_type) is not str:
            actor_type = _text(actor_type)
        actor_username = actor_get("username", "")
        if type(actor_username) is not str:
            actor_username = _text(actor_username)
        actor_email = actor_get("email", "")
        if type(actor_email) is not str:
            actor_email = _text(actor_email)
    else:
        actor_id = actor_type = actor_username = actor_email = ""

    app = get("application")
    if type(app) is dict and app:
        app_get = app.get
        app_id = app_get("id", "")
        if type(app_id) is not str:
            app_id = _text(app_id)
        app_name = app_get("name", "")
        if type(app_name) is not str:
            app_name = _text(app_name)
        app_label = app_get("display_label", "")
        if type(app_label) is not str:
            app_label = _text(app_label)
        app_sso_url = app_get("sso_url", "")
        if type(app_sso_url) is not str:
            app_sso_url = _text(app_sso_url)
    else:
        app_id = app_name = app_label = app_sso_url = ""

    return Event(
        event_id,
        service,
        event_type,
        timestamp,
        success,
        actor_id,
        actor_type,
        actor_username,
        actor_email,
        app_id,
        app_name,
        app_label,
        app_sso_url,
        client_ip,
        error_message,
        organization,
    )


__all__ = [
    "AppBinding",
    "Administrator",
    "Application",
    "Event",
    "EventPage",
    "MalformedRecord",
    "Organization",
    "Page",
    "SystemUser",
    "parse_administrator",
    "parse_app_binding",
    "parse_application",
    "parse_event",
    "parse_organization",
    "parse_system_user",
    "parse_timestamp",
]
