"""Forms of the dashboard: connecting an account, editing it, rotating its key, disconnecting it.

Forms only parse input; the services decide. A CredentialsError from a service is put back on the
field it concerns (`add_credentials_error`), so every error shows next to what caused it.
"""

from __future__ import annotations

from typing import Any

from django import forms

from integrations.models import Connection
from integrations.providers import CredentialsError, Provider

PERMISSION_HELP = {
    Connection.Permission.READ_ONLY: "torii reads users, apps and usage. Nothing in the account can be changed.",
    Connection.Permission.READ_WRITE: "Also lets torii Admins suspend, unsuspend, create and delete users. "
    "Actions need this level.",
}

# Which form field a service error code belongs to; anything else is shown above the form.
ERROR_FIELDS = {
    "required": "api_key",
    "invalid_key": "api_key",
    "no_rights": "api_key",
    "other_org": "api_key",
    "org_required": "org_id",
    "org_not_found": "org_id",
    "no_write_rights": "permission",
    "permission": "permission",
    "base_url_not_allowed": "base_url",
    "region": "region",
}


def add_credentials_error(form: forms.Form, error: CredentialsError) -> None:
    # On the edit form a permission upgrade is checked with the stored key: a key error then has
    # no field to sit on and goes above the form.
    field = ERROR_FIELDS.get(error.code)
    form.add_error(field if field in form.fields else None, error.message)


def api_key_field(**kwargs: Any) -> forms.CharField:
    return forms.CharField(
        label=kwargs.pop("label", "API key"),
        # Never rendered back, never pre-filled, not remembered by the browser.
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "off"}
        ),
        strip=True,
        max_length=512,
        error_messages={"required": "Enter the API key of a JumpCloud administrator."},
        **kwargs,
    )


