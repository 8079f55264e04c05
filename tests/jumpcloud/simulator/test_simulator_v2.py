"""v2 graph: who can use each app (directly or through nested groups), group members and membership."""

from __future__ import annotations

from typing import Any

import pytest

from jumpcloud.simulator import Simulator
from tests.jumpcloud.simulator.support import Api


def _all(a: Api, path: str, **params: Any) -> list[dict[str, Any]]:
    out, skip = [], 0
    while True:
        r = a.get(path, params={"limit": 100, "skip": skip, **params})
        assert r.status_code == 200, r.text
        page = r.json()
        assert isinstance(page, list)
        out.extend(page)
        skip += len(page)
        if len(page) < 100:
            return out


def _resolve(sim: Simulator, group_id: str) -> set[str]:
    """Independent re-implementation of nested membership, to check the simulator against."""
    group = sim.tenant().group(group_id)
    assert group is not None
    users = set(group.user_ids)
    for child in group.group_ids:
        users |= _resolve(sim, child)
    return users


def test_limits(api: Api, sim: Simulator) -> None:
    app = sim.tenant().apps[0]["_id"]
    assert len(api.get(f"/api/v2/applications/{app}/users").json()) == 10
    for path in [
        f"/api/v2/applications/{app}/users",
        f"/api/v2/usergroups/{sim.tenant().groups[0].id}/members",
    ]:
        assert api.get(path, params={"limit": 101}).status_code == 400
        assert api.get(path, params={"limit": 100}).status_code == 200
    assert api.get("/api/v2/applications/" + "0" * 24 + "/users").status_code == 404
    assert api.get("/api/v2/usergroups/" + "0" * 24 + "/members").status_code == 404


def test_groups_nest_without_cycles(sim: Simulator) -> None:
    t = sim.tenant()
    nested = [g for g in t.groups if g.group_ids]
    assert nested, "some groups contain groups"

    def depth(gid: str, seen: tuple[str, ...] = ()) -> int:
        assert gid not in seen, "cycle"
        group = t.group(gid)
        assert group is not None
        return 1 + max((depth(c, (*seen, gid)) for c in group.group_ids), default=0)

    assert max(depth(g.id) for g in t.groups) >= 3


def test_app_users_are_direct_and_group_bindings_with_paths(api: Api, sim: Simulator) -> None:
    t = sim.tenant()
    checked_direct = checked_nested = checked_multi = False
    for app in t.apps:
        app_id = app["_id"]
        listed = _all(api, f"/api/v2/applications/{app_id}/users")
        expected = set(t.app_direct_users[app_id])
        for gid in t.app_groups[app_id]:
            expected |= _resolve(sim, gid)
        assert {u["id"] for u in listed} == expected
        assert len(listed) == len(expected)
        for item in listed:
            assert item["type"] == "user" and item["compiledAttributes"] == {}
            assert item["paths"]
            for path in item["paths"]:
                assert path[-1] == {"to": {"id": item["id"], "type": "user"}}
                hops = [step["to"] for step in path[:-1]]
                assert all(h["type"] == "user_group" for h in hops)
                if not hops:
                    assert item["id"] in t.app_direct_users[app_id]
                    checked_direct = True
                else:
                    assert hops[0]["id"] in t.app_groups[app_id]
                    # Each hop is a member of the previous one; the last group holds the user.
                    for parent, child in zip(hops, hops[1:], strict=False):
                        parent_group = t.group(parent["id"])
                        assert parent_group is not None and child["id"] in parent_group.group_ids
                    holder = t.group(hops[-1]["id"])
                    assert holder is not None and item["id"] in holder.user_ids
                    checked_nested |= len(hops) >= 2
            checked_multi |= len(item["paths"]) > 1
    assert checked_direct and checked_nested and checked_multi


def test_app_usergroups_lists_bound_and_nested_groups(api: Api, sim: Simulator) -> None:
    t = sim.tenant()
    app_id = t.apps[0]["_id"]  # bound to All Staff
    groups = _all(api, f"/api/v2/applications/{app_id}/usergroups")
    ids = {g["id"] for g in groups}
    assert t.groups[0].id in ids
    assert len(ids) > 1, "groups nested in a bound group are listed too"
    for g in groups:
        assert g["type"] == "user_group"
        for path in g["paths"]:
            assert path[0]["to"]["id"] in t.app_groups[app_id]
            assert path[-1]["to"] == {"id": g["id"], "type": "user_group"}


@pytest.mark.parametrize("targets", ["user", "user_group"])
def test_associations_are_direct_bindings_only(api: Api, sim: Simulator, targets: str) -> None:
    t = sim.tenant()
    for app in t.apps:
        listed = _all(api, f"/api/v2/applications/{app['_id']}/associations", targets=targets)
        expected = t.app_direct_users[app["_id"]] if targets == "user" else t.app_groups[app["_id"]]
        assert [c["to"]["id"] for c in listed] == list(expected)
        assert all(c["to"]["type"] == targets for c in listed)


@pytest.mark.parametrize("params", [{}, {"targets": "system"}, {"targets": ""}])
def test_associations_require_targets(api: Api, sim: Simulator, params: dict[str, str]) -> None:
    r = api.get(f"/api/v2/applications/{sim.tenant().apps[0]['_id']}/associations", params=params)
    assert r.status_code == 400
    assert "targets" in r.json()["message"]


def test_members_are_direct_users_and_groups(api: Api, sim: Simulator) -> None:
    for group in sim.tenant().groups:
        members = _all(api, f"/api/v2/usergroups/{group.id}/members")
        users = [m["to"]["id"] for m in members if m["to"]["type"] == "user"]
        groups = [m["to"]["id"] for m in members if m["to"]["type"] == "user_group"]
        assert users == group.user_ids and groups == group.group_ids
        assert len(members) == len(users) + len(groups)
    mixed = next(g for g in sim.tenant().groups if g.user_ids and g.group_ids)
    assert {m["to"]["type"] for m in _all(api, f"/api/v2/usergroups/{mixed.id}/members")} == {
        "user",
        "user_group",
    }


def test_membership_resolves_nesting(api: Api, sim: Simulator) -> None:
    for group in sim.tenant().groups:
        resolved = _all(api, f"/api/v2/usergroups/{group.id}/membership")
        assert {u["id"] for u in resolved} == _resolve(sim, group.id)
        for item in resolved:
            for path in item["paths"]:
                assert path[-1]["to"] == {"id": item["id"], "type": "user"}
                if len(path) > 1:
                    assert path[0]["to"]["id"] in group.group_ids


def test_usergroups_list_and_get(api: Api, sim: Simulator) -> None:
    groups = _all(api, "/api/v2/usergroups")
    assert [g["id"] for g in groups] == [g.id for g in sim.tenant().groups]
    assert groups[0]["name"] == "All Staff" and groups[0]["type"] == "user_group"
    assert api.get(f"/api/v2/usergroups/{groups[1]['id']}").json() == groups[1]
