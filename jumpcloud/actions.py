"""JumpCloud user actions: create, suspend, unsuspend and delete a system user.

Each action is two callables (integrations.providers.Action): `check(*, connection, params)` only
normalises and checks the input (no network); `run(*, connection, run, params)` makes the call
through the client and returns an ActionOutcome; the caller has already written the pending audit
record and completes it with that outcome. `ACTIONS` declares them for the provider.

At most once, upstream: writes go through a client without retries and with a short read timeout.
When JumpCloud does not answer after the request was sent (RequestTimedOut, or another error with
request_sent), the write is never repeated blindly: the user is re-read to learn what happened.
A create that the re-read shows was not made is sent again (a bounded number of times), so the
admin gets a definite outcome. A 429 means JumpCloud did not process the request at all: the write
is sent again after the wait JumpCloud asks for (Retry-After, else a short backoff), within a
bounded total wait; past it, the run says truthfully that nothing was changed. The mirror (the
directory AppUser row) is updated from what JumpCloud returned, so the change shows in torii at
once, without a sync.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from integrations import bulk
from integrations.models import ActionRun, Application, AppUser, Connection
from integrations.providers import CREATES_USER, Action, ActionCheck, ActionOutcome
from integrations.services.audit import action_run_snapshot, scrub_parameters
from jumpcloud import retry as _retry
from jumpcloud.client import JumpCloudClient
from jumpcloud.connect import client_for_connection
from jumpcloud.errors import Conflict, JumpCloudError, NotFound, RateLimited, UpstreamError
from jumpcloud.parsing import SystemUser
from jumpcloud.streams.common import directory_app
from jumpcloud.streams.directory import upsert_directory_users, user_status
from jumpcloud.usernames import normalize_username, suggest_username, username_problems, windows_warning

STATES = ("ACTIVATED", "STAGED")
NAME_MAX = 255
EMAIL_MAX = 320
# A rate-limited write is sent again at most this many times, waiting at most this long in all
# (an admin is waiting for the page).
RATE_LIMIT_RETRIES = 4
RATE_LIMIT_WAIT_MAX = 30.0
# A create that JumpCloud left unanswered, and that a re-read shows was not made, is sent at most
# this many times in all.
CREATE_ATTEMPTS = 3
T = TypeVar("T")


# --- clients ---------------------------------------------------------------------------------
def _action_timeout() -> float:
    """Read timeout of an action's write call: short, because an admin is waiting for the page."""
    return float(getattr(settings, "TORII_ACTION_TIMEOUT_SECONDS", 10.0))


def _client(connection: Connection, *, write: bool) -> JumpCloudClient:
    """A client for one action. Writes: no retries at all (a timed-out write is re-read, never
    re-sent) and the short timeout. Reads (snapshot, re-read): the usual retries, a longer wait."""
    timeout = _action_timeout()
    return client_for_connection(
        connection,
        timeout=(5.0, timeout) if write else (5.0, max(15.0, 2 * timeout)),
        max_retries=0 if write else 4,
    )


def _sent_but_unanswered(exc: JumpCloudError) -> bool:
    return isinstance(exc, UpstreamError) and exc.request_sent


def _write(call: Callable[[], T]) -> T:
    """Make one write call; after a 429 (JumpCloud did not process it) send it again after the
    wait JumpCloud asks for, or a short backoff, within RATE_LIMIT_WAIT_MAX seconds in all. The
    last RateLimited propagates."""
    waited = 0.0
    for attempt in range(RATE_LIMIT_RETRIES + 1):
        try:
            return call()
        except RateLimited as exc:
            wait = exc.retry_after if exc.retry_after is not None else 0.5 * 2**attempt
            if attempt == RATE_LIMIT_RETRIES or waited + wait > RATE_LIMIT_WAIT_MAX:
                raise
            _retry._sleep(wait)
            waited += wait
    raise AssertionError("unreachable")


def _rate_limited(exc: RateLimited) -> ActionOutcome:
    return ActionOutcome(
        succeeded=False,
        message="JumpCloud is rate-limiting this API key and did not process the request, even after "
        "torii waited and sent it again: nothing was changed. Try again in a few minutes.",
        request_id=exc.request_id,
        result={"outcome": "not_applied", "error": "RateLimited", "http_status": exc.status},
    )


def _failed(exc: JumpCloudError, *, outcome: str = "refused", prefix: str = "") -> ActionOutcome:
    return ActionOutcome(
        succeeded=False,
        message=prefix + exc.message,
        request_id=exc.request_id,
        result={"outcome": outcome, "error": type(exc).__name__, "http_status": exc.status},
    )


