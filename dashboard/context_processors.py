from typing import Any

from accounts.roles import is_admin
from dashboard.nav import nav_links


def navigation(request: Any) -> dict[str, Any]:
    """The main menu, for signed-in pages only (the login page has none)."""
    user = getattr(request, "user", None)
    if not getattr(user, "is_authenticated", False):
        return {"nav_links": []}
    return {"nav_links": nav_links(request.path, is_admin=is_admin(user))}
