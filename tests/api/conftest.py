"""API fixtures: clients authenticated by API token (as scripts use the API) or by session."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.factories import api_token_for


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_for(user)}")
    return client


@pytest.fixture
def admin_api(admin_user) -> APIClient:
    return token_client(admin_user)


@pytest.fixture
def viewer_api(viewer_user) -> APIClient:
    return token_client(viewer_user)


@pytest.fixture
def anonymous_api() -> APIClient:
    return APIClient()
