"""Status + body -> typed error, with actionable text and never the API key."""

from __future__ import annotations

import pickle
import traceback

import pytest
import requests

from jumpcloud.client import JumpCloudClient
from jumpcloud.errors import (
    BadRequest,
    Conflict,
    DirectoryInsightsUnavailable,
    InvalidApiKey,
    JumpCloudError,
    ListUnavailable,
    NotFound,
    OrganizationNotFound,
    OrganizationRequired,
    PermissionDenied,
    RateLimited,
    RequestTimedOut,
    UpstreamError,
)

from .conftest import API_KEY, CONSOLE, DI

USERS = f"{CONSOLE}/api/systemusers"
START = "2024-05-01T00:00:00+00:00"


def _assert_key_free(error: BaseException, client: JumpCloudClient) -> None:
    rendered = "".join(traceback.format_exception(error))
    for text in (str(error), repr(error), repr(error.args), rendered, repr(client), str(client)):
        assert API_KEY not in text
    assert API_KEY.encode() not in pickle.dumps(error)


def _list_users(client: JumpCloudClient) -> None:
    list(client.iter_system_users())


@pytest.mark.parametrize(
    ("status", "body", "error_type", "text"),
    [
        (
            401,
            {"error": "Unauthorized", "message": "Unauthorized: api key user not found"},
            InvalidApiKey,
            "JumpCloud rejected the API key. Generate a new key",
        ),
        (401, {"message": "Unauthorized"}, InvalidApiKey, "reconnect"),
        (401, b"Unauthorized", InvalidApiKey, "JumpCloud rejected the API key"),
        (
            401,
            {"message": "Unauthorized: no organization selected"},
            OrganizationRequired,
            "Choose an organization",
        ),
        (403, {"message": "Forbidden"}, PermissionDenied, "lacks the rights"),
        (402, {"message": "Payment Required"}, PermissionDenied, "lacks the rights"),
        # A top-level list that is not there: the detail is unavailable, nothing was deleted.
        (404, {"message": "Not Found"}, ListUnavailable, "does not offer the list /api/systemusers"),
        (410, {"message": "Gone"}, ListUnavailable, "is unavailable"),
        (409, {"message": "Conflict"}, Conflict, "conflicts"),
        (400, {"message": "User already exists"}, Conflict, "already has a user"),
        (
            409,
            {"code": 409, "message": "username already exists", "status": "ALREADY_EXISTS"},
            Conflict,
            "username already exists",
        ),
        (
            400,
            {"code": 400, "message": "Invalid field: jobTitle", "status": "INVALID_ARGUMENT"},
            BadRequest,
            "Invalid field: jobTitle",
        ),
        (
            400,
            {
                "code": 400,
                "message": "Password validation fail",
                "status": "INVALID_ARGUMENT",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.BadRequest",
                        "fieldViolationsList": [{"field": "password", "description": "specialCharacter"}],
                    }
                ],
            },
            BadRequest,
            "password: specialCharacter",
        ),
        (400, b"<html><body>bad gateway-ish page</body></html>", BadRequest, "Check the values"),
        (422, {"error": "unprocessable"}, BadRequest, "unprocessable"),
        (500, {"message": "boom"}, UpstreamError, "server error (HTTP 500)"),
        (501, b"", UpstreamError, "HTTP 501"),
    ],
)
def test_status_maps_to_typed_error(mocked, client, status, body, error_type, text):
    if isinstance(body, bytes):
        mocked.get(USERS, body=body, status=status, headers={"X-Request-Id": "req-1"})
    else:
        mocked.get(USERS, json=body, status=status, headers={"X-Request-Id": "req-1"})
    with pytest.raises(error_type) as caught:
        _list_users(client)
    error = caught.value
    assert text in error.message
    assert error.status == status
    assert error.request_id == "req-1"
    assert error.retryable is isinstance(error, UpstreamError | RateLimited)
    _assert_key_free(error, client)


def test_every_error_is_a_jumpcloud_error():
    for cls in (
        InvalidApiKey,
        OrganizationRequired,
        OrganizationNotFound,
        PermissionDenied,
        DirectoryInsightsUnavailable,
        Conflict,
        BadRequest,
        NotFound,
        RateLimited,
        UpstreamError,
        RequestTimedOut,
    ):
        assert issubclass(cls, JumpCloudError)
    assert issubclass(RequestTimedOut, UpstreamError)
    assert RequestTimedOut("x").request_sent is True
    assert UpstreamError("x").request_sent is False


def test_errors_survive_pickling_with_their_fields():
    error = RateLimited("wait", retry_after=12.0, status=429, request_id="r", detail="d")
    clone = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes, round-tripped
    assert (type(clone), clone.message, clone.retry_after, clone.status, clone.request_id, clone.detail) == (
        RateLimited,
        "wait",
        12.0,
        429,
        "r",
        "d",
    )


def test_rate_limited_carries_retry_after(mocked, client):
    mocked.get(USERS, json={"message": "Too Many Requests"}, status=429, headers={"Retry-After": "600"})
    with pytest.raises(RateLimited) as caught:
        _list_users(client)
    assert caught.value.retry_after == 600.0
    assert "600 s" in caught.value.message
    assert caught.value.retryable


def test_key_echoed_by_jumpcloud_is_scrubbed(mocked, client):
    mocked.get(USERS, json={"message": f"Unauthorized: key {API_KEY} revoked"}, status=401)
    with pytest.raises(InvalidApiKey) as caught:
        _list_users(client)
    assert "[redacted]" in caught.value.detail
    _assert_key_free(caught.value, client)


