"""The provider-neutral core: connections, runs, and the inventory that syncs fill.

Nothing here names a provider. Everything synced is keyed by (connection, external_id).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class ConnectionManager(models.Manager["Connection"]):
    """Connections the product shows: not those whose data is being deleted (a disconnect-and-
    delete hides the connection at once; its data goes in bounded steps, then the row itself)."""

    def get_queryset(self) -> models.QuerySet[Connection]:
        return super().get_queryset().filter(purge_requested_at__isnull=True)


class Connection(models.Model):
    """One connected account of a provider (for JumpCloud: one organization)."""

    class Permission(models.TextChoices):
        READ_ONLY = "read_only", "Read only"
        READ_WRITE = "read_write", "Read and take action"

    class Status(models.TextChoices):
        PENDING = "pending", "Connecting"
        CONNECTED = "connected", "Connected"
        PARTIAL = "partial", "Partial"
        FAILED = "failed", "Needs attention"
        NEEDS_RECONNECT = "needs_reconnect", "Reconnect"
        DISCONNECTED = "disconnected", "Disconnected"

    provider = models.CharField(max_length=32)
    name = models.CharField(max_length=100)
    region = models.CharField(max_length=16, default="us")
    base_url = models.CharField(max_length=200, blank=True, help_text="Only origins the server allows.")
    org_id = models.CharField(max_length=64, blank=True)
    org_name = models.CharField(max_length=200, blank=True)
    # Fernet token of the JSON credentials; never rendered, never logged.
    credentials = models.TextField(blank=True, editable=False)
    secret_hint = models.CharField(max_length=16, blank=True, help_text="Masked suffix of the key.")
    permission = models.CharField(max_length=16, choices=Permission.choices, default=Permission.READ_ONLY)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    status_message = models.TextField(blank=True)
    # What validation and syncs detected: {"usage_events": bool, "multi_tenant": bool, "admin_role": str, ...}
    capabilities = models.JSONField(default=dict, blank=True)
    events_interval_minutes = models.PositiveIntegerField(default=60)
    full_sync_interval_hours = models.PositiveIntegerField(default=24)
    next_events_sync_at = models.DateTimeField(null=True, blank=True)
    next_full_sync_at = models.DateTimeField(null=True, blank=True)
    last_sync_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    disconnected_at = models.DateTimeField(null=True, blank=True)
    # Set by a disconnect-and-delete, and moved by each purge step: the connection is hidden and
    # its data is being purged (integrations.services.purge); the row goes last.
    purge_requested_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ConnectionManager()
    all_objects = models.Manager()  # noqa: DJ012 - every row, those being purged too

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "region", "base_url", "org_id"],
                condition=~Q(status="disconnected") & ~Q(org_id=""),
                name="one_live_connection_per_org",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.provider})"

    @property
    def can_act(self) -> bool:
        return self.permission == self.Permission.READ_WRITE and self.status != self.Status.DISCONNECTED

    @property
    def is_live(self) -> bool:
        return self.status != self.Status.DISCONNECTED


class SyncRun(models.Model):
    """One sync of one connection. The UI shows progress and history from these rows."""

    class Kind(models.TextChoices):
        FULL = "full", "Full"
        EVENTS = "events", "Usage events"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        MANUAL = "manual", "Sync now"
        CONNECT = "connect", "First sync"
        RESUME = "resume", "Resumed"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        PARTIAL = "partial", "Partial"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="sync_runs")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.FULL)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.SCHEDULE)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    current_stream = models.CharField(max_length=64, blank=True)
    # {stream_key: {"status", "fetched", "created", "updated", "removed", "skipped", "pages", "error", ...}}
    streams = models.JSONField(default=dict, blank=True)
    error_message = models.TextField(blank=True)
    # How many times the run was started or resumed (its canvas dispatched).
    attempts = models.PositiveSmallIntegerField(default=0)
    # Held by the task running the run's finish step (the canvas's callback), so that it runs once.
    lease = models.CharField(max_length=32, blank=True)

    class StopReason(models.TextChoices):
        NONE = "", "Not stopped"
        RECONNECT = "reconnect", "The credentials were rejected"
        CONFIGURATION = "configuration", "The stored connection cannot be used"

    # Why a task stopped the whole run (its message is the run's error_message): the other tasks
    # end at once, and the run fails (asking for a reconnect when the credentials were rejected).
    stop_reason = models.CharField(max_length=16, choices=StopReason.choices, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["connection", "-created_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["connection"],
                condition=Q(status__in=["queued", "running"]),
                name="one_active_sync_per_connection",
            )
        ]

    def __str__(self) -> str:
        return f"SyncRun {self.pk} {self.kind} {self.status}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def duration(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class SyncTask(models.Model):
    """One task of a sync run's canvas: a stream, or one part of it (a time slice of a backfill).

    The task's own lease and heartbeat make a redelivered or duplicated Celery message harmless:
    whoever holds the lease runs the task; a heartbeat older than SYNC_STALE_AFTER means its worker
    died, and recovery hands the task to another one, which resumes from its checkpoint.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"
        CANCELLED = "cancelled", "Cancelled"

    DONE = (Status.SUCCEEDED, Status.FAILED, Status.SKIPPED, Status.CANCELLED)

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="tasks")
    stream = models.CharField(max_length=64)
    part = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    lease = models.CharField(max_length=32, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # A retry waiting for its time (Retry-After, backoff): not to be taken before then.
    not_before = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # {"fetched", "created", "updated", "removed", "skipped", "pages", ...}
    counters = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    # Also in the worker's log line of an unexpected error, with its traceback.
    error_ref = models.CharField(max_length=16, blank=True)
    # Who ran it last: the Celery worker's node name (or host:pid in the foreground).
    worker = models.CharField(max_length=255, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "stream", "part"], name="uniq_task_per_run_stream_part")
        ]

    def __str__(self) -> str:
        return f"SyncTask {self.run_id}:{self.stream}{'@' + self.part if self.part else ''} {self.status}"

    @property
    def is_done(self) -> bool:
        return self.status in self.DONE