# --- the mirror ------------------------------------------------------------------------------
def mirror_user(*, connection: Connection, user: SystemUser) -> AppUser:
    """Upsert the directory row of `user` from what JumpCloud returned, through the sync's own
    path (jumpcloud.streams.directory.upsert_directory_users), so the change shows at once and the next sync
    finds nothing to do."""
    with transaction.atomic():
        if not bulk.hold_connection(connection.pk):
            raise Connection.DoesNotExist("The connection was deleted.")
        app = directory_app(connection)
        upsert_directory_users(connection, app, [user])
    return AppUser.objects.get(application=app, external_id=user.id)


def _mirror_status(*, connection: Connection, user: SystemUser) -> None:
    AppUser.objects.filter(
        connection=connection, application__kind=Application.Kind.DIRECTORY, external_id=user.id
    ).update(status=user_status(user), removed_at=None)


def _mirror_removed(*, connection: Connection, external_id: str) -> None:
    now = timezone.now()
    with transaction.atomic():
        rows = AppUser.objects.filter(
            connection=connection, application__kind=Application.Kind.DIRECTORY, external_id=external_id
        )
        AppUser.objects.filter(directory_user__in=rows, removed_at__isnull=True).update(
            status=AppUser.Status.REMOVED, removed_at=now
        )
        rows.update(status=AppUser.Status.REMOVED, removed_at=now)


# --- create ----------------------------------------------------------------------------------
def create_user_check(*, connection: Connection | None = None, params: dict[str, Any]) -> ActionCheck:
    """Normalise the new user's fields and say everything JumpCloud would refuse (no network)."""
    raw_username = str(params.get("username") or "")
    username = normalize_username(raw_username)
    clean = {
        "first_name": str(params.get("first_name") or "").strip(),
        "last_name": str(params.get("last_name") or "").strip(),
        "email": str(params.get("email") or "").strip(),
        "username": username,
        "state": str(params.get("state") or "").strip().upper(),
    }
    errors: dict[str, list[str]] = {}
    problems = username_problems(username)
    if problems:
        errors["username"] = problems
    if not clean["email"]:
        errors["email"] = ["An email address is required."]
    elif len(clean["email"]) > EMAIL_MAX:
        errors["email"] = [f"At most {EMAIL_MAX} characters."]
    for name in ("first_name", "last_name"):
        if len(clean[name]) > NAME_MAX:
            errors[name] = [f"At most {NAME_MAX} characters."]
    if clean["state"] and clean["state"] not in STATES:
        errors["state"] = ["Choose Activated or Staged, or leave it to the organization's default."]
    notes: list[str] = []
    if username and username != raw_username.strip():
        notes.append(f"Spaces become dots: JumpCloud will receive “{username}”.")
    warning = windows_warning(username)
    if warning:
        notes.append(warning)
    suggestion = "" if username else suggest_username(clean["first_name"], clean["last_name"], clean["email"])
    return ActionCheck(params=clean, errors=errors, notes=notes, suggestion=suggestion)


def create_user(*, connection: Connection, run: ActionRun, params: dict[str, Any]) -> ActionOutcome:
    check = create_user_check(connection=connection, params=params)
    if not check.ok:
        return ActionOutcome(
            succeeded=False, message=next(iter(check.errors.values()))[0], result={"outcome": "invalid"}
        )
    p = check.params
    unanswered: JumpCloudError | None = None  # the last attempt JumpCloud left without an answer
    with _client(connection, write=True) as client:
        for _attempt in range(CREATE_ATTEMPTS):
            try:
                user = _write(
                    lambda: client.create_system_user(
                        username=p["username"],
                        email=p["email"],
                        firstname=p["first_name"],
                        lastname=p["last_name"],
                        state=p["state"] or None,
                    )
                )
                break
            except RateLimited as exc:
                return _rate_limited(exc)
            except Conflict as exc:
                if unanswered is None:
                    return _failed(exc)
                # An earlier unanswered attempt may have been applied after all.
                return _create_reread(connection=connection, params=p, cause=unanswered) or _failed(exc)
            except JumpCloudError as exc:
                if not _sent_but_unanswered(exc):
                    return _failed(exc)
                unanswered = exc
                verdict = _create_reread(connection=connection, params=p, cause=exc)
                if verdict is not None:
                    return verdict
                # Re-reading shows it was not created: sending it again cannot make a duplicate.
        else:
            assert unanswered is not None
            return ActionOutcome(
                succeeded=False,
                message=f"JumpCloud left {CREATE_ATTEMPTS} attempts to create “{p['username']}” unanswered, "
                "and each time re-reading showed no such user: nothing was created. Try again in a few "
                "minutes.",
                request_id=unanswered.request_id,
                result={"outcome": "not_applied_by_reread", "attempts": CREATE_ATTEMPTS},
            )
        request_id = client.last_request_id
    mirror_user(connection=connection, user=user)
    return ActionOutcome(
        succeeded=True,
        message=f"Created “{user.username}” in JumpCloud.",
        request_id=request_id,
        result={"outcome": "applied", "user_id": user.id, "state": user.state},
        target_external_id=user.id,
        target_username=user.username,
    )


