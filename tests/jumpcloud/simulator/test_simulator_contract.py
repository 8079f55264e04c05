"""Contract tests: real HTTP responses (and the request bodies the simulator accepts) validated
against the official JumpCloud Swagger 2.0 specs in docs/jumpcloud/openapi/.

Operations the simulator implements that the specs do not publish (GET /api/users and
GET /api/users/getSelf) are checked against docs/jumpcloud-api.md in test_simulator_auth /
test_simulator_v1, and their records against the spec's `userreturn` definition here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from jumpcloud.simulator import Simulator, SimulatorConfig
from jumpcloud.simulator.api import routes
from tests.jumpcloud.simulator import spec
from tests.jumpcloud.simulator.support import ANCHOR, Api


@pytest.fixture(autouse=True, scope="module")
def _specs_present() -> None:
    """A missing spec fails every contract test (it is never a reason to skip them)."""
    missing = spec.missing_specs()
    assert not missing, f"official JumpCloud specs missing from {spec.SPEC_DIR}: {missing}"


def test_the_official_specs_and_their_licence_are_in_the_repository():
    assert spec.missing_specs() == []
    assert "MIT License" in (spec.SPEC_DIR / "LICENSE").read_text()
    assert "82c20c1" in (spec.SPEC_DIR / "SOURCE.md").read_text()
    for api in spec.SPEC_FILES:
        assert spec.load(api)["swagger"] == "2.0"


# Implemented but absent from the official specs; covered against docs/jumpcloud-api.md instead.
NOT_IN_SPECS = {("GET", "/api/users"), ("GET", "/api/users/getSelf")}


@pytest.fixture(scope="module")
def csim() -> Iterator[Simulator]:
    simulator = Simulator(
        SimulatorConfig(seed=11, users=130, apps=12, days=6, events=3000, groups=12, anchor=ANCHOR)
    ).start()
    yield simulator
    simulator.stop()


@pytest.fixture
def capi(csim: Simulator) -> Iterator[Api]:
    client = Api(csim)
    yield client
    client.close()


@dataclass(frozen=True)
class Case:
    api: str
    method: str
    path: str  # as written in the spec
    call: Callable[[Api], tuple[requests.Response, Any]]  # -> (response, request body sent or None)

    @property
    def id(self) -> str:
        return f"{self.api} {self.method} {self.path}"


CASES: list[Case] = []


def case(
    api: str, method: str, path: str
) -> Callable[[Callable[[Api], tuple[requests.Response, Any]]], None]:
    def register(fn: Callable[[Api], tuple[requests.Response, Any]]) -> None:
        CASES.append(Case(api, method, path, fn))

    return register


_counter = iter(range(1_000_000))


def _new_user(a: Api, **extra: Any) -> dict[str, Any]:
    n = next(_counter)
    body = {
        "username": f"contract.user{n}",
        "email": f"contract.user{n}@acme.example",
        "firstname": "Con",
        "lastname": "Tract",
        **extra,
    }
    r = a.post("/api/systemusers", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def _app_with_groups(a: Api) -> str:
    tenant = a.sim.tenant()
    return next(app_id for app_id, groups in tenant.app_groups.items() if groups)


def _nested_group(a: Api) -> str:
    return next(g.id for g in a.sim.tenant().groups if g.group_ids and g.user_ids)


@case("v1", "GET", "/systemusers")
def _(a: Api) -> tuple[requests.Response, Any]:
    return a.get("/api/systemusers", params={"limit": 100}), None


@case("v1", "POST", "/systemusers")
def _(a: Api) -> tuple[requests.Response, Any]:
    body = {
        "username": "spec.created",
        "email": "spec.created@acme.example",
        "firstname": "Spec",
        "lastname": "Created",
        "department": "IT",
        "jobTitle": "Tester",
        "state": "STAGED",
        "mfa": {"exclusion": False},
        "attributes": [{"name": "badge", "value": "42"}],
        "phoneNumbers": [{"type": "work", "number": "555"}],
    }
    return a.post("/api/systemusers", json=body), body


@case("v1", "GET", "/systemusers/{id}")
def _(a: Api) -> tuple[requests.Response, Any]:
    return a.get(f"/api/systemusers/{a.sim.tenant().users[0]['_id']}"), None


@case("v1", "PUT", "/systemusers/{id}")
def _(a: Api) -> tuple[requests.Response, Any]:
    user = _new_user(a)
    body = {"state": "SUSPENDED", "suspended": True, "jobTitle": "Suspended for the contract test"}
    return a.put(f"/api/systemusers/{user['_id']}", json=body), body


@case("v1", "DELETE", "/systemusers/{id}")
def _(a: Api) -> tuple[requests.Response, Any]:
    user = _new_user(a)
    return a.delete(f"/api/systemusers/{user['_id']}"), None


@case("v1", "POST", "/systemusers/{id}/state/activate")
def _(a: Api) -> tuple[requests.Response, Any]:
    user = _new_user(a, state="STAGED")
    body = {"email": "false"}
    return a.post(f"/api/systemusers/{user['_id']}/state/activate", json=body), body


@case("v1", "POST", "/systemusers/{id}/unlock")
def _(a: Api) -> tuple[requests.Response, Any]:
    locked = next(u for u in a.sim.tenant().users if u["account_locked"])
    return a.post(f"/api/systemusers/{locked['_id']}/unlock"), None


@case("v1", "GET", "/applications")
def _(a: Api) -> tuple[requests.Response, Any]:
    return a.get("/api/applications", params={"limit": 100}), None


@case("v1", "GET", "/applications/{id}")
def _(a: Api) -> tuple[requests.Response, Any]:
    return a.get(f"/api/applications/{a.sim.tenant().apps[0]['_id']}"), None


@case("v1", "GET", "/organizations")
def _(a: Api) -> tuple[requests.Response, Any]:
    return a.get("/api/organizations"), None


@case("v1", "GET", "/organizations/{id}")
def _(a: Api) -> tuple[requests.Response, Any]:
    return a.get(f"/api/organizations/{a.sim.org_ids['primary']}"), None


@case("v2", "GET", "/applications/{application_id}/users")
def _(a: Api) -> tuple[requests.Response, Any]:
    return a.get(f"/api/v2/applications/{_app_with_groups(a)}/users", params={"limit": 100}), None


@case("v2", "GET", "/applications/{application_id}/usergroups")
def _(a: Api) -> tuple[requests.Response, Any]:
    return a.get(f"/api/v2/applications/{_app_with_groups(a)}/usergroups", params={"limit": 100}), None


@case("v2", "GET", "/applications/{application_id}/associations")
def _(a: Api) -> tuple[requests.Response, Any]:
    return a.get(
        f"/api/v2/applications/{_app_with_groups(a)}/associations", params={"targets": "user_group"}
    ), None


@case("v2", "GET", "/usergroups")
def _(a: Api) -> tuple[requests.Response, Any]:
    return a.get("/api/v2/usergroups", params={"limit": 100}), None


@case("v2", "GET", "/usergroups/{id}")
def _(a: Api) -> tuple[requests.Response, Any]:
    return a.get(f"/api/v2/usergroups/{_nested_group(a)}"), None


@case("v2", "GET", "/usergroups/{group_id}/associations")
def _(a: Api) -> tuple[requests.Response, Any]:
    group = a.sim.tenant("primary").app_groups[_app_with_groups(a)][0]
    response = a.get(f"/api/v2/usergroups/{group}/associations", params={"targets": "application"})
    assert _app_with_groups(a) in {edge["to"]["id"] for edge in response.json()}, (
        "the edge seen from the group"
    )
    return response, None


@case("v2", "GET", "/usergroups/{group_id}/members")
def _(a: Api) -> tuple[requests.Response, Any]:
    return a.get(f"/api/v2/usergroups/{_nested_group(a)}/members", params={"limit": 100}), None


@case("v2", "GET", "/usergroups/{group_id}/membership")
def _(a: Api) -> tuple[requests.Response, Any]:
    return a.get(f"/api/v2/usergroups/{_nested_group(a)}/membership", params={"limit": 100}), None


@case("v2", "GET", "/users/{user_id}/memberof")
def _(a: Api) -> tuple[requests.Response, Any]:
    member = next(u for g in a.sim.tenant().groups for u in g.user_ids)
    return a.get(f"/api/v2/users/{member}/memberof", params={"limit": 100}), None


@case("di", "POST", "/events")
def _(a: Api) -> tuple[requests.Response, Any]:
    body = {
        "service": ["all"],
        "start_time": "2025-02-20T00:00:00Z",
        "end_time": "2025-03-01T00:00:00Z",
        "limit": 500,
        "sort": "DESC",
    }
    return a.post("/insights/directory/v1/events", json=body), body


@case("di", "POST", "/events/count")
def _(a: Api) -> tuple[requests.Response, Any]:
    body = {"service": ["sso"], "start_time": "2025-02-20T00:00:00Z"}
    return a.post("/insights/directory/v1/events/count", json=body), body


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_operation_matches_the_official_spec(capi: Api, c: Case) -> None:
    response, sent = c.call(capi)
    assert response.status_code == 200, response.text
    if sent is not None:
        body_check = spec.body_validator(c.api, c.method, c.path)
        assert body_check is not None, "the spec documents a body for this operation"
        assert not spec.errors(body_check, sent), spec.errors(body_check, sent)
    check = spec.response_validator(c.api, c.method, c.path)
    if check is None:
        assert response.content == b""  # documented as 200 with no schema: the simulator sends nothing
        return
    data = response.json()
    assert data not in ([], {"totalCount": 0, "results": []}), "validate something, not an empty list"
    problems = spec.errors(check, data)
    assert not problems, problems


def _spec_path(template: str) -> tuple[str, str]:
    for api_name in ("di", "v2", "v1"):
        prefix = spec.PREFIXES[api_name]
        if template.startswith(prefix + "/"):
            return api_name, template[len(prefix) :]
    raise AssertionError(template)


def _normalised(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def test_every_implemented_operation_is_contract_tested_or_documented_as_absent() -> None:
    tested = {(c.api, c.method, _normalised(c.path)) for c in CASES}
    for r in routes():
        if (r.method, r.template) in NOT_IN_SPECS:
            api_name, path = _spec_path(r.template)
            in_spec = {
                (m.upper(), _normalised(p)) for p, ops in spec.load(api_name)["paths"].items() for m in ops
            }
            assert (r.method, _normalised(path)) not in in_spec, (
                f"{r.template} is in the spec now: contract-test it"
            )
            continue
        api_name, path = _spec_path(r.template)
        spec_paths = {_normalised(p): p for p in spec.load(api_name)["paths"]}
        assert _normalised(path) in spec_paths, f"{r.method} {r.template} is not in the {api_name} spec"
        assert (api_name, r.method, _normalised(path)) in tested, (
            f"no contract case for {r.method} {r.template}"
        )


def _all_pages(a: Api, path: str, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    skip = 0
    while True:
        r = a.get(path, params={"limit": 100, "skip": skip, **params})
        assert r.status_code == 200, r.text
        page = r.json()["results"]
        out.extend(page)
        skip += len(page)
        if len(page) < 100:
            return out


@pytest.mark.parametrize("role", ["admin", "multi_tenant"])
def test_every_generated_user_app_and_org_matches_the_spec(csim: Simulator, role: str) -> None:
    a = Api(csim, role, "secondary" if role == "multi_tenant" else None)
    users = spec.validator("v1", {"$ref": "#/definitions/systemuserreturn"})
    apps = spec.validator("v1", {"$ref": "#/definitions/application"})
    for user in _all_pages(a, "/api/systemusers"):
        assert not spec.errors(users, user), (user["username"], spec.errors(users, user))
    for app in _all_pages(a, "/api/applications"):
        assert not spec.errors(apps, app), spec.errors(apps, app)
    org_list = spec.response_validator("v1", "GET", "/organizations")
    assert org_list is not None
    orgs = Api(csim, role).get("/api/organizations").json()
    assert not spec.errors(org_list, orgs)


def test_administrators_match_the_userreturn_definition(capi: Api) -> None:
    """GET /api/users is not published; its records use the spec's admin shape (`userreturn`)."""
    admins = spec.validator("v1", {"$ref": "#/definitions/userreturn"})
    listed = capi.get("/api/users", params={"limit": 100}).json()
    assert set(listed) == {"totalCount", "results"}
    for admin in listed["results"]:
        assert not spec.errors(admins, admin), spec.errors(admins, admin)
    me = capi.get("/api/users/getSelf").json()
    assert not spec.errors(admins, me)


