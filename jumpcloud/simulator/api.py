"""The JumpCloud API surface: routing, keys and tenancy, v1/v2/Directory Insights handlers.

Transport-free: ``JumpCloudAPI.handle(Request) -> Response``; server.py does the HTTP. Every error
body carries both ``message`` (what clients read) and ``error``.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from jumpcloud.simulator.events import (
    KNOWN_EVENT_FIELDS,
    KNOWN_SERVICES,
    EventStore,
    SearchTermError,
    compile_search_term,
    count_events,
    project,
    query_events,
)
from jumpcloud.simulator.hashing import is_object_id
from jumpcloud.simulator.tenant import Tenant, WriteError, sorted_records
from jumpcloud.simulator.timefmt import now_ms, parse_rfc3339_ms

JSON_TYPE = "application/json; charset=utf-8"

V1_DEFAULT_LIMIT = 10
V1_MAX_LIMIT = 100
DI_DEFAULT_LIMIT = 1000
DI_MAX_LIMIT = 10_000

# What each administrator role may do through the API. "basic" = /api/organizations* and getSelf.
# Command Runners get nothing: JumpCloud answers them 403 on every API call.
ROLE_RIGHTS: dict[str, frozenset[str]] = {
    "Administrator With Billing": frozenset({"basic", "read", "write", "di"}),
    "Administrator": frozenset({"basic", "read", "write", "di"}),
    "Manager": frozenset({"basic", "read", "write", "di"}),
    "Help Desk": frozenset({"basic", "read", "write", "di"}),
    "Read Only": frozenset({"basic", "read", "di"}),
    "Billing Only": frozenset({"basic"}),
    "Command Runner": frozenset(),
    "Command Runner With Billing": frozenset(),
}

UNKNOWN_KEY_MESSAGE = "Unauthorized: api key user not found"
NO_ORG_MESSAGE = "Unauthorized: no organization selected"
ORG_HEADER_FORBIDDEN = "Forbidden: organization selection not allowed via header"
NO_DI_MESSAGE = "Directory Insights is not enabled for this organization"
# The association types a user group has in JumpCloud's v2 spec (only applications are modelled).
GROUP_ASSOCIATION_TARGETS = (
    "active_directory",
    "application",
    "g_suite",
    "idp_routing_policy",
    "ldap_server",
    "office_365",
    "password_manager_item",
    "radius_server",
    "system",
    "system_group",
)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Any  # email.message.Message (case-insensitive get / get_all)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)
        return value.strip() if isinstance(value, str) else None

    def header_values(self, name: str) -> list[str]:
        values = self.headers.get_all(name) or []
        return [v.strip() for raw in values for v in raw.split(",") if v.strip()]

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = JSON_TYPE
    # Run by the transport once the response is on the wire (prefetching must not slow the send).
    after_send: Callable[[], None] | None = None

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return cls(status, json.dumps(data, separators=(",", ":")).encode(), dict(headers or {}))

    @classmethod
    def raw_json(cls, text: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return cls(status, text.encode(), dict(headers or {}))

    @classmethod
    def empty(cls, status: int = 200) -> Response:
        return cls(status, b"", {}, None)


def error_response(
    status: int, message: str, error: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    return Response.json({"message": message, "error": error or HTTPStatus(status).phrase}, status, headers)


class ApiError(Exception):
    def __init__(self, status: int, message: str, error: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error = error

    def response(self) -> Response:
        return error_response(self.status, self.message, self.error)


@dataclass(frozen=True)
class Principal:
    """The administrator behind an API key."""

    role: str  # key role: admin, read_only, billing_only, command_runner, multi_tenant, no_di
    key: str
    admin: dict[str, Any]
    tenants: tuple[str, ...]

    @property
    def role_name(self) -> str:
        return str(self.admin["roleName"])

    @property
    def multi(self) -> bool:
        return len(self.tenants) > 1


class Malformer:
    """Replaces a share of records in a page with broken ones (fault injection)."""

    _TIMESTAMP = re.compile(r'"timestamp":"[^"]*"')

    def __init__(self, rate: float, rng: random.Random) -> None:
        self.rate = rate
        self.rng = rng

    def records(self, items: list[dict[str, Any]], id_field: str) -> list[dict[str, Any]]:
        if not self.rate:
            return items
        return [{**item, id_field: None} if self.rng.random() < self.rate else item for item in items]

    def events(self, texts: list[str]) -> list[str]:
        if not self.rate:
            return texts
        out = []
        for text in texts:
            if self.rng.random() >= self.rate:
                out.append(text)
            elif self.rng.random() < 0.5 or not text.startswith('{"id":"'):
                out.append(self._TIMESTAMP.sub('"timestamp":"not-a-date"', text, count=1))
            else:
                out.append("{" + text[text.index('",', 7) + 2 :])  # drop the id field
        return out


NO_FAULTS = Malformer(0.0, random.Random(0))


@dataclass
class Context:
    request: Request
    principal: Principal
    tenants: list[Tenant]
    match: tuple[str, ...]
    malform: Malformer
    now_ms: int

    @property
    def tenant(self) -> Tenant:
        return self.tenants[0]

    def json_body(self) -> Any:
        if not self.request.body:
            return None
        try:
            return json.loads(self.request.body)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "Bad Request: the body is not valid JSON") from None


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # e.g. /api/systemusers/{id}
    pattern: re.Pattern[str]
    handler: Callable[[JumpCloudAPI, Context], Response]
    # orgs: /api/organizations* (x-org-id refused) | self: getSelf (x-org-id optional)
    # org: one organization (MSP keys must choose) | di: one or more organizations
    scope: str
    right: str


_ROUTES: list[Route] = []


def routes() -> tuple[Route, ...]:
    """Every implemented operation (the contract tests check each against the official specs)."""
    return tuple(_ROUTES)


def route(
    method: str, path: str, *, scope: str, right: str
) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    pattern = re.compile("^" + re.sub(r"\{\w+\}", r"([^/]+)", path) + "$")

    def register(fn: Callable[..., Response]) -> Callable[..., Response]:
        _ROUTES.append(Route(method, path, pattern, fn, scope, right))
        return fn

    return register


# --- query parameter parsing ---------------------------------------------------------------------


def _int_param(req: Request, name: str, default: int, *, maximum: int | None = None) -> int:
    raw = req.param(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"Bad Request: {name} must be an integer") from None
    if value < 0:
        raise ApiError(400, f"Bad Request: {name} must not be negative")
    if name == "limit" and value == 0:
        return default
    if maximum is not None and value > maximum:
        raise ApiError(400, f"Bad Request: {name} must be at most {maximum}")
    return value


_FILTER_AND = re.compile(r"^filter(\[\d+\])?$")
_FILTER_OR = re.compile(r"^filter\[or\]\[\d+\]$")
_OPS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")
_NO_MATCH = object()


def _parse_filters(req: Request) -> tuple[tuple[tuple[str, str, str], ...], tuple[tuple[str, str, str], ...]]:
    """v1 `filter=field:$op:value`; several filter/filter[n] are ANDed, filter[or][n] are ORed."""
    and_terms: list[tuple[str, str, str]] = []
    or_terms: list[tuple[str, str, str]] = []
    for key in sorted(req.query):
        target = and_terms if _FILTER_AND.match(key) else or_terms if _FILTER_OR.match(key) else None
        if target is None:
            continue
        for raw in req.query[key]:
            if not raw:
                continue
            parts = raw.split(":", 2)
            if len(parts) != 3 or not parts[0]:
                raise ApiError(400, f"Bad Request: invalid filter '{raw}' (expected field:$op:value)")
            if parts[1] not in _OPS:
                raise ApiError(
                    400, f"Bad Request: invalid filter operator '{parts[1]}' (use one of {', '.join(_OPS)})"
                )
            target.append((parts[0], parts[1], parts[2]))
    return tuple(and_terms), tuple(or_terms)


def _lookup(record: Mapping[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _coerce(raw: str, like: Any) -> Any:
    if raw == "null":
        return None
    if isinstance(like, bool):
        return {"true": True, "false": False}.get(raw.lower(), _NO_MATCH)
    if isinstance(like, int):
        try:
            return int(raw)
        except ValueError:
            return _NO_MATCH
    return raw


def _term_matches(record: Mapping[str, Any], term: tuple[str, str, str]) -> bool:
    field_name, op, raw = term
    value = _lookup(record, field_name)
    target = _coerce(raw, value)
    if op == "$eq":
        return target is not _NO_MATCH and value == target
    if op == "$ne":
        return target is _NO_MATCH or value != target
    if value is None or target is None or target is _NO_MATCH or type(value) is not type(target):
        return False
    if op == "$gt":
        return value > target
    if op == "$gte":
        return value >= target
    if op == "$lt":
        return value < target
    return value <= target


def _parse_sort(req: Request, default: str = "") -> tuple[tuple[str, bool], ...]:
    raw = req.param("sort") or default
    return tuple(
        (part.lstrip("-"), part.startswith("-")) for part in raw.replace(",", " ").split() if part.lstrip("-")
    )


def _parse_fields(req: Request) -> tuple[str, ...]:
    return tuple((req.param("fields") or "").replace(",", " ").split())


def _project_v1(
    records: Sequence[dict[str, Any]], fields: tuple[str, ...], id_field: str = "_id"
) -> list[dict[str, Any]]:
    if not fields:
        return list(records)
    keep = (id_field, *fields)  # like MongoDB, the id comes along unless asked otherwise
    return [{k: r[k] for k in keep if k in r} for r in records]


def _v1_list(
    ctx: Context,
    tenant: Tenant | None,
    kind: str,
    records: Callable[[], Sequence[dict[str, Any]]],
    default_sort: str = "",
) -> Response:
    """v1 list semantics: {totalCount, results}; limit/skip/sort/fields/filter. With a tenant the
    filtered and sorted rows are cached per data version, so paging a big tenant sorts once."""
    req = ctx.request
    limit = _int_param(req, "limit", V1_DEFAULT_LIMIT, maximum=V1_MAX_LIMIT)
    skip = _int_param(req, "skip", 0)
    and_terms, or_terms = _parse_filters(req)
    sort = _parse_sort(req, default_sort)
    fields = _parse_fields(req)

    def build() -> list[dict[str, Any]]:
        rows: Sequence[dict[str, Any]] = records()
        if and_terms:
            rows = [r for r in rows if all(_term_matches(r, t) for t in and_terms)]
        if or_terms:
            rows = [r for r in rows if any(_term_matches(r, t) for t in or_terms)]
        return sorted_records(rows, sort) if sort else list(rows)

    key = (kind, and_terms, or_terms, sort)
    if tenant is not None and not ctx.malform.rate:
        # Each record rendered once per data version (kept() forgets them at the next write).
        texts: list[str] = tenant.kept(
            ("v1", *key, fields),
            lambda: [
                json.dumps(r, separators=(",", ":")) for r in _project_v1(tenant.cached(key, build), fields)
            ],
        )
        return Response.raw_json(
            f'{{"totalCount":{len(texts)},"results":[{",".join(texts[skip : skip + limit])}]}}'
        )
    rows = tenant.cached(key, build) if tenant is not None else build()
    page = ctx.malform.records(_project_v1(rows[skip : skip + limit], fields), "_id")
    return Response.json({"totalCount": len(rows), "results": page})


def _v2_paging(req: Request) -> tuple[int, int]:
    return _int_param(req, "limit", V1_DEFAULT_LIMIT, maximum=V1_MAX_LIMIT), _int_param(req, "skip", 0)


def _graph(ctx: Context, items: list[dict[str, Any]]) -> Response:
    return Response.json(ctx.malform.records(items, "id"))


def _to(obj_id: str, obj_type: str) -> dict[str, Any]:
    return {"to": {"id": obj_id, "type": obj_type}}


# --- the API ---------------------------------------------------------------------------------------


class _Prefetcher:
    """Renders the next Directory Insights page while the client is still parsing this one.

    DI clients page strictly sequentially with the search_after the server just returned, so the
    next request is predictable; rendering it ahead halves the wall time a client sees. A prefetched
    page is only used when it is identical to what rendering at request time would give (see
    JumpCloudAPI._settled_page), so this is invisible to clients.
    """

    MAX_PENDING = 4

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._futures: OrderedDict[tuple[Any, ...], Future[Any]] = OrderedDict()
        self._executor: ThreadPoolExecutor | None = None
        # Prefetches promised by a response still being sent (scheduled once it is on the wire).
        self._announced = 0
        self._closed = False

    def announce(self) -> None:
        with self._lock:
            self._announced += 1

    def take(self, key: tuple[Any, ...]) -> Any:
        with self._lock:
            future = self._futures.pop(key, None)
        if future is None:
            return None
        try:
            return future.result(timeout=60)
        except Exception:  # a failed prefetch just means rendering now
            return None

    def schedule(self, key: tuple[Any, ...], fn: Callable[[], Any]) -> None:
        """Start rendering `key`'s page (the caller announced it first)."""
        with self._lock:
            self._announced = max(self._announced - 1, 0)
            self._changed.notify_all()
            if key in self._futures or self._closed:
                return
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="di-prefetch")
            self._futures[key] = self._executor.submit(fn)
            while len(self._futures) > self.MAX_PENDING:
                self._futures.popitem(last=False)[1].cancel()

    def wait(self, timeout: float = 10.0) -> None:
        with self._lock:
            self._changed.wait_for(lambda: self._announced == 0, timeout)
            pending = list(self._futures.values())
        # Cancelled or timed out: nothing left to wait for.
        for future in pending:
            with contextlib.suppress(CancelledError, TimeoutError):
                future.exception(timeout=timeout)

    def open(self) -> None:
        with self._lock:
            self._closed = False

    def close(self) -> None:
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
            self._futures.clear()
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)