def _create_reread(
    *, connection: Connection, params: dict[str, Any], cause: JumpCloudError
) -> ActionOutcome | None:
    """The create may or may not have happened: look the username up. The outcome when the lookup
    decides it (created, taken by someone else, or unknowable); None when the user was not created,
    so the create can be sent again."""
    with _client(connection, write=False) as client:
        try:
            found = client.find_system_users(username=params["username"])
        except JumpCloudError as exc:
            return ActionOutcome(
                succeeded=False,
                message=f"{cause.message} torii could not re-read JumpCloud to find out ({exc.message})",
                request_id=cause.request_id,
                result={"outcome": "unknown", "error": type(cause).__name__},
            )
    mine = [u for u in found if u.email.lower() == params["email"].lower()]
    if mine:
        user = mine[0]
        mirror_user(connection=connection, user=user)
        return ActionOutcome(
            succeeded=True,
            message=f"Created “{user.username}” in JumpCloud (JumpCloud did not answer at first; "
            "re-reading confirmed it).",
            request_id=cause.request_id,
            result={"outcome": "confirmed_by_reread", "user_id": user.id, "state": user.state},
            target_external_id=user.id,
            target_username=user.username,
        )
    if found:
        return ActionOutcome(
            succeeded=False,
            message=f"JumpCloud did not answer, and re-reading shows “{params['username']}” belongs to "
            "another user (a different email). Choose another username.",
            request_id=cause.request_id,
            result={"outcome": "conflict_by_reread"},
        )
    return None


# --- suspend / unsuspend ---------------------------------------------------------------------
def _set_suspended(*, connection: Connection, run: ActionRun, suspended: bool) -> ActionOutcome:
    user_id, username = run.target_external_id, run.target_username
    verb = "Suspended" if suspended else "Unsuspended"
    with _client(connection, write=True) as client:
        send: Callable[[str], SystemUser] = (
            client.suspend_system_user if suspended else client.unsuspend_system_user
        )
        try:
            user = _write(lambda: send(user_id))
        except NotFound as exc:
            return _failed(exc, outcome="not_found")
        except RateLimited as exc:
            return _rate_limited(exc)
        except JumpCloudError as exc:
            if _sent_but_unanswered(exc):
                return _suspend_reread(
                    connection=connection, user_id=user_id, username=username, suspended=suspended, cause=exc
                )
            return _failed(exc)
        request_id = client.last_request_id
    _mirror_status(connection=connection, user=user)
    return ActionOutcome(
        succeeded=True,
        message=f"{verb} “{user.username or username}” in JumpCloud.",
        request_id=request_id,
        result={"outcome": "applied", "state": user.state, "suspended": user.suspended},
    )


def _suspend_reread(
    *, connection: Connection, user_id: str, username: str, suspended: bool, cause: JumpCloudError
) -> ActionOutcome:
    with _client(connection, write=False) as client:
        try:
            user = client.get_system_user(user_id)
        except JumpCloudError as exc:
            return ActionOutcome(
                succeeded=False,
                message=f"{cause.message} torii could not re-read the user to find out ({exc.message})",
                request_id=cause.request_id,
                result={"outcome": "unknown", "error": type(cause).__name__},
            )
    _mirror_status(connection=connection, user=user)
    applied = user.suspended == suspended and (user.state == "SUSPENDED") == suspended
    if applied:
        return ActionOutcome(
            succeeded=True,
            message=f"JumpCloud did not answer in time, but re-reading shows “{username}” is now "
            f"{'suspended' if suspended else 'active'}.",
            request_id=cause.request_id,
            result={"outcome": "confirmed_by_reread", "state": user.state, "suspended": user.suspended},
        )
    return ActionOutcome(
        succeeded=False,
        message=f"JumpCloud did not answer in time, and re-reading shows “{username}” is still "
        f"{'not suspended' if suspended else 'suspended'}: the change was not applied. You can try again.",
        request_id=cause.request_id,
        result={"outcome": "not_applied_by_reread", "state": user.state, "suspended": user.suspended},
    )


