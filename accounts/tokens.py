"""REST API tokens: made, rotated and revoked here (every write), on django-rest-knox.

knox stores a SHA-512 digest of each token and its first characters (to find it), never the token;
the token is returned once, to show once. Every token here expires (API_TOKEN_MAX_DAYS at most),
and a password change revokes every token of that person (accounts.signals).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from accounts.models import ApiToken
from accounts.roles import is_viewer

# Token lifetimes offered when making one, in days; API_TOKEN_MAX_DAYS caps them.
LIFETIME_CHOICES = (7, 30, 90, 180, 365)
PREFIX = "torii_"


class TokenRefused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str  # the token itself: shown once, stored nowhere


def lifetime_choices() -> list[int]:
    cap = settings.API_TOKEN_MAX_DAYS
    return [d for d in LIFETIME_CHOICES if d <= cap] or [cap]


def api_token_list(*, user: Any) -> list[ApiToken]:
    return list(ApiToken.objects.filter(user=user, expiry__gt=timezone.now()).order_by("-created"))


def _audit(*, actor: Any, action: str, token: ApiToken, owner: Any) -> None:
    from accounts.people import audit_access_event

    audit_access_event(
        actor=actor,
        action=action,
        target=owner,
        parameters={"token": f"{token.token_key}…", "name": token.name},
    )


def api_token_create(*, user: Any, name: str, days: int, form_key: str = "") -> NewToken:
    """A new token for `user` (who needs a torii role), expiring in `days` days. A `form_key` seen
    before (the same form posted again) makes nothing: the token was shown the first time."""
    if not is_viewer(user):
        raise TokenRefused("Only people with a torii role can make API tokens.")
    if days not in lifetime_choices():
        raise TokenRefused("Choose a lifetime of " + ", ".join(str(d) for d in lifetime_choices()) + " days.")
    name = " ".join(name.split())[:100]
    if form_key and not cache.add(f"torii:token-form:{user.pk}:{form_key}", 1, timeout=24 * 3600):
        raise TokenRefused(
            "This form was already sent and its token shown then; it is not shown again. "
            "Make a new token if you did not copy it (and revoke the old one)."
        )
    with transaction.atomic():
        live = ApiToken.objects.filter(user=user, expiry__gt=timezone.now()).count()
        if live >= settings.API_TOKENS_PER_USER:
            raise TokenRefused(
                f"You have {live} tokens, the most allowed. Revoke one you no longer use first."
            )
        token, secret = ApiToken.objects.create(user, expiry=timedelta(days=days), prefix=PREFIX, name=name)
        _audit(actor=user, action="token.created", token=token, owner=user)
    return NewToken(token=token, secret=secret)


def api_token_revoke(*, token: ApiToken, actor: Any) -> None:
    with transaction.atomic():
        owner = token.user
        _audit(actor=actor, action="token.revoked", token=token, owner=owner)
        token.delete()


def api_token_rotate(*, token: ApiToken, actor: Any) -> NewToken:
    """Replace a token by a new one with the same name and lifetime; the old one stops working now."""
    lifetime = (token.expiry - token.created) if token.expiry and token.created else None
    days = max(1, round(lifetime.total_seconds() / 86400)) if lifetime else settings.API_TOKEN_MAX_DAYS
    days = min(days, settings.API_TOKEN_MAX_DAYS)
    with transaction.atomic():
        owner = token.user
        new, secret = ApiToken.objects.create(
            owner, expiry=timedelta(days=days), prefix=PREFIX, name=token.name
        )
        _audit(actor=actor, action="token.rotated", token=token, owner=owner)
        token.delete()
    return NewToken(token=new, secret=secret)


def api_tokens_revoke_all(*, user: Any) -> int:
    """Every token of `user` stops working (password changed, deactivated)."""
    deleted, _ = ApiToken.objects.filter(user=user).delete()
    return deleted


def api_token_touch(token: ApiToken) -> None:
    """Remember when a token was last used (at most once a minute per token)."""
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
