"""Pagination for the REST API: pages for inventories, a cursor for the (large, growing) event log."""

from __future__ import annotations

from typing import Any

from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination, PageNumberPagination


class StandardPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class UsageEventCursorPagination(CursorPagination):
    """Newest first; a cursor stays stable while new events are ingested (no skipped or repeated rows)."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
    ordering = ("-occurred_at", "-id")

    def decode_cursor(self, request: Any) -> Cursor | None:
        """DRF checks a cursor's offset but not its position, which goes straight into the query:
        a position that is not a time (a forged or damaged cursor) is an invalid cursor (404)."""
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            try:
                valid = parse_datetime(str(cursor.position)) is not None
            except ValueError:  # well-formed but impossible, e.g. month 13
                valid = False
            if not valid:
                raise NotFound(self.invalid_cursor_message)
        return cursor