def suspend_user(*, connection: Connection, run: ActionRun, params: dict[str, Any]) -> ActionOutcome:
    return _set_suspended(connection=connection, run=run, suspended=True)


def unsuspend_user(*, connection: Connection, run: ActionRun, params: dict[str, Any]) -> ActionOutcome:
    return _set_suspended(connection=connection, run=run, suspended=False)


# --- delete ----------------------------------------------------------------------------------
def delete_user(*, connection: Connection, run: ActionRun, params: dict[str, Any]) -> ActionOutcome:
    """Snapshot the JumpCloud record into the audit run, then delete. A 404 counts as done."""
    user_id, username = run.target_external_id, run.target_username
    gone = ActionOutcome(
        succeeded=True,
        message=f"“{username}” was already deleted in JumpCloud.",
        result={"outcome": "already_gone"},
    )
    with _client(connection, write=False) as reader:
        try:
            current = reader.get_system_user(user_id)
        except NotFound as exc:
            _mirror_removed(connection=connection, external_id=user_id)
            gone.request_id = exc.request_id
            return gone
        except JumpCloudError as exc:
            # Without a snapshot the account could not be recreated: do not delete.
            return _failed(
                exc, outcome="not_sent", prefix="Nothing was deleted: torii could not read the user first. "
            )
        action_run_snapshot(run=run, snapshot=scrub_parameters(current.raw or {}))
    with _client(connection, write=True) as client:
        try:
            _write(lambda: client.delete_system_user(user_id))
        except NotFound as exc:
            _mirror_removed(connection=connection, external_id=user_id)
            gone.request_id = exc.request_id
            return gone
        except RateLimited as exc:
            return _rate_limited(exc)
        except JumpCloudError as exc:
            if _sent_but_unanswered(exc):
                return _delete_reread(connection=connection, user_id=user_id, username=username, cause=exc)
            return _failed(exc)
        request_id = client.last_request_id
    _mirror_removed(connection=connection, external_id=user_id)
    return ActionOutcome(
        succeeded=True,
        message=f"Deleted “{username}” from JumpCloud.",
        request_id=request_id,
        result={"outcome": "applied"},
    )


def _delete_reread(
    *, connection: Connection, user_id: str, username: str, cause: JumpCloudError
) -> ActionOutcome:
    with _client(connection, write=False) as client:
        try:
            client.get_system_user(user_id)
        except NotFound:
            _mirror_removed(connection=connection, external_id=user_id)
            return ActionOutcome(
                succeeded=True,
                message=f"JumpCloud did not answer in time, but re-reading shows “{username}” is deleted.",
                request_id=cause.request_id,
                result={"outcome": "confirmed_by_reread"},
            )
        except JumpCloudError as exc:
            return ActionOutcome(
                succeeded=False,
                message=f"{cause.message} torii could not re-read the user to find out ({exc.message})",
                request_id=cause.request_id,
                result={"outcome": "unknown", "error": type(cause).__name__},
            )
    return ActionOutcome(
        succeeded=False,
        message=f"JumpCloud did not answer in time, and re-reading shows “{username}” still exists: "
        "it was not deleted. You can try again.",
        request_id=cause.request_id,
        result={"outcome": "not_applied_by_reread"},
    )


# --- declarations ----------------------------------------------------------------------------
CREATE_USER_INPUT: dict[str, Any] = {
    "type": "object",
    "required": ["email", "username"],
    "properties": {
        "first_name": {"type": "string", "maxLength": NAME_MAX},
        "last_name": {"type": "string", "maxLength": NAME_MAX},
        "email": {"type": "string", "format": "email", "maxLength": EMAIL_MAX},
        "username": {"type": "string", "maxLength": 255, "description": "Spaces become dots."},
        "state": {
            "type": "string",
            "enum": ["", *STATES],
            "description": "Empty: the organization's default.",
        },
    },
}

ACTIONS = (
    Action(
        "create_user",
        "Create user",
        create_user,
        "action_create_user",
        check=create_user_check,
        category=CREATES_USER,
        input_schema=CREATE_USER_INPUT,
    ),
    Action("suspend_user", "Suspend user", suspend_user, "action_suspend_user"),
    Action("unsuspend_user", "Unsuspend user", unsuspend_user, "action_unsuspend_user"),
    Action("delete_user", "Delete user", delete_user, "action_delete_user", destructive=True),
)
