"""The provider interface and registry.

A provider declares, on its class, what it can do: its credentials, its regions, its streams (each a
sync function) and its actions. Capabilities are derived from those declarations plus what a
connection detected when it was validated; the capabilities table in the UI is rendered from this
and never from a hand-kept list. Providers register in their AppConfig.ready().
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from integrations.models import Connection


@dataclass(frozen=True)
class Capability:
    key: str
    label: str
    description: str
    # A key in Connection.capabilities that must be truthy for this to be available (e.g. "usage_events").
    requires_detected: str | None = None
    # Shown when requires_detected is falsy.
    unavailable_reason: str = ""
    requires_write: bool = False


@dataclass(frozen=True)
class Stream:
    """One kind of data a provider syncs: a plain, sequential function run as one Celery task.

    `depends_on` orders the streams of a run (integrations.sync.canvas turns the declarations into
    chains, groups and joins): a stream starts once the streams it names have ended, and is skipped
    unless they completed. `after` only orders: the stream starts once those have ended, however
    they ended. A stream follows the last stream it waits for; one that waits for streams running
    side by side is a join, started by the last of them to end.
    `plan`, when given, splits the stream into independent parts (e.g. the time slices of an event
    backfill), each run as its own task with its own checkpoint; only a join waits for such a stream.
    `finish` runs in the run's callback, after every task of the run (e.g. rollups across parts).
    """

    key: str
    label: str
    run: Callable[..., Any]
    provides: tuple[str, ...] = ()
    # Inventory streams run on full syncs; event streams on every sync.
    kind: str = "inventory"  # inventory | events
    # When a stream fails, the run becomes "partial" instead of "failed" if the stream is optional.
    optional: bool = False
    depends_on: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    plan: Callable[..., list[str]] | None = None
    finish: Callable[..., Any] | None = None

    @property
    def backfill(self) -> bool:
        """Its parts are a backfill's slices: background work (their own queue, and the upper half
        of the request budget), unlike the parts of an inventory stream."""
        return self.plan is not None and self.kind == "events"

    @property
    def waits_for(self) -> tuple[str, ...]:
        """The streams this one starts after: those it depends on, then those it only follows."""
        return (*self.depends_on, *self.after)


# --- actions ------------------------------------------------------------------------------------
# The generic categories the core knows: an action that makes a new directory user (the core checks
# its input against the synced users too), and an action on one existing directory user.
CREATES_USER = "creates_user"
ON_USER = "on_user"


@dataclass
class ActionCheck:
    """A provider's verdict on an action's input, before anything is sent (no network)."""

    params: dict[str, Any]
    errors: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # True when the input collides with a synced user (a 409 in the API, not a 400).
    conflict: bool = False
    # A username to offer when none was typed (from the name or the email), free in the synced data.
    suggestion: str = ""

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class ActionOutcome:
    """What the provider reports after running an action."""

    succeeded: bool
    message: str = ""
    request_id: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    target_external_id: str = ""
    target_username: str = ""


def accept_input(*, connection: Connection, params: dict[str, Any]) -> ActionCheck:
    """The check of an action whose only input is its target: nothing to normalise."""
    return ActionCheck(params=dict(params))


@dataclass(frozen=True)
class Action:
    """One thing a provider can do upstream.

    `check(*, connection, params) -> ActionCheck` normalises and judges the input without touching
    the network; `run(*, connection, run, params) -> ActionOutcome` makes the call (the pending
    ActionRun `run` holds the target) and may record a snapshot before a destructive call.
    """

    key: str
    label: str
    run: Callable[..., ActionOutcome]
    capability: str
    check: Callable[..., ActionCheck] = accept_input
    category: str = ON_USER  # CREATES_USER | ON_USER
    destructive: bool = False
    # The input's fields as JSON Schema properties (what `check` accepts), for forms and docs.
    input_schema: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CapabilityStatus:
    capability: Capability
    supported: bool
    available: bool
    reason: str = ""


@dataclass(frozen=True)
class ValidatedAccount:
    """What validation learned about the account a credential opens."""

    org_id: str
    org_name: str
    detected: dict[str, Any]


@dataclass(frozen=True)
class UserDetails:
    """What the provider says about one user right now (read live, on request): the HR fields,
    the manager (as the provider's user id), groups by name and the MFA methods enrolled."""

    department: str = ""
    job_title: str = ""
    manager_external_id: str = ""
    groups: tuple[str, ...] = ()
    mfa_methods: tuple[str, ...] = ()


class CredentialsError(Exception):
    """Validation failed; `message` tells the admin what to do. `choices` offers organizations.
    `field` names the credential field at fault when there is one (forms show the error beside it)."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "invalid",
        choices: Iterable[tuple[str, str]] = (),
        field: str = "",
    ):
        super().__init__(message)
        self.message = message
        self.code = code
        self.choices = list(choices)
        self.field = field


# --- credentials ---------------------------------------------------------------------------------
def credential(
    *,
    label: str,
    secret: bool = False,
    help_text: str = "",
    choices: tuple[tuple[str, str], ...] = (),
    required_message: str = "",
    max_length: int = 512,
) -> Any:
    """A field of a provider's credentials dataclass, described for the connect form and services.

    A secret field is never shown again, never logged and kept out of repr() (tracebacks and error
    reports print a frame's locals with repr())."""
    return field(
        repr=not secret,
        metadata={
            "label": label,
            "secret": secret,
            "help_text": help_text,
            "choices": choices,
            "required_message": required_message,
            "max_length": max_length,
        },
    )


@dataclass(frozen=True)
class CredentialField:
    """One field of a provider's credentials, as its dataclass declares it."""

    name: str
    label: str
    secret: bool = False
    help_text: str = ""
    choices: tuple[tuple[str, str], ...] = ()
    required_message: str = ""
    max_length: int = 512

    @property
    def missing_message(self) -> str:
        return self.required_message or f"Enter the {self.label[:1].lower()}{self.label[1:]}."


class Provider:
    key: ClassVar[str]
    name: ClassVar[str]
    # A dataclass whose fields are declared with `credential(...)`: the connect form, the connect
    # service and the encrypted credentials dict are all built from it.
    credentials_class: ClassVar[type]
    regions: ClassVar[dict[str, str]] = {}
    # The region a connection gets when none is chosen ("" when the provider has no regions).
    default_region: ClassVar[str] = ""
    # Custom endpoints (a local simulator) are refused unless allowed_origins() lists them; these say
    # where an operator lists them.
    custom_origin_help: ClassVar[str] = ""
    custom_origin_refused: ClassVar[str] = "This base URL is not allowed."
    capability_catalog: ClassVar[tuple[Capability, ...]] = ()
    streams: ClassVar[tuple[Stream, ...]] = ()
    actions: ClassVar[tuple[Action, ...]] = ()

    # --- credentials -------------------------------------------------------------------------------
    @classmethod
    def credential_fields(cls) -> list[CredentialField]:
        out = []
        for f in dataclasses.fields(cls.credentials_class):
            meta = f.metadata
            out.append(
                CredentialField(
                    name=f.name,
                    label=str(meta.get("label") or f.name.replace("_", " ").capitalize()),
                    secret=bool(meta.get("secret")),
                    help_text=str(meta.get("help_text") or ""),
                    choices=tuple(meta.get("choices") or ()),
                    required_message=str(meta.get("required_message") or ""),
                    max_length=int(meta.get("max_length") or 512),
                )
            )
        return out

    @classmethod
    def secret_fields(cls) -> tuple[str, ...]:
        return tuple(f.name for f in cls.credential_fields() if f.secret)

    @classmethod
    def normalize_credentials(cls, values: Mapping[str, Any]) -> Any:
        """The credentials dataclass from what an admin typed: every field stripped, present, and
        one of its choices when it has some. A provider adds its own format rules by extending it."""
        clean: dict[str, str] = {}
        for f in cls.credential_fields():
            value = str(values.get(f.name) or "").strip()
            if not value:
                raise CredentialsError(f.missing_message, code="required", field=f.name)
            if f.choices and value not in {c for c, _ in f.choices}:
                raise CredentialsError(
                    f"Choose one of: {', '.join(label for _, label in f.choices)}.",
                    code="invalid",
                    field=f.name,
                )
            clean[f.name] = value
        return cls.credentials_class(**clean)

    @classmethod
    def allowed_origins(cls) -> list[str]:
        """Origins besides the provider's own hosts that connections may talk to (none by default)."""
        return []

    # --- declared capabilities -----------------------------------------------------------------
    @classmethod
    def supported_capability_keys(cls) -> set[str]:
        keys = {c for s in cls.streams for c in s.provides}
        keys |= {a.capability for a in cls.actions}
        return keys

    @classmethod
    def capabilities(cls) -> list[Capability]:
        """Every capability the provider knows of, in catalog order."""
        return list(cls.capability_catalog)

    @classmethod
    def capability_statuses(cls, connection: Connection | None) -> list[CapabilityStatus]:
        supported = cls.supported_capability_keys()
        out: list[CapabilityStatus] = []
        for cap in cls.capabilities():
            is_supported = cap.key in supported
            if not is_supported:
                out.append(CapabilityStatus(cap, False, False, "Not supported by this integration"))
                continue
            if connection is None:
                out.append(CapabilityStatus(cap, True, True))
                continue
            reason = cls.unavailable_reason(cap, connection)
            out.append(CapabilityStatus(cap, True, not reason, reason))
        return out

    @classmethod
    def unavailable_reason(cls, cap: Capability, connection: Connection) -> str:
        if not connection.is_live:
            return "Disconnected"
        if connection.status == "needs_reconnect":
            return "The API key was rejected; reconnect"
        if cap.requires_write and not connection.can_act:
            return "Connected read-only; reconnect with Read and take action to enable"
        detected = connection.capabilities or {}
        if cap.requires_write and detected.get("admin_read_only"):
            return f"The {cls.name} administrator of this key has a read-only role"
        if cap.requires_detected and not detected.get(cap.requires_detected):
            if cap.requires_detected not in detected:
                return "Not detected yet; runs with the first sync"
            return cap.unavailable_reason or "Not available for this account"
        return ""

    # --- behaviour a provider implements ------------------------------------------------------
    def validate_credentials(
        self, *, credentials: Any, region: str, base_url: str, org_id: str = ""
    ) -> ValidatedAccount:
        raise NotImplementedError

    def get_client(self, connection: Connection) -> Any:
        raise NotImplementedError

    def user_details(self, connection: Connection, external_id: str) -> UserDetails:
        """Read one user's details from the provider now (raises the provider's errors)."""
        raise NotImplementedError

    def console_user_url(self, connection: Connection, external_id: str) -> str:
        """The user's page in the provider's own console ("" when there is none)."""
        return ""

    # Readable names of the provider's usage event types (unknown ones are humanized).
    event_labels: ClassVar[dict[str, str]] = {}

    def stream(self, key: str) -> Stream:
        for s in self.streams:
            if s.key == key:
                return s
        raise KeyError(key)

    def action(self, key: str) -> Action:
        for a in self.actions:
            if a.key == key:
                return a
        raise KeyError(key)


class Registry:
    def __init__(self) -> None:
        self._providers: dict[str, Provider] = {}

    def register(self, provider_class: type[Provider]) -> type[Provider]:
        self._providers[provider_class.key] = provider_class()
        return provider_class

    def unregister(self, key: str) -> None:
        """Forget a provider (tests that register one of their own clean up with this)."""
        self._providers.pop(key, None)

    def get(self, key: str) -> Provider:
        try:
            return self._providers[key]
        except KeyError:
            raise LookupError(f"no provider registered under {key!r}") from None

    def all(self) -> list[Provider]:
        return list(self._providers.values())

    def choices(self) -> list[tuple[str, str]]:
        return [(p.key, p.name) for p in self._providers.values()]


registry = Registry()
