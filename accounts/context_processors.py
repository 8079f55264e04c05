from typing import Any

from accounts.roles import is_admin, role_of


def roles(request: Any) -> dict[str, Any]:
    user = getattr(request, "user", None)
    return {"user_is_admin": is_admin(user), "user_role": role_of(user)}
