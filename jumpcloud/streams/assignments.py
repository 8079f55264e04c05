"""Who can use each SSO application, directly or through user groups (nested groups resolved).

JumpCloud's graph holds the bindings: an app's direct users (the app's associations with
targets=user), the apps each user group is bound to (the group's associations with
targets=application: the same edges as the app's group associations, in one request per group
instead of one per app), and each bound group's resolved membership (nested groups included).
Apps share big groups (All Staff, departments), so each group is read once.

Two streams: `assignment_graph` reads that graph beside the users (it needs none of them) and
keeps it in its checkpoint; `app_assignments`, a join of the users, the graph and the SSO events,
writes each app's rows (in parts side by side): one per person who can use the app, `assignment`
direct or group, with the person's last use of the app from LastUse, which the SSO slices have
filled by then (in an events sync the SSO events' finish step moves the rows along).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from typing import Any

from django.db import connection as db
from django.db import transaction
from django.db.models import Count

from integrations import bulk
from integrations.csvtext import csv_field
from integrations.models import Application, AppUser
from integrations.sync.context import StreamContext
from jumpcloud import errors
from jumpcloud.streams.common import APPUSER_TABLE, BIG_BATCH, analyze, directory_app
from jumpcloud.streams.directory import USER_COLUMNS, mark_removed

ASSIGN_COLUMNS = (*USER_COLUMNS, "directory_user_id", "last_used_at")
ASSIGN_UPDATE = (
    "username",
    "email",
    "first_name",
    "last_name",
    "display_name",
    "status",
    "assignment",
    "removed_at",
    "directory_user_id",
)
GRAPH_STREAM = "assignment_graph"
ASSIGNMENT_PARTS = 2  # tasks writing an initial sync's rows at once
# Part of every digest: change it when assignment_row() or the digest's layout changes.
ASSIGNMENT_ROW_VERSION = b"assignment-row-2\n"

# A person as the rows of their apps show them: (directory row id, username, email, first, last, display).
Person = tuple[Any, ...]


def association_targets(records: Iterable[dict[str, Any]], kind: str) -> tuple[set[str], int]:
    """Ids of the associated objects of one type; malformed records are counted, not fatal."""
    ids: set[str] = set()
    skipped = 0
    for record in records:
        target = record.get("to") if isinstance(record, dict) else None
        target_id = target.get("id") if isinstance(target, dict) else None
        if (
            not isinstance(target, dict)
            or not isinstance(target_id, str)
            or not target_id
            or target.get("type") not in (None, kind)
        ):
            skipped += 1
            continue
        ids.add(target_id[:64])
    return ids, skipped


def read_direct_users(client: Any, app_id: str) -> tuple[set[str], int] | None:
    """An app's direct users and how many malformed records were skipped; None when the app was
    deleted since it was listed (the next full sync removes it)."""
    try:
        return association_targets(client.iter_application_associations(app_id, "user"), "user")
    except errors.NotFound:
        return None


def read_group_apps(client: Any, group_id: str) -> tuple[set[str], int]:
    """The apps a group is bound to; a group deleted since it was listed is bound to none."""
    try:
        return association_targets(
            client.iter_user_group_associations(group_id, "application"), "application"
        )
    except errors.NotFound:
        return set(), 0


def read_group(client: Any, group_id: str) -> tuple[frozenset[str], int, int]:
    """A group's resolved membership: (user ids, pages, malformed records)."""
    members: set[str] = set()
    pages = skipped = 0
    for page in client.iter_user_group_membership_pages(group_id):
        members.update(b.user_id for b in page.items)
        pages += 1
        skipped += page.skipped
    return frozenset(members), pages, skipped


def read_assignment_graph(ctx: StreamContext) -> None:
    """Who is bound to each SSO app, read from JumpCloud beside the users (it needs none of them)
    and kept in the stream's checkpoint for this run's app_assignments, which writes the rows."""
    apps = list(
        Application.objects.filter(
            connection=ctx.connection, kind=Application.Kind.SSO, removed_at__isnull=True
        ).values_list("pk", "external_id")
    )
    client = ctx.client
    started = time.monotonic()
    direct: dict[str, list[str]] = {}
    for (app_pk, _), answer in client.map_ahead(lambda app: read_direct_users(client, app[1]), apps):
        if answer is not None:
            users, skipped = answer
            direct[str(app_pk)] = sorted(users)
            ctx.add(pages=1, skipped=skipped)
        ctx.progress()
    app_groups: dict[str, set[str]] = {ext: set() for _, ext in apps}
    for group_id, (bound, skipped) in client.map_ahead(
        lambda g: read_group_apps(client, g), client.iter_user_group_ids()
    ):
        for app_ext in bound & app_groups.keys():
            app_groups[app_ext].add(group_id)
        ctx.add(pages=1, skipped=skipped)
        ctx.progress()
    members: dict[str, list[str]] = {}
    for group_id, (users, pages, skipped) in client.map_ahead(
        lambda g: read_group(client, g), sorted(set().union(*app_groups.values()))
    ):
        members[group_id] = sorted(users)
        ctx.add(pages=pages, skipped=skipped, fetched=len(users))
        ctx.progress()
    graph = {
        "run": ctx.run.pk,
        "direct": direct,
        "groups": {ext: sorted(groups) for ext, groups in app_groups.items() if groups},
        "members": members,
    }
    with transaction.atomic():
        ctx.save_checkpoint(graph)
    ctx.note(read_s=round(time.monotonic() - started, 1))


