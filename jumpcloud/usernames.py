"""JumpCloud's username rules (docs/jumpcloud-api.md §3.3), in one place.

Used by the create-user form (live preview and explanation), by the action before it calls
JumpCloud, and by the simulator to refuse what JumpCloud refuses.
"""

from __future__ import annotations

import re
import unicodedata

MAX_LENGTH = 30  # Mac/Linux limit; Windows accounts are limited to 20.
WINDOWS_MAX_LENGTH = 20
_DISALLOWED_CHAR = re.compile(r"[^A-Za-z0-9._-]")


def normalize_username(raw: str) -> str:
    """What torii sends: surrounding space trimmed, inner runs of whitespace become one dot.

    'Jane Doe' -> 'Jane.Doe'. Nothing else is changed silently: other problems are reported by
    username_problems() so the admin decides.
    """
    return re.sub(r"\s+", ".", raw.strip())


def username_problems(username: str) -> list[str]:
    """Every reason JumpCloud would refuse this username, in words an admin can act on."""
    problems: list[str] = []
    if not username:
        return ["A username is required."]
    if not username[0].isascii() or not username[0].isalpha():
        problems.append("It must start with a letter.")
    if any(ch.isspace() for ch in username):
        problems.append("It cannot contain spaces.")
    if "@" in username:
        problems.append("It cannot contain '@' (use the email field for the address).")
    bad = sorted({ch for ch in _DISALLOWED_CHAR.findall(username) if not ch.isspace() and ch != "@"})
    if bad:
        problems.append("Only letters, digits, '.', '_' and '-' are allowed; remove: " + " ".join(bad))
    if len(username) > MAX_LENGTH:
        problems.append(f"It must be {MAX_LENGTH} characters or fewer (it has {len(username)}).")
    return problems


def windows_warning(username: str) -> str:
    if len(username) > WINDOWS_MAX_LENGTH:
        return f"Longer than {WINDOWS_MAX_LENGTH} characters: Windows device accounts will not accept it."
    return ""


def _ascii_part(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9._-]+", "", re.sub(r"\s+", ".", folded.strip().lower())).strip("._-")


def suggest_username(first_name: str, last_name: str, email: str) -> str:
    """A username JumpCloud accepts, from the name ("Zoë Müller" -> "zoe.muller") or else the
    email's local part; "" when neither gives one that starts with a letter."""
    name = ".".join(p for p in (_ascii_part(first_name), _ascii_part(last_name)) if p)
    local = _ascii_part(email.split("@", 1)[0]) if "@" in email else ""
    for candidate in (name, local):
        candidate = candidate[:MAX_LENGTH].strip("._-")
        if candidate and not username_problems(candidate):
            return candidate
    return ""
