"""Directory Insights events without materialising them.

A generated stream of N events is a pure function of the event index: its timestamp comes from a
per-hour budget (busier on weekday working hours) plus a jitter smaller than the gap to the next
event, so timestamps strictly increase with the index and a time window or a ``search_after``
position is found by binary search. Every other field is derived from a 64-bit hash of
(seed, stream, index). Only the requested page is rendered, straight to JSON text.

Events added at run time (``add_events``, and the events that writes produce) live in a small
sorted list per service that is merged with the generated stream at query time.

Sort key everywhere: (epoch milliseconds, event id) - what Elasticsearch's search_after uses and
what the X-Search_after header carries.
"""

from __future__ import annotations

import heapq
import itertools
import json
import threading
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jumpcloud.simulator.hashing import mix64, seed64
from jumpcloud.simulator.names import GEO, IP_PREFIXES, USER_AGENTS
from jumpcloud.simulator.timefmt import iso_ms, iso_seconds_prefix

HOUR_MS = 3_600_000

# Every `service` value the API accepts (spec enum + prose "alert" + values seen in the wild).
KNOWN_SERVICES: frozenset[str] = frozenset(
    {
        "all",
        "directory",
        "sso",
        "radius",
        "systems",
        "ldap",
        "mdm",
        "software",
        "password_manager",
        "object_storage",
        "notifications",
        "alerts",
        "alert",
        "reports",
        "saas_app_management",
        "access_management",
        "asset_management",
        "workflows",
        "aigw",
        "di_events",
        "genai",
    }
)
SIMULATED_SERVICES: tuple[str, ...] = ("directory", "sso")

# Event ids are ObjectId-shaped like JumpCloud's, so they grow with time. Generated ids: 8 hex of the
# event's second, 8 hex of hash, then 8 hex holding the stream number (top 4 bits) and the index, so
# they are unique by construction. Runtime ids: see EventStore._extra_id.
STREAM_DIRECTORY = 0
STREAM_SSO = 1
_INDEX_BITS = 28
MAX_STREAM_EVENTS = 1 << _INDEX_BITS

SortKey = tuple[int, str]


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def hour_weight(epoch_ms: int) -> float:
    """Relative login activity for the UTC hour containing epoch_ms: office hours, evenings, weekends."""
    dt = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    weekend = dt.weekday() >= 5
    hour = dt.hour
    if 8 <= hour < 18:
        base = 1.0
    elif 6 <= hour < 8 or 18 <= hour < 22:
        base = 0.35
    else:
        base = 0.08
    return base * (0.15 if weekend else 1.0)


def _budget(count: int, weights: Sequence[float]) -> list[int]:
    """Cumulative event counts per bucket (largest remainder, so they add up exactly)."""
    total = sum(weights) or 1.0
    exact = [count * w / total for w in weights]
    floors = [int(x) for x in exact]
    missing = count - sum(floors)
    by_remainder = sorted(range(len(weights)), key=lambda b: (exact[b] - floors[b], -b), reverse=True)
    for b in by_remainder[:missing]:
        floors[b] += 1
    cum = [0]
    for c in floors:
        if c > HOUR_MS:
            raise ValueError("too many events for the time span: raise --days or lower --events")
        cum.append(cum[-1] + c)
    return cum


# --- Tenant data the renderer needs ---------------------------------------------------------------


@dataclass
class EventWorld:
    """A snapshot of the tenant taken at generation time: events describe history, so later user
    deletions do not rewrite them (JumpCloud keeps events of deleted users too)."""

    org_id: str
    user_refs: list[str]  # JSON {"id","type":"user","username"} per generated user index
    login_pool: array  # user indices that log in successfully (active, not dormant)
    refused_pool: array  # suspended / locked users whose logins fail
    admin_refs: list[str]  # JSON {"id","type":"admin","email"}
    app_refs: list[str]  # JSON DI `application` object per app
    app_url_only: list[str]  # the same with every field empty except sso_url
    app_users: list[array]  # user indices bound to each app (directly or via groups)
    app_cum: list[int]  # cumulative integer weights for choosing an app
    changes: list[str]  # JSON `changes` arrays for user_update events


