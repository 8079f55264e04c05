"""Secrets for the embedded (development) defaults.

A fresh checkout must run with no environment at all, yet a secret key or an encryption key that
is hard-coded in the repository would be a shared secret. So in development each checkout makes its
own once, under var/ (ignored by git), and reuses it. Production never reaches this module: there
the settings require the values from the environment.
"""

from __future__ import annotations

import base64
import secrets
from pathlib import Path


def persistent_secret(var_dir: Path, name: str, *, fernet: bool = False) -> str:
    path = var_dir / "secrets" / name
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = (
        base64.urlsafe_b64encode(secrets.token_bytes(32)).decode() if fernet else secrets.token_urlsafe(50)
    )
    path.write_text(value)
    path.chmod(0o600)
    return value
