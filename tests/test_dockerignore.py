"""The Docker image carries no secret: .dockerignore keeps them out of the build context.

The Dockerfile ends with `COPY . .`; without a .dockerignore, `.env` (SECRET_KEY,
FIELD_ENCRYPTION_KEYS), `var/` (the development encryption key, the embedded PostgreSQL's data), `.git` and
`.venv` would land in image layers. The patterns are matched here the way docker build matches
them (Go filepath.Match per path segment, `**` for any number of directories, `!` re-includes,
the last matching line wins, an excluded directory excludes everything in it).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _patterns() -> list[tuple[bool, re.Pattern[str]]]:
    out = []
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        line = line.lstrip("!").strip().strip("/")
        regex = ""
        i = 0
        while i < len(line):
            if line.startswith("**/", i):
                regex += "(?:.*/)?"
                i += 3
            elif line.startswith("**", i):
                regex += ".*"
                i += 2
            elif line[i] == "*":
                regex += "[^/]*"
                i += 1
            elif line[i] == "?":
                regex += "[^/]"
                i += 1
            else:
                regex += re.escape(line[i])
                i += 1
        out.append((negate, re.compile(regex + r"\Z")))
    return out


def excluded(path: str) -> bool:
    """Whether `path` (relative to the build context) stays out of the context."""
    parts = path.split("/")
    patterns = _patterns()
    # A path is out when it, or a directory it lives in, is excluded by the last matching line.
    for depth in range(1, len(parts) + 1):
        prefix = "/".join(parts[:depth])
        verdict = None
        for negate, pattern in patterns:
            if pattern.match(prefix):
                verdict = not negate
        if verdict:
            return True
    return False


SECRETS = [
    ".env",
    ".env.production",
    "deploy/.env",
    "var/secrets/secret_key",
    "var/secrets/field_encryption_key",
    "var/postgres/PG_VERSION",
    "var/postgres/base/1/1259",
    "var/broker/out/message.msg",
    "var/cache/abc.djcache",
    ".git/config",
    ".git/objects/ab/cdef",
    ".venv/bin/python",
    ".venv/lib/python3.11/site-packages/x.py",
    "node_modules/chart.js/package.json",
    "staticfiles/css/torii.css",
    "torii/__pycache__/settings.cpython-311.pyc",
    "integrations/services/__pycache__/sync.cpython-311.pyc",
    "bench/results/run.json",
    ".pytest_cache/v/cache",
    ".hypothesis/examples/x",
    "certs/server.key",
    "tls.pem",
    "torii.egg-info/PKG-INFO",
]
NEEDED = [
    "manage.py",
    "pyproject.toml",
    "requirements.lock",
    "README.md",
    "package.json",
    "package-lock.json",
    "torii/settings.py",
    "accounts/models.py",
    "integrations/services/sync.py",
    "jumpcloud/simulator/server.py",
    "dashboard/views/users.py",
    "api/views.py",
    "templates/base.html",
    "static/css/torii.css",
    "static/js/torii.js",
]


@pytest.mark.parametrize("path", SECRETS)
def test_secret_and_local_paths_stay_out_of_the_image(path):
    assert excluded(path), f"{path} would be copied into the image"


@pytest.mark.parametrize("path", NEEDED)
def test_the_source_torii_runs_from_goes_in(path):
    assert not excluded(path), f"{path} is needed in the image"


def test_every_secret_path_of_this_checkout_is_excluded():
    """Whatever is in this checkout right now (a developer's var/ and .env included)."""
    leaks = []
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith((".venv/", "node_modules/", ".git/")):
            continue  # excluded wholesale (checked above); too many files to walk
        secret = rel.startswith(("var/", ".env")) or "/secrets/" in rel or rel.endswith((".key", ".pem"))
        if secret and path.is_file() and rel != ".env.example" and not excluded(rel):
            leaks.append(rel)
    assert not leaks, leaks


def test_the_dockerfile_copies_no_secret_explicitly():
    dockerfile = (ROOT / "Dockerfile").read_text()
    sources = []
    for line in dockerfile.splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            sources += words[1:-1]
    assert sources, "the Dockerfile copies the source"
    for source in sources:
        assert source == "." or not excluded(source.rstrip("/")), source
        assert not re.search(r"(^|/)(\.env|var|\.git|\.venv)(/|$)", source), source
    assert "SECRET_KEY=build-only" in dockerfile, "collectstatic runs with a throwaway key, never a real one"
    assert not re.search(r"^\s*(ENV|ARG)\s+.*(SECRET_KEY|FIELD_ENCRYPTION_KEYS)", dockerfile, re.M)
