"""Development secrets under var/secrets are created owner-only from the first byte: the file is
opened with mode 0600 and O_EXCL, never written first and chmod-ed after (a window at 0644)."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from torii.devsecrets import persistent_secret


@pytest.fixture
def open_umask():
    """The most permissive umask: whatever mode a file is created with is the mode it gets."""
    old = os.umask(0)
    yield
    os.umask(old)


def test_a_new_secret_file_is_created_owner_only(tmp_path, open_umask, monkeypatch):
    # Refuse every chmod: a file that needs one after creation would stay world-readable.
    chmods: list[object] = []
    monkeypatch.setattr(os, "chmod", lambda *a, **k: chmods.append(a))
    monkeypatch.setattr(Path, "chmod", lambda self, *a, **k: chmods.append(self))
    value = persistent_secret(tmp_path, "secret_key")
    path = tmp_path / "secrets" / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600, oct(path.stat().st_mode)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_text() == value and len(value) >= 40
    assert chmods == [], "no chmod after the fact"


def test_the_file_is_never_visible_with_a_wider_mode(tmp_path, open_umask, monkeypatch):
    """Watch every open of the file: at the moment its content is written it is already 0600."""
    seen: list[int] = []
    real_fdopen = os.fdopen

    def watching_fdopen(fd, *args, **kwargs):
        seen.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return real_fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(os, "fdopen", watching_fdopen)
    persistent_secret(tmp_path, "field_encryption_key", fernet=True)
    assert seen == [0o600]


def test_an_existing_secret_is_reused_and_a_loose_mode_is_tightened(tmp_path):
    first = persistent_secret(tmp_path, "secret_key")
    assert persistent_secret(tmp_path, "secret_key") == first
    path = tmp_path / "secrets" / "secret_key"
    path.chmod(0o644)  # left by an older torii
    assert persistent_secret(tmp_path, "secret_key") == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_processes_starting_at_once_agree_on_one_secret(tmp_path):
    values: list[str] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        values.append(persistent_secret(tmp_path, "secret_key", fernet=True))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(values)) == 1 and len(values) == 8
