"""Admin site registrations. The audit log (ActionRun) is read-only here: no add, change or delete."""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from integrations.models import ActionRun


@admin.register(ActionRun)
class ActionRunAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "category",
        "action",
        "connection_name",
        "target_username",
        "actor_username",
        "status",
    )
    list_filter = ("category", "status", "action")
    search_fields = (
        "target_username",
        "target_external_id",
        "actor_username",
        "connection_name",
        "request_id",
    )
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    actions = None  # no bulk "delete selected"

    def get_readonly_fields(self, request: Any, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False
