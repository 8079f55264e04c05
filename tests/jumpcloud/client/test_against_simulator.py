"""The client over real HTTP against the local JumpCloud simulator (jumpcloud.simulator)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from jumpcloud.client import JumpCloudClient
from jumpcloud.errors import (
    Conflict,
    DirectoryInsightsUnavailable,
    InvalidApiKey,
    NotFound,
    OrganizationNotFound,
    OrganizationRequired,
    PermissionDenied,
)

simulator = pytest.importorskip("jumpcloud.simulator")
Simulator, SimulatorConfig, FaultConfig = (
    simulator.Simulator,
    simulator.SimulatorConfig,
    simulator.FaultConfig,
)

pytestmark = pytest.mark.integration

# Late-arriving events become visible up to ~3 minutes after their timestamp; stay clear of that.
END = datetime.now(UTC) - timedelta(minutes=10)
START = END - timedelta(days=31)


def _start(days: int = 30) -> Simulator:
    sim = Simulator(SimulatorConfig(seed=1, users=200, apps=10, days=days))
    sim.start(host="127.0.0.1", port=0)
    return sim


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    """Read-only tests share one simulator; anything that writes or sets faults gets its own."""
    sim = _start()
    yield sim
    sim.stop()


@pytest.fixture
def fresh_sim() -> Iterator[Simulator]:
    sim = _start(days=3)  # a smaller event history keeps the fault tests quick
    yield sim
    sim.stop()


def connect(sim: Simulator, key: str = "admin", **kwargs) -> JumpCloudClient:
    kwargs.setdefault("backoff_factor", 0.01)
    return JumpCloudClient(sim.keys[key], base_url=sim.base_url, **kwargs)


def _everything(client: JumpCloudClient, *, event_limit: int = 1_000, apps: int | None = None) -> dict:
    """All the client can read, in a comparable form, plus the skipped counts."""
    skipped = Counter()
    users = []
    for page in client.iter_system_user_pages():
        users.extend(page.items)
        skipped["users"] += page.skipped
    admins = [a for p in client.iter_administrator_pages() for a in p.items]
    app_list = [a for p in client.iter_application_pages() for a in p.items]
    bindings = {}
    for app in app_list[:apps]:
        bindings[app.id] = {
            (b.user_id, b.direct) for p in client.iter_application_binding_pages(app.id) for b in p.items
        }
    events = {}
    for service in ("directory", "sso"):
        ids = []
        for page in client.iter_event_pages(service, START, END, limit=event_limit):
            assert len(page.events) + page.skipped == page.result_count <= page.limit
            ids.extend(e.id for e in page.events)
            skipped[service] += page.skipped
        events[service] = ids
    return {
        "users": sorted(u.id for u in users),
        "usernames": sorted(u.username for u in users),
        "admins": sorted(a.id for a in admins),
        "apps": sorted(a.id for a in app_list),
        "bindings": bindings,
        "events": events,
        "skipped": skipped,
    }


# --------------------------------------------------------------------------------------------------
# reading everything


def test_full_paging_matches_the_simulated_tenant(sim):
    tenant = sim.tenant("primary")
    with connect(sim) as client:
        seen = _everything(client, event_limit=5_000)
        counts = {s: client.count_events(s, START, END) for s in ("directory", "sso")}
    assert seen["users"] == sorted(u["_id"] for u in tenant.users)
    assert len(seen["users"]) == 200
    assert seen["admins"] == sorted(a["_id"] for a in tenant.admins)
    assert seen["apps"] == sorted(a["_id"] for a in tenant.apps) and len(seen["apps"]) == 10
    for app_id, bindings in seen["bindings"].items():
        assert {uid for uid, _ in bindings} == set(tenant.app_user_ids(app_id))
        assert {uid for uid, direct in bindings if direct} == set(tenant.app_direct_users.get(app_id, ()))
    for service, ids in seen["events"].items():
        assert len(ids) == len(set(ids)) == counts[service] > 5_000  # more than one page
    assert sum(seen["skipped"].values()) == 0


def test_event_pages_repeat_the_query_with_the_latest_cursor(sim):
    sim.clear_requests()
    with connect(sim) as client:
        pages = list(client.iter_event_pages("sso", START, END, limit=4_000))
    assert len(pages) >= 3 and pages[-1].is_last and not any(p.is_last for p in pages[:-1])
    posts = [r for r in sim.requests if r.path.endswith("/events")]
    assert len(posts) == len(pages)
    first = posts[0].json_body
    assert "search_after" not in first and first["sort"] == "ASC" and first["limit"] == 4_000
    for previous_page, request in zip(pages, posts[1:], strict=False):
        assert request.json_body == {**first, "search_after": previous_page.search_after}
    timestamps = [e.timestamp for p in pages for e in p.events]
    assert timestamps == sorted(timestamps)


def test_events_of_an_empty_window_and_start_after_end(sim):
    sim.clear_requests()
    with connect(sim) as client:
        assert list(client.iter_event_pages("sso", END, START)) == []
        assert client.count_events("sso", END, END) == 0
        assert sim.requests == []
        pages = list(client.iter_event_pages("sso", START - timedelta(days=300), START - timedelta(days=299)))
    assert [(len(p.events), p.is_last) for p in pages] == [(0, True)]


def test_single_tenant_key_sees_its_organization(sim):
    with connect(sim) as client:
        assert [o.id for o in client.list_organizations()] == [sim.org_ids["primary"]]
        assert client.get_organization(sim.org_ids["primary"])["_id"] == sim.org_ids["primary"]
        assert client.get_self()["roleName"] == "Administrator With Billing"


# --------------------------------------------------------------------------------------------------
# keys and roles


def test_multi_tenant_key_needs_an_organization(sim):
    with connect(sim, "multi_tenant") as client:
        assert {o.id for o in client.list_organizations()} == set(sim.org_ids.values())
        with pytest.raises(OrganizationRequired):
            list(client.iter_system_users())
        with pytest.raises(OrganizationRequired):
            client.count_events("sso", START, END)


def test_multi_tenant_key_with_an_organization(sim):
    sim.clear_requests()
    org = sim.org_ids["secondary"]
    with connect(sim, "multi_tenant", org_id=org) as client:
        assert len(client.list_organizations()) == 3
        users = list(client.iter_system_users())
        assert client.count_events("directory", START, END) >= 0
    assert sorted(u.id for u in users) == sorted(u["_id"] for u in sim.tenant("secondary").users)
    for record in sim.requests:
        sent = record.headers.get("x-org-id")
        assert sent == (None if record.path.startswith("/api/organizations") else org), record.path


@pytest.mark.parametrize("org_id", ["0123456789abcdef01234567", "not-an-object-id"])
def test_unknown_or_malformed_organization(sim, org_id):
    with connect(sim, "multi_tenant", org_id=org_id) as client, pytest.raises(OrganizationNotFound) as caught:
        list(client.iter_system_users())
    assert org_id in caught.value.message


def test_organization_of_someone_else(sim):
    with (
        connect(sim, "admin", org_id=sim.org_ids["secondary"]) as client,
        pytest.raises(OrganizationNotFound),
    ):
        list(client.iter_system_users())


def test_read_only_key_can_read_but_not_write(sim):
    with connect(sim, "read_only") as client:
        user = next(client.iter_system_users())
        for write in (
            lambda: client.create_system_user(username="ro.test", email="ro.test@acme.example"),
            lambda: client.suspend_system_user(user.id),
            lambda: client.delete_system_user(user.id),
            lambda: client.activate_system_user(user.id),
        ):
            with pytest.raises(PermissionDenied) as caught:
                write()
            assert "Read Only" in caught.value.message and not caught.value.retryable


@pytest.mark.parametrize("key", ["billing_only", "command_runner"])
def test_keys_without_read_rights(sim, key):
    with connect(sim, key) as client:
        for listing in (
            client.iter_system_users,
            client.iter_administrator_pages,
            client.iter_application_pages,
        ):
            with pytest.raises(PermissionDenied):
                list(listing())


def test_billing_only_can_still_validate(sim):
    with connect(sim, "billing_only") as client:
        assert [o.id for o in client.list_organizations()] == [sim.org_ids["primary"]]


@pytest.mark.parametrize(("key", "org"), [("no_di", None), ("multi_tenant", "no_di")])
def test_no_directory_insights(sim, key, org):
    org_id = sim.org_ids[org] if org else None
    with connect(sim, key, org_id=org_id) as client:
        assert list(client.iter_system_users())  # the rest works
        with pytest.raises(DirectoryInsightsUnavailable):
            list(client.iter_event_pages("sso", START, END))
        with pytest.raises(DirectoryInsightsUnavailable):
            client.count_events("directory", START, END)


def test_unknown_key(sim):
    client = JumpCloudClient("jcapi-nobody-knows-this-key-0000", base_url=sim.base_url)
    with client, pytest.raises(InvalidApiKey) as caught:
        client.list_organizations()
    assert "jcapi-nobody-knows-this-key-0000" not in str(caught.value)


# --------------------------------------------------------------------------------------------------
# faults


def test_rate_limits_and_outages_change_nothing_but_timing(fresh_sim):
    with connect(fresh_sim) as client:
        clean = _everything(client, apps=3)
    fresh_sim.clear_requests()
    fresh_sim.set_faults(
        FaultConfig(rate_429=0.3, retry_after_share=0.5, retry_after_seconds=1, rate_503=0.15, seed=3)
    )
    with connect(fresh_sim, max_retries=10) as client:
        faulty = _everything(client, apps=3)
    assert faulty == clean
    records = fresh_sim.requests
    faults = Counter(r.fault for r in records)
    assert faults["429"] >= 3 and faults["503"] >= 1  # the fault sequence is seeded, so this is stable
    with_wait = [i for i, r in enumerate(records) if r.retry_after]
    assert with_wait, "the seed should produce 429s carrying Retry-After"
    for i in with_wait:
        asked, retry = records[i], records[i + 1]  # one client, one thread: the next request is the retry
        assert (retry.method, retry.path, retry.query, retry.json_body) == (
            asked.method,
            asked.path,
            asked.query,
            asked.json_body,
        )
        assert retry.at - asked.at >= asked.retry_after


def test_truncated_bodies_are_read_again(fresh_sim):
    with connect(fresh_sim) as client:
        clean = _everything(client, apps=3)
    fresh_sim.clear_requests()
    fresh_sim.set_faults(FaultConfig(truncate_rate=0.15, seed=5))
    with connect(fresh_sim) as client:
        assert _everything(client, apps=3) == clean
    assert any(r.fault == "truncate" for r in fresh_sim.requests)


def test_malformed_records_are_skipped_and_counted(fresh_sim):
    with connect(fresh_sim) as client:
        clean = _everything(client, apps=0)
    fresh_sim.set_faults(FaultConfig(malformed_rate=0.05, seed=3))
    with connect(fresh_sim) as client:
        broken = _everything(client, apps=0)
    assert broken["skipped"]["users"] > 0 and broken["skipped"]["sso"] > 0
    assert set(broken["users"]) <= set(clean["users"])
    assert len(broken["users"]) + broken["skipped"]["users"] == len(clean["users"])
    for service in ("directory", "sso"):
        assert len(broken["events"][service]) + broken["skipped"][service] == len(clean["events"][service])


# --------------------------------------------------------------------------------------------------
# writes


def test_user_lifecycle(fresh_sim):
    tenant = fresh_sim.tenant("primary")
    with connect(fresh_sim) as client:
        created = client.create_system_user(
            username="jane.q.doe",
            email="jane.q.doe@acme.example",
            firstname="Jane",
            lastname="Doe",
            state="STAGED",
        )
        assert (created.username, created.state) == ("jane.q.doe", "STAGED")
        assert tenant.user_by_username("jane.q.doe")["_id"] == created.id
        post = [r for r in fresh_sim.requests if r.method == "POST" and r.path == "/api/systemusers"][-1]
        assert post.json_body["username"] == "jane.q.doe"

        with pytest.raises(Conflict):
            client.create_system_user(username="jane.q.doe", email="other@acme.example")
        assert [u.id for u in client.find_system_users(username="jane.q.doe")] == [created.id]
        assert [u.id for u in client.find_system_users(email="jane.q.doe@acme.example")] == [created.id]

        client.activate_system_user(created.id)
        assert client.get_system_user(created.id).state == "ACTIVATED"

        suspended = client.suspend_system_user(created.id)
        assert suspended.suspended and suspended.state == "SUSPENDED"
        put = [r for r in fresh_sim.requests if r.method == "PUT"][-1]
        assert put.json_body == {"state": "SUSPENDED", "suspended": True}
        assert tenant.user(created.id)["suspended"] is True

        restored = client.unsuspend_system_user(created.id)
        assert not restored.suspended and restored.state == "ACTIVATED"
        assert client.update_system_user(created.id, {"jobTitle": "CFO"}).job_title == "CFO"

        deleted = client.delete_system_user(created.id)
        assert deleted["_id"] == created.id
        with pytest.raises(NotFound):
            client.get_system_user(created.id)


def test_writes_go_to_the_chosen_organization(fresh_sim):
    org = fresh_sim.org_ids["secondary"]
    with connect(fresh_sim, "multi_tenant", org_id=org) as client:
        user = client.create_system_user(username="msp.made", email="msp.made@globex.example")
    assert fresh_sim.tenant("secondary").user(user.id) is not None
    assert fresh_sim.tenant("primary").user(user.id) is None
