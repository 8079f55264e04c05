"""The Simulator: tenants, keys, faults, request recording, the control API, start/stop."""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jumpcloud.simulator.api import (
    NO_FAULTS,
    JumpCloudAPI,
    Malformer,
    Principal,
    Request,
    Response,
    error_response,
)
from jumpcloud.simulator.config import FaultConfig, SimulatorConfig
from jumpcloud.simulator.hashing import api_key, object_id
from jumpcloud.simulator.server import SimulatorHTTPServer
from jumpcloud.simulator.tenant import ROLE_IDS, Tenant, TenantSpec
from jumpcloud.simulator.timefmt import iso_ms, now_ms

logger = logging.getLogger(__name__)

CONTROL_PREFIX = "/__simulator__"

# tenant name -> (organization display name, email domain)
ORGS: dict[str, tuple[str, str]] = {
    "primary": ("Acme Corp", "acme.example"),
    "secondary": ("Globex", "globex.example"),
    "no_di": ("Initech", "initech.example"),
}

# key role -> (tenants it can use, role name of its administrator)
KEY_ROLES: dict[str, tuple[tuple[str, ...], str]] = {
    "admin": (("primary",), "Administrator With Billing"),
    "read_only": (("primary",), "Read Only"),
    "billing_only": (("primary",), "Billing Only"),
    "command_runner": (("primary",), "Command Runner"),
    "multi_tenant": (("primary", "secondary", "no_di"), "Administrator With Billing"),
    "no_di": (("no_di",), "Administrator With Billing"),
}


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names; x-api-key masked
    json_body: Any
    status: int
    at: float  # time.monotonic() when the request arrived
    fault: str | None = None  # "429", "503", "truncate" or None
    role: str | None = None  # key role of the x-api-key, if it was a known key
    request_id: str = ""
    retry_after: int | None = None  # the Retry-After this answer carried, if any
    seconds: float = 0.0  # from arrival to the answer ready to send (the latency included)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class _Decision:
    kind: str | None = None
    retry_after: int | None = None
    latency_s: float = 0.0
    truncate: bool = False
    malform: Malformer = NO_FAULTS


_NO_DECISION = _Decision()