_GEO_JSON = [
    _dumps(
        {
            "country_code": c,
            "region_code": rc,
            "region_name": rn,
            "continent_code": cc,
            "timezone": tz,
            "latitude": lat,
            "longitude": lon,
        }
    )
    for c, rc, rn, cc, tz, lat, lon in GEO
]
_UA_JSON = [
    _dumps(
        {
            "name": n,
            "version": v,
            "major": v.split(".")[0] if v else "",
            "minor": (v.split(".") + ["", ""])[1] if v else "",
            "patch": (v.split(".") + ["", "", ""])[2] if v else "",
            "os": os_,
            "os_name": osn,
            "os_version": osv,
            "os_full": f"{osn} {osv}".strip(),
            "device": dev,
        }
    )
    for n, v, os_, osn, osv, dev in USER_AGENTS
]
_MFA_TYPES = ('"totp"', '"push"', '"webauthn"', '"none"')
_USER_LOGIN_ERRORS = (
    "invalid credentials",
    "invalid credentials",
    "mfa verification failed",
    "invalid session",
)
_REFUSED_ERRORS = ("user account is locked", "user is suspended")
_SSO_ERRORS = ("application unreachable", "invalid session", "policy denied access", "internal error")
# auth_context on about a quarter of sso_auth events: a policy evaluation, or a managed device that
# asserted itself (auth_context.system); most events carry none.
_SSO_CONTEXT = (
    "",
    "",
    "",
    "",
    "",
    "",
    ',"auth_context":{"auth_methods":{},"policies_applied":[{"id":"","name":"Global Policy",'
    '"metadata":{"action":"ALLOW","resource_type":"APPLICATION"}}]}',
    ',"auth_context":{"auth_methods":{"password":{"success":true}},"system":{"id":"","hostname":"MANAGED-MAC",'
    '"os":"Mac OS X"},"policies_applied":[]}',
)


