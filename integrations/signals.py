"""Signals the core sends, for apps that react to syncs without the core knowing them."""

from __future__ import annotations

import django.dispatch

# Sent once a sync run has ended (succeeded, partial or failed), with run=<SyncRun>.
sync_run_finished = django.dispatch.Signal()