class RequestBudget(models.Model):
    """How many requests at once the workers may send to one upstream account (all workers,
    all machines): integrations.sync.budget. Halved on a 429, grown back slowly."""

    key = models.CharField(max_length=255, unique=True)
    # Requests allowed at once right after the last cut, and when that was; it grows back from there.
    allowed = models.FloatField()
    cut_at = models.DateTimeField(null=True, blank=True)
    # Nobody sends before this (a Retry-After).
    paused_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.key}: {self.allowed:g}"


class SyncCheckpoint(models.Model):
    """Resumable state of one stream of one connection, advanced in the same transaction as the
    rows it describes (e.g. {"until": iso, "window": [start, end], "search_after": [...]})."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="checkpoints")
    stream = models.CharField(max_length=64)
    state = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["connection", "stream"], name="uniq_checkpoint_per_stream")
        ]

    def __str__(self) -> str:
        return f"{self.connection_id}:{self.stream}"


class ActionRun(models.Model):
    """One action (or connection event) done through torii: the audit log.

    Written before the upstream call (pending) and completed after it. Never edited or deleted
    through torii: the admin site registers it read-only and no view or API changes it.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Category(models.TextChoices):
        USER_ACTION = "user_action", "User action"
        CONNECTION = "connection", "Connection event"
        ACCESS = "access", "Access change"

    category = models.CharField(max_length=16, choices=Category.choices, default=Category.USER_ACTION)
    action = models.CharField(max_length=64)
    connection = models.ForeignKey(
        Connection, null=True, blank=True, on_delete=models.SET_NULL, related_name="action_runs"
    )
    connection_name = models.CharField(max_length=100, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_username = models.CharField(max_length=150, blank=True)
    target_external_id = models.CharField(max_length=64, blank=True)
    target_username = models.CharField(max_length=255, blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    # For deletions: the upstream record as it was, so the account could be recreated.
    snapshot = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    error_message = models.TextField(blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    idempotency_key = models.CharField(max_length=64, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.target_username or self.connection_name} {self.status}"


class Application(models.Model):
    """An app seen through a connection: the directory itself (kind=directory) or an SSO app."""

    class Kind(models.TextChoices):
        DIRECTORY = "directory", "Directory"
        SSO = "sso", "SSO application"

    connection = models.ForeignKey(
        Connection, on_delete=models.CASCADE, related_name="applications", db_index=False
    )
    external_id = models.CharField(max_length=64)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.SSO)
    name = models.CharField(max_length=255, blank=True)
    label = models.CharField(max_length=1024, blank=True)
    sso_url = models.CharField(max_length=2048, blank=True)
    active = models.BooleanField(default=True)
    upstream_created_at = models.DateTimeField(null=True, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    # Digest of the assignment rows the last full sync wrote for this app: a resync that computes
    # the same digest (and finds as many live rows) has nothing to write.
    assignments_digest = models.CharField(
        max_length=64, blank=True, default="", db_default="", editable=False
    )
    # The latest successful use of the app by anyone, assigned or not (from LastUse).
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["label", "name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "external_id"], name="uniq_app_per_connection")
        ]

    def __str__(self) -> str:
        return self.label or self.name or self.external_id


class AppUser(models.Model):
    """One person's user record in one application.

    Rows of the directory application are the directory's users (and its administrators); rows of
    an SSO application are the people who can use it, pointing at their directory row.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        INVITED = "invited", "Invited"
        SUSPENDED = "suspended", "Suspended"
        LOCKED = "locked", "Locked"
        REMOVED = "removed", "Removed"

    class Kind(models.TextChoices):
        USER = "user", "User"
        ADMIN_ONLY = "admin", "Administrator only"

    # Foreign keys without their own index where a composite index already leads with the column:
    # every extra index is paid on each of a million assignment rows a sync writes.
    # No database-level constraints: PostgreSQL checks a (deferred) foreign key once per row at
    # commit, 3 µs a row on 1.4 million assignment rows. Django still cascades (connection,
    # application) and nulls (directory_user); a sync's write transaction locks its connection
    # row instead, once (StreamContext.hold_connection), and an assignment write its application
    # row, so a concurrent delete cannot leave rows behind.
    connection = models.ForeignKey(
        Connection, on_delete=models.CASCADE, related_name="app_users", db_index=False, db_constraint=False
    )
    application = models.ForeignKey(
        Application, on_delete=models.CASCADE, related_name="app_users", db_index=False, db_constraint=False
    )
    external_id = models.CharField(max_length=64)
    directory_user = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="app_memberships",
        db_index=False,
        db_constraint=False,
    )
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.USER)
    username = models.CharField(max_length=255, blank=True)
    email = models.CharField(max_length=320, blank=True)
    first_name = models.CharField(max_length=255, blank=True)
    last_name = models.CharField(max_length=255, blank=True)
    display_name = models.CharField(max_length=1024, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    password_expired = models.BooleanField(default=False)
    mfa_enabled = models.BooleanField(null=True)
    is_admin = models.BooleanField(default=False)
    admin_mfa_enabled = models.BooleanField(null=True, help_text="MFA of the administrator account.")
    role = models.CharField(max_length=100, blank=True, help_text="'User', or the administrator role name.")
    admin_external_id = models.CharField(max_length=64, blank=True)
    assignment = models.CharField(max_length=8, blank=True, help_text="direct / group, for SSO rows.")
    upstream_created_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    admin_last_login_at = models.DateTimeField(null=True, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True)
    extra = models.JSONField(default=dict, blank=True)
    # Read model of directory rows (integrations.services.read_models): SSO apps the person can
    # use, and their latest use of JumpCloud or any app (NULL: never), so that the users table
    # sorts and filters on columns instead of a subquery per person.
    apps_count = models.IntegerField(db_default=0, editable=False)
    last_used_any = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["username", "id"]
        constraints = [
            models.UniqueConstraint(fields=["application", "external_id"], name="uniq_appuser_per_app")
        ]
        indexes = [
            # Directory rows only (SSO rows carry a copy of these for display).
            models.Index(
                fields=["connection", "email"],
                name="appuser_dir_email",
                condition=Q(directory_user__isnull=True),
            ),
            models.Index(
                fields=["connection", "username"],
                name="appuser_dir_username",
                condition=Q(directory_user__isnull=True),
            ),
            models.Index(
                fields=["connection", "admin_external_id"],
                name="appuser_admin_id",
                condition=~Q(admin_external_id=""),
            ),
            # The users table sorted by last use (both directions), and "no use in N days".
            # The users table's default sort (by name), walked either way.
            models.Index(
                fields=["display_name", "last_name", "first_name", "id"],
                name="appuser_dir_name",
                condition=Q(directory_user__isnull=True),
            ),
            # Walked forwards for oldest first (never used first), backwards for newest first.
            models.Index(
                models.F("last_used_any").asc(nulls_first=True),
                models.F("id").asc(),
                name="appuser_dir_last_used_any",
                condition=Q(directory_user__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return self.username or self.email or self.external_id


class UsageEvent(models.Model):
    """One ingested usage event. At-least-once on the wire, exactly once here."""

    # No database-level constraint (see AppUser): a million rows per backfill, one check each.
    connection = models.ForeignKey(
        Connection, on_delete=models.CASCADE, related_name="usage_events", db_index=False, db_constraint=False
    )
    external_id = models.CharField(max_length=64)
    kind = models.CharField(max_length=16, help_text="Provider's event family, e.g. directory / sso.")
    event_type = models.CharField(max_length=64)
    occurred_at = models.DateTimeField()
    success = models.BooleanField(null=True)
    actor_external_id = models.CharField(max_length=64, blank=True)
    actor_type = models.CharField(max_length=32, blank=True)
    actor_username = models.CharField(max_length=255, blank=True)
    actor_email = models.CharField(max_length=320, blank=True)
    # The application this event is a use of ('' when it is not a login to anything).
    application_external_id = models.CharField(max_length=64, blank=True)
    application_name = models.CharField(max_length=255, blank=True)
    client_ip = models.CharField(max_length=64, blank=True)
    error_message = models.CharField(max_length=512, blank=True)

    class Meta:
        ordering = ["-occurred_at"]
        constraints = [
            # The table is partitioned by month of occurred_at (migration 0006, docs/data-retention.md)
            # and a unique key must hold the partition key; an event's time never changes upstream.
            models.UniqueConstraint(
                fields=["connection", "external_id", "occurred_at"], name="uniq_event_per_connection_time"
            )
        ]
        indexes = [
            # By kind first: each event stream writes its kind in time order, so inserts land on
            # the right edge of this index (a BRIN index was tried: the two streams interleave
            # months of time in the heap, and it stopped pruning anything).
            models.Index(fields=["connection", "kind", "occurred_at"], name="usageevent_kind_time"),
            models.Index(
                fields=["connection", "actor_external_id", "occurred_at"], name="usageevent_actor_time"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.occurred_at:%Y-%m-%d %H:%M}"


class LastUse(models.Model):
    """Each person's latest successful use of each application: a rollup of the usage events,
    kept for ever (raw events are not). It holds people who use an app without being assigned to
    it too; AppUser.last_used_at and Application.last_used_at are copied from it."""

    # No database-level constraints (see AppUser): hundreds of thousands of rows per backfill.
    connection = models.ForeignKey(
        Connection, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    application = models.ForeignKey(
        Application, on_delete=models.CASCADE, related_name="last_uses", db_index=False, db_constraint=False
    )
    person_external_id = models.CharField(max_length=64)
    last_used_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["application", "person_external_id"], name="uniq_last_use")
        ]
        indexes = [models.Index(fields=["connection", "last_used_at"], name="lastuse_connection_time")]

    def __str__(self) -> str:
        return f"{self.application_id}:{self.person_external_id} {self.last_used_at:%Y-%m-%d %H:%M}"


class DailyUsage(models.Model):
    """Per application and day: logins and distinct active users (a rollup of UsageEvent)."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="daily_usage")
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="daily_usage")
    day = models.DateField()
    successes = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    active_users = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["day"]
        constraints = [models.UniqueConstraint(fields=["application", "day"], name="uniq_daily_usage")]
        indexes = [models.Index(fields=["connection", "day"])]

    def __str__(self) -> str:
        return f"{self.application_id} {self.day}: {self.active_users} active"


class ApplicationLicence(models.Model):
    """What an application's seats cost: seats bought and the price of one seat per month, entered
    by an Admin (no provider reports them). Kept apart from Application, which syncs write in bulk."""

    application = models.OneToOneField(Application, on_delete=models.CASCADE, related_name="licence")
    seats_purchased = models.PositiveIntegerField(null=True, blank=True)
    price_per_seat_month = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.application_id}: {self.seats_purchased} seats at {self.price_per_seat_month}"


class ApplicationStats(models.Model):
    """Read model: people assigned to an application (not removed) and how many of them used it in
    the last 7/30/60/90 days, as of the last refresh (integrations.services.read_models). A table of
    its own: these counts move with the clock, the synced tables only when JumpCloud's data does."""

    application = models.OneToOneField(
        Application, on_delete=models.CASCADE, primary_key=True, related_name="stats"
    )
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="+")
    assigned_count = models.IntegerField(default=0)
    active_7 = models.IntegerField(default=0)
    active_30 = models.IntegerField(default=0)
    active_60 = models.IntegerField(default=0)
    active_90 = models.IntegerField(default=0)

    def __str__(self) -> str:
        return f"stats of application {self.application_id}"


