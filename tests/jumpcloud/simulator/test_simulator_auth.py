"""Keys, roles and tenancy (x-org-id), for every key the simulator hands out."""

from __future__ import annotations

import http.client
import json
import re

import pytest

from jumpcloud.simulator import Simulator
from tests.jumpcloud.simulator.support import Api

DI_BODY = {"service": ["all"], "start_time": "2025-02-01T00:00:00Z", "limit": 5}
UNKNOWN_KEY = {"error": "Unauthorized", "message": "Unauthorized: api key user not found"}


def _org_scoped_reads(sim: Simulator) -> list[str]:
    t = sim.tenant()
    app = t.apps[0]["_id"]
    group = t.groups[0].id
    return [
        "/api/systemusers",
        f"/api/systemusers/{t.users[0]['_id']}",
        "/api/users",
        "/api/applications",
        f"/api/applications/{app}",
        f"/api/v2/applications/{app}/users",
        f"/api/v2/applications/{app}/usergroups",
        f"/api/v2/applications/{app}/associations?targets=user",
        "/api/v2/usergroups",
        f"/api/v2/usergroups/{group}/members",
        f"/api/v2/usergroups/{group}/membership",
    ]


def test_keys_look_like_jumpcloud_keys_and_org_ids_like_object_ids(sim: Simulator) -> None:
    assert set(sim.keys) == {"admin", "read_only", "billing_only", "command_runner", "multi_tenant", "no_di"}
    assert all(re.fullmatch(r"[0-9a-f]{40}", k) for k in sim.keys.values())
    assert len(set(sim.keys.values())) == 6
    assert set(sim.org_ids) == {"primary", "secondary", "no_di"}
    assert all(re.fullmatch(r"[0-9a-f]{24}", o) for o in sim.org_ids.values())


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "0" * 40}, {"x-api-key": ""}])
def test_unknown_or_missing_key_is_401(sim: Simulator, headers: dict[str, str]) -> None:
    a = Api(sim, role=None)
    for path in ["/api/systemusers", "/api/organizations", "/api/users/getSelf"]:
        r = a.get(path, headers=headers)
        assert r.status_code == 401
        assert r.json() == UNKNOWN_KEY
        assert r.headers["X-Request-Id"]
    assert a.post("/insights/directory/v1/events", json=DI_BODY, headers=headers).json() == UNKNOWN_KEY


def test_admin_reads_writes_and_sees_only_the_primary_org(sim: Simulator) -> None:
    a = Api(sim, "admin")
    for path in _org_scoped_reads(sim):
        assert a.get(path).status_code == 200, path
    orgs = a.get("/api/organizations").json()
    assert orgs["totalCount"] == 1 and orgs["results"][0]["_id"] == sim.org_ids["primary"]
    assert a.events(DI_BODY).status_code == 200
    # Sending its own org id is harmless; another org's id is refused.
    assert a.get("/api/systemusers", headers={"x-org-id": sim.org_ids["primary"]}).status_code == 200
    assert a.get("/api/systemusers", headers={"x-org-id": sim.org_ids["secondary"]}).status_code == 403
    assert a.get(f"/api/organizations/{sim.org_ids['secondary']}").status_code == 404


def test_read_only_can_read_but_every_write_is_403(fresh_sim: Simulator) -> None:
    a = Api(fresh_sim, "read_only")
    for path in _org_scoped_reads(fresh_sim):
        assert a.get(path).status_code == 200, path
    assert a.events(DI_BODY).status_code == 200
    uid = fresh_sim.tenant().users[0]["_id"]
    writes = [
        a.post("/api/systemusers", json={"username": "ro.user", "email": "ro.user@acme.example"}),
        a.put(f"/api/systemusers/{uid}", json={"department": "X"}),
        a.delete(f"/api/systemusers/{uid}"),
        a.post(f"/api/systemusers/{uid}/state/activate", json={}),
        a.post(f"/api/systemusers/{uid}/unlock"),
    ]
    for r in writes:
        assert r.status_code == 403
        assert {"message", "error"} <= set(r.json())
    assert fresh_sim.tenant().user(uid) is not None
    assert fresh_sim.tenant().user_by_username("ro.user") is None


