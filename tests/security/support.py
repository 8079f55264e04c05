"""Helpers of the security suite: walk every route, scan every store for a secret.

The walkers read the URLconf itself, so a route added later is walked too; a route that takes an id
of a kind this module does not know makes the walk fail loudly instead of being skipped.
"""

from __future__ import annotations

import logging
import re
import subprocess
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from django.conf import settings
from django.db import connection as db_connection
from django.urls import URLPattern, URLResolver, get_resolver, reverse

# --- routes ----------------------------------------------------------------------------------
# Which sample object an id in a URL names, by the literal path segment just before it.
SEGMENT_SAMPLE = {
    "integrations": "connection",
    "connections": "connection",
    "sync-runs": "sync_run",
    "applications": "application",
    "users": "directory_user",
    "usage-events": "usage_event",
    "actions": "action_run",
    "audit-log": "action_run",
    "runs": "action_run",  # actions/runs/<pk>/
    "people": "person",
    "lockouts": "lockout",
    "policies": "policy",
    "policy-runs": "policy_run",
    "channels": "alert_channel",  # alerts/channels/<pk>/
    "alert-channels": "alert_channel",
    "alert-deliveries": "alert_delivery",
}
# Some ids are known by their parameter name alone.
PARAM_SAMPLE = {"run_pk": "sync_run", "key": "api_token", "run_id": "policy_run"}
PARAM_LITERAL = {"provider": "jumpcloud", "format": "json"}
SKIPPED_NAMESPACES = {"admin"}  # Django's admin site: staff-only, its own login; torii grants no staff
# /health/: public, GET-only, no data (tests/test_foundation.py). Its view is async, and Django runs
# it through async_to_sync, which refuses to run once Playwright's event loop lives in the thread.
SKIPPED_ROUTES = {"health"}

_PARAM = re.compile(r"(?:\(\?P<(?P<regex>\w+)>[^)]*\))|(?:<(?:\w+:)?(?P<route>\w+)>)")


@dataclass(frozen=True)
class Route:
    name: str  # namespaced: "dashboard:users"
    pattern: str  # the full pattern text, for messages
    params: tuple[tuple[str, str], ...]  # (parameter, literal segment before it)
    callback: Any

    @property
    def is_api(self) -> bool:
        return self.name.startswith("api")

    def reverse(self, samples: Any, *, overrides: dict[str, Any] | None = None) -> str:
        kwargs: dict[str, Any] = {}
        for param, segment in self.params:
            if overrides and param in overrides:
                kwargs[param] = overrides[param]
            elif param in PARAM_LITERAL:
                kwargs[param] = PARAM_LITERAL[param]
            else:
                kind = PARAM_SAMPLE.get(param) or SEGMENT_SAMPLE.get(segment)
                if kind is None:
                    raise AssertionError(
                        f"route {self.name} ({self.pattern}) takes {param!r} after {segment!r}: teach "
                        "tests/security/support.py which object that is, so the security walk covers it"
                    )
                sample = getattr(samples, kind)
                # API tokens are named by their first characters (their key is a digest).
                kwargs[param] = sample.token_key if kind == "api_token" else sample.pk
        return reverse(self.name, kwargs=kwargs or None)


def _params(pattern_text: str) -> tuple[tuple[str, str], ...]:
    found = []
    for match in _PARAM.finditer(pattern_text):
        name = match.group("regex") or match.group("route")
        before = pattern_text[: match.start()].rstrip("/").replace("^", "").replace("\\", "")
        segment = before.rsplit("/", 1)[-1] if before else ""
        found.append((name, segment))
    return tuple(found)


