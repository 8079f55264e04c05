"""RFC 3339 rendering and parsing in epoch milliseconds, fast enough for a million events."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

_DAY_MS = 86_400_000
_day_prefix_cache: dict[int, str] = {}

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _day_prefix(day: int) -> str:
    # datetime formatting costs microseconds; a page of events spans few days, so cache per day.
    prefix = _day_prefix_cache.get(day)
    if prefix is None:
        prefix = datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%dT")
        if len(_day_prefix_cache) > 4096:
            _day_prefix_cache.clear()
        _day_prefix_cache[day] = prefix
    return prefix


def iso_seconds_prefix(ms: int) -> str:
    """'2024-05-01T12:00:05' for the second containing ms (no fraction, no zone)."""
    day, rem = divmod(ms, _DAY_MS)
    secs = rem // 1000
    h, rest = divmod(secs, 3600)
    m, s = divmod(rest, 60)
    return f"{_day_prefix(day)}{h:02d}:{m:02d}:{s:02d}"


def iso_ms(ms: int) -> str:
    """'2024-05-01T12:00:05.123Z', the shape JumpCloud uses for directory events and object dates."""
    return f"{iso_seconds_prefix(ms)}.{ms % 1000:03d}Z"


def iso_from_datetime(value: datetime) -> str:
    return iso_ms(int(value.timestamp() * 1000))


def parse_rfc3339_ms(value: object) -> int | None:
    """Epoch milliseconds (fraction truncated) or None when not RFC 3339 with a zone."""
    if not isinstance(value, str):
        return None
    match = _RFC3339.match(value.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, frac, zulu, sign, off_h, off_m = match.groups()
    try:
        base = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC)
    except ValueError:
        return None
    ms = int(base.timestamp()) * 1000 + (int((frac or "0").ljust(3, "0")[:3]))
    if not zulu:
        offset_ms = (int(off_h) * 3600 + int(off_m) * 60) * 1000
        ms -= offset_ms if sign == "+" else -offset_ms
    return ms