def test_billing_only_gets_organizations_and_nothing_else(sim: Simulator) -> None:
    a = Api(sim, "billing_only")
    for path in _org_scoped_reads(sim):
        r = a.get(path)
        assert r.status_code == 403, path
        assert r.json()["message"].startswith("Forbidden")
    assert a.events(DI_BODY).status_code == 403
    assert a.get("/api/organizations").status_code == 200
    assert a.get(f"/api/organizations/{sim.org_ids['primary']}").status_code == 200
    assert a.get("/api/users/getSelf").json()["roleName"] == "Billing Only"


def test_command_runner_is_refused_everywhere(sim: Simulator) -> None:
    a = Api(sim, "command_runner")
    for path in [*_org_scoped_reads(sim), "/api/organizations", "/api/users/getSelf"]:
        r = a.get(path)
        assert r.status_code == 403, path
        assert r.json()["error"] == "Forbidden"
    assert a.events(DI_BODY).status_code == 403


def test_multi_tenant_must_choose_an_org(sim: Simulator) -> None:
    a = Api(sim, "multi_tenant")
    for path in _org_scoped_reads(sim):
        r = a.get(path)
        assert r.status_code == 401, path
        assert r.json() == {"message": "Unauthorized: no organization selected", "error": "Unauthorized"}
    assert a.events(DI_BODY).status_code == 401
    orgs = a.get("/api/organizations").json()
    assert {o["_id"] for o in orgs["results"]} == set(sim.org_ids.values())
    assert orgs["totalCount"] == 3


def test_multi_tenant_with_org_header_sees_that_org(sim: Simulator) -> None:
    for org in ("primary", "secondary", "no_di"):
        a = Api(sim, "multi_tenant", org)
        users = a.get("/api/systemusers", params={"limit": 100}).json()
        assert users["totalCount"] == len(sim.tenant(org).users)
        assert {u["organization"] for u in users["results"]} == {sim.org_ids[org]}


def test_multi_tenant_header_is_refused_on_organizations(sim: Simulator) -> None:
    a = Api(sim, "multi_tenant", "primary")
    message = "Forbidden: organization selection not allowed via header"
    for path in ["/api/organizations", f"/api/organizations/{sim.org_ids['primary']}"]:
        r = a.get(path)
        assert r.status_code == 403
        assert r.json() == {"message": message, "error": message}


def test_multi_tenant_unknown_and_malformed_org_ids(sim: Simulator) -> None:
    unknown = Api(sim, "multi_tenant", "0123456789abcdef01234567").get("/api/systemusers")
    assert unknown.status_code == 404 and {"message", "error"} <= set(unknown.json())
    for bad in ["not-an-id", "0123", "0123456789ABCDEF0123456Z"]:
        r = Api(sim, "multi_tenant", bad).get("/api/systemusers")
        assert r.status_code == 400, bad
        assert {"message", "error"} <= set(r.json())
    two = Api(sim, "multi_tenant").get(
        "/api/systemusers", headers={"x-org-id": f"{sim.org_ids['primary']},{sim.org_ids['secondary']}"}
    )
    assert two.status_code == 400


def test_multi_tenant_directory_insights_per_org(sim: Simulator) -> None:
    primary = Api(sim, "multi_tenant", "primary").events(DI_BODY)
    assert primary.status_code == 200
    assert {e["organization"] for e in primary.json()} == {sim.org_ids["primary"]}
    no_di = Api(sim, "multi_tenant", "no_di").events(DI_BODY)
    assert no_di.status_code == 403
    assert no_di.json()["message"] == "Directory Insights is not enabled for this organization"


