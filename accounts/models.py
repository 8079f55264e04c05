"""Rows of the accounts app: API tokens (hashed, expiring) and the counters behind torii's limits."""

from __future__ import annotations

from django.db import models
from knox.models import AbstractAuthToken


class ApiToken(AbstractAuthToken):
    """A REST API token (django-rest-knox): only its SHA-512 digest and its first characters are
    stored; the token itself is shown once, when it is made. Every token expires."""

    name = models.CharField(max_length=100, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.name or 'API token'} ({self.token_key}…)"


class RateCounter(models.Model):
    """One fixed-window counter (key includes the window), incremented atomically in SQL."""

    key = models.CharField(max_length=200, unique=True)
    count = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.key}={self.count}"


class ConcurrencySlot(models.Model):
    """One of `limit` slots of a scope (e.g. CSV exports of one user), held until released or until
    it expires (a process that died while holding one frees it after the lease time)."""

    scope = models.CharField(max_length=100)
    slot = models.PositiveSmallIntegerField()
    holder = models.CharField(max_length=64)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "slot"], name="uniq_slot_per_scope")]

    def __str__(self) -> str:
        return f"{self.scope}#{self.slot}"