def plan_app_assignments(ctx: StreamContext) -> list[str]:
    """The rows are written by ASSIGNMENT_PARTS tasks at once, each every n-th app: writing is
    CPU-bound (formatting here, COPY and the indexes in PostgreSQL), and tasks use every core."""
    return [f"{i}of{ASSIGNMENT_PARTS}" for i in range(1, ASSIGNMENT_PARTS + 1)]


def _part(part: str) -> tuple[int, int]:
    """ "2of3" -> (2, 3); a task in one piece ("") writes every app."""
    if not part:
        return 1, 1
    i, n = part.split("of")
    return int(i), int(n)


def sync_app_assignments(ctx: StreamContext) -> None:
    """Each app's rows (of this part), from the graph read beside the users
    (read_assignment_graph) and the users' rows."""
    graph = ctx.checkpoint(GRAPH_STREAM)
    if graph.get("run") != ctx.run.pk:
        # The graph stream succeeded in this run before this one could start (the canvas's join).
        raise RuntimeError(f"no assignment graph of run {ctx.run.pk}")
    directory = directory_app(ctx.connection)
    people: dict[str, Person] = {
        ext: (pk, username, email, first, last, display)
        for pk, ext, username, email, first, last, display in AppUser.objects.filter(
            application=directory, kind=AppUser.Kind.USER
        ).values_list("pk", "external_id", "username", "email", "first_name", "last_name", "display_name")
    }
    # In primary-key order: each new app's rows then land at the right end of the indexes that
    # lead with the application, instead of splitting pages in their middle.
    index, parts = _part(ctx.part)
    apps = list(
        Application.objects.filter(
            connection=ctx.connection, kind=Application.Kind.SSO, removed_at__isnull=True
        )
        .order_by("pk")
        .values_list("pk", "external_id", "assignments_digest")
    )[index - 1 :: parts]
    direct: dict[str, list[str]] = graph["direct"]
    app_groups: dict[str, list[str]] = graph["groups"]
    memberships = {group: frozenset(users) for group, users in graph["members"].items()}
    started = time.monotonic()
    writer = _AssignmentWriter(ctx, people, apps)
    for app_pk, app_ext, digest_before in apps:
        if str(app_pk) in direct:
            groups = {g: memberships[g] for g in app_groups.get(app_ext, ())}
            writer.write(app_pk, digest_before, set(direct[str(app_pk)]), groups)
        ctx.progress()
    ctx.note(write_s=round(time.monotonic() - started, 1))


def finish_app_assignments(ctx: StreamContext) -> None:
    """Every part is in: the graph is not kept (megabytes on a big tenant), and after many new
    rows the planner's statistics are refreshed."""
    with transaction.atomic():
        ctx.save_checkpoint({}, key=GRAPH_STREAM)
    if ctx.run.streams.get(ctx.stream.key, {}).get("created", 0) >= BIG_BATCH:
        analyze(APPUSER_TABLE)


class _AssignmentWriter:
    """Writes one app's rows at a time; skips an app whose rows are what the last sync wrote."""

    def __init__(self, ctx: StreamContext, people: dict[str, Person], apps: list[tuple[int, str, str]]):
        self.ctx = ctx
        self.people = people
        self.digests = AssignmentDigests(people)
        self.formatter = AssignmentCsv(ctx.connection.pk, people)
        self.live = dict(
            AppUser.objects.filter(
                application_id__in=[pk for pk, _, digest in apps if digest], removed_at__isnull=True
            )
            .values("application_id")
            .annotate(n=Count("id"))
            .values_list("application_id", "n")
        )

    def write(
        self, app_pk: int, digest_before: str, direct: set[str], groups: dict[str, frozenset[str]]
    ) -> None:
        ctx = self.ctx
        users = set(direct).union(*groups.values())
        digest = self.digests.of(direct, groups)
        ctx.add(fetched=len(users))
        if digest == digest_before and self.live.get(app_pk, 0) == len(users):
            return  # what the last sync wrote, and still all there
        ordered = sorted(users)
        with transaction.atomic():
            # First: an app deleted meanwhile gets no rows. Last uses folded after they are read
            # here reach these rows in the SSO events' finish step (jumpcloud.streams.usage).
            if not Application.objects.filter(pk=app_pk).update(assignments_digest=digest):
                return
            used = last_uses(app_pk)
            ctx.hold_connection()
            created = updated = removed = 0
            copied = None
            if not AppUser.objects.filter(application_id=app_pk).exists():
                copied = bulk.copy_new(
                    table=APPUSER_TABLE,
                    columns=ASSIGN_COLUMNS,
                    rows=self.formatter.csv(app_pk, ordered, direct, used),
                )
            if copied is not None:
                created = copied
            else:
                rows = [
                    assignment_row(
                        ctx.connection.pk, app_pk, uid, uid in direct, self.people.get(uid), used.get(uid)
                    )
                    for uid in ordered
                ]
                created, updated = bulk.upsert(
                    table=APPUSER_TABLE,
                    columns=ASSIGN_COLUMNS,
                    rows=rows,
                    conflict=("application_id", "external_id"),
                    update=ASSIGN_UPDATE,
                )
                removed = mark_removed(app=Application(pk=app_pk), kind=AppUser.Kind.USER, keep=users)
        ctx.add(created=created, updated=updated, removed=removed)


