"""Forms of the user actions (the audit page's filters are integrations.filters.AuditLogFilter).

Every action form carries an idempotency key, generated when the form renders, in a hidden field:
a double click or a re-posted form sends the same key, and the service replays the first outcome.
"""

from __future__ import annotations

import uuid
from typing import Any

from django import forms

from integrations.models import Connection


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


class ActionForm(forms.Form):
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64, min_length=8)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("idempotency_key", new_idempotency_key())
        super().__init__(*args, **kwargs)


class CreateUserForm(ActionForm):
    connection = forms.ModelChoiceField(queryset=Connection.objects.none(), label="Account", empty_label=None)
    first_name = forms.CharField(max_length=255, required=False)
    last_name = forms.CharField(max_length=255, required=False)
    email = forms.EmailField(max_length=320)
    username = forms.CharField(
        max_length=255,
        help_text="Spaces become dots. Letters, digits, '.', '_' and '-'; starts with a letter.",
    )
    state = forms.ChoiceField(
        label="Initial state",
        choices=[
            ("", "Organization default (the account's setting for new users)"),
            ("ACTIVATED", "Activated"),
            ("STAGED", "Staged (invited, activates later)"),
        ],
        required=False,
        widget=forms.RadioSelect,
    )

    def __init__(self, *args: Any, connections: Any, offered: Any, **kwargs: Any) -> None:
        """`connections`: what may be posted (every live account: the service refuses read-only ones
        with a 403); `offered`: what the select shows (accounts that can act)."""
        super().__init__(*args, **kwargs)
        field = self.fields["connection"]
        field.queryset = connections  # type: ignore[attr-defined]
        field.widget.choices = [(c.pk, c.name) for c in offered]


class DeleteUserForm(ActionForm):
    confirm_username = forms.CharField(label="Type the username to confirm", max_length=255)

    def __init__(self, *args: Any, expected_username: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.expected_username = expected_username

    def clean_confirm_username(self) -> str:
        value = self.cleaned_data["confirm_username"].strip()
        if value != self.expected_username:
            raise forms.ValidationError("This is not the username of the user to delete.")
        return value


class BulkSuspendForm(ActionForm):
    app_user_ids = forms.TypedMultipleChoiceField(coerce=int, choices=(), label="Users")

    def __init__(self, *args: Any, choices: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["app_user_ids"].choices = choices  # type: ignore[attr-defined]