class JumpCloudAPI:
    def __init__(
        self,
        tenants: Mapping[str, Tenant],
        principals: Mapping[str, Principal],
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.tenants = dict(tenants)
        self.principals = dict(principals)
        self.by_org_id = {t.org_id: t for t in self.tenants.values()}
        self.clock = clock
        self._prefetch = _Prefetcher()

    def open(self) -> None:
        self._prefetch.open()

    def close(self) -> None:
        self._prefetch.close()

    def wait_for_prefetch(self, timeout: float = 10.0) -> None:
        self._prefetch.wait(timeout)

    def handle(self, req: Request, malform: Malformer = NO_FAULTS) -> Response:
        path = req.path.rstrip("/") or "/"
        allowed: list[str] = []
        for r in _ROUTES:
            m = r.pattern.match(path)
            if not m:
                continue
            if r.method != req.method:
                allowed.append(r.method)
                continue
            try:
                principal, tenants = self._authorize(req, r)
                ctx = Context(req, principal, tenants, m.groups(), malform, self.clock())
                return r.handler(self, ctx)
            except ApiError as exc:
                return exc.response()
        if allowed:
            return error_response(
                405, "Method Not Allowed", headers={"Allow": ", ".join(sorted(set(allowed)))}
            )
        return error_response(404, "Not Found")

    def _authorize(self, req: Request, r: Route) -> tuple[Principal, list[Tenant]]:
        principal = self.principals.get(req.header("x-api-key") or "")
        if principal is None:
            raise ApiError(401, UNKNOWN_KEY_MESSAGE, "Unauthorized")
        rights = ROLE_RIGHTS.get(principal.role_name, frozenset())
        if not rights:
            raise ApiError(403, "Forbidden: command runners cannot use the API", "Forbidden")
        org_ids = req.header_values("x-org-id")
        own = [self.tenants[name] for name in principal.tenants]
        if r.scope == "orgs":
            if org_ids:
                raise ApiError(403, ORG_HEADER_FORBIDDEN, ORG_HEADER_FORBIDDEN)
            tenants = own
        elif org_ids:
            if len(org_ids) > 1 and r.scope != "di":
                raise ApiError(400, "Bad Request: only one x-org-id may be sent")
            tenants = []
            for org_id in org_ids:
                if not is_object_id(org_id):
                    raise ApiError(400, f"Bad Request: invalid organization id '{org_id}'")
                tenant = self.by_org_id.get(org_id)
                if tenant is None:
                    raise ApiError(404, f"Not Found: organization {org_id} does not exist", "Not Found")
                if tenant not in own:
                    raise ApiError(
                        403, "Forbidden: this administrator cannot access that organization", "Forbidden"
                    )
                tenants.append(tenant)
        elif principal.multi and r.scope != "self":
            raise ApiError(401, NO_ORG_MESSAGE, "Unauthorized")
        else:
            tenants = own[:1]
        if r.right not in rights:
            raise ApiError(403, f"Forbidden: the {principal.role_name} role cannot do this", "Forbidden")
        if r.scope == "di":
            for tenant in tenants:
                if not tenant.spec.directory_insights:
                    raise ApiError(403, NO_DI_MESSAGE, "Forbidden")
        return principal, tenants

    # --- v1 -------------------------------------------------------------------------------------

    def _user_or_404(self, ctx: Context) -> dict[str, Any]:
        user = ctx.tenant.user(ctx.match[0])
        if user is None:
            raise ApiError(404, "Not Found")
        return user

    def _write(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except WriteError as exc:
            raise ApiError(exc.status, exc.message) from None

    def _object_body(self, ctx: Context, *, required: bool = True) -> dict[str, Any]:
        body = ctx.json_body()
        if body is None and not required:
            return {}
        if not isinstance(body, dict):
            raise ApiError(400, "Bad Request: the body must be a JSON object")
        return body

    @route("GET", "/api/systemusers", scope="org", right="read")
    def users_list(self, ctx: Context) -> Response:
        t = ctx.tenant
        return _v1_list(ctx, t, "systemusers", lambda: t.users)

    @route("POST", "/api/systemusers", scope="org", right="write")
    def users_create(self, ctx: Context) -> Response:
        body = self._object_body(ctx)
        user = self._write(lambda: ctx.tenant.create_user(body, actor=ctx.principal.admin, now_ms=ctx.now_ms))
        return Response.json(user)

    @route("GET", "/api/systemusers/{id}", scope="org", right="read")
    def user_get(self, ctx: Context) -> Response:
        user = self._user_or_404(ctx)
        return Response.json(_project_v1([user], _parse_fields(ctx.request))[0])

    @route("PUT", "/api/systemusers/{id}", scope="org", right="write")
    def user_put(self, ctx: Context) -> Response:
        body = self._object_body(ctx)
        user = self._write(
            lambda: ctx.tenant.update_user(ctx.match[0], body, actor=ctx.principal.admin, now_ms=ctx.now_ms)
        )
        return Response.json(user)

    @route("DELETE", "/api/systemusers/{id}", scope="org", right="write")
    def user_delete(self, ctx: Context) -> Response:
        user = self._write(
            lambda: ctx.tenant.delete_user(ctx.match[0], actor=ctx.principal.admin, now_ms=ctx.now_ms)
        )
        return Response.json(user)

    @route("POST", "/api/systemusers/{id}/state/activate", scope="org", right="write")
    def user_activate(self, ctx: Context) -> Response:
        self._object_body(ctx, required=False)
        self._write(
            lambda: ctx.tenant.activate_user(ctx.match[0], actor=ctx.principal.admin, now_ms=ctx.now_ms)
        )
        return Response.empty()

    @route("POST", "/api/systemusers/{id}/unlock", scope="org", right="write")
    def user_unlock(self, ctx: Context) -> Response:
        self._write(
            lambda: ctx.tenant.unlock_user(ctx.match[0], actor=ctx.principal.admin, now_ms=ctx.now_ms)
        )
        return Response.empty()

    @route("GET", "/api/users", scope="org", right="read")
    def admins_list(self, ctx: Context) -> Response:
        t = ctx.tenant
        return _v1_list(ctx, t, "admins", lambda: list(t.admins))

    @route("GET", "/api/users/getSelf", scope="self", right="basic")
    def get_self(self, ctx: Context) -> Response:
        admin = ctx.principal.admin
        return Response.json(_project_v1([admin], _parse_fields(ctx.request))[0])

    @route("GET", "/api/applications", scope="org", right="read")
    def apps_list(self, ctx: Context) -> Response:
        t = ctx.tenant
        return _v1_list(ctx, t, "applications", lambda: list(t.apps), default_sort="name")

    @route("GET", "/api/applications/{id}", scope="org", right="read")
    def app_get(self, ctx: Context) -> Response:
        app = ctx.tenant.app(ctx.match[0])
        if app is None:
            raise ApiError(404, "Not Found")
        return Response.json(_project_v1([app], _parse_fields(ctx.request))[0])

    @route("GET", "/api/organizations", scope="orgs", right="basic")
    def orgs_list(self, ctx: Context) -> Response:
        summaries = [
            {"_id": t.org_id, "displayName": t.org["displayName"], "logoUrl": t.org["logoUrl"]}
            for t in ctx.tenants
        ]
        return _v1_list(ctx, None, "organizations", lambda: summaries)

    @route("GET", "/api/organizations/{id}", scope="orgs", right="basic")
    def org_get(self, ctx: Context) -> Response:
        org_id = ctx.match[0]
        if not is_object_id(org_id):
            raise ApiError(400, f"Bad Request: invalid organization id '{org_id}'")
        tenant = next((t for t in ctx.tenants if t.org_id == org_id), None)
        if tenant is None:
            raise ApiError(404, "Not Found")
        return Response.json(_project_v1([tenant.org], _parse_fields(ctx.request))[0])

    # --- v2 graph -------------------------------------------------------------------------------

    def _app_or_404(self, ctx: Context) -> str:
        if ctx.tenant.app(ctx.match[0]) is None:
            raise ApiError(404, "Not Found")
        return ctx.match[0]

    def _group_or_404(self, ctx: Context) -> str:
        if ctx.tenant.group(ctx.match[0]) is None:
            raise ApiError(404, "Not Found")
        return ctx.match[0]

    @route("GET", "/api/v2/applications/{id}/users", scope="org", right="read")
    def app_users(self, ctx: Context) -> Response:
        t = ctx.tenant
        app_id = self._app_or_404(ctx)
        limit, skip = _v2_paging(ctx.request)
        direct = set(t.app_direct_users.get(app_id, ()))
        items = []
        for uid in t.app_user_ids(app_id)[skip : skip + limit]:
            paths = [[_to(uid, "user")]] if uid in direct else []
            for gid in t.app_groups.get(app_id, ()):
                if uid in t.group_user_set(gid):
                    paths.extend(
                        [*(_to(g, "user_group") for g in chain), _to(uid, "user")]
                        for chain in t.group_paths(gid, uid)
                    )
            items.append({"id": uid, "type": "user", "compiledAttributes": {}, "paths": paths})
        return _graph(ctx, items)

    @route("GET", "/api/v2/applications/{id}/usergroups", scope="org", right="read")
    def app_usergroups(self, ctx: Context) -> Response:
        app_id = self._app_or_404(ctx)
        limit, skip = _v2_paging(ctx.request)
        items = [
            {
                "id": gid,
                "type": "user_group",
                "compiledAttributes": {},
                "paths": [[_to(g, "user_group") for g in chain] for chain in chains],
            }
            for gid, chains in ctx.tenant.app_groups_resolved(app_id)[skip : skip + limit]
        ]
        return _graph(ctx, items)

    @route("GET", "/api/v2/applications/{id}/associations", scope="org", right="read")
    def app_associations(self, ctx: Context) -> Response:
        app_id = self._app_or_404(ctx)
        targets = ctx.request.param("targets")
        if targets not in ("user", "user_group"):
            raise ApiError(400, "Bad Request: targets is required and must be one of user, user_group")
        limit, skip = _v2_paging(ctx.request)
        source = ctx.tenant.app_direct_users if targets == "user" else ctx.tenant.app_groups
        ids = source.get(app_id, [])[skip : skip + limit]
        return _graph(ctx, [{**_to(i, targets), "attributes": {}} for i in ids])

    @route("GET", "/api/v2/usergroups", scope="org", right="read")
    def groups_list(self, ctx: Context) -> Response:
        limit, skip = _v2_paging(ctx.request)
        groups = ctx.tenant.groups[skip : skip + limit]
        return _graph(ctx, [g.to_api(ctx.tenant.org_id) for g in groups])

    @route("GET", "/api/v2/usergroups/{id}", scope="org", right="read")
    def group_get(self, ctx: Context) -> Response:
        gid = self._group_or_404(ctx)
        group = ctx.tenant.group(gid)
        assert group is not None
        return Response.json(group.to_api(ctx.tenant.org_id))

    @route("GET", "/api/v2/usergroups/{id}/associations", scope="org", right="read")
    def group_associations(self, ctx: Context) -> Response:
        """The group's direct associations of one type: the same edges as an application's
        associations with targets=user_group, seen from the group's side."""
        gid = self._group_or_404(ctx)
        targets = ctx.request.param("targets")
        if targets not in GROUP_ASSOCIATION_TARGETS:
            raise ApiError(
                400,
                f"Bad Request: targets is required and must be one of {', '.join(GROUP_ASSOCIATION_TARGETS)}",
            )
        limit, skip = _v2_paging(ctx.request)
        t = ctx.tenant
        ids = (
            [a["_id"] for a in t.apps if gid in t.app_groups.get(a["_id"], ())]
            if targets == "application"
            else []
        )
        return _graph(ctx, [{**_to(i, targets), "attributes": {}} for i in ids[skip : skip + limit]])

    @route("GET", "/api/v2/users/{id}/memberof", scope="org", right="read")
    def user_member_of(self, ctx: Context) -> Response:
        """The user groups a user belongs to, directly or through nested groups (JumpCloud's graph
        traversal: one item per group, with the chains of groups that lead to the user)."""
        t = ctx.tenant
        user = self._user_or_404(ctx)
        uid = user["_id"]
        limit, skip = _v2_paging(ctx.request)
        items = [
            {
                "id": g.id,
                "type": "user_group",
                "compiledAttributes": {},
                "paths": [
                    [*(_to(x, "user_group") for x in chain[1:]), _to(uid, "user")]
                    for chain in t.group_paths(g.id, uid)
                ],
            }
            for g in t.groups
            if uid in t.group_user_set(g.id)
        ]
        return _graph(ctx, items[skip : skip + limit])

    @route("GET", "/api/v2/usergroups/{id}/members", scope="org", right="read")
    def group_members(self, ctx: Context) -> Response:
        group = ctx.tenant.group(self._group_or_404(ctx))
        assert group is not None
        limit, skip = _v2_paging(ctx.request)
        members = [_to(u, "user") for u in group.user_ids] + [_to(g, "user_group") for g in group.group_ids]
        return _graph(ctx, members[skip : skip + limit])

    @route("GET", "/api/v2/usergroups/{id}/membership", scope="org", right="read")
    def group_membership(self, ctx: Context) -> Response:
        t = ctx.tenant
        gid = self._group_or_404(ctx)
        limit, skip = _v2_paging(ctx.request)

        def ordered() -> list[str]:
            return t.cached(
                ("membership", gid),
                lambda: sorted(  # type: ignore[no-any-return]
                    (u for u in t.group_user_set(gid) if t.user(u) is not None),
                    key=lambda u: t.users_position(u),
                ),
            )

        def item(uid: str) -> dict[str, Any]:
            return {
                "id": uid,
                "type": "user",
                "compiledAttributes": {},
                "paths": [
                    [*(_to(g, "user_group") for g in chain[1:]), _to(uid, "user")]
                    for chain in t.group_paths(gid, uid)
                ],
            }

        if ctx.malform.rate:
            return _graph(ctx, [item(uid) for uid in ordered()[skip : skip + limit]])
        # Rendered once per data version: a sync reads every group's members, page by page.
        texts: list[str] = t.kept(
            ("membership", gid), lambda: [json.dumps(item(uid), separators=(",", ":")) for uid in ordered()]
        )
        return Response.raw_json("[" + ",".join(texts[skip : skip + limit]) + "]")

    # --- Directory Insights -----------------------------------------------------------------------

    def _di_query(self, ctx: Context) -> dict[str, Any]:
        body = ctx.json_body()
        if not isinstance(body, dict):
            raise ApiError(400, "Bad Request: the body must be a JSON object with service and start_time")
        services = body.get("service")
        if not isinstance(services, list) or not services or not all(isinstance(s, str) for s in services):
            raise ApiError(400, "Bad Request: service is required: a list of service names")
        unknown = [s for s in services if s not in KNOWN_SERVICES]
        if unknown:
            raise ApiError(
                400,
                f"Bad Request: invalid service {', '.join(unknown)}; valid values are: "
                + ", ".join(sorted(KNOWN_SERVICES)),
            )
        if "start_time" not in body:
            raise ApiError(400, "Bad Request: start_time is required (RFC3339, e.g. 2024-01-01T00:00:00Z)")
        start_ms = parse_rfc3339_ms(body["start_time"])
        if start_ms is None:
            raise ApiError(400, f"Bad Request: invalid start_time {body['start_time']!r}: use RFC3339")
        if start_ms > ctx.now_ms:
            raise ApiError(400, "Bad Request: start_time cannot be in the future")
        end_ms = None
        if body.get("end_time") is not None:
            end_ms = parse_rfc3339_ms(body["end_time"])
            if end_ms is None:
                raise ApiError(400, f"Bad Request: invalid end_time {body['end_time']!r}: use RFC3339")
            if end_ms <= start_ms:
                raise ApiError(400, "Bad Request: Start Time not after End Time")
        limit = body.get("limit")
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= DI_MAX_LIMIT:
            limit = DI_DEFAULT_LIMIT
        sort = body.get("sort")
        descending = isinstance(sort, str) and sort.upper() == "DESC"
        search_after = _search_after(body.get("search_after"))
        skip = body.get("skip")
        if not isinstance(skip, int) or isinstance(skip, bool) or skip < 0:
            skip = 0
        fields = body.get("fields")
        if fields is not None and (
            not isinstance(fields, list)
            or not all(isinstance(f, str) for f in fields)
            or not any(f.split(".")[0] in KNOWN_EVENT_FIELDS for f in fields)
        ):
            raise ApiError(400, "Bad Request: fields must list at least one known event field")
        predicate = None
        if body.get("search_term") is not None:
            try:
                predicate = compile_search_term(body["search_term"])
            except SearchTermError as exc:
                raise ApiError(400, f"Bad Request: {exc}") from None
        return {
            "services": frozenset(services),
            "start_ms": start_ms,
            "end_ms": end_ms,
            "limit": limit,
            "descending": descending,
            "search_after": search_after,
            "skip": skip,
            "fields": fields,
            "predicate": predicate,
            "echo_search_after": body.get("search_after"),
        }

    def _page(
        self, stores: Sequence[EventStore], q: dict[str, Any], search_after: tuple[int, str] | None, now: int
    ) -> tuple[list[str], tuple[int, str] | None]:
        return query_events(
            stores,
            services=q["services"],
            start_ms=q["start_ms"],
            end_ms=q["end_ms"],
            descending=q["descending"],
            search_after=search_after,
            limit=q["limit"],
            skip=q["skip"],
            now_ms=now,
            predicate=q["predicate"],
        )

    def _settled_page(
        self, stores: Sequence[EventStore], q: dict[str, Any], after: tuple[int, str]
    ) -> tuple[list[str], tuple[int, str] | None] | None:
        """The page after `after`, or None unless it is full and every event in its key range is
        settled (visible and beyond late arrival), i.e. rendering it later would give the same."""
        now = self.clock()
        page, last = self._page(stores, q, after, now)
        if len(page) < q["limit"] or last is None:
            return None
        settled = min(s.settled_before(now) for s in stores)
        newest = after[0] if q["descending"] else last[0]
        return (page, last) if newest < settled else None

    @route("POST", "/insights/directory/v1/events", scope="di", right="di")
    def di_events(self, ctx: Context) -> Response:
        q = self._di_query(ctx)
        stores = [t.events for t in ctx.tenants]
        cacheable = q["predicate"] is None and not q["fields"] and q["skip"] == 0
        key: tuple[Any, ...] = ()
        hit = None
        if cacheable:
            key = (
                tuple(t.org_id for t in ctx.tenants),
                q["services"],
                q["start_ms"],
                q["end_ms"],
                q["descending"],
                q["limit"],
                tuple(s.state_version() for s in stores),
            )
            hit = self._prefetch.take((*key, q["search_after"]))
        page, last = hit if hit is not None else self._page(stores, q, q["search_after"], ctx.now_ms)
        if q["fields"]:
            page = [
                json.dumps(project(json.loads(text), q["fields"]), separators=(",", ":")) for text in page
            ]
        page = ctx.malform.events(page)
        if last is not None:
            cursor = json.dumps([last[0], last[1]], separators=(",", ":"))
        else:
            echo = q["echo_search_after"]
            cursor = json.dumps(echo if isinstance(echo, list) else [], separators=(",", ":"))
        headers = {
            "X-Result-Count": str(len(page)),
            "X-Limit": str(q["limit"]),
            "X-Sort": "DESC" if q["descending"] else "ASC",
            "X-Search_after": cursor,
        }
        response = Response.raw_json("[" + ",".join(page) + "]", headers=headers)
        if cacheable and last is not None and len(page) == q["limit"]:
            # Announced now, scheduled once the response is on the wire (see _Prefetcher).
            self._prefetch.announce()
            next_key, after = (*key, last), last
            response.after_send = lambda: self._prefetch.schedule(
                next_key, lambda: self._settled_page(stores, q, after)
            )
        return response

    @route("POST", "/insights/directory/v1/events/count", scope="di", right="di")
    def di_count(self, ctx: Context) -> Response:
        q = self._di_query(ctx)
        stores = [t.events for t in ctx.tenants]
        n = count_events(
            stores,
            services=q["services"],
            start_ms=q["start_ms"],
            end_ms=q["end_ms"],
            now_ms=ctx.now_ms,
            predicate=q["predicate"],
        )
        return Response.json({"count": n})


def _search_after(value: Any) -> tuple[int, str] | None:
    """[epoch_ms, "doc id"] as sent back from X-Search_after; the spec types the items as strings, so
    a numeric string is accepted for the first item too."""
    if value is None or value == []:
        return None
    if isinstance(value, list) and len(value) == 2 and isinstance(value[1], str):
        first = value[0]
        if isinstance(first, int) and not isinstance(first, bool):
            return first, value[1]
        if isinstance(first, str) and first.lstrip("-").isdigit():
            return int(first), value[1]
    raise ApiError(400, "Bad Request: search_after must be the [epoch_ms, id] array from X-Search_after")