def all_routes(resolver: URLResolver | None = None, prefix: str = "", text: str = "") -> list[Route]:
    """Every named route of the URLconf (format-suffix duplicates left out), admin site excluded."""
    routes: list[Route] = []
    for p in (resolver or get_resolver()).url_patterns:
        if isinstance(p, URLResolver):
            if p.namespace in SKIPPED_NAMESPACES or p.app_name in SKIPPED_NAMESPACES:
                continue
            ns = f"{prefix}{p.namespace}:" if p.namespace else prefix
            routes += all_routes(p, ns, text + str(p.pattern))
        elif isinstance(p, URLPattern) and p.name and p.name not in SKIPPED_ROUTES:
            full = text + str(p.pattern)
            params = _params(full)
            if any(name == "format" for name, _ in params):
                continue  # DRF's ".json" twin of a route already walked
            routes.append(Route(prefix + p.name, full, params, p.callback))
    unique: dict[tuple[str, tuple[str, ...]], Route] = {}
    for r in routes:
        unique.setdefault((r.name, tuple(n for n, _ in r.params)), r)
    return list(unique.values())


def view_methods(route: Route) -> set[str]:
    """HTTP methods the view declares it handles (class-based views and DRF viewsets)."""
    callback = route.callback
    cls = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    actions = getattr(callback, "actions", None)  # DRF viewset: {"get": "list", "post": "create"}
    if actions:
        return {m.upper() for m in actions if m not in ("options", "head")}
    if cls is None:
        return set()
    allowed = {
        m for m in getattr(cls, "http_method_names", []) if hasattr(cls, m) and m not in ("options", "head")
    }
    return {m.upper() for m in allowed}


# --- secrets -----------------------------------------------------------------------------------
@dataclass
class SecretScan:
    """Collects every place searched and fails with all the places a secret was found."""

    secret: str
    searched: list[str] = field(default_factory=list)
    hits: list[str] = field(default_factory=list)

    def fragments(self, size: int = 12) -> set[str]:
        return {self.secret[i : i + size] for i in range(len(self.secret) - size + 1)}

    def check(self, where: str, content: str | bytes | None) -> None:
        if content is None:
            return
        text = content.decode("utf-8", "replace") if isinstance(content, bytes) else str(content)
        self.searched.append(where)
        if self.secret in text:
            at = text.index(self.secret)
            self.hits.append(f"{where}: …{text[max(0, at - 80) : at + len(self.secret) + 40]!r}…")
            return
        for frag in self.fragments():
            if frag in text:
                at = text.index(frag)
                self.hits.append(f"{where} (12-char fragment): …{text[max(0, at - 80) : at + 40]!r}…")
                return

    def assert_clean(self, minimum_places: int = 1) -> None:
        assert not self.hits, "the API key leaked:\n" + "\n".join(self.hits)
        assert len(self.searched) >= minimum_places, f"only {len(self.searched)} places searched"


