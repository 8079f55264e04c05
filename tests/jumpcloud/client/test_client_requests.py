"""What goes on the wire: hosts per region, base_url, headers, x-org-id per route, write bodies."""

from __future__ import annotations

import json
import pickle
from datetime import UTC, datetime, timedelta

import pytest
import requests
from responses import matchers

from jumpcloud.client import REGION_HOSTS, JumpCloudClient
from jumpcloud.parsing import SystemUser

from .conftest import API_KEY, CONSOLE, DI

USER = {
    "_id": "u1",
    "username": "jane.doe",
    "email": "jane@example.com",
    "state": "ACTIVATED",
    "activated": True,
    "suspended": False,
}
START = datetime(2024, 5, 1, tzinfo=UTC)


def _di_ok(mocked, base: str) -> None:
    mocked.post(
        f"{base}/insights/directory/v1/events", json=[], headers={"X-Result-Count": "0", "X-Limit": "10000"}
    )


@pytest.mark.parametrize("region", ["us", "eu", "in"])
def test_region_hosts(mocked, region):
    console, api = REGION_HOSTS[region]
    mocked.get(f"{console}/api/systemusers", json={"totalCount": 0, "results": []})
    _di_ok(mocked, api)
    with JumpCloudClient(API_KEY, region=region) as client:
        list(client.iter_system_users())
        list(client.iter_event_pages("sso", START, START + timedelta(hours=1)))
    assert [call.request.url.split("?")[0] for call in mocked.calls] == [
        f"{console}/api/systemusers",
        f"{api}/insights/directory/v1/events",
    ]


def test_region_hosts_table():
    assert REGION_HOSTS == {
        "us": ("https://console.jumpcloud.com", "https://api.jumpcloud.com"),
        "eu": ("https://console.eu.jumpcloud.com", "https://api.eu.jumpcloud.com"),
        "in": ("https://console.in.jumpcloud.com", "https://api.in.jumpcloud.com"),
    }


def test_base_url_replaces_both_hosts(mocked):
    base = "http://127.0.0.1:8765"
    mocked.get(f"{base}/api/systemusers", json={"totalCount": 0, "results": []})
    _di_ok(mocked, base)
    with JumpCloudClient(API_KEY, region="eu", base_url=base + "/") as client:
        list(client.iter_system_users())
        list(client.iter_event_pages("sso", START, START + timedelta(hours=1)))
    assert [call.request.url.split("?")[0] for call in mocked.calls] == [
        f"{base}/api/systemusers",
        f"{base}/insights/directory/v1/events",
    ]


def test_invalid_configuration_is_refused_without_echoing_the_key():
    with pytest.raises(ValueError, match="region"):
        JumpCloudClient(API_KEY, region="mars")
    with pytest.raises(ValueError):
        JumpCloudClient("")
    with pytest.raises(ValueError) as caught:
        JumpCloudClient(API_KEY + "\n")
    assert API_KEY not in str(caught.value)
    with pytest.raises(ValueError):
        JumpCloudClient(API_KEY, base_url="ftp://example.com")


def test_standard_headers(mocked, client):
    mocked.get(f"{CONSOLE}/api/systemusers", json={"totalCount": 0, "results": []})
    list(client.iter_system_users())
    headers = mocked.calls[0].request.headers
    assert headers["x-api-key"] == API_KEY
    assert headers["Accept"] == "application/json"
    assert headers["User-Agent"] == "torii-jumpcloud/1.0"
    assert "Content-Type" not in headers  # no body, no content type
    assert "x-org-id" not in headers  # no org configured


ORG_SCOPED = [
    ("iter_system_users", (), "GET", "/api/systemusers", {"totalCount": 0, "results": []}),
    ("iter_administrator_pages", (), "GET", "/api/users", {"totalCount": 0, "results": []}),
    ("iter_application_pages", (), "GET", "/api/applications", {"totalCount": 0, "results": []}),
    ("iter_application_binding_pages", ("a1",), "GET", "/api/v2/applications/a1/users", []),
    ("iter_user_group_members", ("g1",), "GET", "/api/v2/usergroups/g1/members", []),
    ("get_system_user", ("u1",), "GET", "/api/systemusers/u1", USER),
    ("get_self", (), "GET", "/api/users/getSelf", {"_id": "me"}),
]


