"""What the dashboard remembers per torii user: nothing but display preferences."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class TablePreference(models.Model):
    """The columns a user chose to see in one table (the users table's column chooser).

    Kept on the server, per user: it follows them to any browser, it is applied when the table is
    rendered (no flash of hidden columns, and hidden columns are not sent at all), and htmx swaps
    of the table keep it without any script.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="table_preferences"
    )
    table = models.CharField(max_length=32)
    columns = models.JSONField(default=list)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "table"], name="uniq_table_preference")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.table}"