_STANDARD_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class RawRecords(logging.Handler):
    """Keeps every record as it was made, before any handler's filter (the redaction filter rewrites
    records in place, so this must run first: it is inserted at the head of the root handlers)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        parts = [record.name, record.getMessage()]
        if record.exc_info and record.exc_info[1] is not None:
            import traceback

            parts.append("".join(traceback.format_exception(*record.exc_info)))
        if record.exc_text:
            parts.append(record.exc_text)
        # Anything passed as `extra=` (django.request passes the request, for one).
        parts.extend(repr(v) for k, v in vars(record).items() if k not in _STANDARD_RECORD_FIELDS)
        self.texts.append("\n".join(parts))


@contextmanager
def every_log_record(
    loggers: Iterable[str] = (
        "",
        "urllib3",
        "django",
        "django.db.backends",
        "celery",
        "jumpcloud",
        "integrations",
        "axes",
        "django.request",
        "django.security",
    ),
) -> Iterator[tuple[RawRecords, list[str]]]:
    """Every log record at DEBUG, raw; and what the configured LOGGING handlers write (their streams
    are swapped for buffers), with SQL queries logged too."""
    import io

    raw = RawRecords()
    root = logging.getLogger()
    saved_levels = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.DEBUG)
    root.handlers.insert(0, raw)
    buffers: list[io.StringIO] = []
    swapped: list[tuple[logging.StreamHandler, Any]] = []
    for handler in list(root.handlers):
        if (
            isinstance(handler, logging.StreamHandler)
            and handler is not raw
            and hasattr(handler, "setStream")
        ):
            buf = io.StringIO()
            swapped.append((handler, handler.setStream(buf)))
            buffers.append(buf)
    force = db_connection.force_debug_cursor
    db_connection.force_debug_cursor = True  # SQL statements and their parameters are logged too
    formatted: list[str] = []
    try:
        yield raw, formatted
    finally:
        db_connection.force_debug_cursor = force
        for handler, old in swapped:
            handler.setStream(old)
        formatted.extend(buf.getvalue() for buf in buffers)
        root.handlers.remove(raw)
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)


def database_dump() -> str:
    """Every committed row of the test database, as pg_dump writes it (the embedded PostgreSQL's
    pg_dump: it reads servers of its version and older, whichever the tests use)."""
    from tests.processes import database_url
    from torii.embedded_db import program

    result = subprocess.run(
        [program("pg_dump"), "--data-only", "--no-owner", database_url()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "COPY public.integrations_connection" in result.stdout
    return result.stdout


def database_rows() -> str:
    """Every text and JSON column of every table, read through the test's own connection (sees
    rows a test transaction has not committed)."""
    out: list[str] = []
    with db_connection.cursor() as cursor:
        for table in db_connection.introspection.table_names(cursor):
            columns = [
                c.name
                for c in db_connection.introspection.get_table_description(cursor, table)
                if c.type_code is not None
            ]
            quoted = ", ".join(db_connection.ops.quote_name(c) for c in columns)
            cursor.execute(f"SELECT {quoted} FROM {db_connection.ops.quote_name(table)}")  # noqa: S608 - names from introspection
            for row in cursor.fetchall():
                out.append(f"{table}: " + " | ".join(str(v) for v in row))
    return "\n".join(out)


def redis_dump() -> list[tuple[str, str]]:
    """Every key of torii's Redis database and its value(s), whatever the type."""
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    found: list[tuple[str, str]] = []
    for raw_key in client.keys("*"):
        key = raw_key.decode("utf-8", "replace")
        kind = client.type(raw_key).decode()
        if kind == "string":
            value: Any = client.get(raw_key)
        elif kind == "list":
            value = client.lrange(raw_key, 0, -1)
        elif kind == "hash":
            value = client.hgetall(raw_key)
        elif kind == "set":
            value = client.smembers(raw_key)
        elif kind == "zset":
            value = client.zrange(raw_key, 0, -1, withscores=True)
        elif kind == "stream":
            value = client.xrange(raw_key)
        else:
            value = kind
        text = _bytes_text(value)
        found.append((key, text + _decoded_message_bodies(text)))
    return found


