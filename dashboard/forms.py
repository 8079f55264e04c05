"""Forms of the dashboard: connecting an account, editing it, rotating its key, disconnecting it.

Forms only parse input; the services decide. A CredentialsError from a service is put back on the
field it concerns (`add_credentials_error`), so every error shows next to what caused it.
"""

from __future__ import annotations

from typing import Any

from django import forms

from integrations.models import Connection
from integrations.providers import CredentialField, CredentialsError, Provider
from integrations.services.licences import MAX_PRICE, MAX_SEATS

PERMISSION_HELP = {
    Connection.Permission.READ_ONLY: "torii reads users, apps and usage. Nothing in the account can be changed.",
    Connection.Permission.READ_WRITE: "Also lets torii Admins suspend, unsuspend, create and delete users. "
    "Actions need this level.",
}

# Which form field a service error code belongs to; anything else is shown above the form.
# CREDENTIALS: the credential field the error names, else the provider's first secret field.
CREDENTIALS = "credentials"
ERROR_FIELDS = {
    "required": CREDENTIALS,
    "invalid_key": CREDENTIALS,
    "no_rights": CREDENTIALS,
    "other_org": CREDENTIALS,
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
    if field == CREDENTIALS:
        names = [n for n in getattr(form, "credential_names", ()) if n in form.fields]
        field = error.field or (names[0] if names else None)
    form.add_error(field if field in form.fields else None, error.message)


def credential_form_field(spec: CredentialField, *, label: str = "", help_text: str = "") -> forms.Field:
    """The form field of one credential field the provider declares."""
    if spec.choices:
        return forms.ChoiceField(
            label=label or spec.label,
            choices=list(spec.choices),
            help_text=help_text or spec.help_text,
            error_messages={"required": spec.missing_message},
        )
    if spec.secret:
        # Never rendered back, never pre-filled, not remembered by the browser.
        widget: forms.Widget = forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "off"}
        )
    else:
        widget = forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"})
    return forms.CharField(
        label=label or spec.label,
        widget=widget,
        strip=True,
        max_length=spec.max_length,
        help_text=help_text or spec.help_text,
        error_messages={"required": spec.missing_message},
    )


def _secret_help(spec: CredentialField) -> str:
    return (
        spec.help_text + " " if spec.help_text else ""
    ) + "The key is encrypted at rest and never shown again."


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
    region = forms.ChoiceField(label="Region")
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
        # The provider's credential fields, right after the permission (the order people fill in).
        specs = provider.credential_fields()
        self.credential_names = [spec.name for spec in specs]
        built: dict[str, forms.Field] = {}
        for spec in specs:
            built[spec.name] = credential_form_field(
                spec, help_text=_secret_help(spec) if spec.secret else ""
            )
            if key_hint and spec.secret:
                # The credentials of the first step are kept on the server: no need to paste them again.
                built[spec.name].required = False
                built[spec.name].help_text = (
                    f"Received: the key ending {key_hint.lstrip('•')} is kept for this step. "
                    "Paste a key only to use a different one."
                )
        self.fields.update(built)
        self.order_fields(["permission", *self.credential_names])
        region = self.fields["region"]
        assert isinstance(region, forms.ChoiceField)
        region.choices = [(key, f"{label} ({key.upper()})") for key, label in provider.regions.items()]
        region.initial = provider.default_region
        if allowed_base_urls:
            # Only origins the operator listed (the local simulator); never free text.
            self.fields["base_url"] = forms.ChoiceField(
                label="API endpoint",
                required=False,
                choices=[("", f"{provider.name} (by region)"), *[(u, u) for u in allowed_base_urls]],
                help_text=provider.custom_origin_help,
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

    @property
    def credential_inputs(self) -> list[forms.BoundField]:
        return [self[name] for name in self.credential_names]

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
    """New credentials for a connection: the provider's credential fields, all required again."""

    def __init__(self, *args: Any, provider: Provider, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.credential_names: list[str] = []
        for spec in provider.credential_fields():
            self.credential_names.append(spec.name)
            self.fields[spec.name] = credential_form_field(
                spec,
                label=f"New {spec.label}" if spec.secret else spec.label,
                help_text="The key of an administrator of the same organization. It is checked before it "
                "replaces the current one."
                if spec.secret
                else "",
            )

    @property
    def credential_inputs(self) -> list[forms.BoundField]:
        return [self[name] for name in self.credential_names]

    @property
    def credentials(self) -> dict[str, str]:
        return {name: self.cleaned_data.get(name) or "" for name in self.credential_names}


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
        required=False, min_value=0, max_value=MAX_SEATS, label="Seats bought"
    )
    price_per_seat_month = forms.DecimalField(
        required=False,
        min_value=0,
        max_value=MAX_PRICE,
        max_digits=12,
        decimal_places=2,
        label="Price per seat per month",
    )