def last_uses(app_pk: int) -> dict[str, str]:
    """Each person's latest successful use of the app stored so far (as PostgreSQL's text of the
    time, which COPY reads back as it is)."""
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT person_external_id, last_used_at::text FROM integrations_lastuse WHERE application_id = %s",
            [app_pk],
        )
        return dict(cursor.fetchall())


class AssignmentDigests:
    """Digests of the rows assignment_row() would write for an app: equal digests, equal rows.

    An app's rows follow from its direct users, its groups' members and what each of those people
    contributes to a row (their directory fields), so its digest is taken over exactly that: each
    direct user's fields, and each group's id with a digest of its members' fields. A group's
    digest is computed once per run and shared by every app it is bound to.
    """

    def __init__(self, people: dict[str, Person]):
        self.tokens = {
            ext: "\t".join(map(str, (ext, *person))).encode() + b"\n" for ext, person in people.items()
        }
        self.groups: dict[str, bytes] = {}

    def _tokens(self, ids: Iterable[str]) -> bytes:
        tokens = self.tokens
        return b"".join(tokens.get(uid) or uid.encode() + b"\t?\n" for uid in sorted(ids))

    def _group(self, group_id: str, members: frozenset[str]) -> bytes:
        digest = self.groups.get(group_id)
        if digest is None:
            digest = self.groups[group_id] = hashlib.blake2b(self._tokens(members), digest_size=16).digest()
        return digest

    def of(self, direct: set[str], groups: dict[str, frozenset[str]]) -> str:
        h = hashlib.blake2b(ASSIGNMENT_ROW_VERSION, digest_size=16)
        h.update(b"%d\n" % len(direct))
        h.update(self._tokens(direct))
        for group_id in sorted(groups):
            h.update(b"g" + group_id.encode() + b"\t" + self._group(group_id, groups[group_id]))
        return h.hexdigest()


def assignment_row(
    connection_id: int, app_id: int, user_id: str, direct: bool, person: Person | None, last_used: Any = None
) -> tuple[Any, ...]:
    """An assignment row in ASSIGN_COLUMNS order. `last_used` is only written when the row is new:
    an existing row's last use is the SSO events' finish step's to move."""
    pk, username, email, first, last, display = person or (None, "", "", "", "", "")
    return (
        connection_id,
        app_id,
        user_id,
        AppUser.Kind.USER,
        username,
        email,
        first,
        last,
        display,
        AppUser.Status.ACTIVE,
        False,
        None,
        None,
        None,
        "{}",
        False,
        "",
        "",
        "direct" if direct else "group",
        pk,
        last_used,
    )


class AssignmentCsv:
    """COPY text of a new app's assignment rows, equal to csv-formatting assignment_row() tuples
    (tests/jumpcloud/test_assignment_csv.py holds the two together) at a fraction of the CPU: the
    row is the same for everyone but a person's id, five text fields and directory row, so each
    person's part of the line is formatted once per run and reused in each of their other apps."""

    def __init__(self, connection_id: int, people: dict[str, Person]):
        self.connection_id = connection_id
        self.people = people
        self._cells: dict[str, tuple[str, str]] = {}

    def _cell(self, uid: str) -> tuple[str, str]:
        """The person's part of a line before the assignment type, and the part after it."""
        pk, username, email, first, last, display = self.people.get(uid) or ("", "", "", "", "", "")
        q = csv_field
        cell = self._cells[uid] = (
            f"{q(uid)},user,{q(username)},{q(email)},{q(first)},{q(last)},{q(display)},active,False,,,,{{}},False,,,",
            f",{pk},",
        )
        return cell

    def csv(self, app_id: int, ordered: list[str], direct: set[str], used: dict[str, Any]) -> str:
        head = f"{self.connection_id},{app_id},"
        cells = self._cells
        lines = []
        for uid in ordered:
            before, after = cells.get(uid) or self._cell(uid)
            when = used.get(uid)
            lines.append(
                f"{head}{before}{'direct' if uid in direct else 'group'}{after}{'' if when is None else when}\n"
            )
        return "".join(lines)