@pytest.mark.parametrize(("method_name", "args", "verb", "path", "body"), ORG_SCOPED)
def test_org_scoped_routes_carry_x_org_id(mocked, method_name, args, verb, path, body):
    mocked.add(verb, f"{CONSOLE}{path}", json=body)
    with JumpCloudClient(API_KEY, org_id="org-7") as client:
        result = getattr(client, method_name)(*args)
        if not isinstance(result, SystemUser | dict):
            list(result)
    assert mocked.calls[0].request.headers["x-org-id"] == "org-7"


def test_directory_insights_carry_x_org_id(mocked):
    mocked.post(f"{DI}/events/count", json={"count": 0})
    with JumpCloudClient(API_KEY, org_id="org-7") as client:
        client.count_events("sso", START, START + timedelta(hours=1))
    assert mocked.calls[0].request.headers["x-org-id"] == "org-7"


def test_organization_routes_never_carry_x_org_id(mocked):
    mocked.get(f"{CONSOLE}/api/organizations", json={"totalCount": 1, "results": [{"_id": "org-7"}]})
    mocked.get(f"{CONSOLE}/api/organizations/org-7", json={"_id": "org-7", "settings": {}})
    with JumpCloudClient(API_KEY, org_id="org-7") as client:
        client.list_organizations()
        assert client.get_organization("org-7")["_id"] == "org-7"
    assert [("x-org-id" in call.request.headers) for call in mocked.calls] == [False, False]


def test_ids_are_quoted_into_one_path_segment(mocked, client):
    mocked.get(f"{CONSOLE}/api/systemusers/..%2Fusers%2FgetSelf", json=USER)
    client.get_system_user("../users/getSelf")
    assert mocked.calls[0].request.path_url == "/api/systemusers/..%2Fusers%2FgetSelf"
    with pytest.raises(ValueError):
        client.get_system_user("")


# --------------------------------------------------------------------------------------------------
# writes


def _json(call) -> dict:
    return json.loads(call.request.body)


def test_create_system_user(mocked, client):
    mocked.post(f"{CONSOLE}/api/systemusers", json={**USER, "username": "Jane.Doe-2"})
    user = client.create_system_user(
        username="Jane.Doe-2", email="jane@example.com", firstname="Jane", state="STAGED", department="IT"
    )
    assert user.username == "Jane.Doe-2"
    call = mocked.calls[0]
    assert _json(call) == {
        "department": "IT",
        "username": "Jane.Doe-2",
        "email": "jane@example.com",
        "firstname": "Jane",
        "state": "STAGED",
    }
    assert call.request.headers["Content-Type"] == "application/json"


def test_update_is_a_partial_put(mocked, client):
    mocked.put(f"{CONSOLE}/api/systemusers/u1", json={**USER, "jobTitle": "CTO"})
    assert client.update_system_user("u1", {"jobTitle": "CTO"}).job_title == "CTO"
    assert _json(mocked.calls[0]) == {"jobTitle": "CTO"}


def test_suspend_and_unsuspend_send_state_and_flag_together(mocked, client):
    mocked.put(f"{CONSOLE}/api/systemusers/u1", json={**USER, "state": "SUSPENDED", "suspended": True})
    mocked.put(f"{CONSOLE}/api/systemusers/u1", json=USER)
    assert client.suspend_system_user("u1").suspended is True
    assert client.unsuspend_system_user("u1").state == "ACTIVATED"
    assert [_json(c) for c in mocked.calls] == [
        {"state": "SUSPENDED", "suspended": True},
        {"state": "ACTIVATED", "suspended": False},
    ]


