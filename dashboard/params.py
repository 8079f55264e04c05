"""Parsing ids out of query strings and forms, for pages and the API alike.

`str.isdigit()` is true for characters `int()` refuses ("²", "①") and `int()` takes non-ASCII
decimal digits ("١٢"): an id here is ASCII digits only, of a size a database key can hold.
Anything else is "no id", never an exception.
"""

from __future__ import annotations

from typing import Any

MAX_ID = 2**63 - 1


def parse_id(value: Any) -> int | None:
    if not isinstance(value, str) or not value or len(value) > 19:
        return None
    if not (value.isascii() and value.isdigit()):
        return None
    number = int(value)
    return number if 0 < number <= MAX_ID else None
