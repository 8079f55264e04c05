"""Helpers for the action and API tests: a simulator, a connection to it, and its synced users.

Plain functions (each test module wraps them in its own fixtures), so tests in tests/api,
tests/integrations, tests/jumpcloud and tests/browser share them without a shared conftest.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import transaction

from integrations.crypto import encrypt_json
from integrations.models import Application, AppUser, Connection
from jumpcloud.parsing import parse_system_user
from jumpcloud.simulator import Simulator, SimulatorConfig
from jumpcloud.streams.common import directory_app
from jumpcloud.streams.directory import upsert_directory_users
from tests.factories import ConnectionFactory

IDEMPOTENCY_KEY = "3f1c9a7e-5b2d-4e8f-9a6c-1d2e3f4a5b6c"


@contextmanager
def running_simulator(**config: Any) -> Iterator[Simulator]:
    sim = Simulator(SimulatorConfig(**{"seed": 1, "users": 30, "apps": 3, "days": 2, **config})).start()
    try:
        yield sim
    finally:
        sim.stop()


def simulator_connection(
    sim: Simulator, *, permission: str = Connection.Permission.READ_WRITE, key: str = "admin", **fields: Any
) -> Connection:
    return ConnectionFactory(
        name=fields.pop("name", "Acme (simulator)"),
        base_url=sim.base_url,
        region="custom",
        org_id=fields.pop("org_id", sim.org_ids["primary"]),
        credentials=encrypt_json({"api_key": sim.keys[key]}),
        secret_hint="••••" + sim.keys[key][-4:],
        permission=permission,
        capabilities={"multi_tenant": False, "usage_events": True, "administrators": True},
        **fields,
    )


def mirror_tenant(sim: Simulator, connection: Connection) -> list[AppUser]:
    """The directory rows a sync writes, straight from the simulator's users (no full sync needed),
    through the sync's own bulk upsert."""
    app = directory_app(connection)
    with transaction.atomic():
        upsert_directory_users(
            connection, app, [parse_system_user(raw) for raw in sim.tenant("primary").users]
        )
    return list(AppUser.objects.filter(application=app))


def acting_connection(sim: Simulator, settings: Any) -> Connection:
    """A read-and-take-action connection to `sim` with its users mirrored and the request log empty."""
    settings.JUMPCLOUD_ALLOWED_BASE_URLS = [sim.base_url]
    connection = simulator_connection(sim)
    mirror_tenant(sim, connection)
    sim.clear_requests()
    return connection


def directory_users(connection: Connection, *, status: str = AppUser.Status.ACTIVE) -> list[AppUser]:
    return list(
        AppUser.objects.filter(
            connection=connection,
            application__kind=Application.Kind.DIRECTORY,
            status=status,
            kind=AppUser.Kind.USER,
        ).order_by("username")
    )


def writes(sim: Simulator) -> list[Any]:
    """Requests that could change something upstream."""
    return [r for r in sim.requests if r.method in ("POST", "PUT", "PATCH", "DELETE")]


def user_requests(sim: Simulator) -> list[Any]:
    return [r for r in sim.requests if r.path.startswith("/api/systemusers")]
