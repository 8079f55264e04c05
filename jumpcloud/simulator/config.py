"""What a simulator is built from (SimulatorConfig) and how it misbehaves (FaultConfig)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# 5 events per user per day is a busy but believable tenant; past a million the default stops
# growing because the point of a default is a quick start, not a benchmark (pass --events for that).
EVENTS_PER_USER_PER_DAY = 5
DEFAULT_EVENTS_CAP = 1_000_000


def default_event_count(users: int, days: int) -> int:
    return min(max(users, 0) * max(days, 0) * EVENTS_PER_USER_PER_DAY, DEFAULT_EVENTS_CAP)


@dataclass(frozen=True)
class SimulatorConfig:
    """The generated world. Same config (including ``anchor``) -> byte-identical data."""

    seed: int = 1
    users: int = 200
    apps: int = 10
    days: int = 30
    # None -> default_event_count(users, days).
    events: int | None = None
    admins: int = 8
    groups: int = 12
    # Time the generated history ends at (aware or naive-UTC). None -> the moment the simulator is built.
    anchor: datetime | None = None
    # Share of generated events that are SSO logins (the rest are directory events).
    sso_share: float = 0.6
    # Late arrival: this share of generated events becomes visible between late_min_seconds and
    # late_min_seconds + late_max_seconds after its timestamp (Directory Insights indexes with a delay).
    late_share: float = 0.02
    late_min_seconds: float = 5.0
    late_max_seconds: float = 180.0
    # Delay before the events produced by writes (user_create, user_update ...) become visible.
    write_event_delay_seconds: float = 0.0
    # state given to users created without one (org settings.newSystemUserStateDefaults.manualEntry).
    primary_default_state: str = "ACTIVATED"
    secondary_default_state: str = "STAGED"
    # Recorded requests kept in memory (oldest dropped first) so a long-running demo does not grow.
    max_recorded_requests: int = 200_000

    def __post_init__(self) -> None:
        for name in ("users", "apps", "admins", "groups"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.days < 1:
            raise ValueError("days must be >= 1")
        if self.events is not None and self.events < 0:
            raise ValueError("events must be >= 0")
        if not 0.0 <= self.sso_share <= 1.0 or not 0.0 <= self.late_share <= 1.0:
            raise ValueError("sso_share and late_share are shares between 0 and 1")
        for name in ("primary_default_state", "secondary_default_state"):
            if getattr(self, name) not in ("ACTIVATED", "STAGED"):
                raise ValueError(f"{name} must be ACTIVATED or STAGED")

    @property
    def event_count(self) -> int:
        return default_event_count(self.users, self.days) if self.events is None else self.events

    def anchor_datetime(self) -> datetime | None:
        if self.anchor is None:
            return None
        return self.anchor.replace(tzinfo=UTC) if self.anchor.tzinfo is None else self.anchor.astimezone(UTC)


@dataclass(frozen=True)
class FaultConfig:
    """Shares are per request (malformed_rate: per record inside a page). All zero = a well-behaved API."""

    rate_429: float = 0.0
    # Share of the 429s that carry Retry-After (the rest have none: JumpCloud does not document it).
    retry_after_share: float = 0.5
    retry_after_seconds: int = 1
    rate_503: float = 0.0
    latency_ms: float = 0.0
    # Body cut short: Content-Length announces the full body, half is sent, the connection is closed.
    truncate_rate: float = 0.0
    # Records replaced by broken ones (event without id or with timestamp "not-a-date", user with _id null).
    malformed_rate: float = 0.0
    seed: int = 0
    # Only requests whose path starts with one of these get faults; empty = every API route.
    path_prefixes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for name in ("rate_429", "retry_after_share", "rate_503", "truncate_rate", "malformed_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1 (got {value})")
        if self.rate_429 + self.rate_503 > 1.0:
            raise ValueError("rate_429 + rate_503 cannot exceed 1")
        if self.retry_after_seconds < 0 or self.latency_ms < 0:
            raise ValueError("retry_after_seconds and latency_ms must be >= 0")
        if not isinstance(self.path_prefixes, tuple):
            object.__setattr__(self, "path_prefixes", tuple(self.path_prefixes))

    @property
    def active(self) -> bool:
        return bool(
            self.rate_429 or self.rate_503 or self.latency_ms or self.truncate_rate or self.malformed_rate
        )

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["path_prefixes"] = list(self.path_prefixes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultConfig:
        """Build from JSON (the control endpoint); unknown keys are an error so typos don't pass silently."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError("unknown fault settings: " + ", ".join(unknown))
        values = dict(data)
        if "path_prefixes" in values:
            values["path_prefixes"] = tuple(values["path_prefixes"] or ())
        return cls(**values)