class EventFactory:
    """Turns a 64-bit hash into one event's JSON text. No dicts: pages are built by string formatting."""

    def __init__(self, world: EventWorld) -> None:
        self.w = world
        self._org = world.org_id
        self._n_login = len(world.login_pool)
        self._n_refused = len(world.refused_pool)
        self._n_admins = len(world.admin_refs)
        self._n_apps = len(world.app_refs)
        self._app_total = world.app_cum[-1] if world.app_cum else 0

    @property
    def can_make_directory(self) -> bool:
        return bool(self._n_login or self._n_admins)

    @property
    def can_make_sso(self) -> bool:
        return bool(self._app_total and self._n_login)

    def _client(self, user: int, h: int) -> str:
        """client_ip/geoip/useragent, or nothing for ~2% (events without them do exist)."""
        if (h >> 5) % 50 == 0:
            return ""
        x = mix64(user * 0x9E37 + 17)
        travel = (h >> 9) % 10 == 0
        geo = _GEO_JSON[((h >> 13) if travel else x) % len(_GEO_JSON)]
        ip = (
            f"{IP_PREFIXES[x % 3]}.{(x >> 8) % 254 + 1}"
            if not travel
            else f"{IP_PREFIXES[(h >> 17) % 3]}.{(h >> 21) % 254 + 1}"
        )
        ua = _UA_JSON[((x >> 16) + ((h >> 25) % 2)) % len(_UA_JSON)]
        return f',"client_ip":"{ip}","geoip":{geo},"useragent":{ua}'

    def directory(self, h: int, ts: str, eid: str) -> str:
        kind = (h >> 30) % 1000
        pick = mix64(h)
        head = f'{{"id":"{eid}","service":"directory","timestamp":"{ts}","organization":"{self._org}","@version":"1","provider":null'
        if kind < 120 and self._n_admins or not self._n_login:
            admin = self.w.admin_refs[pick % self._n_admins]
            ok = (pick >> 20) % 100 >= 3
            mfa = "true" if (pick >> 28) % 4 else "false"
            tail = "" if ok else ',"error_message":"invalid credentials"'
            return (
                f'{head},"event_type":"admin_login_attempt","initiated_by":{admin},"resource":{admin},'
                f'"success":{"true" if ok else "false"},"mfa":{mfa},"mfa_meta":{{"type":{_MFA_TYPES[0] if mfa == "true" else _MFA_TYPES[3]}}},'
                f'"auth_method":"password"{tail}{self._client(pick % 1000, h)}}}'
            )
        if kind < 880:
            refused = self._n_refused and (pick >> 20) % 100 < 2
            if refused:
                user = self.w.refused_pool[pick % self._n_refused]
                ok = False
                error = _REFUSED_ERRORS[(pick >> 24) % 2]
            else:
                user = self.w.login_pool[pick % self._n_login]
                ok = (pick >> 20) % 100 >= 5
                error = _USER_LOGIN_ERRORS[(pick >> 24) % 4]
            mfa_kind = (pick >> 28) % 8
            mfa = "false" if mfa_kind >= 6 else "true"
            methods = (
                '"password":{"success":' + ("true" if ok or error != "invalid credentials" else "false") + "}"
            )
            if mfa == "true":
                methods += (
                    ',"totp":{"success":'
                    + ("false" if error == "mfa verification failed" and not ok else "true")
                    + "}"
                )
            tail = "" if ok else f',"error_message":"{error}"'
            return (
                f'{head},"event_type":"user_login_attempt","initiated_by":{self.w.user_refs[user]},'
                f'"success":{"true" if ok else "false"},"mfa":{mfa},"mfa_meta":{{"type":{_MFA_TYPES[mfa_kind % 3] if mfa == "true" else _MFA_TYPES[3]}}},'
                f'"auth_method":"password","auth_context":{{"auth_methods":{{{methods}}}}}{tail}{self._client(user, h)}}}'
            )
        user = self.w.login_pool[pick % self._n_login]
        uref = self.w.user_refs[user]
        admin = self.w.admin_refs[(pick >> 40) % self._n_admins] if self._n_admins else uref
        if kind < 940:
            # `success` is absent on some user_update events (seen in the wild), so half omit it.
            success = ',"success":true' if (pick >> 20) % 2 else ""
            change = self.w.changes[(pick >> 24) % len(self.w.changes)]
            return (
                f'{head},"event_type":"user_update","initiated_by":{admin},"resource":{uref},'
                f'"changes":{change},"auth_method":"session"{success}{self._client(pick % 1000, h)}}}'
            )
        if kind < 970:
            return (
                f'{head},"event_type":"user_password_change","initiated_by":{uref},"resource":{uref},'
                f'"changes":[{{"field":"password_date"}}],"success":true,"auth_method":"session"{self._client(user, h)}}}'
            )
        if kind < 985:
            return (
                f'{head},"event_type":"user_lockout","initiated_by":{uref},"resource":{uref},'
                f'"success":true{self._client(user, h)}}}'
            )
        return (
            f'{head},"event_type":"user_unlocked","initiated_by":{admin},"resource":{uref},'
            f'"changes":[{{"field":"account_locked","from":true,"to":false}}],"success":true,"auth_method":"session"}}'
        )

    def sso(self, h: int, ts: str, eid: str) -> str:
        pick = mix64(h ^ 0x5A5A)
        app = bisect_right(self.w.app_cum, pick % self._app_total) - 1
        members = self.w.app_users[app]
        roll = (pick >> 20) % 1000
        error = ""
        if roll < 30 or not len(members):
            # Someone not assigned to the app tries it: JumpCloud refuses.
            user = self.w.login_pool[(pick >> 8) % self._n_login]
            ok, error = False, "not authorized"
        else:
            # Skip a per-app share of assignees so every app has seats nobody uses.
            n = len(members)
            j = (pick >> 8) % n
            for _ in range(4):
                if (mix64(members[j] * 31 + app) >> 7) % 4:
                    break
                j = (j + 1) % n
            user = members[j]
            if roll < 50:
                ok, error = False, _SSO_ERRORS[(pick >> 30) % len(_SSO_ERRORS)]
            elif roll < 58:
                # An MFA challenge step: not a failure although sso_token_success is false.
                ok, error = False, ""
            else:
                ok = True
        uref = self.w.user_refs[user]
        if (pick >> 34) % 100 == 0:
            uref = uref.replace('"type":"user"', '"type":"systemuser"', 1)
        app_json = (
            self.w.app_url_only[app] if not ok and error and (pick >> 40) % 3 == 0 else self.w.app_refs[app]
        )
        idp = "true" if (pick >> 44) % 3 else "false"
        mfa = "true" if (pick >> 46) % 2 else "false"
        return (
            f'{{"id":"{eid}","service":"sso","event_type":"sso_auth","timestamp":"{ts}","organization":"{self._org}",'
            f'"@version":"1","provider":"","initiated_by":{uref},"application":{app_json},"idp_initiated":{idp},'
            f'"sso_token_success":{"true" if ok else "false"},"error_message":"{error}","mfa":{mfa}'
            f"{_SSO_CONTEXT[(pick >> 48) % 8]}{self._client(user, h)}}}"
        )


