"""Every read the dashboard and the API need, query-count-bounded (HackSoft styleguide selectors).

One module per subject: connections (cards, sync progress and history, capabilities), users
(the directory's people), applications (per-app usage), usage (insights over events and rollups).
Selectors never write, except to the read-through cache in `common`.
"""
