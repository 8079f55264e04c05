"""JumpCloud's streams: each a plain sequential function of a StreamContext, writing core rows.

- directory.py: the organization, its users and administrators (the directory application)
- applications.py: the SSO applications
- assignments.py: who can use each SSO application, directly or through user groups
- events.py: Directory Insights events, fetched in time slices, and their rollups
- usage.py: the set-based SQL of the rollups (last use, daily usage)

jumpcloud/provider.py declares them and their dependencies; docs/sync.md tells the whole story.
"""