def test_multi_tenant_directory_insights_for_several_orgs_at_once(sim: Simulator) -> None:
    """DI accepts x-org-id more than once; the events of the orgs come interleaved by time."""
    body = json.dumps({"service": ["all"], "start_time": "2025-02-01T00:00:00Z", "limit": 10000})
    host, port = sim.base_url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("POST", "/insights/directory/v1/events")
    for name, value in [
        ("x-api-key", sim.keys["multi_tenant"]),
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        ("x-org-id", sim.org_ids["primary"]),
        ("x-org-id", sim.org_ids["secondary"]),
    ]:
        conn.putheader(name, value)
    conn.endheaders(body.encode())
    response = conn.getresponse()
    assert response.status == 200
    events = json.loads(response.read())
    conn.close()
    assert {e["organization"] for e in events} == {sim.org_ids["primary"], sim.org_ids["secondary"]}
    assert len({e["id"] for e in events}) == len(events)
    joined = Api(sim, "multi_tenant").post(
        "/insights/directory/v1/events",
        data=body,
        headers={
            "Content-Type": "application/json",
            "x-org-id": f"{sim.org_ids['primary']}, {sim.org_ids['secondary']}",
        },
    )
    assert joined.json() == events
    with_no_di = Api(sim, "multi_tenant").post(
        "/insights/directory/v1/events",
        data=body,
        headers={
            "Content-Type": "application/json",
            "x-org-id": f"{sim.org_ids['primary']},{sim.org_ids['no_di']}",
        },
    )
    assert with_no_di.status_code == 403


def test_no_di_key_has_a_tenant_without_directory_insights(sim: Simulator) -> None:
    a = Api(sim, "no_di")
    assert a.get("/api/systemusers").json()["totalCount"] == len(sim.tenant("no_di").users)
    r = a.events(DI_BODY)
    assert r.status_code == 403
    assert r.json() == {
        "message": "Directory Insights is not enabled for this organization",
        "error": "Forbidden",
    }
    assert a.post("/insights/directory/v1/events/count", json=DI_BODY).status_code == 403
    org = a.get(f"/api/organizations/{sim.org_ids['no_di']}").json()
    assert org["settings"]["features"]["directoryInsights"]["enabled"] is False
    assert "Directory Insights" not in {p["name"] for p in org["entitlement"]["entitlementProducts"]}


@pytest.mark.parametrize(
    "role, role_name",
    [
        ("admin", "Administrator With Billing"),
        ("read_only", "Read Only"),
        ("billing_only", "Billing Only"),
        ("multi_tenant", "Administrator With Billing"),
        ("no_di", "Administrator With Billing"),
    ],
)
def test_get_self_describes_the_keys_administrator(sim: Simulator, role: str, role_name: str) -> None:
    me = Api(sim, role).get("/api/users/getSelf")
    assert me.status_code == 200
    data = me.json()
    assert {"_id", "email", "firstname", "lastname", "roleName", "organization", "provider"} <= set(data)
    assert data["roleName"] == role_name
    if role == "multi_tenant":
        assert data["provider"] == sim.provider_id
    else:
        assert data["provider"] == ""
        expected_org = "no_di" if role == "no_di" else "primary"
        assert data["organization"] == sim.org_ids[expected_org]
    only = Api(sim, role).get("/api/users/getSelf", params={"fields": "provider"}).json()
    assert set(only) == {"_id", "provider"}


def test_every_error_body_has_message_and_error_and_a_request_id(sim: Simulator) -> None:
    a = Api(sim, "admin")
    responses = [
        a.get("/api/systemusers", params={"limit": 101}),
        a.get("/api/systemusers/" + "f" * 24),
        a.get("/api/nothing-here"),
        a.delete("/api/organizations"),
        a.events({"start_time": "2025-01-01T00:00:00Z"}),
        Api(sim, "read_only").delete(f"/api/systemusers/{sim.tenant().users[0]['_id']}"),
        Api(sim, None).get("/api/systemusers"),
    ]
    statuses = set()
    for r in responses:
        statuses.add(r.status_code)
        body = r.json()
        assert isinstance(body.get("message"), str) and isinstance(body.get("error"), str), r.text
        assert r.headers.get("X-Request-Id")
    assert statuses == {400, 401, 403, 404, 405}


def test_unknown_route_is_404_and_wrong_method_405(sim: Simulator) -> None:
    a = Api(sim, "admin")
    assert a.get("/api/v2/nothing").status_code == 404
    r = a.delete("/api/organizations")
    assert r.status_code == 405 and r.headers["Allow"] == "GET"
