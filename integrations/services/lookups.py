"""Reads from the provider on request (not from the synced rows): one user's details right now —
manager, groups, MFA methods — which the syncs do not keep. Cached for a few minutes per user, so
opening a page twice asks the provider once; every failure becomes a sentence, never a 500."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.core.cache import cache

from integrations.models import Application, AppUser
from integrations.providers import UserDetails, registry

logger = logging.getLogger(__name__)
LIVE_SECONDS = 5 * 60


@dataclass
class LiveProfile:
    details: UserDetails | None = None
    manager: AppUser | None = None
    # The manager's id when torii does not hold that user (yet).
    manager_external_id: str = ""
    error: str = ""
    groups: list[str] = field(default_factory=list)


def directory_user_live_profile(*, person: AppUser) -> LiveProfile:
    connection = person.connection
    if not connection.is_live:
        return LiveProfile(error="The account is disconnected: torii can no longer ask it.")
    if connection.status == "needs_reconnect":
        return LiveProfile(error="The account's API key was rejected; rotate the key to see live details.")
    key = f"torii:user-live:{connection.pk}:{person.external_id}"
    details = cache.get(key)
    if not isinstance(details, UserDetails):
        try:
            details = registry.get(connection.provider).user_details(connection, person.external_id)
        except NotImplementedError:
            return LiveProfile(error="This integration cannot read live user details.")
        except Exception as exc:  # the provider's errors carry a message for people
            logger.warning("live details of user %s failed: %s", person.pk, type(exc).__name__)
            message = str(getattr(exc, "message", "") or "").strip()
            return LiveProfile(error=message or "The account could not be asked right now; try again later.")
        cache.set(key, details, timeout=LIVE_SECONDS)
    manager = None
    if details.manager_external_id:
        manager = (
            AppUser.objects.filter(
                connection_id=connection.pk,
                external_id=details.manager_external_id,
                application__kind=Application.Kind.DIRECTORY,
            )
            .only("id", "display_name", "first_name", "last_name", "username", "email", "external_id")
            .first()
        )
    return LiveProfile(
        details=details,
        manager=manager,
        manager_external_id=details.manager_external_id,
        groups=list(details.groups),
    )