def test_every_v2_page_of_every_app_matches_the_spec(capi: Api) -> None:
    check = spec.response_validator("v2", "GET", "/applications/{application_id}/users")
    assert check is not None
    for app in capi.sim.tenant().apps:
        r = capi.get(f"/api/v2/applications/{app['_id']}/users", params={"limit": 100})
        assert not spec.errors(check, r.json())


def test_every_generated_event_is_an_object_with_the_documented_envelope(capi: Api) -> None:
    check = spec.response_validator("di", "POST", "/events")
    assert check is not None
    query = {"service": ["all"], "start_time": "2025-01-01T00:00:00Z"}
    events = capi.all_events({**query, "limit": 10000})
    # 3000 generated plus whatever the write cases above appended (user_create, user_update ...).
    assert len(events) == capi.post("/insights/directory/v1/events/count", json=query).json()["count"] >= 3000
    assert not spec.errors(check, events)
    for event in events:
        assert {"id", "service", "event_type", "timestamp", "organization"} <= set(event)


def test_search_after_as_spec_typed_strings_is_accepted(capi: Api) -> None:
    """EventQuery types search_after items as strings, X-Search_after carries [number, string]:
    both forms are accepted and page identically."""
    body = {"service": ["all"], "start_time": "2025-02-25T00:00:00Z", "limit": 50}
    first = capi.events(body)
    cursor = json.loads(first.headers["X-Search_after"])
    as_numbers = capi.events({**body, "search_after": cursor})
    as_strings_body = {**body, "search_after": [str(cursor[0]), cursor[1]]}
    body_check = spec.body_validator("di", "POST", "/events")
    assert body_check is not None and not spec.errors(body_check, as_strings_body)
    as_strings = capi.events(as_strings_body)
    assert as_numbers.status_code == as_strings.status_code == 200
    assert as_numbers.json() == as_strings.json()
    assert as_numbers.json()[0] != first.json()[0]
