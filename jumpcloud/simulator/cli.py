"""Command-line options shared by `python -m jumpcloud.simulator` and `manage.py jumpcloud_simulator`."""

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from jumpcloud.simulator.config import FaultConfig, SimulatorConfig
from jumpcloud.simulator.core import Simulator


def add_arguments(parser: argparse.ArgumentParser) -> None:
    world = parser.add_argument_group("generated tenant")
    world.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    world.add_argument("--port", type=int, default=8765, help="port (0 = any free port; default 8765)")
    world.add_argument("--seed", type=int, default=1, help="same seed, same data and keys (default 1)")
    world.add_argument("--users", type=int, default=200)
    world.add_argument("--apps", type=int, default=10)
    world.add_argument("--days", type=int, default=30, help="days of Directory Insights history")
    world.add_argument(
        "--events",
        type=int,
        default=None,
        help="generated events in the primary org (default: 5 per user per day, at most 1,000,000)",
    )
    world.add_argument("--admins", type=int, default=8)
    world.add_argument("--groups", type=int, default=12)
    world.add_argument(
        "--anchor",
        default=None,
        help="ISO time the history ends at (default: now); fixes dates for reproducible runs",
    )
    faults = parser.add_argument_group("faults")
    faults.add_argument(
        "--fault-429", type=float, default=0.0, dest="fault_429", help="share of requests answered 429"
    )
    faults.add_argument(
        "--retry-after-share", type=float, default=0.5, help="share of 429s carrying Retry-After"
    )
    faults.add_argument("--retry-after-seconds", type=int, default=1)
    faults.add_argument(
        "--fault-503", type=float, default=0.0, dest="fault_503", help="share of requests answered 503"
    )
    faults.add_argument("--latency-ms", type=float, default=0.0, help="delay added to every API request")
    faults.add_argument("--truncate-rate", type=float, default=0.0, help="share of 200 bodies cut short")
    faults.add_argument(
        "--malformed-rate", type=float, default=0.0, help="share of records replaced by broken ones"
    )
    faults.add_argument("--fault-seed", type=int, default=0)
    out = parser.add_argument_group("output")
    out.add_argument(
        "--keys-file", default=None, help="write base URL, keys and org ids here as JSON (mode 0600)"
    )
    out.add_argument(
        "--no-control", action="store_true", help="disable the /__simulator__/ control endpoints"
    )


def configs_from_options(options: Mapping[str, Any]) -> tuple[SimulatorConfig, FaultConfig]:
    anchor = datetime.fromisoformat(options["anchor"]) if options.get("anchor") else None
    config = SimulatorConfig(
        seed=options["seed"],
        users=options["users"],
        apps=options["apps"],
        days=options["days"],
        events=options["events"],
        admins=options["admins"],
        groups=options["groups"],
        anchor=anchor,
    )
    faults = FaultConfig(
        rate_429=options["fault_429"],
        retry_after_share=options["retry_after_share"],
        retry_after_seconds=options["retry_after_seconds"],
        rate_503=options["fault_503"],
        latency_ms=options["latency_ms"],
        truncate_rate=options["truncate_rate"],
        malformed_rate=options["malformed_rate"],
        seed=options["fault_seed"],
    )
    return config, faults


def write_keys_file(path: str | os.PathLike[str], sim: Simulator) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = (
        json.dumps(
            {
                "base_url": sim.base_url,
                "keys": sim.keys,
                "org_ids": sim.org_ids,
                "provider_id": sim.provider_id,
            },
            indent=2,
        )
        + "\n"
    )
    # Created 0600 from the start (not chmod-ed afterwards) so the keys are never world-readable.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(payload)
    return target


class Writer(Protocol):
    """sys.stdout, a StringIO, or Django's OutputWrapper."""

    def write(self, text: str) -> Any: ...

    def flush(self) -> None: ...


def serve(
    options: Mapping[str, Any],
    *,
    on_ready: Callable[[Simulator], None] | None = None,
    out: Writer = sys.stdout,
    stop: threading.Event | None = None,
) -> int:
    """Build, start, print, serve until SIGINT/SIGTERM (or `stop` is set), then shut down."""
    config, faults = configs_from_options(options)
    stop = stop or threading.Event()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, lambda *_: stop.set())
    try:
        out.write(
            f"Generating tenant (seed {config.seed}, {config.users} users, {config.event_count} events)...\n"
        )
        out.flush()
        sim = Simulator(config, faults, control=not options.get("no_control", False))
        # The generated tenant lives as long as the process: exempt it from the cyclic GC, whose full
        # collections would otherwise walk every user dict again and again while pages are served.
        # Only here, where the simulator owns the process (never in library use inside tests).
        gc.collect()
        gc.freeze()
        sim.start(host=options["host"], port=options["port"])
        try:
            out.write(f"JumpCloud simulator listening on {sim.base_url}\n")
            out.write(
                f"  v1: {sim.base_url}/api   v2: {sim.base_url}/api/v2   "
                f"DI: {sim.base_url}/insights/directory/v1\n"
            )
            for role, key in sim.keys.items():
                out.write(f"  key {role:<15} {key}\n")
            for name, org_id in sim.org_ids.items():
                out.write(f"  org {name:<15} {org_id}\n")
            if options.get("keys_file"):
                path = write_keys_file(options["keys_file"], sim)
                out.write(f"  keys written to {path}\n")
            if faults.active:
                out.write(f"  faults: {faults.to_dict()}\n")
            out.flush()
            if on_ready is not None:
                on_ready(sim)
            while not stop.wait(0.5):
                pass
            out.write("Stopping the simulator.\n")
        finally:
            sim.stop()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jumpcloud.simulator",
        description="Serve a local JumpCloud API (v1, v2, Directory Insights).",
    )
    add_arguments(parser)
    options = vars(parser.parse_args(argv))
    return serve(options)