def test_long_bodies_are_cut(mocked, client):
    mocked.get(USERS, json={"message": "x" * 10_000}, status=400)
    with pytest.raises(BadRequest) as caught:
        _list_users(client)
    assert len(caught.value.detail) <= 500


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (404, {"message": "Organization not found"}),
        (400, {"message": "invalid x-org-id header: not an ObjectId"}),
        (400, {"message": "Bad Request: invalid organization id 'zz'"}),
        (404, {"message": "Not Found: organization 5a2af2a82cf2b0010053ea41 does not exist"}),
        (403, {"message": "Forbidden: this administrator cannot access that organization"}),
    ],
)
def test_bad_org_id_maps_to_organization_not_found(mocked, status, body):
    mocked.get(USERS, json=body, status=status)
    with (
        JumpCloudClient(API_KEY, org_id="5a2af2a82cf2b0010053ea41") as client,
        pytest.raises(OrganizationNotFound) as caught,
    ):
        _list_users(client)
    assert "5a2af2a82cf2b0010053ea41" in caught.value.message


def test_duplicate_email_mentioning_organization_stays_a_conflict(mocked):
    mocked.post(
        USERS, json={"message": "Bad Request: email 'it@organization.example' already exists"}, status=400
    )
    with JumpCloudClient(API_KEY, org_id="o1") as client, pytest.raises(Conflict):
        client.create_system_user(username="it", email="it@organization.example")


def test_get_organization_404_is_organization_not_found(mocked, client):
    mocked.get(f"{CONSOLE}/api/organizations/nope", json={"message": "Not Found"}, status=404)
    with pytest.raises(OrganizationNotFound):
        client.get_organization("nope")


@pytest.mark.parametrize(
    ("status", "message", "error_type"),
    [
        (403, "Forbidden: organization selection not allowed via header", PermissionDenied),
        (403, "Forbidden: the Read Only role cannot do this", PermissionDenied),
        (400, "Bad Request: email 'a@organization.example' is invalid", BadRequest),
    ],
)
def test_other_errors_mentioning_organizations_keep_their_type(mocked, status, message, error_type):
    mocked.get(USERS, json={"message": message}, status=status)
    with JumpCloudClient(API_KEY, org_id="o1") as client, pytest.raises(error_type):
        _list_users(client)


def test_directory_insights_not_enabled_for_this_organization(mocked):
    from datetime import datetime

    mocked.post(
        f"{DI}/events/count",
        json={"message": "Directory Insights is not enabled for this organization"},
        status=403,
    )
    with JumpCloudClient(API_KEY, org_id="o1") as client, pytest.raises(DirectoryInsightsUnavailable):
        client.count_events(
            "sso", datetime.fromisoformat(START), datetime.fromisoformat("2024-05-02T00:00:00Z")
        )


def test_plain_404_with_org_id_set_stays_not_found(mocked):
    mocked.get(f"{USERS}/u1", json={"message": "Not Found"}, status=404)
    with JumpCloudClient(API_KEY, org_id="o1") as client, pytest.raises(NotFound):
        client.get_system_user("u1")


@pytest.mark.parametrize("status", [402, 403, 404])
def test_directory_insights_not_entitled(mocked, client, status):
    mocked.post(f"{DI}/events", json={"message": "Directory Insights is not enabled"}, status=status)
    from datetime import datetime

    with pytest.raises(DirectoryInsightsUnavailable) as caught:
        list(
            client.iter_event_pages(
                "sso", datetime.fromisoformat(START), datetime.fromisoformat("2024-05-02T00:00:00+00:00")
            )
        )
    assert "Directory Insights is not available" in caught.value.message
    assert not caught.value.retryable


def test_directory_insights_without_org_is_organization_required(mocked, client):
    mocked.post(f"{DI}/events/count", json={"message": "Unauthorized: no organization selected"}, status=401)
    from datetime import datetime

    with pytest.raises(OrganizationRequired):
        client.count_events(
            "sso", datetime.fromisoformat(START), datetime.fromisoformat("2024-05-02T00:00:00Z")
        )


def test_unexpected_redirect_is_not_followed(mocked, client):
    mocked.get(USERS, status=302, headers={"Location": "https://evil.example/steal"})
    with pytest.raises(UpstreamError) as caught:
        _list_users(client)
    assert caught.value.retryable is False
    assert len(mocked.calls) == 1


@pytest.mark.parametrize(
    ("exc", "error_type", "sent"),
    [
        (requests.exceptions.ConnectTimeout("connect timed out"), UpstreamError, False),
        (requests.exceptions.ReadTimeout("read timed out"), RequestTimedOut, True),
        (requests.exceptions.SSLError("bad cert"), UpstreamError, False),
        (requests.exceptions.InvalidURL("bad url"), JumpCloudError, None),
    ],
)
def test_transport_exceptions_are_mapped(mocked, client, exc, error_type, sent):
    mocked.get(USERS, body=exc)
    with pytest.raises(error_type) as caught:
        _list_users(client)
    if sent is not None:
        assert caught.value.request_sent is sent
    assert "console.jumpcloud.com" in caught.value.message
    _assert_key_free(caught.value, client)


def test_invalid_json_on_a_read_is_retried_then_upstream_error(mocked, client, sleeps):
    mocked.get(USERS, body=b'{"totalCount": 3, "results": [', status=200)
    with pytest.raises(UpstreamError) as caught:
        _list_users(client)
    assert len(mocked.calls) == 3
    assert len(sleeps) == 2
    assert "unreadable" in caught.value.message


def test_unexpected_shape_is_upstream_error(mocked, client):
    mocked.get(USERS, json=["not", "an", "envelope"])
    with pytest.raises(UpstreamError):
        _list_users(client)