class OrganizationSelect(forms.Select):
    """A select whose already-connected organizations are shown but cannot be chosen."""

    def __init__(self, *args: Any, unavailable: set[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.unavailable = unavailable or set()

    def create_option(self, name: str, value: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option = super().create_option(name, value, *args, **kwargs)
        if str(value) in self.unavailable:
            option["attrs"]["disabled"] = True
        return option


class ConnectForm(forms.Form):
    permission = forms.ChoiceField(
        label="Permission level",
        choices=Connection.Permission.choices,
        initial=Connection.Permission.READ_ONLY,
        widget=forms.RadioSelect,
    )
    api_key = api_key_field()
    org_id = forms.CharField(
        label="Organization ID",
        required=False,
        max_length=64,
        help_text="Required for multi-tenant keys (an administrator of several organizations). "
        "When the key manages several organizations, torii offers them to choose from.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    name = forms.CharField(
        label="Name in torii",
        required=False,
        max_length=100,
        help_text="Defaults to the organization's name.",
    )
    region = forms.ChoiceField(label="Region", initial="us")
    # The token of a connect waiting for its organization (services.pending_connect): the key
    # itself stays on the server and is never sent back to the browser.
    pending = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)

    def __init__(
        self,
        *args: Any,
        provider: Provider,
        allowed_base_urls: list[str] | None = None,
        org_choices: list[tuple[str, str]] | None = None,
        connected: dict[str, str] | None = None,
        key_hint: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.provider = provider
        self.connected = connected or {}
        where = f"Where to find it: {provider.api_key_help}. " if provider.api_key_help else ""
        self.fields["api_key"].help_text = where + "The key is encrypted at rest and never shown again."
        if key_hint:
            # The key of the first step is kept on the server: no need to paste it again.
            self.fields["api_key"].required = False
            self.fields["api_key"].help_text = (
                f"Received: the key ending {key_hint.lstrip('•')} is kept for this step. "
                "Paste a key only to use a different one."
            )
        region = self.fields["region"]
        assert isinstance(region, forms.ChoiceField)
        region.choices = [(key, f"{label} ({key.upper()})") for key, label in provider.regions.items()]
        if allowed_base_urls:
            # Only origins the operator listed (the local simulator); never free text.
            self.fields["base_url"] = forms.ChoiceField(
                label="API endpoint",
                required=False,
                choices=[("", "JumpCloud (by region)"), *[(u, u) for u in allowed_base_urls]],
                help_text="Only origins listed in the server's JUMPCLOUD_ALLOWED_BASE_URLS are offered.",
            )
        self.org_choices = sorted(org_choices or [], key=lambda c: (c[1].casefold(), c[0]))
        if self.org_choices:
            taken = {oid for oid, _ in self.org_choices if oid in self.connected}
            self.fields["org_id"] = forms.ChoiceField(
                label="Organization",
                choices=[
                    ("", "Choose an organization…"),
                    *[
                        (
                            oid,
                            f"{name} ({oid})"
                            + (f" — already connected as “{self.connected[oid]}”" if oid in taken else ""),
                        )
                        for oid, name in self.org_choices
                    ],
                ],
                widget=OrganizationSelect(unavailable=taken),
                help_text=f"{len(self.org_choices) - len(taken)} of {len(self.org_choices)} can be connected; "
                "the others already are.",
                error_messages={"required": "Choose the organization to connect."},
            )

    def clean_org_id(self) -> str:
        value = str(self.cleaned_data.get("org_id") or "").strip()
        if value and value in self.connected and self.org_choices:
            raise forms.ValidationError(
                f"This organization is already connected as “{self.connected[value]}”."
            )
        return value

    @property
    def has_base_url(self) -> bool:
        return "base_url" in self.fields


class ConnectionEditForm(forms.Form):
    name = forms.CharField(label="Name in torii", max_length=100)
    permission = forms.ChoiceField(
        label="Permission level", choices=Connection.Permission.choices, widget=forms.RadioSelect
    )
    events_interval_minutes = forms.IntegerField(
        label="Usage sync every (minutes)",
        min_value=5,
        max_value=24 * 60,
        help_text="How often new usage events are fetched: 5 minutes to 24 hours.",
    )
    full_sync_interval_hours = forms.IntegerField(
        label="Full sync every (hours)",
        min_value=1,
        max_value=24 * 7,
        help_text="How often users, roles, apps and assignments are re-read: 1 hour to 7 days.",
    )

    @classmethod
    def for_connection(cls, connection: Connection, data: Any = None) -> ConnectionEditForm:
        return cls(
            data,
            initial={
                "name": connection.name,
                "permission": connection.permission,
                "events_interval_minutes": connection.events_interval_minutes,
                "full_sync_interval_hours": connection.full_sync_interval_hours,
            },
        )


class RotateKeyForm(forms.Form):
    api_key = api_key_field(
        label="New API key",
        help_text="The key of an administrator of the same organization. It is checked before it replaces "
        "the current one.",
    )


class DisconnectForm(forms.Form):
    # Not named "data": that is the bound data of every Django form.
    synced_data = forms.ChoiceField(
        label="Synced data",
        choices=[
            ("keep", "Keep the synced data (read-only, marked disconnected)"),
            ("delete", "Delete the synced data"),
        ],
        initial="keep",
        widget=forms.RadioSelect,
    )

    @property
    def delete_data(self) -> bool:
        return self.cleaned_data.get("synced_data") == "delete"


class SyncNowForm(forms.Form):
    kind = forms.ChoiceField(choices=[("full", "Full"), ("events", "Usage events")], required=False)


class LicenceForm(forms.Form):
    """An application's seats bought and price per seat per month (empty clears)."""

    seats_purchased = forms.IntegerField(
        required=False, min_value=0, max_value=10_000_000, label="Seats bought"
    )
    price_per_seat_month = forms.DecimalField(
        required=False,
        min_value=0,
        max_value=1_000_000,
        max_digits=12,
        decimal_places=2,
        label="Price per seat per month",
    )