def test_activate_posts_to_the_state_route_and_accepts_an_empty_body(mocked, client):
    mocked.post(f"{CONSOLE}/api/systemusers/u1/state/activate", body=b"", status=200)
    assert client.activate_system_user("u1") is None
    assert _json(mocked.calls[0]) == {}


def test_delete_returns_the_deleted_record(mocked, client):
    mocked.delete(f"{CONSOLE}/api/systemusers/u1", json=USER)
    assert client.delete_system_user("u1")["username"] == "jane.doe"


def test_find_system_users_by_username_and_email(mocked, client):
    url = f"{CONSOLE}/api/systemusers"
    mocked.get(
        url,
        json={"totalCount": 1, "results": [USER]},
        match=[
            matchers.query_param_matcher(
                {"filter": "username:$eq:jane.doe", "limit": "100", "skip": "0", "sort": "_id"}
            )
        ],
    )
    mocked.get(
        url,
        json={"totalCount": 1, "results": [USER]},
        match=[
            matchers.query_param_matcher(
                {"filter": "email:$eq:jane@example.com", "limit": "100", "skip": "0", "sort": "_id"}
            )
        ],
    )
    assert [u.id for u in client.find_system_users(username="jane.doe")] == ["u1"]
    assert [u.id for u in client.find_system_users(email="jane@example.com")] == ["u1"]
    assert client.find_system_users(username="jane.doe", email="other@example.com") == []
    with pytest.raises(ValueError):
        client.find_system_users()


# --------------------------------------------------------------------------------------------------
# the client object itself


def test_repr_shows_only_a_masked_suffix():
    client = JumpCloudClient(API_KEY, region="eu", org_id="org-7")
    text = repr(client)
    assert API_KEY not in text and API_KEY[:-4] not in text
    assert "…KEY9" in text and "'eu'" in text and "org-7" in text
    assert API_KEY not in str(client)
    assert API_KEY not in repr(vars(client))
    with pytest.raises(TypeError):
        pickle.dumps(client)
    client.close()


def test_short_keys_are_not_partially_revealed():
    assert "abcd" not in repr(JumpCloudClient("xyzabcd"))


def test_given_session_is_used_and_left_open(mocked):
    session = requests.Session()
    mocked.get(f"{CONSOLE}/api/systemusers", json={"totalCount": 0, "results": []})
    with JumpCloudClient(API_KEY, session=session) as client:
        list(client.iter_system_users())
    assert session.get_adapter(f"{CONSOLE}/api/systemusers").max_retries.total == 5
    session.close()


def test_last_request_id(mocked, client):
    mocked.get(f"{CONSOLE}/api/users/getSelf", json={}, headers={"x-request-id": "abc"})
    client.get_self()
    assert client.last_request_id == "abc"


def test_proxy_and_ca_bundle_come_from_the_environment_once_per_client(monkeypatch):
    """The environment is read when the client is built (not on every request): a proxy for its
    hosts, NO_PROXY, and a CA bundle still apply."""
    for name in (
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp.example:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/corp/ca.pem")
    client = JumpCloudClient(API_KEY, region="eu")
    console, di = REGION_HOSTS["eu"]
    session = client._session  # noqa: SLF001
    assert session.trust_env is False
    for base in (console, di):
        assert session.proxies[f"https://{base.split('://')[1]}"] == "http://proxy.corp.example:3128"
    assert session.verify == "/etc/corp/ca.pem"

    monkeypatch.setenv("NO_PROXY", "jumpcloud.com")
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    bypassed = JumpCloudClient(API_KEY, region="eu")._session  # noqa: SLF001
    assert bypassed.proxies == {} and bypassed.verify is True

    monkeypatch.delenv("NO_PROXY")
    monkeypatch.delenv("HTTPS_PROXY")
    assert JumpCloudClient(API_KEY, base_url="http://127.0.0.1:8765")._session.proxies == {}  # noqa: SLF001
