"""The demo's example policy (`make run`): shipped in dry-run mode, so it shows whom it would
suspend and never touches anyone until an Admin turns dry-run off."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from integrations.models import Connection
from policies.models import Policy

EXAMPLE_NAME = "Example: suspend people inactive for 30 days"


def policy_demo_ensure(*, connection: Connection) -> Policy:
    """Idempotent: the example policy over the demo account (left as it is when it exists)."""
    from policies.services import policy_next_run_at

    with transaction.atomic():
        policy, created = Policy.objects.get_or_create(
            name=EXAMPLE_NAME,
            defaults={
                "description": "Suspends in JumpCloud the people who have not signed in to the User Portal "
                "for 30 days. Shipped in dry-run mode: it records whom it would touch and touches nobody.",
                "inactive_days": 30,
                "use_scope": Policy.UseScope.DIRECTORY,
                "action": Policy.Action.SUSPEND,
                "dry_run": True,
                "schedule": Policy.Schedule.WEEKLY,
                "schedule_hour": 7,
                "schedule_weekday": 0,
            },
        )
        if created:
            policy.next_run_at = policy_next_run_at(policy=policy, after=timezone.now())
            policy.save(update_fields=["next_run_at"])
        if not policy.connections.filter(pk=connection.pk).exists():
            policy.connections.add(connection)
    return policy
