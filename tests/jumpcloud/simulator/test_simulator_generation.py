"""The generated world: deterministic from the seed, and varied the way real tenants are."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from jumpcloud.simulator import Simulator, SimulatorConfig
from jumpcloud.simulator.config import default_event_count
from jumpcloud.simulator.tenant import ROLE_NAMES
from jumpcloud.usernames import username_problems
from tests.jumpcloud.simulator.support import ANCHOR, SMALL, Api


def _snapshot(sim: Simulator) -> dict[str, Any]:
    a = Api(sim)
    events = a.all_events({"service": ["all"], "start_time": "2025-01-01T00:00:00Z", "limit": 10000})
    t = sim.tenant()
    return {
        "keys": sim.keys,
        "orgs": sim.org_ids,
        "users": a.get("/api/systemusers", params={"limit": 100, "sort": "_id"}).json(),
        "admins": a.get("/api/users", params={"limit": 100}).json(),
        "apps": a.get("/api/applications", params={"limit": 100}).json(),
        "groups": [(g.id, g.name, g.user_ids, g.group_ids) for g in t.groups],
        "bindings": (t.app_direct_users, t.app_groups),
        "events": events,
    }


def test_same_seed_same_world() -> None:
    with Simulator(SMALL).start() as one, Simulator(SMALL).start() as two:
        assert json.dumps(_snapshot(one), sort_keys=True) == json.dumps(_snapshot(two), sort_keys=True)


def test_ids_do_not_depend_on_the_anchor_but_dates_do() -> None:
    later = SimulatorConfig(**{**SMALL.__dict__, "anchor": datetime(2025, 6, 1, tzinfo=UTC)})
    one, two = Simulator(SMALL), Simulator(later)
    assert one.keys == two.keys and one.org_ids == two.org_ids
    assert [u["_id"] for u in one.tenant().users] == [u["_id"] for u in two.tenant().users]
    assert one.tenant().users[0]["created"] != two.tenant().users[0]["created"]


def test_another_seed_another_world() -> None:
    other = SimulatorConfig(**{**SMALL.__dict__, "seed": SMALL.seed + 1})
    one, two = Simulator(SMALL), Simulator(other)
    assert set(one.keys.values()).isdisjoint(two.keys.values())
    assert {u["username"] for u in one.tenant().users} != {u["username"] for u in two.tenant().users}


def test_default_event_count() -> None:
    assert SimulatorConfig(users=200, days=30).event_count == 30_000
    assert default_event_count(50_000, 90) == 1_000_000
    assert SimulatorConfig(users=10, days=2, events=7).event_count == 7


@pytest.mark.parametrize(
    "field, value",
    [("users", -1), ("days", 0), ("events", -5), ("sso_share", 1.5), ("primary_default_state", "SUSPENDED")],
)
def test_config_validation(field: str, value: Any) -> None:
    with pytest.raises(ValueError):
        SimulatorConfig(**{field: value})


def test_users_look_like_a_real_directory(sim: Simulator) -> None:
    users = sim.tenant().users
    usernames = [u["username"] for u in users]
    assert len(set(usernames)) == len(usernames)
    assert len({u["email"].lower() for u in users}) == len(users)
    assert all(not username_problems(name) for name in usernames)
    assert sum("." in name for name in usernames) > len(users) / 2  # mostly first.last
    states = Counter(u["state"] for u in users)
    assert set(states) == {"ACTIVATED", "STAGED", "SUSPENDED"}
    assert states["ACTIVATED"] > len(users) * 0.7
    for u in users:
        assert u["suspended"] == (u["state"] == "SUSPENDED")
        if u["state"] == "ACTIVATED":
            assert u["activated"] is True
        assert u["created"] < "2025-03-01T12:00:00.000Z"
    assert any(u["account_locked"] for u in users) or any(u["password_expired"] for u in users)
    assert {u["mfaEnrollment"]["overallStatus"] for u in users} >= {"ENROLLED", "NOT_ENROLLED"}
    assert any(u["mfa"]["configured"] for u in users) and any(not u["mfa"]["configured"] for u in users)
    assert len({u["department"] for u in users}) >= 6
    ids = {u["_id"] for u in users}
    managers = [u["manager"] for u in users if u.get("manager")]
    assert managers and set(managers) <= ids


def test_big_tenant_has_every_flavour() -> None:
    t = Simulator(SimulatorConfig(seed=1, users=3000, apps=70, days=2, events=10, anchor=ANCHOR)).tenant()
    users = t.users
    assert any(u["account_locked"] for u in users) and any(u["password_expired"] for u in users)
    assert any(u["mfa"]["exclusion"] for u in users)
    assert any(u["password_never_expires"] for u in users)
    assert len({a["displayLabel"] for a in t.apps}) == 70  # catalogue apps repeat with distinct labels
    assert any(not a["active"] for a in t.apps)
    assert any(not t.app_user_ids(a["_id"]) for a in t.apps), "some apps are assigned to nobody"


def test_admins(sim: Simulator) -> None:
    admins = sim.tenant().admins
    assert set(ROLE_NAMES) <= {a["roleName"] for a in admins}
    emails = {u["email"] for u in sim.tenant().users}
    assert any(a["email"] in emails for a in admins) and any(a["email"] not in emails for a in admins)
    assert len({a["_id"] for a in admins}) == len(admins)


def test_other_tenants_are_smaller_and_distinct(sim: Simulator) -> None:
    primary, secondary, no_di = sim.tenant("primary"), sim.tenant("secondary"), sim.tenant("no_di")
    assert len(secondary.users) < len(primary.users) and len(no_di.users) < len(primary.users)
    assert not {u["_id"] for u in primary.users} & {u["_id"] for u in secondary.users}
    assert no_di.spec.directory_insights is False and no_di.events.generated_count == 0
    assert secondary.events.generated_count == SMALL.event_count // 10
