"""Columns of the users table and each user's choice of them (the column chooser).

The choice is stored per torii user on the server (dashboard.models.TablePreference): it follows
the admin to any browser, applies when the table is rendered, and survives htmx swaps without a
script. Name and the row actions are always shown; the rest can be hidden.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dashboard.models import TablePreference


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    default: bool
    # The ordering parameter (PeopleOrderingFilter) or "" when the column does not sort.
    sort: str = ""
    # Sorts newest / largest first on its first click.
    sort_desc: bool = False
    numeric: bool = False


USERS_TABLE = "users"
USER_COLUMNS: tuple[Column, ...] = (
    Column("username", "Username", False, "username"),
    Column("email", "Email", False, "email"),
    Column("account", "Account", True, "account"),
    Column("status", "Status", True, "status"),
    Column("role", "Role", True, "role"),
    Column("mfa", "MFA", False),
    Column("apps", "Apps", True, "apps", True, numeric=True),
    Column("last_used", "Last used", True, "last_used", True),
    Column("last_login", "Last JumpCloud login", True, "last_login", True),
    Column("created", "Created", False, "created", True),
)
_BY_KEY = {c.key: c for c in USER_COLUMNS}


def default_columns() -> list[str]:
    return [c.key for c in USER_COLUMNS if c.default]


def table_columns_get(*, user: Any, table: str = USERS_TABLE) -> list[str]:
    """The user's visible columns, in the table's order (the defaults until they choose)."""
    if not getattr(user, "is_authenticated", False):
        return default_columns()
    pref = TablePreference.objects.filter(user=user, table=table).values_list("columns", flat=True).first()
    if not isinstance(pref, list):
        return default_columns()
    chosen = {str(k) for k in pref}
    return [c.key for c in USER_COLUMNS if c.key in chosen]


def table_columns_set(*, user: Any, keys: Iterable[str], table: str = USERS_TABLE) -> list[str]:
    """Remember the user's columns; unknown keys are dropped (bad input loses nothing else)."""
    wanted = {k for k in keys if k in _BY_KEY}
    columns = [c.key for c in USER_COLUMNS if c.key in wanted]
    TablePreference.objects.update_or_create(user=user, table=table, defaults={"columns": columns})
    return columns


def visible(keys: list[str]) -> list[Column]:
    return [_BY_KEY[k] for k in keys if k in _BY_KEY]