def _scaled(n: int, divisor: int, minimum: int) -> int:
    return min(n, max(minimum, n // divisor))


def mask_key(value: str) -> str:
    return "***" + value[-4:] if len(value) > 8 else "***"


class Simulator:
    """A local JumpCloud: v1, v2 and Directory Insights on one origin. See docs/simulator.md."""

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        faults: FaultConfig | None = None,
        *,
        control: bool = True,
        clock: Callable[[], int] | None = None,
    ) -> None:
        """`clock` returns "now" in epoch milliseconds (tests freeze or advance it to observe late
        arrival without sleeping); default: the real time."""
        self.config = config or SimulatorConfig()
        cfg = self.config
        self._clock = clock or now_ms
        anchor = cfg.anchor_datetime()
        self.anchor_ms = int(anchor.timestamp() * 1000) if anchor is not None else self._clock()
        self.control_enabled = control
        self._org_ids = {name: object_id(cfg.seed, "org", name) for name in ORGS}
        self.provider_id = object_id(cfg.seed, "provider")
        self._keys = {role: api_key(cfg.seed, role) for role in KEY_ROLES}
        events = cfg.event_count
        sizes = {
            "primary": (cfg.users, cfg.apps, cfg.groups, cfg.admins, events, cfg.primary_default_state),
            "secondary": (
                _scaled(cfg.users, 10, 10),
                _scaled(cfg.apps, 5, 2),
                _scaled(cfg.groups, 3, 2),
                _scaled(cfg.admins, 2, 2),
                events // 10,
                cfg.secondary_default_state,
            ),
            "no_di": (
                _scaled(cfg.users, 20, 5),
                _scaled(cfg.apps, 10, 1),
                min(cfg.groups, 3),
                _scaled(cfg.admins, 4, 1),
                0,
                cfg.primary_default_state,
            ),
        }
        self._tenants: dict[str, Tenant] = {}
        for name, (display, domain) in ORGS.items():
            users, apps, groups, admins, n_events, state = sizes[name]
            key_admins = tuple(
                (role, role_name) for role, (tenants, role_name) in KEY_ROLES.items() if tenants == (name,)
            )
            self._tenants[name] = Tenant(
                TenantSpec(
                    name=name,
                    org_id=self._org_ids[name],
                    display_name=display,
                    domain=domain,
                    seed=cfg.seed,
                    users=users,
                    apps=apps,
                    groups=groups,
                    admins=admins,
                    events=n_events,
                    days=cfg.days,
                    anchor_ms=self.anchor_ms,
                    directory_insights=name != "no_di",
                    default_state=state,
                    sso_share=cfg.sso_share,
                    late_share=cfg.late_share,
                    late_min_ms=int(cfg.late_min_seconds * 1000),
                    late_max_ms=int(cfg.late_max_seconds * 1000),
                    write_event_delay_ms=int(cfg.write_event_delay_seconds * 1000),
                    key_admins=key_admins,
                )
            )
        self.msp_admin = self._msp_admin()
        principals: dict[str, Principal] = {}
        for role, (tenants, _) in KEY_ROLES.items():
            admin = self.msp_admin if len(tenants) > 1 else self._tenants[tenants[0]].key_admins[role]
            principals[self._keys[role]] = Principal(
                role=role, key=self._keys[role], admin=admin, tenants=tenants
            )
        self._principals = principals
        self._api = JumpCloudAPI(self._tenants, principals, clock=self._clock)
        self._faults = faults or FaultConfig()
        self._fault_rng = random.Random(self._faults.seed)
        self._fault_lock = threading.Lock()
        self._records: deque[RequestRecord] = deque(maxlen=cfg.max_recorded_requests)
        self._records_lock = threading.Lock()
        self._server: SimulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        # Requests being answered at once, by x-org-id ('' without one): what an organization's
        # request limit is about (tests check that many syncs together stay within it).
        self._flight_lock = threading.Lock()
        self._in_flight: dict[str, int] = {}
        self._peak_in_flight: dict[str, int] = {}

    def _msp_admin(self) -> dict[str, Any]:
        role = "Administrator With Billing"
        created = iso_ms(self.anchor_ms - self.anchor_ms % 86_400_000 - 900 * 86_400_000)
        return {
            "_id": object_id(self.config.seed, "msp-admin"),
            "email": "msp.admin@msp-partner.example",
            "firstname": "Morgan",
            "lastname": "Provider",
            "created": created,
            "organization": self._org_ids["primary"],
            "provider": self.provider_id,
            "role": ROLE_IDS[role],
            "roleName": role,
            "roles": [ROLE_IDS[role]],
            "roleNames": [role],
            "suspended": False,
            "enableMultiFactor": True,
            "totpEnrolled": True,
            "apiKeyAllowed": True,
            "apiKeySet": True,
            "passwordUpdatedAt": created,
        }

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> Simulator:
        if self._server is not None:
            raise RuntimeError("simulator already started")
        self._api.open()
        self._server = SimulatorHTTPServer((host, port), self._dispatch)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="jumpcloud-simulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        self._api.close()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Simulator:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("simulator not started")
        host, port = self._server.server_address[:2]
        host = str(host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}"

    # --- what tests look at ----------------------------------------------------------------------

    @property
    def keys(self) -> dict[str, str]:
        return dict(self._keys)

    @property
    def org_ids(self) -> dict[str, str]:
        return dict(self._org_ids)

    def tenant(self, name: str = "primary") -> Tenant:
        return self._tenants[name]

    @property
    def tenants(self) -> dict[str, Tenant]:
        return dict(self._tenants)

    @property
    def requests(self) -> list[RequestRecord]:
        with self._records_lock:
            return list(self._records)

    def clear_requests(self) -> int:
        with self._records_lock:
            n = len(self._records)
            self._records.clear()
        with self._flight_lock:
            self._peak_in_flight = dict(self._in_flight)
        return n

    def peak_in_flight(self) -> dict[str, int]:
        """The most API requests answered at once since the start (or clear_requests), by the
        x-org-id they carried ('' for none)."""
        with self._flight_lock:
            return dict(self._peak_in_flight)

    def _flight(self, org: str, step: int) -> None:
        with self._flight_lock:
            now = self._in_flight[org] = self._in_flight.get(org, 0) + step
            if now > self._peak_in_flight.get(org, 0):
                self._peak_in_flight[org] = now

    @property
    def faults(self) -> FaultConfig:
        return self._faults

    def set_faults(self, faults: FaultConfig | None = None) -> None:
        """Replace the fault settings (None = no faults) and restart their random sequence."""
        with self._fault_lock:
            self._faults = faults or FaultConfig()
            self._fault_rng = random.Random(self._faults.seed)

    def add_events(
        self,
        org: str = "primary",
        count: int = 1000,
        *,
        service: str = "all",
        spread_seconds: float = 60.0,
        visibility_delay: float = 0.0,
        at: datetime | float | None = None,
    ) -> list[str]:
        """Append `count` events timestamped in the `spread_seconds` before `at` (default now),
        visible `visibility_delay` seconds from now. Returns their ids (in creation order)."""
        if service not in ("all", "directory", "sso"):
            raise ValueError("service must be all, directory or sso")
        if count < 0:
            raise ValueError("count must be >= 0")
        current = self._clock()
        if at is None:
            at_ms = current
        elif isinstance(at, datetime):
            at_ms = int(at.timestamp() * 1000)
        else:
            at_ms = int(at * 1000)
        return self._tenants[org].events.synthesize(
            count,
            service=service,
            start_ms=at_ms - int(spread_seconds * 1000),
            end_ms=at_ms,
            visible_from_ms=current + int(visibility_delay * 1000),
            sso_share=self.config.sso_share,
        )

    def wait_for_prefetch(self, timeout: float = 10.0) -> None:
        """Block until background Directory Insights page prefetches are done (tests use this to
        change data while a prefetched page is waiting, and check it is not served stale)."""
        self._api.wait_for_prefetch(timeout)

    def info(self) -> dict[str, Any]:
        current = self._clock()
        return {
            "base_url": self.base_url if self.running else None,
            "keys": self.keys,
            "org_ids": self.org_ids,
            "provider_id": self.provider_id,
            "anchor": iso_ms(self.anchor_ms),
            "config": {
                k: (v.isoformat() if isinstance(v, datetime) else v)
                for k, v in dataclasses.asdict(self.config).items()
            },
            "counts": {name: t.counts(current) for name, t in self._tenants.items()},
            "faults": self._faults.to_dict(),
        }

    # --- request handling ------------------------------------------------------------------------

    def _decide(self, path: str) -> _Decision:
        with self._fault_lock:
            f = self._faults
            if not f.active or (f.path_prefixes and not path.startswith(f.path_prefixes)):
                return _NO_DECISION
            rng = self._fault_rng
            roll = rng.random()
            kind = "429" if roll < f.rate_429 else "503" if roll < f.rate_429 + f.rate_503 else None
            retry_after = (
                f.retry_after_seconds if kind == "429" and rng.random() < f.retry_after_share else None
            )
            truncate = kind is None and f.truncate_rate > 0 and rng.random() < f.truncate_rate
            malform = (
                Malformer(f.malformed_rate, random.Random(rng.getrandbits(64)))
                if kind is None and f.malformed_rate > 0
                else NO_FAULTS
            )
            return _Decision(kind, retry_after, f.latency_ms / 1000.0, truncate, malform)

    def _dispatch(self, req: Request, arrived: float) -> tuple[Response, bool]:
        request_id = str(uuid.uuid4())
        if req.path == CONTROL_PREFIX or req.path.startswith(CONTROL_PREFIX + "/"):
            response = self._control(req) if self.control_enabled else error_response(404, "Not Found")
            response.headers.setdefault("X-Request-Id", request_id)
            return response, False
        org = req.header("x-org-id") or ""
        self._flight(org, 1)
        try:
            return self._answer(req, arrived, request_id)
        finally:
            self._flight(org, -1)

    def _answer(self, req: Request, arrived: float, request_id: str) -> tuple[Response, bool]:
        decision = self._decide(req.path)
        if decision.latency_s:
            time.sleep(decision.latency_s)
        if decision.kind == "429":
            headers = {"Retry-After": str(decision.retry_after)} if decision.retry_after is not None else {}
            response = error_response(429, "Too Many Requests", headers=headers)
        elif decision.kind == "503":
            response = error_response(503, "Service Unavailable")
        else:
            try:
                response = self._api.handle(req, decision.malform)
            except Exception:
                logger.exception("simulator failed on %s %s", req.method, req.path)
                response = error_response(500, "Internal Server Error")
        response.headers.setdefault("X-Request-Id", request_id)
        truncate = decision.truncate and response.status == 200 and len(response.body) > 1
        self._record(req, response, arrived, decision.kind or ("truncate" if truncate else None), request_id)
        return response, truncate

    def _record(
        self, req: Request, response: Response, arrived: float, fault: str | None, request_id: str
    ) -> None:
        headers = {k.lower(): v for k, v in req.headers.items()}
        key = headers.get("x-api-key")
        principal = self._principals.get(key.strip()) if key else None
        if key is not None:
            headers["x-api-key"] = mask_key(key)
        body: Any = None
        if req.body:
            try:
                body = json.loads(req.body)
            except (ValueError, UnicodeDecodeError):
                body = None
        record = RequestRecord(
            method=req.method,
            path=req.path,
            query=req.query,
            headers=headers,
            json_body=body,
            status=response.status,
            at=arrived,
            fault=fault,
            role=principal.role if principal else None,
            request_id=request_id,
            retry_after=int(response.headers["Retry-After"]) if "Retry-After" in response.headers else None,
            seconds=round(time.monotonic() - arrived, 4),
        )
        with self._records_lock:
            self._records.append(record)

    # --- control API (out-of-process tests and benchmarks) --------------------------------------

    def _control(self, req: Request) -> Response:
        action = req.path[len(CONTROL_PREFIX) :].rstrip("/")
        try:
            body = json.loads(req.body) if req.body else {}
        except ValueError:
            return error_response(400, "Bad Request: the body is not valid JSON")
        try:
            if action in ("", "/info") and req.method == "GET":
                return Response.json(self.info())
            if action == "/faults" and req.method == "GET":
                return Response.json(self._faults.to_dict())
            if action == "/faults" and req.method == "POST":
                self.set_faults(FaultConfig.from_dict(body or {}))
                return Response.json(self._faults.to_dict())
            if action == "/events" and req.method == "POST":
                ids = self.add_events(
                    org=body.get("org", "primary"),
                    count=int(body.get("count", 1000)),
                    service=body.get("service", "all"),
                    spread_seconds=float(body.get("spread_seconds", 60.0)),
                    visibility_delay=float(body.get("visibility_delay", 0.0)),
                    at=(self._clock() / 1000 - float(body["seconds_ago"])) if "seconds_ago" in body else None,
                )
                return Response.json({"count": len(ids), "ids": ids})
            if action == "/requests" and req.method == "GET":
                return Response.json([r.to_dict() for r in self.requests])
            if action == "/requests/clear" and req.method == "POST":
                return Response.json({"cleared": self.clear_requests()})
        except (ValueError, TypeError, KeyError) as exc:
            return error_response(400, f"Bad Request: {exc}")
        return error_response(404, "Not Found")
