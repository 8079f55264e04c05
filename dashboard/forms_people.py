"""Forms of the people-and-roles page and of the API tokens page."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms

from accounts.people import ROLE_CHOICES
from accounts.tokens import lifetime_choices


class PersonCreateForm(forms.Form):
    username = forms.CharField(max_length=150)
    email = forms.EmailField(required=False, max_length=254)
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial="Viewer")


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=ROLE_CHOICES, required=False)


class TokenCreateForm(forms.Form):
    # A new key each time the form renders: a re-posted form (reload, double click) is recognised
    # and makes no second token.
    form_key = forms.CharField(widget=forms.HiddenInput, min_length=16, max_length=64)
    name = forms.CharField(
        max_length=100, required=False, help_text="What uses it, e.g. “nightly offboarding script”."
    )
    days = forms.TypedChoiceField(coerce=int, label="Expires after")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {}).setdefault("form_key", uuid.uuid4().hex)
        super().__init__(*args, **kwargs)
        choices = lifetime_choices()
        field = self.fields["days"]
        field.choices = [(d, f"{d} days") for d in choices]  # type: ignore[attr-defined]
        field.initial = 30 if 30 in choices else choices[-1]
