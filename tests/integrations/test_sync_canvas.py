"""A run's canvas comes from the streams' declared dependencies (integrations.sync.canvas)."""

from __future__ import annotations

import pytest
from celery.canvas import Signature, _chain, group

from integrations.providers import Stream
from integrations.sync.canvas import SLICES_QUEUE, CanvasError, check_streams, join_canvas, joins, sync_canvas
from jumpcloud.provider import JumpCloudProvider


def _noop(ctx):  # a stream function is never called here
    return None


def _shape(sig: Signature | None) -> object:
    """The canvas as nested tuples: ("chain", ...), ("group", ...), or "stream[@part]"."""
    if sig is None:
        return None
    if isinstance(sig, _chain):
        return ("chain", *(_shape(s) for s in sig.tasks))
    if isinstance(sig, group):
        return ("group", *(_shape(s) for s in sig.tasks))
    _run, stream, part = sig.args
    return f"{stream}@{part}" if part else stream


def test_jumpcloud_streams_make_a_tree_of_chains_and_groups():
    streams = list(JumpCloudProvider.streams)
    parts = {s.key: [""] for s in streams}
    parts["events_sso"] = ["a", "b"]
    parts["events_directory"] = ["a", "b"]
    canvas = sync_canvas(7, streams, parts, done=set())
    assert _shape(canvas) == (
        "group",
        "organization",
        (
            "chain",
            "applications",
            (
                "group",
                ("chain", "users", "administrators"),
                "assignment_graph",
                # Parts join the group they are in, in their planned order: Celery sends a group
                # nested in a group after a chain's step in reverse.
                "events_sso@a",
                "events_sso@b",
                "events_directory@a",
                "events_directory@b",
            ),
        ),
    )
    # The assignments' rows wait for the users, JumpCloud's bindings and the SSO logins, which run
    # side by side: the last of them to end sends it.
    assert joins(streams) == {"app_assignments"}
    rows = next(s for s in streams if s.key == "app_assignments")
    parts["app_assignments"] = ["1of2", "2of2"]
    assert _shape(join_canvas(7, rows, streams, parts, done=set())) == (
        "group",
        "app_assignments@1of2",
        "app_assignments@2of2",
    )
    assert _shape(join_canvas(7, rows, streams, parts, done={("app_assignments", "1of2")})) == (
        "app_assignments@2of2"
    )


def test_parts_go_to_their_own_queue_and_tasks_carry_only_ids():
    streams = list(JumpCloudProvider.streams)
    canvas = sync_canvas(7, streams, {"events_sso": ["a"], "events_directory": ["b"]}, done=set())
    flat: list[Signature] = []

    def walk(sig: Signature) -> None:
        if isinstance(sig, _chain | group):
            for s in sig.tasks:
                walk(s)
        else:
            flat.append(sig)

    walk(canvas)
    for sig in flat:
        assert sig.task == "integrations.tasks.run_stream"
        assert sig.args[0] == 7 and all(isinstance(a, str) for a in sig.args[1:])  # ids, never a key
        assert (sig.options.get("queue") == SLICES_QUEUE) == sig.args[1].startswith("events_")
    # The parts of an inventory stream are not a backfill: the run waits for them.
    rows = next(s for s in streams if s.key == "app_assignments")
    assert rows.plan is not None and not rows.backfill
    assert all(
        sig.options.get("queue") != SLICES_QUEUE
        for sig in join_canvas(7, rows, streams, {"app_assignments": ["1of2", "2of2"]}, set()).tasks
    )


def test_a_resumed_run_leaves_out_what_is_done_but_keeps_what_follows_it():
    streams = list(JumpCloudProvider.streams)
    done = {("organization", ""), ("applications", ""), ("users", ""), ("events_sso", "")}
    canvas = sync_canvas(7, streams, {}, done=done)
    assert _shape(canvas) == ("group", "administrators", "assignment_graph", "events_directory")
    everything = {(s.key, "") for s in streams}
    assert sync_canvas(7, streams, {}, done=everything) is None


def test_an_events_sync_has_only_the_event_streams():
    streams = [s for s in JumpCloudProvider.streams if s.kind == "events"]
    assert _shape(sync_canvas(7, streams, {}, done=set())) == ("group", "events_sso", "events_directory")


def test_a_stream_waiting_for_streams_side_by_side_is_a_join_and_what_follows_it_goes_with_it():
    a = Stream("a", "A", _noop)
    b = Stream("b", "B", _noop)
    # c needs a and b, which run side by side: no chain says "after both", so c is a join.
    c = Stream("c", "C", _noop, depends_on=("a", "b"))
    d = Stream("d", "D", _noop, depends_on=("c",))
    streams = [a, b, c, d]
    assert joins(streams) == {"c"}
    assert _shape(sync_canvas(1, streams, {}, done=set())) == ("group", "a", "b")
    assert _shape(join_canvas(1, c, streams, {}, done=set())) == ("chain", "c", "d")
    # b after a: c follows b in a chain, no join.
    chained = [a, Stream("b", "B", _noop, depends_on=("a",)), c]
    assert joins(chained) == set()
    assert _shape(sync_canvas(1, chained, {}, done=set())) == ("chain", "a", "b", "c")
    # Only ordered after a stream (`after`): the same, whatever that stream's outcome.
    e = Stream("e", "E", _noop, depends_on=("a",), after=("b",))
    assert joins([a, b, e]) == {"e"} and e.waits_for == ("a", "b")


def test_only_a_join_waits_for_a_stream_split_into_parts():
    sliced = Stream("s", "S", _noop, plan=lambda ctx: ["x"])
    with pytest.raises(CanvasError, match="split into parts"):
        check_streams([sliced, Stream("d", "D", _noop, depends_on=("s",))])
    a = Stream("a", "A", _noop)
    joined = Stream("j", "J", _noop, depends_on=("a",), after=("s",))
    check_streams([a, sliced, joined])
    assert joins([a, sliced, joined]) == {"j"}
    parts = {"s": ["x", "y"]}
    assert _shape(sync_canvas(1, [a, sliced, joined], parts, done=set())) == ("group", "a", "s@x", "s@y")