def _decoded_message_bodies(text: str) -> str:
    """Celery messages carry their body base64-encoded inside a JSON envelope: decode every one."""
    import base64
    import json

    decoded: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            body = node.get("body")
            props = node.get("properties")
            if isinstance(body, str) and isinstance(props, dict) and props.get("body_encoding") == "base64":
                decoded.append(base64.b64decode(body).decode("utf-8", "replace"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    decoder = json.JSONDecoder()
    for start in (m.start() for m in re.finditer(r"[\[{]", text)):
        try:
            node, _ = decoder.raw_decode(text, start)
        except ValueError:
            continue
        walk(node)
    return ("\n" + "\n".join(decoded)) if decoded else ""


def _bytes_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return " ".join(f"{_bytes_text(k)}={_bytes_text(v)}" for k, v in value.items())
    if isinstance(value, list | set | tuple):
        return " ".join(_bytes_text(v) for v in value)
    return str(value)


@dataclass
class Samples:
    """One object of each kind a URL can name, for reversing routes that take ids."""

    connection: Any
    read_only_connection: Any
    sync_run: Any
    application: Any
    directory_user: Any
    read_only_user: Any
    usage_event: Any
    action_run: Any
    extra: dict[str, Any] = field(default_factory=dict)
    person: Any = None  # a torii user (the people page)
    lockout: Any = None  # a locked-out login (axes AccessAttempt)
    api_token: Any = None  # someone's API token
    policy: Any = None  # a policy (policies app)
    policy_run: Any = None  # one of its runs, waiting for approval
    alert_channel: Any = None  # an alert channel (webhook)
    alert_delivery: Any = None  # one delivery of an alert to it


# --- walking pages -------------------------------------------------------------------------------
def body_of(response: Any) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode("utf-8", "replace")
    return response.content.decode("utf-8", "replace")


def walk_get(
    client: Any, samples: Any, *, api: bool, htmx: bool = False, skip: Iterable[str] = ("logout",)
) -> Iterator[tuple[str, Any, str]]:
    """GET every route (dashboard or API) that answers GET, with sample ids: (url, response, body)."""
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    for route in all_routes():
        if route.is_api != api or route.name in skip:
            continue
        methods = view_methods(route)
        if methods and "GET" not in methods:
            continue
        url = route.reverse(samples)
        response = client.get(url, **headers)
        yield url, response, body_of(response)


def samples_from_db() -> Any:
    """The first object of each kind in the database, for reversing routes."""
    from alerts.models import Delivery
    from integrations.models import ActionRun, Application, AppUser, Connection, SyncRun, UsageEvent
    from policies.models import Policy, PolicyRun

    directory_users = AppUser.objects.filter(application__kind=Application.Kind.DIRECTORY).order_by("pk")
    writable = Connection.objects.filter(permission=Connection.Permission.READ_WRITE).order_by("pk")
    read_only = Connection.objects.filter(permission=Connection.Permission.READ_ONLY).order_by("pk")
    person = directory_users.filter(connection__in=writable).first() or directory_users.first()
    if person is not None and not Policy.objects.exists():
        _policy_samples(person.connection, person)
    samples = Samples(
        connection=writable.first() or Connection.objects.order_by("pk").first(),
        read_only_connection=read_only.first(),
        sync_run=SyncRun.objects.order_by("pk").first(),
        application=Application.objects.filter(kind=Application.Kind.SSO).order_by("pk").first()
        or Application.objects.order_by("pk").first(),
        directory_user=directory_users.filter(connection__in=writable).first() or directory_users.first(),
        read_only_user=directory_users.filter(connection__in=read_only).first(),
        usage_event=UsageEvent.objects.order_by("pk").first(),
        action_run=ActionRun.objects.filter(category=ActionRun.Category.USER_ACTION).order_by("pk").first()
        or ActionRun.objects.order_by("pk").first(),
        policy=Policy.objects.order_by("pk").first(),
        policy_run=PolicyRun.objects.order_by("pk").first(),
    )
    # Alert channels are made by people, not syncs: one is made for the walk when there is none.
    delivery = Delivery.objects.select_related("channel").order_by("pk").first()
    if delivery is None and samples.connection is not None:
        delivery = _alert_samples(samples.connection)[1]
    if delivery is not None:
        samples.alert_channel, samples.alert_delivery = delivery.channel, delivery
    return samples


# --- a small world of objects, for walking routes that take ids ----------------------------------
def make_world(sim: Any, *, users: int = 6) -> Samples:
    """A read-write and a read-only connection to the simulator, each with directory users, an SSO
    app, a sync run, a usage event and an audit record. Built with factories: no sync needed."""
    from integrations.crypto import encrypt_json
    from integrations.models import AppUser, Connection
    from tests.factories import (
        ActionRunFactory,
        ApplicationFactory,
        AppUserFactory,
        ConnectionFactory,
        DirectoryAppFactory,
        SyncRunFactory,
        UsageEventFactory,
    )

    def connection(name: str, tenant: str, key: str, permission: str) -> Any:
        conn = ConnectionFactory(
            name=name,
            base_url=sim.base_url,
            region="custom",
            org_id=sim.org_ids[tenant],
            credentials=encrypt_json({"api_key": sim.keys[key]}),
            secret_hint="••••" + sim.keys[key][-4:],
            permission=permission,
            capabilities={
                "multi_tenant": key == "multi_tenant",
                "usage_events": True,
                "administrators": True,
            },
        )
        directory = DirectoryAppFactory(connection=conn)
        sso = ApplicationFactory(connection=conn)
        rows = []
        for raw in [u for u in sim.tenant(tenant).users if u["state"] == "ACTIVATED"][:users]:
            row = AppUserFactory(
                application=directory,
                external_id=raw["_id"],
                username=raw["username"],
                email=raw["email"],
                first_name=raw["firstname"],
                last_name=raw["lastname"],
                status=AppUser.Status.ACTIVE,
            )
            AppUserFactory(
                application=sso,
                external_id=raw["_id"],
                username=raw["username"],
                email=raw["email"],
                directory_user=row,
                assignment="direct",
            )
            rows.append(row)
        SyncRunFactory(connection=conn)
        UsageEventFactory(connection=conn, actor_external_id=rows[0].external_id)
        ActionRunFactory(
            connection=conn,
            target_external_id=rows[0].external_id,
            target_username=rows[0].username,
            status="succeeded",
        )
        return conn, rows, sso

    rw, rw_users, app = connection(
        "Acme (read and act)", "primary", "admin", Connection.Permission.READ_WRITE
    )
    ro, ro_users, _ = connection(
        "Globex (read only)", "secondary", "multi_tenant", Connection.Permission.READ_ONLY
    )
    samples = samples_from_db()
    samples.person, samples.lockout, samples.api_token = _access_samples()
    samples.connection, samples.read_only_connection = rw, ro
    samples.directory_user, samples.read_only_user, samples.application = rw_users[0], ro_users[0], app
    samples.extra = {"rw_users": rw_users, "ro_users": ro_users}
    return samples


def _policy_samples(connection: Any, person: Any) -> None:
    """A policy over the read-write account and a run of it waiting for approval, with one person."""
    from policies.models import Policy, PolicyRun, PolicyRunItem

    policy = Policy.objects.create(name="Inactive people", action=Policy.Action.SUSPEND, dry_run=False)
    policy.connections.set([connection])
    run = PolicyRun.objects.create(
        policy=policy,
        trigger=PolicyRun.Trigger.SCHEDULE,
        status=PolicyRun.Status.AWAITING_APPROVAL,
        action=policy.action,
        selected=1,
        account_size=1,
    )
    PolicyRunItem.objects.create(
        run=run,
        connection=connection,
        app_user=person,
        external_id=person.external_id,
        username=person.username,
        reason="No successful use of JumpCloud on record",
    )


def _alert_samples(connection: Any) -> tuple[Any, Any]:
    """A webhook channel (its secret encrypted, as the service stores it) and a delivery to it."""
    from alerts.models import AlertEvent, Channel, Delivery
    from integrations.crypto import encrypt_json

    channel = Channel.objects.create(
        name="Ops webhook",
        kind=Channel.Kind.WEBHOOK,
        url="https://hooks.example.com/torii",
        secret=encrypt_json({"secret": "sample-alert-secret-0123456789"}),
        secret_hint="••••6789",
        event_kinds=["connection.needs_reconnect"],
    )
    event = AlertEvent.objects.create(
        kind="connection.needs_reconnect",
        connection=connection,
        connection_name=connection.name,
        subject=f"{connection.name} needs reconnecting",
    )
    return channel, Delivery.objects.create(event=event, channel=channel)


def _access_samples() -> tuple[Any, Any, Any]:
    """A torii user, a locked-out login and an API token (of another person), for the routes of the
    people page and the tokens page."""
    from datetime import timedelta

    from axes.models import AccessAttempt
    from django.utils import timezone

    from accounts.models import ApiToken
    from tests.factories import ViewerFactory

    person = ViewerFactory(username="pat.person")
    lockout = AccessAttempt.objects.create(
        username="pat.person",
        ip_address="192.0.2.99",
        user_agent="test",
        http_accept="*/*",
        path_info="/login/",
        failures_since_start=50,
        attempt_time=timezone.now(),
    )
    token, _ = ApiToken.objects.create(ViewerFactory(username="tina.token"), expiry=timedelta(days=1))
    return person, lockout, token


def state_snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every row torii's features can change (sessions and login bookkeeping left out)."""
    from django.contrib.auth import get_user_model

    from accounts.models import ApiToken
    from alerts.models import AlertEvent, Channel, Delivery, DeliveryAttempt
    from integrations.models import (
        ActionRun,
        Application,
        ApplicationLicence,
        AppUser,
        Connection,
        DailyUsage,
        SyncCheckpoint,
        SyncRun,
        UsageEvent,
    )
    from policies.models import Policy, PolicyRun, PolicyRunItem

    models = [
        Connection,
        SyncRun,
        SyncCheckpoint,
        ActionRun,
        Application,
        AppUser,
        UsageEvent,
        DailyUsage,
        ApiToken,
        Policy,
        PolicyRun,
        PolicyRunItem,
        ApplicationLicence,
        Channel,
        AlertEvent,
        Delivery,
        DeliveryAttempt,
    ]
    snapshot = {m.__name__: list(m.objects.order_by("pk").values()) for m in models}
    # When a token was last used is bookkeeping, like sessions: every token call updates it.
    for row in snapshot["ApiToken"]:
        row.pop("last_used_at")
    snapshot["User"] = list(
        get_user_model()
        .objects.order_by("pk")
        .values("pk", "username", "is_active", "is_staff", "is_superuser", "password")
    )
    return snapshot


# --- is a page inert? ------------------------------------------------------------------------------
_URL_ATTRIBUTES = {
    "href",
    "src",
    "action",
    "formaction",
    "xlink:href",
    "data",
    "poster",
    "srcset",
    "background",
    "ping",
    "cite",
    "manifest",
    "hx-get",
    "hx-post",
    "hx-put",
    "hx-patch",
    "hx-delete",
}
_SAFE_SCHEMES = ("http:", "https:", "mailto:")


class _DomAudit(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self._script: dict[str, str] | None = None
        self.json_blocks: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): (value or "") for name, value in attrs}
        for name, value in values.items():
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}={value!r}>: an inline event handler")
            if name in _URL_ATTRIBUTES or name.startswith("hx-on"):
                compact = "".join(ch for ch in value if ch > " ").lower()
                if ":" in compact.split("/", 1)[0] and not compact.startswith(_SAFE_SCHEMES):
                    self.problems.append(f"<{tag} {name}={value!r}>: a non-http URL")
            if name == "style" and ("expression(" in value.lower() or "url(" in value.lower()):
                self.problems.append(f"<{tag} style={value!r}>")
        if tag == "script":
            kind = values.get("type", "")
            if "src" not in values and kind != "application/json":
                self.problems.append(f"<script {values}>: an inline script")
            if "src" in values and not values["src"].startswith("/static/"):
                self.problems.append(f"<script src={values['src']!r}>: a script from elsewhere")
            self._script = values
        if tag in ("iframe", "object", "embed", "base", "frame"):
            self.problems.append(f"<{tag}>: an element that loads or re-bases content")
        if tag == "meta" and values.get("http-equiv", "").lower() == "refresh":
            self.problems.append("<meta http-equiv=refresh>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._script is not None and self._script.get("type") == "application/json":
            self.json_blocks.append(data)


def inertness_problems(html: str, payloads: Iterable[str] = ()) -> list[str]:
    """Everything in a page that could run script: raw payloads, inline handlers and scripts,
    javascript:/data: URLs, elements that load foreign content, JSON blocks that are not JSON."""
    import json

    problems = [f"raw payload {p!r}" for p in payloads if p in html]
    audit = _DomAudit()
    audit.feed(html)
    audit.close()
    problems += audit.problems
    for block in audit.json_blocks:
        try:
            json.loads(block)
        except ValueError:
            problems.append(f"a json_script block that is not JSON: {block[:200]!r}")
    return problems
