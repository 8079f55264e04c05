"""A connect that needs one more answer (which organization?) keeps the credentials it was given.

When a key manages several organizations, the admin picks one and submits again. The credentials are
not sent back to the browser (they must never appear in a page); they wait here instead: encrypted
with the credentials' MultiFernet, in the cache, for a few minutes, under a random token that only
the same torii user can redeem. The form carries the token, never a secret.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.views.decorators.debug import sensitive_variables

from integrations import crypto

PENDING_SECONDS = 15 * 60


@dataclass(frozen=True)
class PendingConnect:
    token: str
    credentials: dict[str, str]
    choices: list[tuple[str, str]]
    hint: str

    def __repr__(self) -> str:  # never a secret, even in a traceback
        return f"PendingConnect(token={self.token[:6]}…, choices={len(self.choices)})"


def _cache_key(user: Any, token: str) -> str:
    return f"torii:pending-connect:{getattr(user, 'pk', None) or 'anonymous'}:{token}"


@sensitive_variables("credentials")
def pending_connect_store(
    *, user: Any, credentials: Mapping[str, Any], choices: list[tuple[str, str]], hint: str
) -> str:
    """Keep the credentials (encrypted) and the organizations they offer; returns the token for the form."""
    token = secrets.token_urlsafe(24)
    payload = crypto.encrypt_json(
        {
            "credentials": {str(k): str(v) for k, v in credentials.items()},
            "choices": [list(c) for c in choices],
            "hint": hint,
        }
    )
    cache.set(_cache_key(user, token), payload, timeout=PENDING_SECONDS)
    return token


def pending_connect_get(*, user: Any, token: str) -> PendingConnect | None:
    """The pending connect of this user under this token, or None (expired, someone else's, forged)."""
    if not token or len(token) > 64:
        return None
    payload = cache.get(_cache_key(user, token))
    if not isinstance(payload, str):
        return None
    try:
        data = crypto.decrypt_json(payload)
    except crypto.CredentialsUnreadable:
        return None
    return PendingConnect(
        token=token,
        credentials={str(k): str(v) for k, v in (data.get("credentials") or {}).items()},
        choices=[(str(a), str(b)) for a, b in data.get("choices") or []],
        hint=str(data.get("hint") or ""),
    )


def pending_connect_forget(*, user: Any, token: str) -> None:
    if token:
        cache.delete(_cache_key(user, token))
