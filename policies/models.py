"""Policies that act for the admin, and their runs (every run and every person in it is a row)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from integrations.models import ActionRun, Application, AppUser, Connection

DEFAULT_MAX_PEOPLE = 25
DEFAULT_MAX_PERCENT = Decimal("5.0")


# What a person edits on a policy: the form and the API offer the same fields.
POLICY_EDITABLE_FIELDS = (
    "name",
    "description",
    "connections",
    "application",
    "inactive_days",
    "use_scope",
    "exclude_admins",
    "exclude_invited",
    "min_account_age_days",
    "excluded_people",
    "action",
    "dry_run",
    "schedule",
    "schedule_hour",
    "schedule_weekday",
    "unattended",
    "max_people",
    "max_percent",
    "enabled",
)


class Policy(models.Model):
    """Who (people of some accounts, optionally of one app, unused for N days, minus exclusions),
    what (suspend in the directory, or notify only) and when (by hand, daily, weekly)."""

    class UseScope(models.TextChoices):
        DIRECTORY = "directory", "In the directory (JumpCloud)"
        APPLICATION = "application", "In the chosen application"
        ANYWHERE = "anywhere", "Anywhere (the directory or any application)"

    class Action(models.TextChoices):
        SUSPEND = "suspend", "Suspend in the directory"
        NOTIFY = "notify", "Notify only"

    class Schedule(models.TextChoices):
        MANUAL = "manual", "By hand only"
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly"

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    connections = models.ManyToManyField(Connection, related_name="policies")
    application = models.ForeignKey(
        Application, null=True, blank=True, on_delete=models.SET_NULL, related_name="policies"
    )
    inactive_days = models.PositiveIntegerField(
        default=90, validators=[MinValueValidator(1), MaxValueValidator(3650)]
    )
    use_scope = models.CharField(max_length=16, choices=UseScope.choices, default=UseScope.DIRECTORY)
    exclude_admins = models.BooleanField(default=True)
    exclude_invited = models.BooleanField(default=True)
    # People younger than this (by their creation date upstream) are left alone.
    min_account_age_days = models.PositiveIntegerField(default=30, validators=[MaxValueValidator(3650)])
    # Usernames or e-mail addresses, one per line; matched without regard to case.
    excluded_people = models.TextField(blank=True)
    action = models.CharField(max_length=16, choices=Action.choices, default=Action.NOTIFY)
    # A dry-run policy records whom it would touch and touches nobody (new policies start so).
    dry_run = models.BooleanField(default=True)
    schedule = models.CharField(max_length=16, choices=Schedule.choices, default=Schedule.MANUAL)
    schedule_hour = models.PositiveSmallIntegerField(default=6, validators=[MaxValueValidator(23)])
    schedule_weekday = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(6)], help_text="0 = Monday."
    )
    # A scheduled run that finds people not approved before waits for an Admin unless this is set.
    unattended = models.BooleanField(default=False)
    max_people = models.PositiveIntegerField(
        default=DEFAULT_MAX_PEOPLE, validators=[MinValueValidator(1), MaxValueValidator(1000)]
    )
    max_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=DEFAULT_MAX_PERCENT,
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal("100"))],
    )
    enabled = models.BooleanField(default=True)
    next_run_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name_plural = "policies"

    def __str__(self) -> str:
        return self.name

    def excluded_names(self) -> set[str]:
        return {line.strip().lower() for line in self.excluded_people.splitlines() if line.strip()}


class PolicyRun(models.Model):
    class Trigger(models.TextChoices):
        MANUAL = "manual", "Run now"
        SCHEDULE = "schedule", "Schedule"

    class Status(models.TextChoices):
        AWAITING_APPROVAL = "awaiting_approval", "Waiting for approval"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        PARTIAL = "partial", "Partly failed"
        STOPPED = "stopped", "Stopped by a brake"
        REJECTED = "rejected", "Rejected"

    FINISHED = (Status.SUCCEEDED, Status.PARTIAL, Status.STOPPED, Status.REJECTED)

    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="runs")
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    # What the policy said when the run was made (a later edit does not change a run).
    action = models.CharField(max_length=16, choices=Policy.Action.choices)
    dry_run = models.BooleanField(default=False)
    stop_reason = models.TextField(blank=True)
    # On whose authority the run acts: the Admin who ran it or approved it (for an unattended
    # scheduled run, the policy's author). The action service checks their role again.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    account_size = models.PositiveIntegerField(default=0)
    selected = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    undone_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"PolicyRun {self.pk} of {self.policy_id} {self.status}"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED


class PolicyRunItem(models.Model):
    """One person in one run: who, why, what happened, and JumpCloud's answer."""

    class Outcome(models.TextChoices):
        PENDING = "pending", "Not done yet"
        WOULD_ACT = "would_act", "Dry run: would be touched"
        NOTIFIED = "notified", "Notified"
        SUSPENDED = "suspended", "Suspended"
        FAILED = "failed", "Failed"
        UNKNOWN = "unknown", "Outcome unknown"
        REFUSED = "refused", "Refused by torii"
        SKIPPED = "skipped", "Skipped"

    class Undo(models.TextChoices):
        NONE = "", "—"
        UNSUSPENDED = "unsuspended", "Unsuspended"
        FAILED = "failed", "Unsuspend failed"

    run = models.ForeignKey(PolicyRun, on_delete=models.CASCADE, related_name="items")
    connection = models.ForeignKey(Connection, null=True, on_delete=models.SET_NULL, related_name="+")
    app_user = models.ForeignKey(
        AppUser, null=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )
    external_id = models.CharField(max_length=64)
    username = models.CharField(max_length=255, blank=True)
    email = models.CharField(max_length=320, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=500)
    is_new = models.BooleanField(default=True, help_text="Not approved in an earlier run of the policy.")
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.PENDING)
    message = models.TextField(blank=True)
    action_run = models.ForeignKey(
        ActionRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    undo = models.CharField(max_length=16, choices=Undo.choices, blank=True, default="")
    undo_message = models.TextField(blank=True)
    undo_action_run = models.ForeignKey(
        ActionRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["username", "id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "connection", "external_id"], name="uniq_person_per_run")
        ]

    def __str__(self) -> str:
        return f"{self.username} {self.outcome}"
