"""The event kinds an alert can be about, and their labels (one list, used by forms, API, pages)."""

from __future__ import annotations

from django.db import models


class EventKind(models.TextChoices):
    RECONNECT = "connection.needs_reconnect", "An account needs reconnecting"
    SYNC_FAILED_TWICE = "sync.failed_twice", "A sync failed twice in a row"
    USAGE_STALE = "usage.stale", "Usage data is out of date"
    ADMIN_ADDED = "admin.added", "A new administrator appeared"
    ADMIN_ROLE_CHANGED = "admin.role_changed", "An administrator's role changed"
    ADMIN_WITHOUT_MFA = "admin.no_mfa", "An administrator has no MFA"
    POLICY_AWAITING_APPROVAL = "policy.awaiting_approval", "A policy run waits for approval"
    POLICY_FINISHED = "policy.finished", "A policy run finished"
    TEST = "test", "Test message"


# What a channel can subscribe to (the test message is sent on request, to one channel).
SUBSCRIBABLE = [k for k in EventKind if k != EventKind.TEST]