class ConnectionStats(models.Model):
    """Read model: one connection's numbers for the Overview, Integrations and Insights, written by
    integrations.services.read_models after each sync (and daily, as the windows move), so pages
    never count hundreds of thousands of rows on a request."""

    connection = models.OneToOneField(
        Connection, on_delete=models.CASCADE, primary_key=True, related_name="stats"
    )
    users = models.IntegerField(default=0)
    admins_only = models.IntegerField(default=0)
    # The users table's totals without a filter, and with status "active" (people not removed).
    listed = models.IntegerField(default=0)
    listed_active = models.IntegerField(default=0)
    apps = models.IntegerField(default=0)
    events = models.BigIntegerField(default=0)
    oldest_event_at = models.DateTimeField(null=True, blank=True)
    # People (not removed) who used JumpCloud or any app in the last 30 days.
    people_active_30 = models.IntegerField(default=0)
    # People with status active and no use anywhere in 30/60/90 days (never used counts).
    inactive_30 = models.IntegerField(default=0)
    inactive_60 = models.IntegerField(default=0)
    inactive_90 = models.IntegerField(default=0)
    admins = models.IntegerField(default=0)
    admins_without_mfa = models.IntegerField(default=0)
    admins_mfa_unknown = models.IntegerField(default=0)
    refreshed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"stats of connection {self.connection_id}"

    def inactive(self, days: int) -> int:
        return int(getattr(self, f"inactive_{days}", 0))
