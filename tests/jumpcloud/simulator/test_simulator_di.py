"""Directory Insights: body validation, paging headers, ordering, filters, event shapes, late arrival."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jumpcloud.simulator import Simulator, SimulatorConfig
from jumpcloud.simulator.timefmt import parse_rfc3339_ms
from tests.jumpcloud.simulator.support import ANCHOR, Api

START = "2025-02-01T00:00:00Z"
EVENTS = "/insights/directory/v1/events"
COUNT = "/insights/directory/v1/events/count"


def _ms(ts: str) -> int:
    value = parse_rfc3339_ms(ts)
    assert value is not None, ts
    return value


@pytest.fixture(scope="module")
def everything(sim: Simulator) -> list[dict[str, Any]]:
    a = Api(sim)
    return a.all_events({"service": ["all"], "start_time": START, "limit": 10000})


# --- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"start_time": START}, "service"),
        ({"service": "all", "start_time": START}, "service"),
        ({"service": [], "start_time": START}, "service"),
        ({"service": ["all"]}, "start_time"),
        ({"service": ["all"], "start_time": "yesterday"}, "start_time"),
        ({"service": ["all"], "start_time": "2025-02-01 00:00:00"}, "start_time"),
        ({"service": ["all"], "start_time": "2025-02-01T00:00:00"}, "start_time"),
        ({"service": ["all"], "start_time": "2999-01-01T00:00:00Z"}, "future"),
        (
            {"service": ["all"], "start_time": START, "end_time": "2025-01-01T00:00:00Z"},
            "Start Time not after End Time",
        ),
        ({"service": ["all"], "start_time": START, "end_time": START}, "Start Time not after End Time"),
        ({"service": ["all"], "start_time": START, "end_time": "soon"}, "end_time"),
        ({"service": ["all"], "start_time": START, "search_after": "abc"}, "search_after"),
        ({"service": ["all"], "start_time": START, "fields": []}, "fields"),
        ({"service": ["all"], "start_time": START, "fields": ["nope"]}, "fields"),
        ({"service": ["all"], "start_time": START, "search_term": {"and": "x"}}, "and"),
        ({"service": ["all"], "start_time": START, "search_term": {"and": [{"changes": "x"}]}}, "searchable"),
    ],
)
def test_invalid_queries_are_400(api: Api, body: dict[str, Any], fragment: str) -> None:
    for path in (EVENTS, COUNT):
        r = api.post(path, json=body)
        assert r.status_code == 400, (path, body, r.text)
        assert fragment in r.json()["message"]
        assert r.json()["error"] == "Bad Request"


def test_unknown_service_lists_the_valid_values(api: Api) -> None:
    r = api.events({"service": ["directory", "bogus"], "start_time": START})
    assert r.status_code == 400
    message = r.json()["message"]
    assert "bogus" in message
    for valid in ("all", "directory", "sso", "radius", "systems", "ldap", "mdm"):
        assert valid in message


def test_body_must_be_a_json_object(api: Api) -> None:
    assert api.post(EVENTS, data="[]", headers={"Content-Type": "application/json"}).status_code == 400
    assert api.post(EVENTS, data="{oops", headers={"Content-Type": "application/json"}).status_code == 400
    assert api.post(EVENTS).status_code == 400


@pytest.mark.parametrize(
    "limit, used",
    [
        (None, 1000),
        (5, 5),
        (10000, 10000),
        (0, 1000),
        (-3, 1000),
        (20000, 1000),
        ("50", 1000),
        (2.5, 1000),
        (True, 1000),
    ],
)
def test_limit_default_max_and_nonsense(api: Api, limit: Any, used: int) -> None:
    body: dict[str, Any] = {"service": ["all"], "start_time": START}
    if limit is not None:
        body["limit"] = limit
    r = api.events(body)
    assert r.status_code == 200
    assert r.headers["X-Limit"] == str(used)
    assert int(r.headers["X-Result-Count"]) == len(r.json()) == min(used, 4000)


@pytest.mark.parametrize(
    "sort, used",
    [
        (None, "ASC"),
        ("asc", "ASC"),
        ("DESC", "DESC"),
        ("desc", "DESC"),
        ("Desc", "DESC"),
        ("sideways", "ASC"),
        (3, "ASC"),
    ],
)
def test_sort_is_case_insensitive_and_defaults_to_asc(api: Api, sort: Any, used: str) -> None:
    body: dict[str, Any] = {"service": ["all"], "start_time": START, "limit": 50}
    if sort is not None:
        body["sort"] = sort
    r = api.events(body)
    assert r.headers["X-Sort"] == used
    stamps = [_ms(e["timestamp"]) for e in r.json()]
    assert stamps == sorted(stamps, reverse=used == "DESC")


# --- paging --------------------------------------------------------------------------------------


def test_headers_on_every_page_including_the_last(api: Api, sim: Simulator) -> None:
    body: dict[str, Any] = {"service": ["all"], "start_time": START, "limit": 1500}
    pages = 0
    while True:
        r = api.events(body)
        pages += 1
        for name in ("X-Result-Count", "X-Limit", "X-Sort", "X-Search_after", "X-Request-Id"):
            assert name in r.headers, name
        cursor = json.loads(r.headers["X-Search_after"])
        page = r.json()
        assert isinstance(cursor[0], int) and isinstance(cursor[1], str)
        assert cursor == [_ms(page[-1]["timestamp"]), page[-1]["id"]]
        if int(r.headers["X-Result-Count"]) < int(r.headers["X-Limit"]):
            break
        body["search_after"] = cursor
    assert pages == 3  # 4000 events: 1500 + 1500 + 1000


def test_paging_returns_everything_once_in_time_order(everything: list[dict[str, Any]], api: Api) -> None:
    ids = [e["id"] for e in everything]
    assert len(ids) == len(set(ids)) == 4000
    assert all(re.fullmatch(r"[0-9a-f]{24}", i) for i in ids)
    keys = [(_ms(e["timestamp"]), e["id"]) for e in everything]
    assert keys == sorted(keys)
    assert api.post(COUNT, json={"service": ["all"], "start_time": START}).json() == {"count": 4000}


def test_exactly_full_last_page_is_followed_by_an_empty_page_with_headers(api: Api) -> None:
    window = {"service": ["all"], "start_time": "2025-02-25T00:00:00Z", "end_time": "2025-02-25T06:00:00Z"}
    n = api.post(COUNT, json=window).json()["count"]
    assert 0 < n <= 10000
    full = api.events({**window, "limit": n})
    assert full.headers["X-Result-Count"] == full.headers["X-Limit"] == str(n)
    cursor = json.loads(full.headers["X-Search_after"])
    after = api.events({**window, "limit": n, "search_after": cursor})
    assert after.status_code == 200 and after.json() == []
    assert after.headers["X-Result-Count"] == "0"
    assert "X-Search_after" in after.headers


def test_descending_paging_is_the_reverse(api: Api, everything: list[dict[str, Any]]) -> None:
    backwards = api.all_events({"service": ["all"], "start_time": START, "limit": 700, "sort": "DESC"})
    assert [e["id"] for e in backwards] == [e["id"] for e in reversed(everything)]


def test_start_time_is_inclusive_and_end_time_too(api: Api, everything: list[dict[str, Any]]) -> None:
    pick = everything[1234]
    # start_time = an event's own timestamp (what pollers send back) returns that event first.
    page = api.events({"service": ["all"], "start_time": pick["timestamp"], "limit": 3}).json()
    same_ms = [e for e in everything if _ms(e["timestamp"]) == _ms(pick["timestamp"])]
    assert page[0]["id"] == same_ms[0]["id"]
    later = everything[1240]
    window = api.all_events(
        {"service": ["all"], "start_time": pick["timestamp"], "end_time": later["timestamp"], "limit": 10000}
    )
    assert window[0]["id"] == same_ms[0]["id"] and window[-1]["id"] == later["id"]


def test_skip_offsets_within_the_query(api: Api, everything: list[dict[str, Any]]) -> None:
    page = api.events({"service": ["all"], "start_time": START, "limit": 5, "skip": 10}).json()
    assert [e["id"] for e in page] == [e["id"] for e in everything[10:15]]


# --- filters -------------------------------------------------------------------------------------


def test_services(api: Api, everything: list[dict[str, Any]]) -> None:
    sso = api.all_events({"service": ["sso"], "start_time": START, "limit": 10000})
    directory = api.all_events({"service": ["directory"], "start_time": START, "limit": 10000})
    assert {e["event_type"] for e in sso} == {"sso_auth"}
    assert {e["service"] for e in directory} == {"directory"}
    assert len(sso) + len(directory) == len(everything)
    both = api.all_events({"service": ["directory", "sso"], "start_time": START, "limit": 10000})
    assert [e["id"] for e in both] == [e["id"] for e in everything]
    radius = api.events({"service": ["radius"], "start_time": START})
    assert radius.status_code == 200 and radius.json() == [] and radius.headers["X-Result-Count"] == "0"


def test_search_term(api: Api, everything: list[dict[str, Any]]) -> None:
    logins = [e for e in everything if e["event_type"] == "user_login_attempt"]
    found = api.all_events(
        {
            "service": ["all"],
            "start_time": START,
            "limit": 10000,
            "search_term": {"and": [{"event_type": "user_login_attempt"}]},
        }
    )
    assert [e["id"] for e in found] == [e["id"] for e in logins]
    who = logins[0]["initiated_by"]["username"]
    failed_or_who = api.all_events(
        {
            "service": ["all"],
            "start_time": START,
            "limit": 10000,
            "search_term": {
                "and": [
                    {"event_type": ["user_login_attempt", "admin_login_attempt"]},
                    {"or": [{"success": "false"}, {"initiated_by.username": who}]},
                ]
            },
        }
    )
    expected = [
        e
        for e in everything
        if e["event_type"] in ("user_login_attempt", "admin_login_attempt")
        and (e.get("success") is False or e["initiated_by"].get("username") == who)
    ]
    assert [e["id"] for e in failed_or_who] == [e["id"] for e in expected]
    count = api.post(
        COUNT,
        json={
            "service": ["all"],
            "start_time": START,
            "search_term": {"and": [{"event_type": "user_login_attempt"}]},
        },
    ).json()
    assert count == {"count": len(logins)}


def test_fields_projection(api: Api) -> None:
    page = api.events(
        {
            "service": ["all"],
            "start_time": START,
            "limit": 20,
            "fields": ["timestamp", "initiated_by.username", "unknown_field"],
        }
    ).json()
    for event in page:
        assert set(event) <= {"timestamp", "initiated_by"}
        assert set(event.get("initiated_by", {})) <= {"username"}


# --- what the events look like ---------------------------------------------------------------------


def test_event_variety(everything: list[dict[str, Any]], sim: Simulator) -> None:
    kinds = Counter(e["event_type"] for e in everything)
    assert {"user_login_attempt", "admin_login_attempt", "sso_auth", "user_update"} <= set(kinds)
    sso = [e for e in everything if e["event_type"] == "sso_auth"]
    directory = [e for e in everything if e["service"] == "directory"]
    # Timestamp precision: ms for directory; 9 fractional digits for most sso, whole seconds for some.
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["timestamp"]) for e in directory)
    nine = sum(bool(re.fullmatch(r".*\.\d{9}Z", e["timestamp"])) for e in sso)
    whole = sum(bool(re.fullmatch(r".*:\d\dZ", e["timestamp"])) for e in sso)
    assert nine > len(sso) * 0.6 and whole > 0
    # provider: null on directory events, "" on sso.
    assert all(e["provider"] is None for e in directory) and all(e["provider"] == "" for e in sso)
    # sso_auth carries sso_token_success, never success; failures carry error_message.
    assert all("success" not in e and isinstance(e["sso_token_success"], bool) for e in sso)
    failures = [e for e in sso if not e["sso_token_success"]]
    assert failures and any(e["error_message"] for e in failures)
    url_only = [e for e in failures if e["application"]["id"] == ""]
    assert url_only and all(e["application"]["sso_url"] and not e["application"]["name"] for e in url_only)
    # Some events come without client_ip / geoip.
    assert any("client_ip" not in e for e in everything)
    # Actors: admins by email without username, users by username.
    admin_logins = [e for e in everything if e["event_type"] == "admin_login_attempt"]
    assert all(
        e["initiated_by"]["type"] == "admin"
        and "email" in e["initiated_by"]
        and "username" not in e["initiated_by"]
        for e in admin_logins
    )
    user_logins = [e for e in everything if e["event_type"] == "user_login_attempt"]
    assert all(
        set(e["initiated_by"]) == {"id", "type", "username"} and e["initiated_by"]["type"] == "user"
        for e in user_logins
    )
    assert any(e["success"] is False and e["error_message"] for e in user_logins)
    # sso_auth events are mostly by users assigned to the app.
    t = sim.tenant()
    attributed = [e for e in sso if e["application"]["id"]]
    assigned = sum(e["initiated_by"]["id"] in set(t.app_user_ids(e["application"]["id"])) for e in attributed)
    assert assigned > 0.85 * len(attributed)
    # Every event names its organization.
    assert {e["organization"] for e in everything} == {sim.org_ids["primary"]}


def test_events_span_the_configured_days(everything: list[dict[str, Any]]) -> None:
    first, last = _ms(everything[0]["timestamp"]), _ms(everything[-1]["timestamp"])
    anchor = int(ANCHOR.timestamp() * 1000)
    assert anchor - 10 * 86_400_000 <= first < anchor - 9 * 86_400_000
    assert anchor - 86_400_000 < last <= anchor


# --- late arrival ----------------------------------------------------------------------------------


class Clock:
    def __init__(self, at: datetime) -> None:
        self.ms = int(at.timestamp() * 1000)

    def __call__(self) -> int:
        return self.ms

    def advance(self, seconds: float) -> None:
        self.ms += int(seconds * 1000)


def test_generated_late_events_become_visible_later() -> None:
    anchor = datetime(2025, 3, 5, 14, 0, tzinfo=UTC)  # a Wednesday afternoon: a busy hour
    clock = Clock(anchor)
    config = SimulatorConfig(
        seed=9,
        users=80,
        apps=5,
        days=1,
        events=200_000,
        anchor=anchor,
        late_share=0.3,
        late_min_seconds=5,
        late_max_seconds=60,
    )
    with Simulator(config, clock=clock).start() as sim:
        a = Api(sim)
        window = {"service": ["all"], "start_time": (anchor - timedelta(minutes=5)).isoformat()}
        now_ids = {e["id"] for e in a.all_events({**window, "limit": 10000})}
        now_count = a.post(COUNT, json=window).json()["count"]
        clock.advance(70)
        later = a.all_events({**window, "limit": 10000})
        late = [e for e in later if e["id"] not in now_ids]
        assert now_count == len(now_ids) < len(later) == a.post(COUNT, json=window).json()["count"]
        assert now_ids < {e["id"] for e in later}
        # They are late arrivals, not new events: their timestamps are before the first query.
        assert late and all(_ms(e["timestamp"]) <= int(anchor.timestamp() * 1000) for e in late)
        total = a.post(COUNT, json={"service": ["all"], "start_time": "2025-03-01T00:00:00Z"}).json()["count"]
        assert total == 200_000


def test_added_events_honour_their_visibility_delay() -> None:
    clock = Clock(datetime(2025, 3, 2, 9, 0, tzinfo=UTC))
    config = SimulatorConfig(seed=4, users=40, apps=4, days=2, events=500, anchor=ANCHOR)
    with Simulator(config, clock=clock).start() as sim:
        a = Api(sim)
        query = {"service": ["all"], "start_time": "2025-03-02T08:00:00Z"}
        assert a.post(COUNT, json=query).json() == {"count": 0}
        visible_now = sim.add_events(count=30, spread_seconds=60)
        delayed = sim.add_events(count=20, service="sso", spread_seconds=60, visibility_delay=10)
        assert len(set(visible_now) | set(delayed)) == 50
        assert {e["id"] for e in a.all_events({**query, "limit": 100})} == set(visible_now)
        clock.advance(11)
        events = a.all_events({**query, "limit": 100})
        assert {e["id"] for e in events} == set(visible_now) | set(delayed)
        assert all(e["event_type"] == "sso_auth" for e in events if e["id"] in set(delayed))
        keys = [(_ms(e["timestamp"]), e["id"]) for e in events]
        assert keys == sorted(keys)


def test_added_events_merge_with_generated_ones_in_order(fresh_sim: Simulator) -> None:
    a = Api(fresh_sim)
    query = {"service": ["all"], "start_time": "2025-02-20T00:00:00Z", "limit": 10000}
    before = a.all_events(query)
    added = fresh_sim.add_events(count=300, at=ANCHOR - timedelta(days=2), spread_seconds=86_400)
    after = a.all_events(query)
    assert len(after) == len(before) + 300
    assert {e["id"] for e in after} == {e["id"] for e in before} | set(added)
    keys = [(_ms(e["timestamp"]), e["id"]) for e in after]
    assert keys == sorted(keys)
    # Paging across the merge with small pages still gives each event once.
    small = a.all_events({**query, "limit": 37})
    assert [e["id"] for e in small] == [e["id"] for e in after]


# --- the next-page prefetch must never serve a stale page ------------------------------------------


def test_next_page_reflects_events_added_after_the_previous_page(fresh_sim: Simulator) -> None:
    a = Api(fresh_sim)
    query = {"service": ["all"], "start_time": "2025-02-24T00:00:00Z", "limit": 100}
    first = a.events(query)
    cursor = json.loads(first.headers["X-Search_after"])
    expected_before = a.all_events({**query, "limit": 10000})
    fresh_sim.wait_for_prefetch()  # page 2 is now rendered and waiting
    # Land new events right after the first page's last event, i.e. inside the second page.
    added = set(fresh_sim.add_events(count=5, at=(cursor[0] + 1) / 1000, spread_seconds=0))
    second = a.events({**query, "search_after": cursor}).json()
    assert added <= {e["id"] for e in second}
    old_ids = [e["id"] for e in expected_before[100:195]]
    assert [e["id"] for e in second if e["id"] not in added] == old_ids


def test_next_page_reflects_late_events_that_surfaced_between_pages() -> None:
    anchor = datetime(2025, 3, 5, 14, 0, tzinfo=UTC)
    clock = Clock(anchor)
    config = SimulatorConfig(
        seed=9,
        users=80,
        apps=5,
        days=1,
        events=200_000,
        anchor=anchor,
        late_share=0.3,
        late_min_seconds=5,
        late_max_seconds=60,
    )
    with Simulator(config, clock=clock).start() as sim:
        a = Api(sim)
        # ~4 events/s: pages 1 and 2 are full now, and page 2 lies inside the late-arrival window, so
        # events will still surface in it after it was prefetched.
        query = {"service": ["all"], "start_time": (anchor - timedelta(seconds=40)).isoformat(), "limit": 50}
        first = a.events(query)
        assert first.headers["X-Result-Count"] == "50"
        cursor = json.loads(first.headers["X-Search_after"])
        assert cursor[0] > int(anchor.timestamp() * 1000) - 60_000
        sim.wait_for_prefetch()
        clock.advance(70)  # late events of the window become visible before the client asks for page 2
        rest = a.all_events({**query, "search_after": cursor})
        everything_now = a.all_events({**query, "limit": 10000})
        later_part = [
            e["id"] for e in everything_now if (_ms(e["timestamp"]), e["id"]) > (cursor[0], cursor[1])
        ]
        assert [e["id"] for e in rest] == later_part


def test_settled_pages_are_prefetched(sim: Simulator) -> None:
    """The fast path is taken where it is safe (history well past the late-arrival window)."""
    a = Api(sim)
    query = {"service": ["all"], "start_time": START, "limit": 500}
    first = a.events(query)
    sim.wait_for_prefetch()
    cursor = json.loads(first.headers["X-Search_after"])
    key_state = sim.tenant().events.state_version()
    assert sim._api._prefetch._futures, "a page was prefetched"  # noqa: SLF001 - white-box check
    second = a.events({**query, "search_after": cursor}).json()
    assert sim.tenant().events.state_version() == key_state
    assert [e["id"] for e in second] == [e["id"] for e in a.all_events({**query, "limit": 10000})[500:1000]]
