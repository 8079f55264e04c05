"""The error families the core reacts to. A provider's own errors subclass them.

The core never imports a provider: it catches these families and decides what a sync does next.

| family              | what the core does                                            |
|---------------------|---------------------------------------------------------------|
| CredentialsRejected | ends the run, marks the connection "needs reconnect"          |
| RateLimited         | retries the task no earlier than `retry_after`                |
| UpstreamUnavailable | retries the task later (backoff), from its checkpoint         |
| FeatureUnavailable  | skips the stream: the account does not have what it reads     |
| ProviderError       | (any other) fails the stream, with `message` shown to admins  |
"""

from __future__ import annotations


class ProviderError(Exception):
    """An upstream problem a provider explains: `message` is written for the admin who acts on it
    and never holds a secret."""

    def __init__(self, message: str, *, request_id: str = "") -> None:
        # Only the message goes into args: args are what tracebacks, pickling and logs print.
        super().__init__(message)
        self.message = message
        self.request_id = request_id

    def __str__(self) -> str:
        return self.message


class CredentialsRejected(ProviderError):
    """The provider refused the stored credentials (revoked, expired): reconnect."""


class RateLimited(ProviderError):
    """The provider asked us to slow down; try again no earlier than `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, request_id: str = "") -> None:
        super().__init__(message, request_id=request_id)
        self.retry_after = retry_after


class UpstreamUnavailable(ProviderError):
    """The provider did not answer usefully (5xx, timeout, broken body): try again later."""

    retry_after: float | None = None


class FeatureUnavailable(ProviderError):
    """The account lacks what a stream reads (e.g. no usage-event product): skip the stream."""
