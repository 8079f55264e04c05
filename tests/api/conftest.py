"""API fixtures: clients authenticated by DRF token (as scripts use the API) or by session."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


def token_client(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
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