# --- Streams ------------------------------------------------------------------------------------


class GeneratedStream:
    """N events of one service, each a function of its index (see module docstring)."""

    def __init__(
        self,
        *,
        service: str,
        stream_no: int,
        count: int,
        t0_ms: int,
        hours: int,
        seed: int,
        render: Callable[[int, str, str], str],
        ns_pct: int,
        s_pct: int,
        late_share: float,
        late_min_ms: int,
        late_max_ms: int,
    ) -> None:
        if count >= MAX_STREAM_EVENTS:
            raise ValueError(f"at most {MAX_STREAM_EVENTS - 1} events per service")
        self.service = service
        self.count = count
        self.t0_ms = t0_ms
        self.seed = seed
        self._suffix_base = stream_no << _INDEX_BITS
        self._render = render
        self._ns_pct = ns_pct
        self._s_limit = ns_pct + s_pct
        self._late_bp = int(round(late_share * 10_000))
        self.late_min_ms = max(int(late_min_ms), 0)
        self.late_max_ms = max(int(late_max_ms), 1)
        # Events older than now - late_window are certainly visible (no check needed).
        self.late_window_ms = self.late_min_ms + self.late_max_ms
        self._cum = _budget(count, [hour_weight(t0_ms + b * HOUR_MS) for b in range(hours)]) if count else [0]

    def __len__(self) -> int:
        return self.count

    def _hash(self, i: int) -> int:
        return mix64(self.seed ^ i)

    def _raw_ts(self, i: int, h: int) -> int:
        cum = self._cum
        b = bisect_right(cum, i) - 1
        c = cum[b + 1] - cum[b]
        k = i - cum[b]
        return self.t0_ms + b * HOUR_MS + (k * HOUR_MS) // c + (h >> 20) % (HOUR_MS // c)

    def key(self, i: int) -> tuple[int, int, int]:
        """(epoch ms, precision 0=ms 1=ns 2=s, hash). Whole-second events are floored to the second,
        which is only allowed when that keeps the order strictly increasing."""
        h = self._hash(i)
        ts = self._raw_ts(i, h)
        p = (h >> 8) % 100
        if p < self._ns_pct:
            return ts, 1, h
        if p < self._s_limit:
            floored = ts - ts % 1000
            if i == 0 or floored > self._raw_ts(i - 1, self._hash(i - 1)):
                return floored, 2, h
            return ts, 1, h
        return ts, 0, h

    def ts(self, i: int) -> int:
        return self.key(i)[0]

    def event_id(self, i: int, h: int, ts_ms: int) -> str:
        """ObjectId layout, as JumpCloud sends (docs/directory-insights.md §2): the event's second, 32
        hash bits, then the stream and index (unique by construction)."""
        return f"{(ts_ms // 1000) & 0xFFFFFFFF:08x}{mix64(h ^ 0xD1B54A32D192ED03) & 0xFFFFFFFF:08x}{self._suffix_base | i:08x}"

    def visible_at(self, ts: int, h: int) -> int:
        if (h >> 44) % 10_000 < self._late_bp:
            return ts + self.late_min_ms + mix64(h ^ 0x1A7E) % self.late_max_ms
        return ts

    def lower_bound(self, ms: int) -> int:
        """First index whose timestamp is >= ms."""
        lo, hi = 0, self.count
        while lo < hi:
            mid = (lo + hi) // 2
            if self.ts(mid) < ms:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def after_key(self, key: SortKey, inclusive: bool) -> int:
        """First index whose (ts, id) is > key (>= when inclusive). Timestamps are unique within a stream."""
        i = self.lower_bound(key[0])
        if i < self.count:
            ts, _, h = self.key(i)
            if ts == key[0]:
                eid = self.event_id(i, h, ts)
                if eid < key[1] or (eid == key[1] and not inclusive):
                    i += 1
        return i

    def timestamp_text(self, ts: int, precision: int, h: int) -> str:
        if precision == 0:
            return iso_ms(ts)
        if precision == 1:
            return f"{iso_seconds_prefix(ts)}.{ts % 1000:03d}{(h >> 32) % 1_000_000:06d}Z"
        return iso_seconds_prefix(ts) + "Z"

    def render(self, payload: tuple[int, int, int, str]) -> str:
        ts, precision, h, eid = payload
        return self._render(h, self.timestamp_text(ts, precision, h), eid)

    def iterate(self, lo: int, hi: int, descending: bool, now_ms: int) -> Iterator[tuple[int, str, Any, Any]]:
        """Visible events with index in [lo, hi), as merge tuples (ts, id, source, payload)."""
        if lo >= hi:
            return
        # Only events in the last late_max window can still be hidden; skip the check before that.
        tail = self.lower_bound(now_ms - self.late_window_ms)
        indices = range(hi - 1, lo - 1, -1) if descending else range(lo, hi)
        for i in indices:
            ts, precision, h = self.key(i)
            if i >= tail and self.visible_at(ts, h) > now_ms:
                continue
            eid = self.event_id(i, h, ts)
            yield ts, eid, self, (ts, precision, h, eid)

    def bounds(
        self, start_ms: int, upper_ms: int, search_after: SortKey | None, descending: bool
    ) -> tuple[int, int]:
        lo = self.lower_bound(start_ms)
        hi = self.lower_bound(upper_ms + 1)
        if search_after is not None:
            if descending:
                hi = min(hi, self.after_key(search_after, inclusive=True))
            else:
                lo = max(lo, self.after_key(search_after, inclusive=False))
        return lo, hi

    def count_visible(self, start_ms: int, upper_ms: int, now_ms: int) -> int:
        lo, hi = self.bounds(start_ms, upper_ms, None, False)
        if lo >= hi:
            return 0
        tail = max(lo, self.lower_bound(now_ms - self.late_window_ms))
        hidden = 0
        for i in range(tail, hi):
            ts, _, h = self.key(i)
            if self.visible_at(ts, h) > now_ms:
                hidden += 1
        return hi - lo - hidden


