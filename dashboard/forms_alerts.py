"""Forms of the alerts pages: a channel with its subscriptions."""

from __future__ import annotations

from typing import Any

from django import forms

from alerts.kinds import SUBSCRIBABLE
from alerts.models import Channel


class ChannelForm(forms.Form):
    name = forms.CharField(max_length=100)
    kind = forms.ChoiceField(choices=Channel.Kind.choices, initial=Channel.Kind.WEBHOOK, label="Sends by")
    recipients = forms.CharField(
        required=False,
        max_length=2000,
        label="E-mail addresses",
        help_text="For e-mail channels: addresses separated by commas.",
    )
    url = forms.CharField(
        required=False,
        max_length=2048,
        label="Webhook URL",
        help_text="For webhooks: a public https:// address (internal addresses are refused).",
    )
    body_format = forms.ChoiceField(
        choices=Channel.BodyFormat.choices, initial=Channel.BodyFormat.JSON, label="Webhook body"
    )
    event_kinds = forms.MultipleChoiceField(
        choices=[(k.value, k.label) for k in SUBSCRIBABLE],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label="Send these events",
    )
    active = forms.BooleanField(required=False, initial=True, label="Active")
    secret = forms.CharField(
        required=False,
        min_length=16,
        max_length=200,
        widget=forms.PasswordInput(render_value=False),
        label="Signing secret",
        help_text="Leave empty to let torii make one (shown once), or to keep the current one.",
    )

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if editing:
            # A channel's kind stays what it was made as.
            self.fields["kind"].disabled = True
