"""Secrets for the embedded (development) defaults.

A fresh checkout must run with no environment at all, yet a secret key or an encryption key that
is hard-coded in the repository would be a shared secret. So in development each checkout makes its
own once, under var/ (ignored by git), and reuses it. Production never reaches this module: there
the settings require the values from the environment.
"""

from __future__ import annotations

import base64
import os
import secrets
import stat
from pathlib import Path


def persistent_secret(var_dir: Path, name: str, *, fernet: bool = False) -> str:
    """The secret stored in var/secrets/<name>, made on first use.

    The file is created with its final mode (0600, owner only) in the same call that creates it
    (O_CREAT | O_EXCL): there is no moment at which another user could open it. Two processes
    starting at once both end up with the one value that was written first."""
    directory = var_dir / "secrets"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / name
    value = (
        base64.urlsafe_b64encode(secrets.token_bytes(32)).decode() if fernet else secrets.token_urlsafe(50)
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_existing(path)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
        handle.flush()
        os.fsync(handle.fileno())
    return value


def _read_existing(path: Path) -> str:
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        path.chmod(0o600)  # made by an older torii that created it first and chmod-ed it after
    value = path.read_text().strip()
    if not value:
        # Another process created it this instant and has not written yet (or a crash left it
        # empty): the writer holds the only value; wait briefly for it.
        import time

        for _ in range(50):
            time.sleep(0.02)
            value = path.read_text().strip()
            if value:
                break
        else:
            raise RuntimeError(f"{path} is empty: delete it and start again")
    return value
