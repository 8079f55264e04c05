"""Typed errors raised by the JumpCloud client.

Every message is written for the admin who has to act on it, and none of them ever contains the API
key: the client scrubs JumpCloud's own text before it lands here, and the key is never an argument.
`retryable` tells callers (Celery tasks, sync runs) whether trying the same call later can succeed.

Each error also belongs to one of the core's families (integrations.exceptions), which is how the
sync reacts to it without knowing JumpCloud: a rejected key → reconnect, rate limited → retry
after, upstream trouble → retry, no Directory Insights → skip the stream.
"""

from __future__ import annotations

from integrations import exceptions as core

# Where an administrator finds their API key: the one wording every help text and error uses.
API_KEY_PATH = "JumpCloud Admin Console → your name (top right) → My API Key"


class JumpCloudError(core.ProviderError):
    """Base class: `message` is safe to show, `detail` is JumpCloud's own (scrubbed) wording."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        request_id: str = "",
        detail: str = "",
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message, request_id=request_id)
        self.status = status
        self.detail = detail
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, message={self.message!r})"


class InvalidApiKey(JumpCloudError, core.CredentialsRejected):
    """401: the key is unknown, revoked or expired."""


class OrganizationRequired(JumpCloudError):
    """401 "no organization selected": a multi-tenant key used without an organization id."""


class OrganizationNotFound(JumpCloudError):
    """404 for the x-org-id header, or 400 for a malformed organization id."""


class PermissionDenied(JumpCloudError):
    """403: the administrator owning the key may not do this (read-only, billing, Command Runner)."""


class DirectoryInsightsUnavailable(JumpCloudError, core.FeatureUnavailable):
    """402/403/404 on Directory Insights: the organization is not entitled to it."""


class Conflict(JumpCloudError):
    """409, or 400 saying something already exists (duplicate username or email)."""


class BadRequest(JumpCloudError):
    """Any other 4xx: JumpCloud refused the input; `detail` carries its explanation."""


class NotFound(JumpCloudError):
    """404: the object does not exist (any more)."""


class ListUnavailable(NotFound, core.FeatureUnavailable):
    """404 on a top-level list: this account does not offer it (not: something was deleted)."""


class RateLimited(JumpCloudError, core.RateLimited):
    """429 that survived the retries, or asked for a longer wait than the client may sleep."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        JumpCloudError.__init__(self, message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class UpstreamError(JumpCloudError, core.UpstreamUnavailable):
    """5xx after retries, a connection failure, or a body that is not the JSON JumpCloud promised.

    `request_sent` is True when JumpCloud may have received (and acted on) the request: callers of
    non-idempotent writes must check the outcome before repeating them.
    """

    retryable = True

    def __init__(self, message: str, *, request_sent: bool = False, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.request_sent = request_sent


class RequestTimedOut(UpstreamError):
    """No answer in time after the request was sent: it may or may not have been carried out."""

    def __init__(self, message: str, **kwargs: object) -> None:
        kwargs.setdefault("request_sent", True)
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


__all__ = [
    "BadRequest",
    "Conflict",
    "DirectoryInsightsUnavailable",
    "InvalidApiKey",
    "JumpCloudError",
    "ListUnavailable",
    "NotFound",
    "OrganizationNotFound",
    "OrganizationRequired",
    "PermissionDenied",
    "RateLimited",
    "RequestTimedOut",
    "UpstreamError",
]
