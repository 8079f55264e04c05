"""Page users and Directory Insights events from a local simulator through JumpCloudClient.

    .venv/bin/python bench/client_paging.py --users 50000 --events 1000000

Measures what a full sync pays on the client side: HTTP, JSON decoding and the tolerant parsers.
The simulator runs in this process (its own thread), so the rates include its serving cost too;
the parse-only line isolates parse_event, which the client budget says must stay well under 5 µs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jumpcloud.client import JumpCloudClient  # noqa: E402
from jumpcloud.parsing import parse_event  # noqa: E402
from jumpcloud.simulator import Simulator, SimulatorConfig  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--limit", type=int, default=10_000, help="Directory Insights page size")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()

    started = time.perf_counter()
    sim = Simulator(SimulatorConfig(seed=1, users=args.users, apps=20, days=args.days, events=args.events))
    sim.start(host="127.0.0.1", port=0)
    results: dict[str, float] = {"simulator_build_s": time.perf_counter() - started}
    try:
        # The last minutes hold late-arriving events; a sync's window ends before them too.
        end = datetime.now(UTC) - timedelta(minutes=5)
        start = end - timedelta(days=args.days + 1)
        with JumpCloudClient(sim.keys["admin"], base_url=sim.base_url) as client:
            t0 = time.perf_counter()
            users = sum(len(page.items) for page in client.iter_system_user_pages())
            users_s = time.perf_counter() - t0
            results.update(users=users, users_seconds=users_s, users_per_second=users / users_s)
            print(f"users:  {users:>9,} in {users_s:6.2f} s  = {users / users_s:>10,.0f} users/s")

            events = skipped = pages = 0
            sample: list[object] = []
            t0 = time.perf_counter()
            for service in ("directory", "sso"):
                for page in client.iter_event_pages(service, start, end, limit=args.limit):
                    events += len(page.events)
                    skipped += page.skipped
                    pages += 1
            events_s = time.perf_counter() - t0
            results.update(
                events=events,
                event_pages=pages,
                events_skipped=skipped,
                events_seconds=events_s,
                events_per_second=events / events_s if events_s else 0.0,
            )
            print(
                f"events: {events:>9,} in {events_s:6.2f} s  = {events / events_s:>10,.0f} events/s "
                f"({pages} pages, {skipped} skipped)"
            )

            # parse_event alone, on one page of real simulator output decoded once.
            # One raw page, decoded once, for the parse-only measurement.
            response = client._session.post(
                f"{sim.base_url}/insights/directory/v1/events",
                json={
                    "service": ["all"],
                    "start_time": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "end_time": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "limit": 10_000,
                },
                headers={"x-api-key": sim.keys["admin"]},
                timeout=60,
            )
            sample = response.json()
        if sample:
            rounds = max(1, 1_000_000 // len(sample))
            t0 = time.perf_counter()
            for _ in range(rounds):
                for raw in sample:
                    parse_event(raw)
            per_event_us = (time.perf_counter() - t0) / (rounds * len(sample)) * 1e6
            results["parse_event_us"] = per_event_us
            print(f"parse_event alone: {per_event_us:.2f} µs/event over {rounds * len(sample):,} events")
    finally:
        sim.stop()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