@dataclass(frozen=True)
class ExtraEvent:
    ts: int
    id: str
    visible_at: int
    json: str


class ExtraStream:
    """Runtime events of one service, sorted by (ts, id). Copy-on-write so readers never lock."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._lock = threading.Lock()
        self._keys: list[SortKey] = []
        self._items: list[ExtraEvent] = []
        self.version = 0
        self._latest_visible_at = 0

    def __len__(self) -> int:
        return len(self._items)

    def add(self, events: Iterable[ExtraEvent]) -> None:
        with self._lock:
            merged = sorted(itertools.chain(self._items, events), key=lambda e: (e.ts, e.id))
            # Swap both lists in one assignment each; readers take a consistent pair via snapshot().
            self._items, self._keys = merged, [(e.ts, e.id) for e in merged]
            self._latest_visible_at = max((e.visible_at for e in merged), default=0)
            self.version += 1

    def pending_floor(self, now_ms: int) -> int | None:
        """Earliest timestamp among events not visible yet (None when all are visible)."""
        if self._latest_visible_at <= now_ms:
            return None
        _, items = self.snapshot()
        return min((e.ts for e in items if e.visible_at > now_ms), default=None)

    def snapshot(self) -> tuple[list[SortKey], list[ExtraEvent]]:
        with self._lock:
            return self._keys, self._items

    def bounds(
        self,
        keys: list[SortKey],
        start_ms: int,
        upper_ms: int,
        search_after: SortKey | None,
        descending: bool,
    ) -> tuple[int, int]:
        lo = bisect_left(keys, (start_ms, ""))
        hi = bisect_left(keys, (upper_ms + 1, ""))
        if search_after is not None:
            if descending:
                hi = min(hi, bisect_left(keys, search_after))
            else:
                lo = max(lo, bisect_right(keys, search_after))
        return lo, hi

    def iterate(
        self, items: list[ExtraEvent], lo: int, hi: int, descending: bool, now_ms: int
    ) -> Iterator[tuple[int, str, Any, Any]]:
        indices = range(hi - 1, lo - 1, -1) if descending else range(lo, hi)
        for i in indices:
            e = items[i]
            if e.visible_at <= now_ms:
                yield e.ts, e.id, self, e

    def render(self, payload: ExtraEvent) -> str:
        return payload.json


# --- The per-tenant store and queries ----------------------------------------------------------


class EventStore:
    def __init__(
        self,
        *,
        world: EventWorld,
        seed: int,
        directory_count: int,
        sso_count: int,
        t0_ms: int,
        hours: int,
        late_share: float,
        late_min_ms: int,
        late_max_ms: int,
    ) -> None:
        self.factory = EventFactory(world)
        self.org_id = world.org_id
        self.seed = seed
        if not self.factory.can_make_directory:
            directory_count = 0
        if not self.factory.can_make_sso:
            sso_count = 0
        self.generated: dict[str, GeneratedStream] = {
            "directory": GeneratedStream(
                service="directory",
                stream_no=STREAM_DIRECTORY,
                count=directory_count,
                t0_ms=t0_ms,
                hours=hours,
                seed=seed64(seed, "directory"),
                render=self.factory.directory,
                ns_pct=0,
                s_pct=0,
                late_share=late_share,
                late_min_ms=late_min_ms,
                late_max_ms=late_max_ms,
            ),
            "sso": GeneratedStream(
                service="sso",
                stream_no=STREAM_SSO,
                count=sso_count,
                t0_ms=t0_ms,
                hours=hours,
                seed=seed64(seed, "sso"),
                render=self.factory.sso,
                ns_pct=80,
                s_pct=15,
                late_share=late_share,
                late_min_ms=late_min_ms,
                late_max_ms=late_max_ms,
            ),
        }
        self.extra: dict[str, ExtraStream] = {s: ExtraStream(s) for s in SIMULATED_SERVICES}
        self._extra_seed = seed64(seed, "extra")
        self._extra_counter = itertools.count()
        self._counter_lock = threading.Lock()

    def state_version(self) -> tuple[int, ...]:
        """Changes whenever runtime events are added (cache key for prefetched pages)."""
        return tuple(e.version for e in self.extra.values())

    def settled_before(self, now_ms: int) -> int:
        """Events with a timestamp below this are all visible now and stay exactly as they are
        (no late arrival can still add one), unless runtime events are added."""
        floor = now_ms - max(g.late_window_ms for g in self.generated.values())
        for extra in self.extra.values():
            pending = extra.pending_floor(now_ms)
            if pending is not None:
                floor = min(floor, pending)
        return floor

    @property
    def generated_count(self) -> int:
        return sum(len(s) for s in self.generated.values())

    def _next_extra(self) -> tuple[int, int]:
        with self._counter_lock:
            n = next(self._extra_counter)
        return n, mix64(self._extra_seed ^ n)

    def _extra_id(self, n: int, ts_ms: int) -> str:
        """ObjectId layout: seconds, a per-store constant, then a counter, so runtime events written
        in the same millisecond (a create and its update) keep their order under the (ts, id) sort.
        Unique among runtime events up to 16M per second; a clash with a generated id would need
        the same second and 64 more bits to match (odds ~2^-64 per pair)."""
        return f"{(ts_ms // 1000) & 0xFFFFFFFF:08x}{self._extra_seed & 0xFFFFFFFFFF:010x}{n & 0xFFFFFF:06x}"

    def append(self, event: dict[str, Any], *, ts_ms: int, visible_at_ms: int) -> str:
        """Store one event built by a write (user_create ...). Its id is assigned here."""
        n, _ = self._next_extra()
        eid = self._extra_id(n, ts_ms)
        body = {"id": eid, **event}
        service = body.get("service", "directory")
        self.extra[service].add([ExtraEvent(ts_ms, eid, visible_at_ms, _dumps(body))])
        return eid

    def synthesize(
        self, count: int, *, service: str, start_ms: int, end_ms: int, visible_from_ms: int, sso_share: float
    ) -> list[str]:
        """`count` new generated-looking events timestamped in [start_ms, end_ms], each visible from
        visible_from_ms (or its own timestamp, whichever is later)."""
        made: dict[str, list[ExtraEvent]] = {s: [] for s in SIMULATED_SERVICES}
        ids: list[str] = []
        span = max(end_ms - start_ms, 0)
        threshold = int(sso_share * 1000)
        for _ in range(count):
            n, h = self._next_extra()
            if service == "sso" or (service == "all" and (h >> 3) % 1000 < threshold):
                svc = "sso" if self.factory.can_make_sso else "directory"
            else:
                svc = "directory" if self.factory.can_make_directory else "sso"
            if svc == "sso" and not self.factory.can_make_sso:
                continue
            ts = start_ms + (mix64(h ^ 0x7157) % (span + 1))
            if svc == "sso" and 80 <= (h >> 8) % 100 < 95:
                ts -= ts % 1000  # whole-second precision: the sort key is the second itself
            eid = self._extra_id(n, ts)
            if svc == "sso":
                p = (h >> 8) % 100
                if p < 80:
                    text = f"{iso_seconds_prefix(ts)}.{ts % 1000:03d}{(h >> 32) % 1_000_000:06d}Z"
                elif p < 95:
                    text = iso_seconds_prefix(ts) + "Z"
                else:
                    text = iso_ms(ts)
                body = self.factory.sso(h, text, eid)
            else:
                body = self.factory.directory(h, iso_ms(ts), eid)
            made[svc].append(ExtraEvent(ts, eid, max(ts, visible_from_ms), body))
            ids.append(eid)
        for svc, events in made.items():
            if events:
                self.extra[svc].add(events)
        return ids

    def count_visible(self, now_ms: int) -> int:
        return count_events([self], services=frozenset({"all"}), start_ms=0, end_ms=None, now_ms=now_ms)


def _services_for(requested: frozenset[str]) -> tuple[str, ...]:
    if "all" in requested:
        return SIMULATED_SERVICES
    return tuple(s for s in SIMULATED_SERVICES if s in requested)


def _sources(
    stores: Sequence[EventStore],
    services: frozenset[str],
    start_ms: int,
    upper_ms: int,
    search_after: SortKey | None,
    descending: bool,
    now_ms: int,
) -> list[Iterator[tuple[int, str, Any, Any]]]:
    iterators = []
    for store in stores:
        for svc in _services_for(services):
            gen = store.generated[svc]
            if len(gen):
                lo, hi = gen.bounds(start_ms, upper_ms, search_after, descending)
                if lo < hi:
                    iterators.append(gen.iterate(lo, hi, descending, now_ms))
            extra = store.extra[svc]
            keys, items = extra.snapshot()
            if items:
                lo, hi = extra.bounds(keys, start_ms, upper_ms, search_after, descending)
                if lo < hi:
                    iterators.append(extra.iterate(items, lo, hi, descending, now_ms))
    return iterators


def _merged(
    iterators: list[Iterator[tuple[int, str, Any, Any]]], descending: bool
) -> Iterator[tuple[int, str, Any, Any]]:
    if not iterators:
        return iter(())
    if len(iterators) == 1:
        return iterators[0]
    # Ids are unique, so tuple comparison never reaches the source/payload elements.
    return heapq.merge(*iterators, reverse=descending)


def query_events(
    stores: Sequence[EventStore],
    *,
    services: frozenset[str],
    start_ms: int,
    end_ms: int | None,
    descending: bool,
    search_after: SortKey | None,
    limit: int,
    skip: int,
    now_ms: int,
    predicate: Callable[[dict[str, Any]], bool] | None = None,
) -> tuple[list[str], SortKey | None]:
    """One page of event JSON texts and the sort key of its last event (for X-Search_after)."""
    upper = now_ms if end_ms is None else min(end_ms, now_ms)
    merged = _merged(
        _sources(stores, services, start_ms, upper, search_after, descending, now_ms), descending
    )
    page: list[str] = []
    last: SortKey | None = None
    if predicate is None:
        for ts, eid, source, payload in itertools.islice(merged, skip, skip + limit):
            page.append(source.render(payload))
            last = (ts, eid)
        return page, last
    to_skip = skip
    for ts, eid, source, payload in merged:
        text = source.render(payload)
        if not predicate(json.loads(text)):
            continue
        if to_skip:
            to_skip -= 1
            continue
        page.append(text)
        last = (ts, eid)
        if len(page) >= limit:
            break
    return page, last


def count_events(
    stores: Sequence[EventStore],
    *,
    services: frozenset[str],
    start_ms: int,
    end_ms: int | None,
    now_ms: int,
    predicate: Callable[[dict[str, Any]], bool] | None = None,
) -> int:
    upper = now_ms if end_ms is None else min(end_ms, now_ms)
    if predicate is not None:
        merged = _merged(_sources(stores, services, start_ms, upper, None, False, now_ms), False)
        return sum(1 for _, _, source, payload in merged if predicate(json.loads(source.render(payload))))
    total = 0
    for store in stores:
        for svc in _services_for(services):
            total += store.generated[svc].count_visible(start_ms, upper, now_ms)
            keys, items = store.extra[svc].snapshot()
            lo, hi = store.extra[svc].bounds(keys, start_ms, upper, None, False)
            total += sum(1 for e in items[lo:hi] if e.visible_at <= now_ms)
    return total


# --- search_term and fields --------------------------------------------------------------------


class SearchTermError(ValueError):
    pass


_MISSING = object()


def _lookup(event: dict[str, Any], path: str, default: Any = None) -> Any:
    value: Any = event
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return default
        value = value[part]
    return value


def _as_text(value: Any) -> str:
    # DI lower-cases values when indexing, so searches compare lower-case text ("success": "false").
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value).lower()


def compile_search_term(term: Any) -> Callable[[dict[str, Any]], bool]:
    """search_term {and|or|not: [terms]} where a term is {field: value|[values]} or a nested conjunction."""
    if not isinstance(term, dict) or not term:
        raise SearchTermError("search_term must be an object with 'and', 'or' or 'not'")

    def compile_node(node: Any) -> Callable[[dict[str, Any]], bool]:
        if not isinstance(node, dict) or not node:
            raise SearchTermError("each search term must be a non-empty object")
        checks: list[Callable[[dict[str, Any]], bool]] = []
        for key, value in node.items():
            if key in ("and", "or", "not"):
                children = value if isinstance(value, list) else [value] if isinstance(value, dict) else None
                if not children:
                    raise SearchTermError(f"'{key}' needs a list of terms")
                checks.append(_conjunction(key, [compile_node(c) for c in children]))
            else:
                if key in ("changes", "useragent", "system_timestamp"):
                    raise SearchTermError(f"field '{key}' is not searchable")
                checks.append(
                    _field_matcher(
                        key, {_as_text(v) for v in (value if isinstance(value, list) else [value])}
                    )
                )
        return _conjunction("and", checks)

    return compile_node(term)


def _conjunction(
    kind: str, parts: list[Callable[[dict[str, Any]], bool]]
) -> Callable[[dict[str, Any]], bool]:
    def matches(event: dict[str, Any]) -> bool:
        if kind == "and":
            return all(p(event) for p in parts)
        if kind == "or":
            return any(p(event) for p in parts)
        return not any(p(event) for p in parts)  # "not": none of them

    return matches


def _field_matcher(path: str, wanted: set[str]) -> Callable[[dict[str, Any]], bool]:
    def matches(event: dict[str, Any]) -> bool:
        return _as_text(_lookup(event, path)) in wanted

    return matches


# Top-level fields the generated events can carry; `fields` must name at least one of them.
KNOWN_EVENT_FIELDS: frozenset[str] = frozenset(
    {
        "id",
        "service",
        "event_type",
        "timestamp",
        "organization",
        "@version",
        "provider",
        "initiated_by",
        "resource",
        "success",
        "mfa",
        "mfa_meta",
        "auth_method",
        "auth_context",
        "error_message",
        "client_ip",
        "geoip",
        "useragent",
        "changes",
        "application",
        "idp_initiated",
        "sso_token_success",
    }
)


def project(event: dict[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """Keep only the requested (dot-notation) fields; missing ones are left out."""
    out: dict[str, Any] = {}
    for path in fields:
        value = _lookup(event, path, _MISSING)
        if value is _MISSING:
            continue
        *parents, leaf = path.split(".")
        target = out
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
    return out
