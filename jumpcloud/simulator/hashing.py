"""Deterministic identifiers and cheap per-index randomness.

Everything the simulator invents (keys, object ids, event fields) derives from the seed, so two
simulators with the same seed serve the same world and a failing test can be replayed.
"""

from __future__ import annotations

import hashlib
import re

MASK64 = (1 << 64) - 1
OBJECT_ID_RE = re.compile(r"^[0-9a-f]{24}$")


def mix64(x: int) -> int:
    """splitmix64 finaliser: a few integer operations, good enough spread for field choices.

    Used per event instead of hashlib because a page of 10,000 events derives ~30,000 values.
    """
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def seed64(*parts: object) -> int:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def object_id(*parts: object) -> str:
    """A 24-hex id shaped like a MongoDB ObjectId (what JumpCloud uses for every object)."""
    return hashlib.sha256("\x1f".join(str(p) for p in ("oid", *parts)).encode()).hexdigest()[:24]


def api_key(seed: int, role: str) -> str:
    """40 lowercase hex characters, the length and alphabet of a JumpCloud admin API key."""
    return hashlib.sha1(
        f"torii-jumpcloud-simulator\x1f{seed}\x1f{role}".encode(), usedforsecurity=False
    ).hexdigest()


def is_object_id(value: str) -> bool:
    return bool(OBJECT_ID_RE.match(value))
