"""Property-based fuzzing of the REST API with Schemathesis, from the schema drf-spectacular generates.

In-process (WSGI), authenticated as an Admin with a DRF token, on PostgreSQL, with the actions
pointing at a JumpCloud simulator. Every operation gets a bounded number of generated requests; the
checks: no 5xx, and every documented response matches its schema.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from integrations.models import Connection
from tests.api.support import mirror_tenant, running_simulator, simulator_connection
from tests.factories import (
    ActionRunFactory,
    ApplicationFactory,
    AppUserFactory,
    SyncRunFactory,
    UsageEventFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.integration, pytest.mark.slow]

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def _api_schema() -> schemathesis.schemas.BaseSchema:
    """The schema exactly as /api/schema/ serves it, for the versioned API only (not schema/docs)."""
    raw = SchemaGenerator().get_schema(request=None, public=True)
    raw["paths"] = {path: ops for path, ops in raw["paths"].items() if path.startswith("/api/v1/")}
    loaded = schemathesis.openapi.from_dict(raw)
    loaded.app = WSGIHandler()  # requests go through Django in-process, not over a socket
    return loaded


@pytest.fixture(scope="module")
def sim():
    with running_simulator(users=15, apps=2, days=1) as s:
        yield s


@pytest.fixture
def keep_db_connection():
    """A bare WSGIHandler closes the database connection after each request (request_finished),
    which would end the test's transaction; Django's own test client disconnects it the same way."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def world(sim, settings, admin_user, keep_db_connection):
    settings.JUMPCLOUD_ALLOWED_BASE_URLS = [sim.base_url]
    settings.TORII_ACTION_TIMEOUT_SECONDS = 3
    conn = simulator_connection(sim)
    users = mirror_tenant(sim, conn)
    simulator_connection(
        sim, permission=Connection.Permission.READ_ONLY, name="Read only", org_id=sim.org_ids["secondary"]
    )
    app = ApplicationFactory(connection=conn)
    for user in users[:5]:
        AppUserFactory(application=app, external_id=user.external_id, directory_user=user)
        UsageEventFactory(
            connection=conn, actor_external_id=user.external_id, application_external_id=app.external_id
        )
    SyncRunFactory(connection=conn)
    ActionRunFactory(
        connection=conn, status="failed", error_message="JumpCloud said no", snapshot={"_id": "x"}
    )
    from tests.factories import api_token_for

    return api_token_for(admin_user)


# Built at import (pytest-django has configured Django by then); the lazy from_fixture loader does
# not work with this pytest version.
schema = _api_schema()


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_api_fuzz(case, world):
    case.call_and_validate(headers={"Authorization": f"Token {world}"}, checks=CHECKS)
