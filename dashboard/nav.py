"""The main menu: one list, in one place. A page that wants a menu entry adds one line here.

`prefix` decides which entry is current (the longest prefix of the path that matches wins), so
nested pages (a user's page under /users/) light up their section.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    icon: str
    # Only torii Admins see the entry (the view checks again).
    admin_only: bool = False


NAV: tuple[NavItem, ...] = (
    NavItem("Overview", "dashboard:home", "layout-dashboard"),
    NavItem("Integrations", "dashboard:integrations", "plug"),
    NavItem("Users", "dashboard:users", "users"),
    NavItem("Applications", "dashboard:applications", "app-window"),
    NavItem("Insights", "dashboard:insights", "chart-column"),
    NavItem("Policies", "dashboard:policies", "shield-check"),
    NavItem("Audit log", "dashboard:audit", "scroll-text"),
    NavItem("Alerts", "dashboard:alerts", "bell", admin_only=True),
    NavItem("People", "dashboard:people", "user-cog", admin_only=True),
)


@dataclass(frozen=True)
class NavLink:
    label: str
    url: str
    icon: str
    current: bool


def nav_links(path: str, *, is_admin: bool) -> list[NavLink]:
    """The menu for a request path: the entry whose URL is the longest prefix of it is current."""
    items: list[tuple[NavItem, str]] = []
    for item in NAV:
        if item.admin_only and not is_admin:
            continue
        try:
            items.append((item, reverse(item.url_name)))
        except NoReverseMatch:
            continue
    matches = [url for _, url in items if path == url or (url != "/" and path.startswith(url))]
    current = max(matches, key=len) if matches else None
    return [NavLink(i.label, url, i.icon, url == current) for i, url in items]
