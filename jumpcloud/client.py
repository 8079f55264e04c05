"""The JumpCloud HTTP client: the only code in torii that talks to JumpCloud (or its simulator).

HTTP concerns only: auth headers, the x-org-id rules, paging, retries and mapping failures to the
typed errors in jumpcloud.errors. No ORM, no Django settings; sync.py and actions.py build on it.
Facts about the API: docs/jumpcloud-api.md and docs/directory-insights.md.

Every request takes a slot of the account's request budget first (`gate`: the sync passes the
per-organization budget shared by all workers, integrations.sync.budget), and reports 429s to it.
Listings read a few pages ahead (`read_ahead`) in the client's own threads: JumpCloud answers
in 100–300 ms, and a sync reading one page at a time would mostly wait.

Retries live in urllib3 (jumpcloud.retry.JumpCloudRetry) mounted on two adapters: the console host,
where POST creates and DELETE deletes (so those are only repeated on 429 or a failed connect), and
the Directory Insights prefix, whose POSTs are read-only queries and are retried like GETs.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from jumpcloud import retry as _retry
from jumpcloud.errors import (
    API_KEY_PATH,
    BadRequest,
    Conflict,
    DirectoryInsightsUnavailable,
    InvalidApiKey,
    JumpCloudError,
    ListUnavailable,
    NotFound,
    OrganizationNotFound,
    OrganizationRequired,
    PermissionDenied,
    RateLimited,
    RequestTimedOut,
    UpstreamError,
)
from jumpcloud.parsing import (
    SYSTEM_USER_FIELDS,
    Administrator,
    AppBinding,
    Application,
    Event,
    EventPage,
    MalformedRecord,
    Organization,
    Page,
    SystemUser,
    parse_administrator,
    parse_app_binding,
    parse_application,
    parse_event,
    parse_organization,
    parse_system_user,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

REGION_HOSTS: dict[str, tuple[str, str]] = {
    "us": ("https://console.jumpcloud.com", "https://api.jumpcloud.com"),
    "eu": ("https://console.eu.jumpcloud.com", "https://api.eu.jumpcloud.com"),
    "in": ("https://console.in.jumpcloud.com", "https://api.in.jumpcloud.com"),
}

DI_PREFIX = "/insights/directory/v1"
PAGE_LIMIT = 100  # v1/v2 lists: the official SDKs page with 100; a higher maximum is unconfirmed
READ_AHEAD = 8  # default pages (or items of map_ahead) in flight while the caller works on one
DI_MAX_LIMIT = 10_000
# JumpCloud answers 403 when x-org-id is sent to these (docs/jumpcloud-api.md §7); no complete list exists.
_NO_ORG_HEADER_PREFIXES = ("/api/organizations", "/api/v2/providers/", "/api/v2/organizations/")
# How often an idempotent read is re-issued when its body arrives truncated or is not JSON.
BODY_ATTEMPTS = 3
_DETAIL_MAX = 500


def mask_key(api_key: str) -> str:
    """What may be shown of a key: its last 4 characters, and nothing of a short (bogus) key."""
    return f"…{api_key[-4:]}" if len(api_key) >= 16 else "…"


class RequestGate(Protocol):
    """Where requests wait their turn (integrations.sync.budget.RequestBudget fits)."""

    def slot(self) -> AbstractContextManager[None]: ...

    def throttled(self, retry_after: float | None = None) -> None: ...


class _NoGate:
    def slot(self) -> AbstractContextManager[None]:
        return nullcontext()

    def throttled(self, retry_after: float | None = None) -> None:
        return None


_IN_POOL = threading.local()  # which of the client's pools this thread belongs to


class _ApiKeyAuth(AuthBase):
    """Adds x-api-key at send time, so the key lives in one object whose repr is masked."""

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["x-api-key"] = self._api_key
        return request

    def __repr__(self) -> str:
        return f"<JumpCloud API key {mask_key(self._api_key)}>"

    def scrub(self, text: str) -> str:
        return text.replace(self._api_key, "[redacted]") if self._api_key in text else text


class _UnreadableBody(Exception):
    """Internal: the status was fine but the body was truncated or not the JSON promised."""


class JumpCloudClient:
    """One JumpCloud account (key + optional organization) over one pooled requests.Session."""

    def __init__(
        self,
        api_key: str,
        *,
        region: str = "us",
        base_url: str | None = None,
        org_id: str | None = None,
        timeout: tuple[float, float] = (5.0, 60.0),
        max_retries: int = 5,
        backoff_factor: float = 0.5,
        backoff_max: float = 30.0,
        retry_after_max: float = 60.0,
        session: requests.Session | None = None,
        user_agent: str = "torii-jumpcloud/1.0",
        gate: RequestGate | None = None,
        read_ahead: int = 1,
    ) -> None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise ValueError("A JumpCloud API key is required.")
        if any(ch in api_key for ch in "\r\n"):
            # Never echo the key: it would end up in a traceback.
            raise ValueError("The JumpCloud API key contains a line break; paste it again.")
        if base_url is None and region not in REGION_HOSTS:
            raise ValueError(
                f"Unknown JumpCloud region {region!r}; expected one of {', '.join(REGION_HOSTS)}."
            )
        self.region = region
        self.base_url = base_url.rstrip("/") if base_url else None
        if self.base_url is not None:
            if urlsplit(self.base_url).scheme not in ("http", "https"):
                raise ValueError("base_url must start with http:// or https://")
            self._console = self._di = self.base_url
        else:
            self._console, self._di = REGION_HOSTS[region]
        self.org_id = org_id or None
        self.timeout = timeout
        self.last_request_id = ""
        self._auth = _ApiKeyAuth(api_key)
        self._user_agent = user_agent
        self._backoff_factor = backoff_factor
        # max_retries=0 means "send once": that covers re-reading unreadable bodies too.
        self._body_attempts = max(1, min(BODY_ATTEMPTS, max_retries + 1))

        self._gate: RequestGate = gate or _NoGate()
        self._read_ahead = max(1, int(read_ahead))
        # Two pools: page requests (which never wait on anything), and map_ahead's calls (which
        # may read listings, and so wait on page requests): neither waits on its own pool.
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._pool_lock = threading.Lock()

        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()
        if self._owns_session:
            self._environment_once()
        common: dict[str, Any] = {
            "max_retries": max_retries,
            "backoff_factor": backoff_factor,
            "backoff_max": backoff_max,
            "retry_after_max": retry_after_max,
            "on_rate_limited": self._gate.throttled,
        }
        # Sized for the read-ahead threads; requests picks the longest matching prefix.
        self._session.mount(
            self._console + "/",
            HTTPAdapter(
                pool_connections=4,
                pool_maxsize=max(8, self._read_ahead + 1),
                max_retries=_retry.build_retry(allowed_methods=_retry.IDEMPOTENT_METHODS, **common),
            ),
        )
        self._session.mount(
            self._di + DI_PREFIX + "/",
            HTTPAdapter(
                pool_connections=2,
                pool_maxsize=max(8, self._read_ahead + 1),
                max_retries=_retry.build_retry(allowed_methods=_retry.QUERY_METHODS, **common),
            ),
        )

    def _environment_once(self) -> None:
        """Read the proxy and CA-bundle environment once, for this client's two hosts.

        A session that trusts the environment re-reads it on every request (requests scans
        os.environ for proxies each time: about a fifth of the client's CPU per page on a sync of
        2,500 inventory pages). The same settings are resolved here once instead: HTTP(S)_PROXY /
        ALL_PROXY with NO_PROXY, and REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE.
        """
        self._session.trust_env = False
        for base in {self._console, self._di}:
            parts = urlsplit(base)
            found = requests.utils.get_environ_proxies(base)
            proxy = found.get(parts.scheme) or found.get("all")
            if proxy:
                self._session.proxies[f"{parts.scheme}://{parts.hostname}"] = proxy
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            self._session.verify = bundle

    # ----------------------------------------------------------------------------------------------
    # lifecycle

    def close(self) -> None:
        with self._pool_lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> JumpCloudClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"JumpCloudClient(region={self.region!r}, base_url={self.base_url!r}, "
            f"org_id={self.org_id!r}, api_key={mask_key(self._auth._api_key)!r})"
        )

    __str__ = __repr__

    def __reduce__(self) -> Any:
        # A client holds a live key and sockets; it must be rebuilt from a Connection, not pickled.
        raise TypeError("JumpCloudClient cannot be pickled; pass the connection id instead.")

    # ----------------------------------------------------------------------------------------------
    # discovery / validation

    def list_organizations(self) -> list[Organization]:
        """Every organization the key can see (several: a multi-tenant key). Never sends x-org-id."""
        return [
            org
            for page in self._iter_v1_pages("/api/organizations", parse_organization)
            for org in page.items
        ]

    def get_organization(self, org_id: str) -> dict[str, Any]:
        payload = self._call("GET", f"/api/organizations/{_segment(org_id)}")[1]
        return _expect_dict(payload, "organization")

    def get_self(self) -> dict[str, Any]:
        """The administrator owning the key (route used by JumpCloud's PowerShell module; unpublished)."""
        return _expect_dict(self._call("GET", "/api/users/getSelf")[1], "administrator")

    # ----------------------------------------------------------------------------------------------
    # v1 lists

    def iter_system_user_pages(self) -> Iterator[Page[SystemUser]]:
        """Every system user, with the fields parse_system_user reads (a third of the bytes)."""
        return self._iter_v1_pages("/api/systemusers", parse_system_user, {"fields": SYSTEM_USER_FIELDS})

    def iter_system_users(self) -> Iterator[SystemUser]:
        for page in self.iter_system_user_pages():
            yield from page.items

    def iter_administrator_pages(self) -> Iterator[Page[Administrator]]:
        return self._iter_v1_pages("/api/users", parse_administrator)

    def iter_application_pages(self) -> Iterator[Page[Application]]:
        return self._iter_v1_pages("/api/applications", parse_application)

    # ----------------------------------------------------------------------------------------------
    # v2 graph lists

    def iter_application_binding_pages(self, app_id: str) -> Iterator[Page[AppBinding]]:
        return self._iter_v2_pages(f"/api/v2/applications/{_segment(app_id)}/users", parse_app_binding)

    def iter_application_associations(self, app_id: str, targets: str) -> Iterator[dict[str, Any]]:
        pages = self._iter_v2_pages(
            f"/api/v2/applications/{_segment(app_id)}/associations", _raw_record, {"targets": targets}
        )
        for page in pages:
            yield from page.items

    def iter_user_group_ids(self) -> Iterator[str]:
        """The ids of every user group of the organization."""
        for page in self._iter_v2_pages("/api/v2/usergroups", _raw_record):
            for record in page.items:
                group_id = record.get("id")
                if isinstance(group_id, str) and group_id:
                    yield group_id[:64]

    def iter_user_group_associations(self, group_id: str, targets: str) -> Iterator[dict[str, Any]]:
        """A group's direct associations of one type (the same graph edges as an application's
        associations with targets=user_group, seen from the group)."""
        pages = self._iter_v2_pages(
            f"/api/v2/usergroups/{_segment(group_id)}/associations", _raw_record, {"targets": targets}
        )
        for page in pages:
            yield from page.items

    def iter_user_group_membership_pages(self, group_id: str) -> Iterator[Page[AppBinding]]:
        """Users of a group after JumpCloud resolves nested groups (same shape as app users)."""
        return self._iter_v2_pages(f"/api/v2/usergroups/{_segment(group_id)}/membership", parse_app_binding)

    def user_group_ids(self, user_id: str) -> list[str]:
        """Ids of the user groups a user belongs to, directly or through nesting (graph memberof)."""
        return [
            str(item.get("id"))
            for page in self._iter_v2_pages(f"/api/v2/users/{_segment(user_id)}/memberof", _raw_record)
            for item in page.items
            if isinstance(item, dict) and item.get("type") == "user_group" and item.get("id")
        ]

    def user_group_names(self) -> dict[str, str]:
        """Every user group of the organization: id → name."""
        return {
            str(g["id"]): str(g.get("name") or g["id"])
            for page in self._iter_v2_pages("/api/v2/usergroups", _raw_record)
            for g in page.items
            if isinstance(g, dict) and g.get("id")
        }

    def iter_user_group_members(self, group_id: str) -> Iterator[dict[str, Any]]:
        for page in self._iter_v2_pages(f"/api/v2/usergroups/{_segment(group_id)}/members", _raw_record):
            yield from page.items

    # ----------------------------------------------------------------------------------------------
    # Directory Insights

    def iter_event_pages(
        self,
        service: str,
        start: datetime,
        end: datetime,
        *,
        limit: int = DI_MAX_LIMIT,
        search_after: list[Any] | None = None,
        newest_first: bool = False,
    ) -> Iterator[EventPage]:
        """Events of one service in [start, end], oldest first (or newest first), one EventPage per
        response. A `search_after` cursor only continues a listing in the order it came from.

        Times are sent in whole seconds, start rounded down and end up: the documented format, and
        a window that only ever widens (duplicates are harmless, callers dedupe on event id).
        start >= end sends nothing: JumpCloud would answer 400 and stall the poller (elastic #17209).
        """
        if start >= end:
            return
        limit = max(1, min(int(limit), DI_MAX_LIMIT))
        query: dict[str, Any] = {
            "service": [service],
            "start_time": _rfc3339(start, round_up=False),
            "end_time": _rfc3339(end, round_up=True),
            "limit": limit,
            "sort": "DESC" if newest_first else "ASC",
        }
        pool = self._executor("pages")
        cursor = search_after
        pending: Future[tuple[requests.Response, Any]] | None = None
        try:
            while True:
                if pending is not None:
                    response, payload = pending.result()
                    pending = None
                else:
                    body = query if cursor is None else {**query, "search_after": cursor}
                    response, payload = self._call("POST", DI_PREFIX + "/events", body=body, di=True)
                page = self._event_page(response, payload, cursor, limit)
                if not page.is_last and pool is not None:
                    # The next page is on its way while the caller stores this one.
                    following = {**query, "search_after": page.search_after}
                    pending = pool.submit(self._call, "POST", DI_PREFIX + "/events", body=following, di=True)
                yield page
                if page.is_last:
                    return
                cursor = page.search_after
        finally:
            if pending is not None:
                pending.cancel()

    def _event_page(
        self, response: requests.Response, payload: Any, cursor: list[Any] | None, limit: int
    ) -> EventPage:
        """One Directory Insights response as an EventPage; raises when its paging is broken."""
        if not isinstance(payload, list):
            raise self._shape_error("events", response)
        events: list[Event] = []
        append = events.append
        skipped = 0
        for raw in payload:
            try:
                append(parse_event(raw))
            except MalformedRecord:
                skipped += 1
        headers = response.headers  # requests' CaseInsensitiveDict: X-Search_After works too
        result_count = _int_header(headers.get("X-Result-Count"), len(payload))
        page_limit = _int_header(headers.get("X-Limit"), limit) or limit
        next_cursor = _cursor_header(headers.get("X-Search_after") or headers.get("X-Search-After"))
        # The cursor header is present on the last page too; only the count tells the end.
        is_last = result_count < page_limit or not payload
        if not is_last and (next_cursor is None or next_cursor == cursor):
            raise UpstreamError(
                "JumpCloud Directory Insights said more events follow but sent no new paging cursor "
                "(X-Search_after). The sync will try again later.",
                status=response.status_code,
                request_id=self.last_request_id,
            )
        return EventPage(
            events=events,
            skipped=skipped,
            result_count=result_count,
            limit=page_limit,
            search_after=next_cursor,
            request_id=response.headers.get("X-Request-Id", ""),
            is_last=is_last,
        )

    def count_events(self, service: str, start: datetime, end: datetime) -> int:
        if start >= end:
            return 0
        body = {
            "service": [service],
            "start_time": _rfc3339(start, round_up=False),
            "end_time": _rfc3339(end, round_up=True),
        }
        response, payload = self._call("POST", DI_PREFIX + "/events/count", body=body, di=True)
        count = payload.get("count") if isinstance(payload, dict) else None
        if isinstance(count, str) and count.strip().isascii() and count.strip().isdigit():
            count = int(count)
        if isinstance(count, bool) or not isinstance(count, int | float):
            raise self._shape_error("event count", response)
        return int(count)

    # ----------------------------------------------------------------------------------------------
    # system users: reads and writes

    def get_system_user(self, user_id: str) -> SystemUser:
        response, payload = self._call("GET", f"/api/systemusers/{_segment(user_id)}")
        return self._user_from(payload, response)

    def find_system_users(self, *, username: str | None = None, email: str | None = None) -> list[SystemUser]:
        """Exact, case-sensitive matches (JumpCloud's filter semantics). Both given: both must match.

        JumpCloud filters on one field per `filter` parameter; the second condition is applied here
        rather than relying on the less-documented filter[0]/filter[1] form.
        """
        if username is None and email is None:
            raise ValueError("find_system_users needs a username or an email")
        field, value = ("username", username) if username is not None else ("email", email)
        params = {"filter": f"{field}:$eq:{value}"}
        users = [
            u
            for page in self._iter_v1_pages("/api/systemusers", parse_system_user, params)
            for u in page.items
        ]
        if username is not None and email is not None:
            users = [u for u in users if u.email == email]
        return users

    def create_system_user(
        self,
        *,
        username: str,
        email: str,
        firstname: str = "",
        lastname: str = "",
        state: str | None = None,
        **extra: Any,
    ) -> SystemUser:
        """POST /systemusers. Never repeated after a 5xx or a timeout: JumpCloud may have created it."""
        body: dict[str, Any] = dict(extra)
        body["username"] = username
        body["email"] = email
        if firstname:
            body["firstname"] = firstname
        if lastname:
            body["lastname"] = lastname
        if state is not None:
            body["state"] = state
        response, payload = self._call("POST", "/api/systemusers", body=body, write=True)
        return self._user_from(payload, response, written=True)

    def update_system_user(self, user_id: str, fields: dict[str, Any]) -> SystemUser:
        """PUT with only the given fields (JumpCloud treats PUT as a partial update)."""
        response, payload = self._call("PUT", f"/api/systemusers/{_segment(user_id)}", body=dict(fields))
        return self._user_from(payload, response, written=True)

    def suspend_system_user(self, user_id: str) -> SystemUser:
        # JumpCloud's own module always sends both, and refuses inconsistent pairs.
        return self.update_system_user(user_id, {"state": "SUSPENDED", "suspended": True})

    def unsuspend_system_user(self, user_id: str) -> SystemUser:
        return self.update_system_user(user_id, {"state": "ACTIVATED", "suspended": False})

    def activate_system_user(self, user_id: str) -> None:
        """STAGED -> ACTIVATED. Treated as non-idempotent: it may send the activation email."""
        self._call("POST", f"/api/systemusers/{_segment(user_id)}/state/activate", body={}, write=True)

    def delete_system_user(self, user_id: str) -> dict[str, Any]:
        """DELETE; returns the deleted record. Not repeated after a 5xx/timeout: a repeat would 404."""
        response, payload = self._call("DELETE", f"/api/systemusers/{_segment(user_id)}", write=True)
        if payload is None:
            return {}
        return _expect_dict(payload, "deleted user", response=response, client=self, written=True)

    # ----------------------------------------------------------------------------------------------
    # paging

    def _iter_v1_pages(
        self, path: str, parse: Callable[[Any], T], params: dict[str, Any] | None = None
    ) -> Iterator[Page[T]]:
        """v1 `{totalCount, results}` lists. Stops on a short page; totalCount only bounds how
        many pages are read ahead (it is not trusted to end the listing)."""

        def fetch(skip: int) -> tuple[list[Any], requests.Response, int | None]:
            query = {"limit": PAGE_LIMIT, "skip": skip, "sort": "_id", **(params or {})}
            try:
                response, payload = self._call("GET", path, params=query)
            except NotFound as exc:
                # Every v1 list torii reads is a top-level collection: no such list means the
                # account does not offer it, not that something was deleted.
                raise ListUnavailable(
                    f"JumpCloud does not offer the list {path} for this account (HTTP {exc.status}), so what "
                    "torii reads from it is unavailable.",
                    status=exc.status,
                    request_id=exc.request_id,
                ) from None
            results = payload.get("results") if isinstance(payload, dict) else None
            if not isinstance(results, list):
                raise self._shape_error("list", response)
            total = payload.get("totalCount")
            return (
                results,
                response,
                total if isinstance(total, int) and not isinstance(total, bool) else None,
            )

        return self._pages(fetch, parse)

    def _iter_v2_pages(
        self, path: str, parse: Callable[[Any], T], params: dict[str, Any] | None = None
    ) -> Iterator[Page[T]]:
        """v2 graph lists: bare arrays; stops on a short (or empty) page."""

        def fetch(skip: int) -> tuple[list[Any], requests.Response, int | None]:
            response, payload = self._call(
                "GET", path, params={**(params or {}), "limit": PAGE_LIMIT, "skip": skip}
            )
            if not isinstance(payload, list):
                raise self._shape_error("list", response)
            return payload, response, None

        return self._pages(fetch, parse)

    def _pages(
        self,
        fetch: Callable[[int], tuple[list[Any], requests.Response, int | None]],
        parse: Callable[[Any], T],
    ) -> Iterator[Page[T]]:
        """Pages of PAGE_LIMIT records from skip 0 until a short one, parsed.

        With read-ahead, the next pages are requested while the caller works on this one (skip,
        skip + 100, ...): up to what the first page's total says is left (v1), or, without a
        total (v2), one page more after each full page, up to `read_ahead`. Each request in flight
        when the short last page comes is wasted: a list of n pages costs at most
        min(read_ahead, n) - 1 requests more, a one-page list one request, and a big group's
        membership read alone at the end of a run keeps the budget's slots busy. Same pages, same
        checks, same errors.
        """

        def page_at(skip: int) -> tuple[list[Any], requests.Response, int | None, Page[T]]:
            records, response, total = fetch(skip)
            return records, response, total, _page(records, parse)

        ahead: deque[Future[tuple[list[Any], requests.Response, int | None, Page[T]]]] = deque()
        pool = self._executor("pages")
        skip = next_skip = 0
        depth = 0
        previous_first: Any = None
        try:
            while True:
                if ahead:
                    records, response, total, page = ahead.popleft().result()
                else:
                    records, response, total, page = page_at(skip)
                    next_skip = skip + PAGE_LIMIT
                previous_first = self._check_advancing(records, skip, previous_first, response)
                if len(records) > PAGE_LIMIT:
                    # A server that ignores `limit`: pages asked ahead would overlap; one by one.
                    for future in ahead:
                        future.cancel()
                    ahead.clear()
                    pool = None
                elif pool is not None and len(records) == PAGE_LIMIT:
                    # Without a total every request past the end is wasted: grow one page at a time.
                    depth = self._read_ahead if total is not None else min(self._read_ahead, depth + 1)
                    end = total if total is not None else None
                    while len(ahead) < depth and (end is None or next_skip < end):
                        ahead.append(pool.submit(page_at, next_skip))
                        next_skip += PAGE_LIMIT
                yield page
                if len(records) < PAGE_LIMIT:
                    return
                skip += len(records)
        finally:
            for future in ahead:
                future.cancel()  # one already sent ends on its own; its page is not needed

    def map_ahead(self, fn: Callable[[T], Any], items: Iterable[T]) -> Iterator[tuple[T, Any]]:
        """(item, fn(item)) for each item as its call ends, with `read_ahead` calls in flight: a
        slow call (a big group's many pages) holds one of them, not the others behind it. An
        exception is raised when its call ends; the calls not yet sent are dropped."""
        pool = self._executor("items")
        if pool is None:
            for item in items:
                yield item, fn(item)
            return
        pending: dict[Future[Any], T] = {}
        source = iter(items)
        try:
            while True:
                for item in source:
                    pending[pool.submit(fn, item)] = item
                    if len(pending) >= self._read_ahead:
                        break
                if not pending:
                    return
                ended, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in ended:
                    yield pending.pop(future), future.result()
        finally:
            for future in pending:
                future.cancel()

    def _executor(self, kind: str) -> ThreadPoolExecutor | None:
        """The client's read-ahead threads of one kind ("pages" or "items"), or None when reading
        ahead is off or this thread is one of them."""
        if self._read_ahead < 2 or getattr(_IN_POOL, "kind", None) == kind:
            return None
        with self._pool_lock:
            pool = self._pools.get(kind)
            if pool is None:
                size = self._read_ahead * (2 if kind == "pages" else 1)
                pool = self._pools[kind] = ThreadPoolExecutor(
                    size,
                    thread_name_prefix=f"jumpcloud-{kind}",
                    initializer=_mark_pool_thread,
                    initargs=(kind,),
                )
            return pool

    def _check_advancing(
        self, records: list[Any], skip: int, previous_first: Any, response: requests.Response
    ) -> Any:
        # A server ignoring `skip` would otherwise make a full-page loop spin forever.
        first = _record_key(records[0]) if records else None
        if skip and first is not None and first == previous_first:
            raise UpstreamError(
                "JumpCloud returned the same page twice while listing; the listing was stopped so no "
                "partial result is used. The sync will try again later.",
                status=response.status_code,
                request_id=self.last_request_id,
            )
        return first

    # ----------------------------------------------------------------------------------------------
    # transport

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        di: bool = False,
        write: bool = False,
    ) -> tuple[requests.Response, Any]:
        """One logical call: send (urllib3 retries inside), map errors, decode the JSON body.

        `write=True` marks calls that must not be repeated blindly (create, activate, delete); PUT
        is idempotent and may be. `changes` (any console call but GET) only shapes the messages and
        `request_sent`: after a failure, such a call may or may not have been applied.
        """
        changes = not di and method != "GET"
        url = (self._di if di else self._console) + path
        headers = {"Accept": "application/json", "User-Agent": self._user_agent}
        if self.org_id and not path.startswith(_NO_ORG_HEADER_PREFIXES):
            headers["x-org-id"] = self.org_id
        data: bytes | None = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"

        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._send(method, url, params, data, headers, write=write, changes=changes)
                if not 200 <= response.status_code < 300:
                    raise self._error_from_response(response, path, write=write, changes=changes)
                return response, _decode(response)
            except _UnreadableBody as exc:
                # urllib3's Retry only sees the status line and headers: requests reads the body
                # after urlopen has returned, so a truncated or non-JSON body is retried here, and
                # only for calls that can be repeated safely.
                if write or attempt >= self._body_attempts:
                    raise UpstreamError(
                        self._unreadable_message(changes),
                        request_id=self.last_request_id,
                        request_sent=True,
                    ) from exc
                delay = self._backoff_factor * (2 ** (attempt - 1)) + random.random() * self._backoff_factor
                log.warning("JumpCloud %s %s: unreadable response body (%s); re-reading", method, path, exc)
                _retry._sleep(delay)

    def _send(
        self,
        method: str,
        url: str,
        params: dict[str, Any] | None,
        data: bytes | None,
        headers: dict[str, str],
        *,
        write: bool,
        changes: bool,
    ) -> requests.Response:
        host = urlsplit(url).netloc
        try:
            with self._gate.slot():
                response = self._session.request(
                    method,
                    url,
                    params=params,
                    data=data,
                    headers=headers,
                    auth=self._auth,
                    timeout=self.timeout,
                    # Never follow redirects: requests would resend x-api-key to wherever they point.
                    allow_redirects=False,
                )
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError) as exc:
            raise _UnreadableBody(type(exc).__name__) from None
        except requests.exceptions.ConnectTimeout as exc:
            raise UpstreamError(
                f"Could not connect to JumpCloud ({host}): the connection timed out. "
                "Check the network or region and try again.",
                request_sent=False,
            ) from exc
        except requests.exceptions.ReadTimeout as exc:
            raise RequestTimedOut(self._timeout_message(host, changes)) from exc
        except requests.exceptions.SSLError as exc:
            raise UpstreamError(
                f"The secure connection to JumpCloud ({host}) failed. Check proxies or TLS inspection "
                "on this network and try again.",
                request_sent=False,
            ) from exc
        except requests.exceptions.ConnectionError as exc:
            reason = exc.args[0] if exc.args else None
            if isinstance(reason, MaxRetryError):
                reason = reason.reason
            if isinstance(reason, ReadTimeoutError):
                raise RequestTimedOut(self._timeout_message(host, changes)) from exc
            if isinstance(reason, NewConnectionError | ConnectTimeoutError):
                raise UpstreamError(
                    f"Could not connect to JumpCloud ({host}). Check the network, proxy or region "
                    "and try again.",
                    request_sent=False,
                ) from exc
            if isinstance(reason, ProtocolError) and not write:
                # A dropped connection while reading a repeatable call: worth re-reading.
                raise _UnreadableBody("connection dropped") from None
            raise UpstreamError(
                f"The connection to JumpCloud ({host}) broke off"
                + (
                    " after the request was sent; JumpCloud may or may not have applied it. "
                    "Check the current state before repeating it."
                    if changes
                    else ". Try again in a few minutes."
                ),
                request_sent=isinstance(reason, ProtocolError),
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise JumpCloudError(
                f"Could not send the request to JumpCloud ({host}): {type(exc).__name__}. "
                "Check the region and base URL of the connection.",
            ) from exc
        self.last_request_id = response.headers.get("X-Request-Id", "") or ""
        return response

    @staticmethod
    def _timeout_message(host: str, changes: bool) -> str:
        if changes:
            return (
                f"JumpCloud ({host}) did not answer in time after the change was sent, so it may or may "
                "not have been applied. Check the user in JumpCloud before trying again."
            )
        return f"JumpCloud ({host}) did not answer in time. Try again in a few minutes."

    @staticmethod
    def _unreadable_message(changes: bool) -> str:
        if changes:
            return (
                "JumpCloud accepted the change but its answer could not be read, so its outcome is "
                "unknown. Check the user in JumpCloud before trying again."
            )
        return "JumpCloud sent an incomplete or unreadable answer. The sync will try again later."

    # ----------------------------------------------------------------------------------------------
    # errors

    def _shape_error(self, what: str, response: requests.Response) -> UpstreamError:
        return UpstreamError(
            f"JumpCloud sent an unexpected {what} response (not the documented JSON shape). "
            "The sync will try again later; if it persists, report it with the request id.",
            status=response.status_code,
            request_id=self.last_request_id,
        )

    def _user_from(self, payload: Any, response: requests.Response, *, written: bool = False) -> SystemUser:
        try:
            return parse_system_user(payload)
        except MalformedRecord:
            raise UpstreamError(
                "JumpCloud answered with an unusable user record"
                + (" after applying the change; check the user in JumpCloud." if written else "."),
                status=response.status_code,
                request_id=self.last_request_id,
                request_sent=written,
            ) from None

    def _error_from_response(
        self, response: requests.Response, path: str, *, write: bool, changes: bool
    ) -> JumpCloudError:
        status = response.status_code
        detail = self._auth.scrub(_error_text(response))
        lowered = detail.lower()
        said = f" JumpCloud said: “{detail}”." if detail else ""
        request_id = response.headers.get("X-Request-Id", "")
        common: dict[str, Any] = {"status": status, "request_id": request_id, "detail": detail}
        is_di = path.startswith(DI_PREFIX)

        if status == 401:
            if self.org_id and ("organization" in lowered or "x-org-id" in lowered):
                # The connection names its organization: JumpCloud refused this key for it.
                return InvalidApiKey(
                    f"JumpCloud refused this API key for organization {self.org_id} (HTTP 401): the "
                    "key was revoked or regenerated, or its administrator no longer manages this "
                    "organization. Check the administrator in JumpCloud, then reconnect with a "
                    "current key." + said,
                    **common,
                )
            if "organization" in lowered or "x-org-id" in lowered:
                return OrganizationRequired(
                    "This API key belongs to a multi-tenant administrator, so JumpCloud needs to know "
                    "which organization to use. Choose an organization and reconnect." + said,
                    **common,
                )
            return InvalidApiKey(
                f"JumpCloud rejected the API key. Generate a new key in {API_KEY_PATH} "
                "and reconnect with it (Rotate key in torii)." + said,
                **common,
            )
        if status == 429:
            retry_after = _retry.parse_retry_after(response.headers.get("Retry-After"))
            wait = f" and asks to wait {retry_after:.0f} s" if retry_after else ""
            return RateLimited(
                (
                    f"JumpCloud is rate-limiting this API key{wait}, so it did not process the change: "
                    "nothing was changed."
                    if changes
                    else f"JumpCloud is rate-limiting this API key{wait}. The sync will try again later; "
                    "if this keeps happening, run fewer syncs at once."
                )
                + said,
                retry_after=retry_after,
                **common,
            )
        if status >= 500:
            outcome = (
                " JumpCloud may or may not have applied the change; check before repeating it."
                if changes
                else " This is usually temporary; try again in a few minutes."
            )
            return UpstreamError(
                f"JumpCloud had a server error (HTTP {status})"
                + ("" if write else " even after retrying")
                + "."
                + outcome
                + said,
                request_sent=changes,
                **common,
            )
        org_problem = self.org_id is not None and _is_organization_problem(status, lowered)
        if status in (400, 403, 404) and (
            org_problem or (status == 404 and path.startswith("/api/organizations/"))
        ):
            org = self.org_id if org_problem else path.rsplit("/", 1)[-1]
            return OrganizationNotFound(
                f"JumpCloud does not know the organization {org!r}, or this key cannot manage it. "
                "Choose one of the organizations the key manages and reconnect." + said,
                **common,
            )
        if is_di and status in (402, 403, 404):
            return DirectoryInsightsUnavailable(
                "Directory Insights is not available for this JumpCloud organization or key "
                f"(HTTP {status}), so usage events and last-used dates cannot be read. Check the "
                "JumpCloud plan and the administrator's role." + said,
                **common,
            )
        if status in (402, 403):
            return PermissionDenied(
                "JumpCloud refused this request: the administrator who owns the API key lacks the "
                f"rights for it (HTTP {status}). Use a key of an administrator with the Administrator "
                "or Manager role." + said,
                **common,
            )
        if status == 409 or (status == 400 and "exist" in lowered):
            if "exist" in lowered:
                text = (
                    "JumpCloud already has a user with this username or email. Choose another one, "
                    "or manage the existing user instead."
                )
            else:
                text = "JumpCloud refused the change because it conflicts with the current state."
            return Conflict(text + said, **common)
        if status in (404, 410):
            return NotFound(
                f"JumpCloud has no such object ({path}); it may have been deleted. Refresh and try again.",
                **common,
            )
        if 400 <= status < 500:
            return BadRequest(
                f"JumpCloud refused the request as invalid (HTTP {status})."
                + (said if detail else " Check the values and try again."),
                **common,
            )
        return UpstreamError(
            f"JumpCloud answered with an unexpected HTTP {status}. Check the region and base URL of "
            "the connection.",
            retryable=False,
            **common,
        )


# --------------------------------------------------------------------------------------------------
# helpers


def _segment(value: str) -> str:
    """A path segment from an id; quoting keeps a hostile id from walking to another route."""
    if not isinstance(value, str) or not value:
        raise ValueError("An id is required.")
    return quote(value, safe="")


def _raw_record(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise MalformedRecord("record is not a JSON object")
    return raw


def _record_key(raw: Any) -> Any:
    if isinstance(raw, dict):
        key = raw.get("_id", raw.get("id"))
        if key is None and isinstance(raw.get("to"), dict):
            key = raw["to"].get("id")
        return key if isinstance(key, str | int) else None
    return None


def _page(records: list[Any], parse: Callable[[Any], T]) -> Page[T]:
    items: list[T] = []
    skipped = 0
    for raw in records:
        try:
            items.append(parse(raw))
        except MalformedRecord:
            skipped += 1
    if skipped:
        log.warning("JumpCloud: skipped %d malformed record(s) of %d", skipped, len(records))
    return Page(items=items, skipped=skipped, raw_count=len(records))


def _decode(response: requests.Response) -> Any:
    content = response.content
    if not content or not content.strip():
        return None
    try:
        return json.loads(content)
    except (ValueError, RecursionError) as exc:
        raise _UnreadableBody("invalid JSON") from exc


def _expect_dict(
    payload: Any,
    what: str,
    *,
    response: requests.Response | None = None,
    client: JumpCloudClient | None = None,
    written: bool = False,
) -> dict[str, Any]:
    if isinstance(payload, dict):
        return payload
    raise UpstreamError(
        f"JumpCloud sent an unexpected {what} response (not a JSON object)."
        + (" The change may have been applied; check in JumpCloud." if written else " Try again later."),
        status=response.status_code if response is not None else None,
        request_id=client.last_request_id if client is not None else "",
        request_sent=written,
    )


def _error_text(response: requests.Response) -> str:
    """JumpCloud's explanation from an error body: `message`, else `error`, plus v2 field details."""
    raw = response.content[:65536]
    text = ""
    try:
        data = json.loads(raw) if raw.strip() else None
    except (ValueError, RecursionError):
        data = None
        decoded = raw.decode("utf-8", "replace").strip()
        # HTML error pages from proxies say nothing useful and would swamp the message.
        if decoded and not decoded.startswith("<"):
            text = decoded
    if isinstance(data, dict):
        for key in ("message", "error", "status"):
            value = data.get(key)
            if isinstance(value, str) and value.strip():
                text = value.strip()
                break
        violations = []
        details = data.get("details")
        for detail in details if isinstance(details, list) else ():
            if not isinstance(detail, dict):
                continue
            for entry in detail.get("fieldViolationsList") or detail.get("fieldViolations") or ():
                if isinstance(entry, dict):
                    violations.append(f"{entry.get('field', '')}: {entry.get('description', '')}")
        if violations:
            text = f"{text} ({'; '.join(violations)})" if text else "; ".join(violations)
    elif isinstance(data, str):
        text = data.strip()
    text = " ".join(text.split())
    return text if len(text) <= _DETAIL_MAX else text[: _DETAIL_MAX - 1] + "…"


def _is_organization_problem(status: int, lowered: str) -> bool:
    """Whether a 400/403/404 is about the x-org-id organization rather than the object or input.

    A 400 must name the id itself (a duplicate-email message may well contain "organization");
    "Directory Insights is not enabled for this organization" is about entitlement, and
    "organization selection not allowed via header" is about the route.
    """
    if "insights" in lowered:
        return False
    if "x-org-id" in lowered or "org id" in lowered or "organization id" in lowered:
        return True
    return status in (403, 404) and "organization" in lowered and "header" not in lowered


def _int_header(value: str | None, default: int) -> int:
    if value is None:
        return default
    try:
        return int(value.strip())
    except ValueError:
        return default


def _cursor_header(value: str | None) -> list[Any] | None:
    if not value:
        return None
    try:
        cursor = json.loads(value)
    except ValueError:
        return None
    return cursor if isinstance(cursor, list) and cursor else None


def _rfc3339(value: datetime, *, round_up: bool) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("Directory Insights times must be timezone-aware datetimes")
    value = value.astimezone(UTC)
    if round_up and value.microsecond:
        value = value.replace(microsecond=0) + timedelta(seconds=1)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = ["DI_PREFIX", "PAGE_LIMIT", "REGION_HOSTS", "JumpCloudClient", "mask_key"]


def _mark_pool_thread(kind: str) -> None:
    _IN_POOL.kind = kind
