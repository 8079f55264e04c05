"""Signals a policy run sends, after its transaction commits (`send_robust`: a failing receiver
never breaks a run). Both carry `run=<PolicyRun>`; alerts (e-mail, webhooks) hook onto them."""

from __future__ import annotations

from django.dispatch import Signal

# A scheduled run found people not approved before and waits for an Admin.
policy_run_awaiting_approval = Signal()
# A run ended: succeeded, partly failed, failed, or stopped by a brake.
policy_run_finished = Signal()
