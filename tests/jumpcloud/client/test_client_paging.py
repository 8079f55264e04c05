"""Paging: v1 envelopes, v2 bare arrays, Directory Insights cursors."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
import responses
from responses import matchers

from jumpcloud.client import READ_AHEAD, JumpCloudClient
from jumpcloud.errors import UpstreamError
from jumpcloud.parsing import SYSTEM_USER_FIELDS, AppBinding

from .conftest import API_KEY, CONSOLE, DI, users_page

USERS = f"{CONSOLE}/api/systemusers"
START = datetime(2024, 5, 1, tzinfo=UTC)
END = START + timedelta(days=1)


def _params(call) -> dict[str, str]:
    return dict(call.request.params)


def _event(i: int, **extra) -> dict:
    return {
        "id": f"e{i:06d}",
        "service": "sso",
        "event_type": "sso_auth",
        "timestamp": f"2024-05-01T00:00:{i % 60:02d}.123456789Z",
        "sso_token_success": True,
        **extra,
    }


def _di_headers(count: int, limit: int, cursor: list | None, *, style: str = "canonical") -> dict[str, str]:
    names = {
        "canonical": ("X-Result-Count", "X-Limit", "X-Search_after"),
        "lower": ("x-result-count", "x-limit", "x-search_after"),
        "upper": ("X-RESULT-COUNT", "X-LIMIT", "X-SEARCH_AFTER"),
        "capital": ("X-Result-Count", "X-Limit", "X-Search_After"),
    }[style]
    headers = {names[0]: str(count), names[1]: str(limit), "X-Request-Id": f"req-{count}"}
    if cursor is not None:
        headers[names[2]] = json.dumps(cursor)
    return headers


# --------------------------------------------------------------------------------------------------
# v1


def users_query(skip: int) -> dict[str, str]:
    """The system-user listing asks only for the fields it parses."""
    return {"limit": "100", "skip": str(skip), "sort": "_id", "fields": SYSTEM_USER_FIELDS}


def test_empty_first_page(mocked, client):
    mocked.get(USERS, json={"totalCount": 0, "results": []})
    pages = list(client.iter_system_user_pages())
    assert [(p.items, p.skipped, p.raw_count) for p in pages] == [([], 0, 0)]
    assert len(mocked.calls) == 1
    assert _params(mocked.calls[0]) == users_query(0)


def test_exactly_full_last_page_is_followed_by_an_empty_page(mocked, client):
    mocked.get(USERS, json=users_page(100), match=[matchers.query_param_matcher(users_query(0))])
    mocked.get(
        USERS, json={"totalCount": 100, "results": []}, match=[matchers.query_param_matcher(users_query(100))]
    )
    users = list(client.iter_system_users())
    assert len(users) == 100 and len(mocked.calls) == 2


def test_short_last_page_stops_and_total_count_is_ignored(mocked, client):
    # totalCount claims 5 (it lies): paging still follows page lengths
    mocked.get(USERS, json=users_page(100, total=5), match=[matchers.query_param_matcher(users_query(0))])
    mocked.get(
        USERS,
        json=users_page(100, start=100, total=5),
        match=[matchers.query_param_matcher(users_query(100))],
    )
    mocked.get(
        USERS,
        json=users_page(37, start=200, total=100_000),
        match=[matchers.query_param_matcher(users_query(200))],
    )
    users = list(client.iter_system_users())
    assert len(users) == 237 and len(mocked.calls) == 3
    assert users[-1].id == "u00236"


def test_malformed_records_are_counted_not_fatal_and_do_not_stop_paging(mocked, client):
    page = users_page(100)
    page["results"][3] = {"_id": None, "username": "ghost"}
    page["results"][50] = "not an object"
    mocked.get(USERS, json=page, match=[matchers.query_param_matcher(users_query(0))])
    mocked.get(USERS, json=users_page(1, start=100))
    pages = list(client.iter_system_user_pages())
    assert [(len(p.items), p.skipped, p.raw_count) for p in pages] == [(98, 2, 100), (1, 0, 1)]


def test_a_page_served_twice_stops_the_listing(mocked, client):
    mocked.get(USERS, json=users_page(100))  # the server ignores skip
    with pytest.raises(UpstreamError):
        list(client.iter_system_users())
    assert len(mocked.calls) == 2


MEMBERSHIP = f"{CONSOLE}/api/v2/usergroups/g1/membership"


def _members(count: int, start: int = 0) -> list[dict[str, object]]:
    return [{"id": f"u{start + i:05d}", "type": "user"} for i in range(count)]


def _at(skip: int) -> list[object]:
    return [matchers.query_param_matcher({"limit": "100", "skip": str(skip)})]


@pytest.fixture
def reading_ahead(mocked):
    with JumpCloudClient(API_KEY, read_ahead=READ_AHEAD) as c:
        yield c


def test_pages_in_flight_read_the_same_pages_and_stop_at_the_short_one(mocked, reading_ahead):
    for skip, count in ((0, 100), (100, 100), (200, 37), (300, 0), (400, 0), (500, 0)):
        mocked.get(MEMBERSHIP, json=_members(count, skip), match=_at(skip))
    pages = list(reading_ahead.iter_user_group_membership_pages("g1"))
    assert [p.raw_count for p in pages] == [100, 100, 37]
    assert [b.user_id for p in pages for b in p.items] == [f"u{i:05d}" for i in range(237)]
    # Without a total, one more page is asked ahead after each full page (1, then 2, ...): the
    # short list costs at most the requests in flight when its last page came.
    assert len(mocked.calls) <= 3 + 2


def test_a_one_page_list_read_ahead_costs_one_request(mocked, reading_ahead):
    mocked.get(MEMBERSHIP, json=_members(37), match=_at(0))
    assert [p.raw_count for p in reading_ahead.iter_user_group_membership_pages("g1")] == [37]
    assert len(mocked.calls) == 1


def test_v1_lists_read_ahead_no_further_than_their_total(mocked, reading_ahead):
    """totalCount bounds the pages asked ahead (but the listing still ends at a short page)."""
    for skip, count in ((0, 100), (100, 100), (200, 100), (300, 0)):
        mocked.get(
            USERS,
            json=users_page(count, start=skip, total=300),
            match=[
                matchers.query_param_matcher(
                    {"limit": "100", "skip": str(skip), "sort": "_id", "fields": SYSTEM_USER_FIELDS}
                )
            ],
        )
    users = [u.id for p in reading_ahead.iter_system_user_pages() for u in p.items]
    assert users == [f"u{i:05d}" for i in range(300)]
    # The three full pages, then the short one that proves the end: nothing past it.
    assert len(mocked.calls) == 4


def test_pages_in_flight_still_catch_a_server_that_ignores_skip(mocked, reading_ahead):
    mocked.get(MEMBERSHIP, json=_members(100))
    with pytest.raises(UpstreamError, match="same page twice"):
        list(reading_ahead.iter_user_group_membership_pages("g1"))


def test_pages_in_flight_go_one_by_one_when_the_server_ignores_limit(mocked, reading_ahead):
    """150 records for limit=100: the pages asked ahead would overlap, so reading goes on from
    skip=150 one page at a time, without duplicates."""
    mocked.get(MEMBERSHIP, json=_members(150), match=_at(0))
    mocked.get(MEMBERSHIP, json=_members(100, 100), match=_at(100))
    mocked.get(MEMBERSHIP, json=_members(20, 150), match=_at(150))
    ids = [b.user_id for p in reading_ahead.iter_user_group_membership_pages("g1") for b in p.items]
    assert ids == [f"u{i:05d}" for i in range(170)]


def test_map_ahead_raises_when_the_failing_call_ends(mocked, reading_ahead):
    def square(n: int) -> int:
        if n == 5:
            raise ValueError("five")
        return n * n

    seen = {}
    with pytest.raises(ValueError, match="five"):
        for item, result in reading_ahead.map_ahead(square, range(10)):
            seen[item] = result
    assert 5 not in seen
    assert all(result == n * n for n, result in seen.items())


def test_map_ahead_does_not_hold_the_others_behind_a_slow_call(mocked, reading_ahead):
    """The first call waits until the last item's result has reached the caller: read in order,
    that would never happen (the first call would time out)."""
    last_seen = threading.Event()

    def slow_first(n: int) -> int:
        if n == 0 and not last_seen.wait(timeout=30):
            raise TimeoutError("the first call held up the others")
        return n

    order = []
    for item, result in reading_ahead.map_ahead(slow_first, range(20)):
        assert item == result
        order.append(item)
        if item == 19:
            last_seen.set()
    assert sorted(order) == list(range(20))
    assert order[-1] == 0


def test_pages_are_lazy(mocked, client):
    mocked.get(USERS, json=users_page(100))
    pages = client.iter_system_user_pages()
    assert len(mocked.calls) == 0
    next(pages)
    assert len(mocked.calls) == 1


def test_administrators_and_applications(mocked, client):
    mocked.get(
        f"{CONSOLE}/api/users",
        json={
            "totalCount": 1,
            "results": [
                {
                    "_id": "a1",
                    "email": "root@example.com",
                    "roleName": "Administrator With Billing",
                    "enableMultiFactor": True,
                }
            ],
        },
    )
    mocked.get(
        f"{CONSOLE}/api/applications",
        json={
            "totalCount": 1,
            "results": [
                {
                    "_id": "app1",
                    "name": "zoom",
                    "displayLabel": "Zoom",
                    "ssoUrl": "https://sso.jumpcloud.com/saml2/zoom",
                    "active": True,
                    "sso": {"type": "saml"},
                }
            ],
        },
    )
    [admins] = client.iter_administrator_pages()
    [apps] = client.iter_application_pages()
    assert admins.items[0].role_name == "Administrator With Billing" and admins.items[0].mfa_enabled
    assert apps.items[0].display_label == "Zoom" and apps.items[0].sso_type == "saml"


def test_list_organizations_pages_and_never_sends_org_id(mocked):
    from jumpcloud.client import JumpCloudClient

    from .conftest import API_KEY

    first = {
        "totalCount": 101,
        "results": [{"_id": f"o{i:03d}", "displayName": f"Org {i}"} for i in range(100)],
    }
    mocked.get(
        f"{CONSOLE}/api/organizations",
        json=first,
        match=[matchers.query_param_matcher({"limit": "100", "skip": "0", "sort": "_id"})],
    )
    mocked.get(
        f"{CONSOLE}/api/organizations", json={"totalCount": 101, "results": [{"_id": "o100", "name": "Last"}]}
    )
    with JumpCloudClient(API_KEY, org_id="o001") as client:
        orgs = client.list_organizations()
    assert len(orgs) == 101 and orgs[-1].name == "Last"
    assert all("x-org-id" not in call.request.headers for call in mocked.calls)


# --------------------------------------------------------------------------------------------------
# v2


def test_v2_bindings_page_on_bare_arrays(mocked, client):
    url = f"{CONSOLE}/api/v2/applications/app1/users"
    group_path = [{"to": {"id": "g1", "type": "user_group"}}, {"to": {"id": "x", "type": "user"}}]
    full = [{"id": f"u{i}", "type": "user", "paths": [group_path]} for i in range(100)]
    full[0]["paths"] = [[{"to": {"id": "u0", "type": "user"}}], group_path]  # direct and via group
    full[1]["paths"] = []
    mocked.get(url, json=full, match=[matchers.query_param_matcher({"limit": "100", "skip": "0"})])
    mocked.get(
        url,
        json=[{"id": "u100"}, {"type": "user"}],
        match=[matchers.query_param_matcher({"limit": "100", "skip": "100"})],
    )
    pages = list(client.iter_application_binding_pages("app1"))
    assert [p.raw_count for p in pages] == [100, 2]
    assert pages[0].items[:3] == [AppBinding("u0", True), AppBinding("u1", True), AppBinding("u2", False)]
    assert pages[1].items == [AppBinding("u100", True)] and pages[1].skipped == 1


def test_v2_empty_page_and_exactly_full_page(mocked, client):
    url = f"{CONSOLE}/api/v2/usergroups/g1/members"
    mocked.get(
        url,
        json=[{"to": {"id": f"u{i}", "type": "user"}} for i in range(100)],
        match=[matchers.query_param_matcher({"limit": "100", "skip": "0"})],
    )
    mocked.get(url, json=[], match=[matchers.query_param_matcher({"limit": "100", "skip": "100"})])
    assert len(list(client.iter_user_group_members("g1"))) == 100
    assert len(mocked.calls) == 2


def test_v2_associations_send_targets(mocked, client):
    url = f"{CONSOLE}/api/v2/applications/app1/associations"
    mocked.get(
        url,
        json=[{"to": {"id": "g1", "type": "user_group"}, "attributes": None}],
        match=[matchers.query_param_matcher({"targets": "user_group", "limit": "100", "skip": "0"})],
    )
    assert list(client.iter_application_associations("app1", "user_group")) == [
        {"to": {"id": "g1", "type": "user_group"}, "attributes": None}
    ]


def test_v2_non_array_is_upstream_error(mocked, client):
    mocked.get(f"{CONSOLE}/api/v2/usergroups/g1/members", json={"results": []})
    with pytest.raises(UpstreamError):
        list(client.iter_user_group_members("g1"))


# --------------------------------------------------------------------------------------------------
# Directory Insights


def _bodies(mocked) -> list[dict]:
    return [json.loads(call.request.body) for call in mocked.calls]


@pytest.mark.parametrize("style", ["canonical", "lower", "upper", "capital"])
def test_events_follow_the_latest_cursor_until_a_short_page(mocked, client, style):
    mocked.post(
        f"{DI}/events", json=[_event(i) for i in range(3)], headers=_di_headers(3, 3, [1, "a"], style=style)
    )
    mocked.post(
        f"{DI}/events",
        json=[_event(i) for i in range(3, 6)],
        headers=_di_headers(3, 3, [2, "b"], style=style),
    )
    # the last page still carries a cursor header: only the count says it is the end
    mocked.post(f"{DI}/events", json=[_event(6)], headers=_di_headers(1, 3, [3, "c"], style=style))
    pages = list(client.iter_event_pages("sso", START, END, limit=3))
    assert [len(p.events) for p in pages] == [3, 3, 1]
    assert [p.is_last for p in pages] == [False, False, True]
    assert [p.search_after for p in pages] == [[1, "a"], [2, "b"], [3, "c"]]
    assert pages[0].request_id == "req-3" and pages[2].result_count == 1 and pages[2].limit == 3
    bodies = _bodies(mocked)
    assert bodies[0] == {
        "service": ["sso"],
        "start_time": "2024-05-01T00:00:00Z",
        "end_time": "2024-05-02T00:00:00Z",
        "limit": 3,
        "sort": "ASC",
    }
    assert bodies[1] == {**bodies[0], "search_after": [1, "a"]}
    assert bodies[2] == {**bodies[0], "search_after": [2, "b"]}
    assert mocked.calls[0].request.headers["Content-Type"] == "application/json"


def test_events_newest_first_ask_for_descending_order_and_keep_it_with_the_cursor(mocked, client):
    mocked.post(f"{DI}/events", json=[_event(2), _event(1)], headers=_di_headers(2, 2, [2, "b"]))
    mocked.post(f"{DI}/events", json=[_event(0)], headers=_di_headers(1, 2, [1, "a"]))
    pages = list(client.iter_event_pages("sso", START, END, limit=2, newest_first=True))
    assert [len(p.events) for p in pages] == [2, 1]
    bodies = _bodies(mocked)
    assert bodies[0]["sort"] == "DESC"
    assert bodies[1] == {**bodies[0], "search_after": [2, "b"]}


def test_events_empty_window(mocked, client):
    mocked.post(f"{DI}/events", json=[], headers=_di_headers(0, 10000, None))
    [page] = client.iter_event_pages("directory", START, END)
    assert page.is_last and page.events == [] and page.search_after is None


def test_events_exactly_full_then_empty(mocked, client):
    mocked.post(f"{DI}/events", json=[_event(0), _event(1)], headers=_di_headers(2, 2, [1, "a"]))
    mocked.post(f"{DI}/events", json=[], headers=_di_headers(0, 2, [1, "a"]))
    pages = list(client.iter_event_pages("sso", START, END, limit=2))
    assert [p.is_last for p in pages] == [False, True]


def test_events_without_count_headers_fall_back_to_lengths(mocked, client):
    mocked.post(f"{DI}/events", json=[_event(0), _event(1)], headers={"X-Search_after": "[1]"})
    mocked.post(f"{DI}/events", json=[_event(2)])
    pages = list(client.iter_event_pages("sso", START, END, limit=2))
    assert [(p.result_count, p.limit, p.is_last) for p in pages] == [(2, 2, False), (1, 2, True)]


def test_events_malformed_records_are_skipped(mocked, client):
    bad = [
        _event(0),
        {"id": "x", "timestamp": "not-a-date"},
        {"timestamp": "2024-05-01T00:00:00Z"},
        None,
        _event(1),
    ]
    mocked.post(f"{DI}/events", json=bad, headers=_di_headers(5, 10, [1]))
    [page] = client.iter_event_pages("sso", START, END, limit=10)
    assert len(page.events) == 2 and page.skipped == 3 and page.result_count == 5


def test_events_full_page_without_cursor_is_an_error(mocked, client):
    mocked.post(f"{DI}/events", json=[_event(0), _event(1)], headers=_di_headers(2, 2, None))
    with pytest.raises(UpstreamError):
        list(client.iter_event_pages("sso", START, END, limit=2))


def test_events_cursor_that_does_not_move_is_an_error(mocked, client):
    mocked.post(f"{DI}/events", json=[_event(0)], headers=_di_headers(1, 1, [5, "z"]))
    with pytest.raises(UpstreamError):
        list(client.iter_event_pages("sso", START, END, limit=1, search_after=[5, "z"]))


def test_events_resume_from_a_given_cursor(mocked, client):
    mocked.post(f"{DI}/events", json=[], headers=_di_headers(0, 10000, [9]))
    list(client.iter_event_pages("sso", START, END, search_after=[7, "q"]))
    assert _bodies(mocked)[0]["search_after"] == [7, "q"]


@pytest.mark.parametrize("delta", [timedelta(0), timedelta(seconds=-1)])
def test_start_not_before_end_sends_nothing(mocked, client, delta):
    assert list(client.iter_event_pages("sso", START, START + delta)) == []
    assert client.count_events("sso", START, START + delta) == 0
    assert len(mocked.calls) == 0


def test_times_are_sent_as_utc_z_and_the_window_only_widens(mocked, client):
    mocked.post(f"{DI}/events", json=[], headers=_di_headers(0, 10, None))
    paris = timezone(timedelta(hours=2))
    start = datetime(2024, 5, 1, 14, 0, 0, 999_999, tzinfo=paris)
    end = datetime(2024, 5, 1, 15, 30, 0, 1, tzinfo=paris)
    list(client.iter_event_pages("directory", start, end, limit=10))
    body = _bodies(mocked)[0]
    assert (body["start_time"], body["end_time"]) == ("2024-05-01T12:00:00Z", "2024-05-01T13:30:01Z")


def test_naive_times_are_refused(client):
    with pytest.raises(ValueError):
        list(client.iter_event_pages("sso", datetime(2024, 5, 1), datetime(2024, 5, 2)))


def test_limit_is_clamped(mocked, client):
    mocked.post(f"{DI}/events", json=[], headers=_di_headers(0, 10000, None))
    list(client.iter_event_pages("sso", START, END, limit=50_000))
    assert _bodies(mocked)[0]["limit"] == 10000


def test_count_events(mocked, client):
    mocked.post(f"{DI}/events/count", json={"count": 1234})
    assert client.count_events("sso", START, END) == 1234
    assert _bodies(mocked)[0] == {
        "service": ["sso"],
        "start_time": "2024-05-01T00:00:00Z",
        "end_time": "2024-05-02T00:00:00Z",
    }


def test_count_events_bad_shape(mocked, client):
    mocked.post(f"{DI}/events/count", json={"total": 3})
    with pytest.raises(UpstreamError):
        client.count_events("sso", START, END)


def test_events_retry_on_429_via_responses(mocked, client):
    mocked.post(f"{DI}/events", status=429, json={"message": "slow"})
    mocked.post(f"{DI}/events", json=[], headers=_di_headers(0, 10000, None))
    assert len(list(client.iter_event_pages("sso", START, END))) == 1
    assert len(mocked.calls) == 2
    assert isinstance(mocked, responses.RequestsMock)
