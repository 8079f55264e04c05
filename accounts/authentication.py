"""REST API token authentication: django-rest-knox's, hardened against malformed headers."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from knox.auth import TokenAuthentication
from rest_framework import exceptions

from accounts.tokens import api_token_touch


class ApiTokenAuthentication(TokenAuthentication):
    """`Authorization: Token <token>`. A malformed token is an invalid token (401), not a server
    error."""

    def authenticate_credentials(self, token: bytes) -> tuple[Any, Any]:
        # torii's tokens are printable ASCII; anything else (bytes that are not UTF-8, a NUL that
        # PostgreSQL refuses in a query) is no token.
        if not (token.isascii() and token.decode("ascii").isprintable()):
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        user, auth_token = super().authenticate_credentials(token)
        api_token_touch(auth_token)
        return user, auth_token
