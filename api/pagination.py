"""Pagination for the REST API: pages for inventories, a cursor for the (large, growing) event log."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination, PageNumberPagination


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
