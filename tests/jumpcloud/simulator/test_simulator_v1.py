"""v1: {totalCount, results} lists (limit/skip/sort/fields/filter), objects, and the write rules."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import pytest

from jumpcloud.simulator import Simulator
from jumpcloud.simulator.tenant import ROLE_NAMES
from jumpcloud.usernames import username_problems
from tests.jumpcloud.simulator.support import Api


def _all(a: Api, path: str, **params: Any) -> list[dict[str, Any]]:
    out, skip = [], 0
    while True:
        r = a.get(path, params={"limit": 100, "skip": skip, **params})
        assert r.status_code == 200, r.text
        page = r.json()["results"]
        out.extend(page)
        skip += len(page)
        if len(page) < 100:
            return out


# --- lists ---------------------------------------------------------------------------------------


def test_default_limit_is_10_and_total_count_is_everything(api: Api, sim: Simulator) -> None:
    data = api.get("/api/systemusers").json()
    assert set(data) == {"totalCount", "results"}
    assert len(data["results"]) == 10
    assert data["totalCount"] == len(sim.tenant().users) == 150


@pytest.mark.parametrize(
    "params", [{"limit": 101}, {"limit": "ten"}, {"limit": -1}, {"skip": -5}, {"skip": "x"}]
)
def test_bad_paging_parameters_are_400(api: Api, params: dict[str, Any]) -> None:
    for path in ["/api/systemusers", "/api/users", "/api/applications", "/api/organizations"]:
        r = api.get(path, params=params)
        assert r.status_code == 400, (path, params)
        assert {"message", "error"} <= set(r.json())


def test_limit_100_pages_every_user_exactly_once_in_id_order(api: Api, sim: Simulator) -> None:
    users = _all(api, "/api/systemusers", sort="_id")
    ids = [u["_id"] for u in users]
    assert len(ids) == len(set(ids)) == 150
    assert ids == sorted(ids)
    assert set(ids) == {u["_id"] for u in sim.tenant().users}


def test_sort_descending_and_by_several_fields(api: Api) -> None:
    newest = _all(api, "/api/systemusers", sort="-created")
    assert [u["created"] for u in newest] == sorted((u["created"] for u in newest), reverse=True)
    multi = _all(api, "/api/systemusers", sort="department -username")
    keys = [(u["department"], u["username"]) for u in multi]
    for a, b in zip(keys, keys[1:], strict=False):
        assert a[0] < b[0] or (a[0] == b[0] and a[1] >= b[1])
    by_email = _all(api, "/api/systemusers", sort="email")
    assert [u["email"] for u in by_email] == sorted(u["email"] for u in by_email)


def test_fields_projection_keeps_the_id(api: Api) -> None:
    page = api.get("/api/systemusers", params={"fields": "username email", "limit": 5}).json()["results"]
    assert all(set(u) == {"_id", "username", "email"} for u in page)


def test_filters_eq_ne_and_comparisons(api: Api, sim: Simulator) -> None:
    users = sim.tenant().users
    someone = users[7]
    r = api.get("/api/systemusers", params={"filter": f"username:$eq:{someone['username']}"}).json()
    assert r["totalCount"] == 1 and r["results"][0]["_id"] == someone["_id"]
    r = api.get("/api/systemusers", params={"filter": f"email:$eq:{someone['email']}"}).json()
    assert [u["_id"] for u in r["results"]] == [someone["_id"]]
    r = api.get("/api/systemusers", params={"filter": f"_id:$eq:{someone['_id']}"}).json()
    assert r["totalCount"] == 1
    suspended = [u for u in users if u["state"] == "SUSPENDED"]
    assert suspended
    assert api.get("/api/systemusers", params={"filter": "state:$eq:SUSPENDED"}).json()["totalCount"] == len(
        suspended
    )
    assert api.get("/api/systemusers", params={"filter": "state:$ne:SUSPENDED"}).json()["totalCount"] == len(
        users
    ) - len(suspended)
    cutoff = sorted(u["created"] for u in users)[50]
    assert api.get("/api/systemusers", params={"filter": f"created:$lt:{cutoff}"}).json()["totalCount"] == 50
    assert (
        api.get("/api/systemusers", params={"filter": f"created:$gte:{cutoff}"}).json()["totalCount"] == 100
    )
    locked = sum(1 for u in users if u["account_locked"])
    assert (
        api.get("/api/systemusers", params={"filter": "account_locked:$eq:true"}).json()["totalCount"]
        == locked
    )
    # Filters are case-sensitive, as the spec says.
    assert (
        api.get("/api/systemusers", params={"filter": f"username:$eq:{someone['username'].upper()}"}).json()[
            "totalCount"
        ]
        == 0
    )


def test_indexed_filters_are_anded_and_or_filters_are_ored(api: Api, sim: Simulator) -> None:
    users = sim.tenant().users
    dept = users[0]["department"]
    expected = [u for u in users if u["department"] == dept and u["state"] == "ACTIVATED"]
    r = api.get(
        "/api/systemusers",
        params={"filter[0]": f"department:$eq:{dept}", "filter[1]": "state:$eq:ACTIVATED", "limit": 100},
    ).json()
    assert r["totalCount"] == len(expected)
    a, b = users[3], users[4]
    r = api.get(
        "/api/systemusers",
        params={
            "filter[or][0]": f"username:$eq:{a['username']}",
            "filter[or][1]": f"username:$eq:{b['username']}",
        },
    ).json()
    assert {u["_id"] for u in r["results"]} == {a["_id"], b["_id"]}
    # A repeated plain filter parameter is ANDed as well (collectionFormat multi).
    r = api.get(f"/api/systemusers?filter=department:$eq:{dept}&filter=state:$eq:ACTIVATED&limit=100").json()
    assert r["totalCount"] == len(expected)


@pytest.mark.parametrize("bad", ["username:eq:x", "username", "username:$like:x", ":$eq:x"])
def test_malformed_filters_are_400(api: Api, bad: str) -> None:
    r = api.get("/api/systemusers", params={"filter": bad})
    assert r.status_code == 400
    assert "filter" in r.json()["message"]


def test_unknown_query_parameters_are_ignored(api: Api) -> None:
    r = api.get("/api/systemusers", params={"search": "whatever", "nonsense": "1", "limit": 3})
    assert r.status_code == 200 and len(r.json()["results"]) == 3


def test_single_user_and_404(api: Api, sim: Simulator) -> None:
    user = sim.tenant().users[0]
    assert api.get(f"/api/systemusers/{user['_id']}").json() == user
    r = api.get("/api/systemusers/" + "0" * 24)
    assert r.status_code == 404
    assert r.json()["message"] == "Not Found"


def test_administrators_cover_every_role_and_email_matching_cases(api: Api, sim: Simulator) -> None:
    admins = _all(api, "/api/users")
    assert len(admins) == len(sim.tenant().admins)
    assert set(ROLE_NAMES) <= {a["roleName"] for a in admins}
    emails = {u["email"] for u in sim.tenant().users}
    assert any(a["email"] in emails for a in admins), "some administrators are also users"
    assert any(a["email"] not in emails for a in admins), "some administrators are not users"
    assert any(a["enableMultiFactor"] is False for a in admins)
    assert all(a["organization"] == sim.org_ids["primary"] for a in admins)


def test_applications_sorted_by_name_by_default(api: Api, sim: Simulator) -> None:
    apps = _all(api, "/api/applications")
    assert len(apps) == len(sim.tenant().apps) == 12
    assert [a["name"] for a in apps] == sorted(a["name"] for a in apps)
    for app in apps:
        assert re.fullmatch(r"[0-9a-f]{24}", app["_id"])
        assert app["sso"]["type"] == "saml"
        assert app["ssoUrl"].startswith("https://sso.jumpcloud.com/saml2/")
        assert {"name", "displayName", "displayLabel", "active", "created"} <= set(app)
    one = apps[0]
    assert api.get(f"/api/applications/{one['_id']}").json() == one
    assert api.get("/api/applications/" + "0" * 24).status_code == 404


def test_organization_details(api: Api, sim: Simulator) -> None:
    org = api.get(f"/api/organizations/{sim.org_ids['primary']}").json()
    assert org["_id"] == sim.org_ids["primary"]
    assert org["settings"]["newSystemUserStateDefaults"]["manualEntry"] in ("ACTIVATED", "STAGED")
    assert org["settings"]["features"]["directoryInsights"]["enabled"] is True
    assert "Directory Insights" in {p["name"] for p in org["entitlement"]["entitlementProducts"]}
    projected = api.get(
        f"/api/organizations/{sim.org_ids['primary']}", params={"fields": "displayName"}
    ).json()
    assert set(projected) == {"_id", "displayName"}
    assert api.get("/api/organizations/nonsense").status_code == 400


# --- writes --------------------------------------------------------------------------------------


def _create(a: Api, **body: Any) -> Any:
    return a.post("/api/systemusers", json=body)


def test_create_returns_200_and_the_user_with_the_org_default_state(fresh_sim: Simulator) -> None:
    a = Api(fresh_sim)
    before = a.get("/api/systemusers").json()["totalCount"]
    r = _create(
        a,
        username="new.person",
        email="New.Person@acme.example",
        firstname="New",
        lastname="Person",
        department="IT",
    )
    assert r.status_code == 200
    user = r.json()
    assert re.fullmatch(r"[0-9a-f]{24}", user["_id"])
    assert user["state"] == "ACTIVATED" and user["activated"] is True and user["suspended"] is False
    assert user["department"] == "IT" and user["organization"] == fresh_sim.org_ids["primary"]
    assert "password" not in user
    assert a.get(f"/api/systemusers/{user['_id']}").json() == user
    assert a.get("/api/systemusers").json()["totalCount"] == before + 1
    # The secondary org stages new users by default.
    secondary = Api(fresh_sim, "multi_tenant", "secondary")
    staged = _create(secondary, username="staged.person", email="staged.person@globex.example").json()
    assert staged["state"] == "STAGED" and staged["activated"] is False
    default = secondary.get(
        f"/api/organizations/{fresh_sim.org_ids['secondary']}", headers={"x-org-id": ""}
    ).json()
    assert default["settings"]["newSystemUserStateDefaults"]["manualEntry"] == "STAGED"


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"email": "x@acme.example"}, "username is required"),
        ({"username": "no.email"}, "email is required"),
        ({"username": "bad.email", "email": "not-an-email"}, "not a valid email"),
        ({"username": "bad.state", "email": "bad.state@acme.example", "state": "ARCHIVED"}, "state"),
        ({"username": "bad.type", "email": "bad.type@acme.example", "firstname": 12}, "firstname"),
    ],
)
def test_create_validation(fresh_sim: Simulator, body: dict[str, Any], fragment: str) -> None:
    r = _create(Api(fresh_sim), **body)
    assert r.status_code == 400
    assert fragment in r.json()["message"]


@pytest.mark.parametrize("username", ["1abc", "jane doe", "jane@doe", "jäne", "a" * 31, "semi;colon", ""])
def test_create_refuses_what_the_username_rules_refuse(fresh_sim: Simulator, username: str) -> None:
    r = _create(Api(fresh_sim), username=username, email="someone@acme.example")
    assert r.status_code == 400
    problems = username_problems(username)
    assert problems
    assert problems[0] in r.json()["message"] or "username" in r.json()["message"]


def test_create_refuses_duplicates(fresh_sim: Simulator) -> None:
    a = Api(fresh_sim)
    existing = fresh_sim.tenant().users[0]
    r = _create(a, username=existing["username"], email="fresh@acme.example")
    assert r.status_code == 400 and "already exists" in r.json()["message"]
    r = _create(a, username="fresh.name", email=existing["email"].upper())
    assert r.status_code == 400 and "already exists" in r.json()["message"]


def test_activate_moves_staged_to_activated(fresh_sim: Simulator) -> None:
    a = Api(fresh_sim)
    user = _create(a, username="to.activate", email="to.activate@acme.example", state="STAGED").json()
    assert user["state"] == "STAGED"
    r = a.post(f"/api/systemusers/{user['_id']}/state/activate", json={})
    assert r.status_code == 200 and r.content == b""
    assert a.get(f"/api/systemusers/{user['_id']}").json()["state"] == "ACTIVATED"
    assert a.post("/api/systemusers/" + "0" * 24 + "/state/activate", json={}).status_code == 404


def test_put_suspend_and_unsuspend_keep_state_and_suspended_consistent(fresh_sim: Simulator) -> None:
    a = Api(fresh_sim)
    uid = _create(a, username="sus.pend", email="sus.pend@acme.example").json()["_id"]
    r = a.put(f"/api/systemusers/{uid}", json={"state": "SUSPENDED", "suspended": True})
    assert r.status_code == 200 and (r.json()["state"], r.json()["suspended"]) == ("SUSPENDED", True)
    r = a.put(f"/api/systemusers/{uid}", json={"state": "ACTIVATED", "suspended": False})
    assert (r.json()["state"], r.json()["suspended"], r.json()["activated"]) == ("ACTIVATED", False, True)
    r = a.put(f"/api/systemusers/{uid}", json={"suspended": True})
    assert r.json()["state"] == "SUSPENDED"
    r = a.put(f"/api/systemusers/{uid}", json={"state": "ACTIVATED"})
    assert r.json()["suspended"] is False
    assert (
        a.put(f"/api/systemusers/{uid}", json={"state": "SUSPENDED", "suspended": False}).status_code == 400
    )
    assert a.put(f"/api/systemusers/{uid}", json={"state": "STAGED"}).status_code == 400


def test_put_is_a_partial_update_and_username_is_immutable(fresh_sim: Simulator) -> None:
    a = Api(fresh_sim)
    user = fresh_sim.tenant().users[1]
    r = a.put(
        f"/api/systemusers/{user['_id']}", json={"jobTitle": "Chief Tester", "username": user["username"]}
    )
    assert r.status_code == 200
    updated = r.json()
    assert updated["jobTitle"] == "Chief Tester"
    assert {k: v for k, v in updated.items() if k != "jobTitle"} == {
        k: v for k, v in user.items() if k != "jobTitle"
    }
    r = a.put(f"/api/systemusers/{user['_id']}", json={"username": "renamed.person"})
    assert r.status_code == 400 and "username" in r.json()["message"]
    other = fresh_sim.tenant().users[2]
    assert a.put(f"/api/systemusers/{user['_id']}", json={"email": other["email"]}).status_code == 400
    assert a.put("/api/systemusers/" + "0" * 24, json={"jobTitle": "x"}).status_code == 404
    assert (
        a.put(
            f"/api/systemusers/{user['_id']}", data="not json", headers={"Content-Type": "application/json"}
        ).status_code
        == 400
    )


def test_delete_returns_the_deleted_user_and_unbinds_it(fresh_sim: Simulator) -> None:
    a = Api(fresh_sim)
    t = fresh_sim.tenant()
    group = next(g for g in t.groups if g.user_ids)
    uid = group.user_ids[0]
    user = t.user(uid)
    r = a.delete(f"/api/systemusers/{uid}")
    assert r.status_code == 200 and r.json() == user
    assert a.get(f"/api/systemusers/{uid}").status_code == 404
    assert a.delete(f"/api/systemusers/{uid}").json() == {"message": "Not Found", "error": "Not Found"}
    members = a.get(f"/api/v2/usergroups/{group.id}/members", params={"limit": 100}).json()
    assert uid not in {m["to"]["id"] for m in members}
    for app in t.apps:
        assert uid not in t.app_user_ids(app["_id"])


def test_writes_append_directory_events(fresh_sim: Simulator) -> None:
    a = Api(fresh_sim)
    uid = _create(a, username="audit.me", email="audit.me@acme.example").json()["_id"]
    a.put(f"/api/systemusers/{uid}", json={"state": "SUSPENDED", "suspended": True})
    a.put(f"/api/systemusers/{uid}", json={"state": "ACTIVATED", "suspended": False})
    a.put(f"/api/systemusers/{uid}", json={"department": "Legal"})
    a.delete(f"/api/systemusers/{uid}")
    body = {
        "service": ["directory"],
        "start_time": "2025-01-01T00:00:00Z",
        "limit": 100,
        "search_term": {"and": [{"resource.id": uid}]},
    }
    events = a.events(body).json()
    assert [e["event_type"] for e in events] == [
        "user_create",
        "user_suspended",
        "user_unsuspended",
        "user_update",
        "user_delete",
    ]
    admin = fresh_sim.tenant().key_admins["admin"]
    for e in events:
        assert e["initiated_by"] == {"id": admin["_id"], "type": "admin", "email": admin["email"]}
        assert e["resource"]["username"] == "audit.me"
        assert re.fullmatch(r"[0-9a-f]{24}", e["id"])
    assert events[3]["changes"] == [{"field": "department", "from": "", "to": "Legal"}]


def test_concurrent_creates_are_all_kept(fresh_sim: Simulator) -> None:
    results: list[int] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        a = Api(fresh_sim)
        for k in range(5):
            r = _create(a, username=f"thread{n}.user{k}", email=f"thread{n}.user{k}@acme.example")
            with lock:
                results.append(r.status_code)
        a.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 40
    users = fresh_sim.tenant().users
    assert len({u["_id"] for u in users}) == len(users) == 60 + 40


def test_write_bodies_must_be_json_objects(fresh_sim: Simulator) -> None:
    a = Api(fresh_sim)
    assert (
        a.post(
            "/api/systemusers", data=json.dumps([1, 2]), headers={"Content-Type": "application/json"}
        ).status_code
        == 400
    )
    assert (
        a.post("/api/systemusers", data="{", headers={"Content-Type": "application/json"}).status_code == 400
    )


def test_chunked_request_bodies_are_read_whole(fresh_sim: Simulator) -> None:
    a = Api(fresh_sim)
    payload = json.dumps({"username": "chunky.user", "email": "chunky.user@acme.example"}).encode()
    r = a.post(
        "/api/systemusers",
        data=iter([payload[:10], payload[10:]]),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 200 and r.json()["username"] == "chunky.user"
    # The same keep-alive connection still works afterwards.
    assert a.get("/api/organizations").status_code == 200


def test_listed_records_are_rendered_once_and_forgotten_at_the_next_write(fresh_sim: Simulator) -> None:
    """Lists are served from records rendered at their first request (Tenant.kept): a write
    in between must show in the next page, in the v1 list and in a group's membership."""
    a = Api(fresh_sim)
    group = next(g for g in fresh_sim.tenant().groups if g.user_ids)
    uid = group.user_ids[0]

    def listed() -> dict[str, dict[str, object]]:
        page = a.get("/api/systemusers", params={"limit": 100, "fields": "state suspended"}).json()
        return {u["_id"]: u for u in page["results"]}

    def members() -> set[str]:
        return {
            m["id"] for m in a.get(f"/api/v2/usergroups/{group.id}/membership", params={"limit": 100}).json()
        }

    before = listed()
    assert before[uid] == {"_id": uid, "state": "ACTIVATED", "suspended": False} and uid in members()
    assert listed() == before  # served again from what was rendered
    assert a.put(f"/api/systemusers/{uid}", json={"suspended": True}).status_code == 200
    assert listed()[uid] == {"_id": uid, "state": "SUSPENDED", "suspended": True}
    assert a.delete(f"/api/systemusers/{uid}").status_code == 200
    assert uid not in listed() and uid not in members()
