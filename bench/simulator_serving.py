"""How fast does the JumpCloud simulator serve? Pages everything with plain `requests`.

    .venv/bin/python bench/simulator_serving.py [--users 50000] [--events 1000000] [--apps 300] [--days 90]

The simulator runs in its own process (python -m jumpcloud.simulator), as it does for the Celery and
end-to-end benchmarks, so the figures are client + server on two cores rather than one GIL.
Prints generation time, server memory, users/s, events/s and app-assignments/s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):  # peak resident set size
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _start(
    args: argparse.Namespace, keys_file: Path
) -> tuple[subprocess.Popen[bytes], dict[str, object], float]:
    cmd = [
        sys.executable,
        "-m",
        "jumpcloud.simulator",
        "--port",
        "0",
        "--seed",
        str(args.seed),
        "--users",
        str(args.users),
        "--apps",
        str(args.apps),
        "--days",
        str(args.days),
        "--events",
        str(args.events),
        "--keys-file",
        str(keys_file),
    ]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while not keys_file.exists():
        if proc.poll() is not None:
            raise SystemExit("simulator exited: " + (proc.stderr.read().decode() if proc.stderr else ""))
        time.sleep(0.05)
    time.sleep(0.05)  # the file is written in one go, but let the writer close it
    return proc, json.loads(keys_file.read_text()), time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--apps", type=int, default=300)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--event-page", type=int, default=10_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        proc, info, startup = _start(args, Path(tmp) / "keys.json")
        try:
            base = str(info["base_url"])
            keys = info["keys"]
            assert isinstance(keys, dict)
            session = requests.Session()
            session.headers["x-api-key"] = keys["admin"]
            print(
                f"simulator up in {startup:.1f}s (generation included); server peak RSS {_rss_mb(proc.pid) or 0:.0f} MB"
            )

            t0 = time.perf_counter()
            users, skip, requests_made = 0, 0, 0
            while True:
                r = session.get(f"{base}/api/systemusers", params={"limit": 100, "skip": skip, "sort": "_id"})
                r.raise_for_status()
                page = r.json()["results"]
                users += len(page)
                skip += len(page)
                requests_made += 1
                if len(page) < 100:
                    break
            dt = time.perf_counter() - t0
            print(
                f"users:  {users:>9,} in {dt:6.2f}s = {users / dt:>9,.0f} users/s ({requests_made} requests of 100)"
            )

            t0 = time.perf_counter()
            body: dict[str, object] = {
                "service": ["all"],
                "start_time": "2000-01-01T00:00:00Z",
                "limit": args.event_page,
            }
            events, pages, seen = 0, 0, set()
            waiting = parsing = 0.0
            while True:
                t1 = time.perf_counter()
                r = session.post(f"{base}/insights/directory/v1/events", json=body)
                r.raise_for_status()
                t2 = time.perf_counter()
                page = r.json()
                parsing += time.perf_counter() - t2
                waiting += t2 - t1
                events += len(page)
                pages += 1
                seen.update(e["id"] for e in page)
                if int(r.headers["X-Result-Count"]) < int(r.headers["X-Limit"]):
                    break
                body["search_after"] = json.loads(r.headers["X-Search_after"])
            dt = time.perf_counter() - t0
            print(
                f"events: {events:>9,} in {dt:6.2f}s = {events / dt:>9,.0f} events/s "
                f"({pages} pages of {args.event_page}; {len(seen):,} unique ids)"
            )
            print(
                f"        client waited {waiting:.2f}s for responses ({events / waiting:,.0f} events/s served incl. "
                f"transfer), spent {parsing:.2f}s in r.json()"
            )

            # The first catalogue app (slack) is bound to All Staff: every user, through nested groups.
            apps = session.get(f"{base}/api/applications", params={"filter": "name:$eq:slack"}).json()[
                "results"
            ]
            biggest = apps[0]["_id"] if apps else None
            if biggest:
                t0 = time.perf_counter()
                n, skip = 0, 0
                while True:
                    r = session.get(
                        f"{base}/api/v2/applications/{biggest}/users", params={"limit": 100, "skip": skip}
                    )
                    r.raise_for_status()
                    page = r.json()
                    n += len(page)
                    skip += len(page)
                    if len(page) < 100:
                        break
                dt = time.perf_counter() - t0
                print(
                    f"app users ({apps[0]['displayLabel']}): {n:,} in {dt:.2f}s = {n / dt:,.0f} assignments/s"
                )
            print(f"server peak RSS after paging {_rss_mb(proc.pid) or 0:.0f} MB")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
