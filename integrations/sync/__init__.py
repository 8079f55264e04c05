"""How a sync run executes: the stream context, the canvas, and the per-account request budget.

The services that start, execute and finish runs are in integrations.services.sync; the Celery
tasks in integrations.tasks. docs/sync.md tells the whole story with a diagram.
"""
