"""The policy form: parses and checks input; saving goes through policies.services.policy_save."""

from __future__ import annotations

from typing import Any

from django import forms

from integrations.models import Application, Connection
from policies.models import POLICY_EDITABLE_FIELDS, Policy


class PolicyForm(forms.ModelForm):
    connections = forms.ModelMultipleChoiceField(
        queryset=Connection.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        label="Accounts",
        help_text="People of these accounts are considered.",
    )
    application = forms.ModelChoiceField(
        queryset=Application.objects.none(),
        required=False,
        label="Application (optional)",
        help_text="Only people assigned to this application are considered.",
    )

    class Meta:
        model = Policy
        fields = list(POLICY_EDITABLE_FIELDS)
        labels = {
            "inactive_days": "No successful use for (days)",
            "use_scope": "Use counted",
            "exclude_admins": "Leave administrators alone",
            "exclude_invited": "Leave invited (staged) people alone",
            "min_account_age_days": "Leave people created less than this many days ago alone",
            "excluded_people": "Never touch these people",
            "action": "What to do",
            "dry_run": "Dry run only: record whom it would touch, touch nobody",
            "schedule": "When",
            "schedule_hour": "Hour of the day (server time)",
            "schedule_weekday": "Day of the week (weekly only)",
            "unattended": "Run unattended: scheduled runs act without waiting for an Admin's approval",
            "max_people": "At most this many people per run",
            "max_percent": "At most this share of the accounts' people per run (%)",
            "enabled": "Enabled (scheduled runs happen)",
        }
        help_texts = {
            "excluded_people": "Usernames or e-mail addresses, one per line.",
            "schedule_weekday": "",
        }
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "excluded_people": forms.Textarea(attrs={"rows": 3}),
            "schedule_weekday": forms.Select(
                choices=[
                    (i, d)
                    for i, d in enumerate(
                        ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
                    )
                ]
            ),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        live = Connection.objects.exclude(status=Connection.Status.DISCONNECTED).order_by("name", "id")
        self.fields["connections"].queryset = live  # type: ignore[attr-defined]
        self.fields["application"].queryset = (  # type: ignore[attr-defined]
            Application.objects.filter(
                kind=Application.Kind.SSO, removed_at__isnull=True, connection__in=live
            )
            .select_related("connection")
            .order_by("connection__name", "label", "name", "id")
        )
        self.fields["application"].label_from_instance = lambda a: f"{a} ({a.connection.name})"  # type: ignore[attr-defined]

    def policy(self) -> Policy:
        """The policy as typed (unsaved), for the dry run and for policy_save."""
        return self.save(commit=False)

    def chosen_connections(self) -> list[Connection]:
        return list(self.cleaned_data.get("connections") or [])
