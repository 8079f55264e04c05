"""The sync benchmark N times in a row, then how often each goal was met.

    .venv/bin/python bench/sync_repeat.py -n 3 [bench/sync.py's arguments]

On a shared 2-core machine one run says little: the same code and data have measured a limit of
41 to 55 s within half an hour (the client's CPU for the same pages moving by a quarter). Each run
is complete in itself (its own simulator, database and limit, measured just before its sync), so
each goal is judged per run, as bench/sync.py judges it; this prints every run's figures side by
side, the spread, and in how many runs each goal was met. Each run's JSON is kept
(bench/results/sync-repeat-K.json) and the summary goes to bench/results/sync-repeat.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

# (label, how to read it from one run's JSON, format)
MEASURES: tuple[tuple[str, Any, str], ...] = (
    ("limit total (s)", lambda r: r["limit"]["limit_s"], "{:.1f}"),
    ("  its fetch: client CPU (CPU-s)", lambda r: r["limit"]["fetch_cpu"]["client_s"], "{:.1f}"),
    ("initial sync, run (s)", lambda r: r["initial"]["seconds"], "{:.1f}"),
    ("  ratio to the limit", lambda r: r["initial"]["ratio_to_limit"], "{:.2f}x"),
    ("  events/s", lambda r: r["initial"]["events_per_s"], "{:,.0f}"),
    ("  machine CPU busy (CPU-s)", lambda r: r["initial"]["cpu"]["machine_busy_s"], "{:.1f}"),
    ("  of it PostgreSQL (CPU-s)", lambda r: r["initial"]["cpu"]["postgres_s"], "{:.1f}"),
    ("  peak RSS (MB)", lambda r: r["initial"]["peak_rss_mb"], "{:.0f}"),
    ("second full sync, run (s)", lambda r: r["second_full"]["seconds"], "{:.2f}"),
    ("  share of the initial sync", lambda r: r["second_full"]["share_of_initial"], "{:.1%}"),
    ("  rows written", lambda r: r["second_full"]["rows_written"], "{:d}"),
    ("incremental 10k events, run (s)", lambda r: r["incremental"]["seconds"], "{:.2f}"),
)


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per measure: each run's value, min, median and max; per goal: in how many runs it was met."""
    measures = {}
    for label, read, _ in MEASURES:
        values = [read(r) for r in runs]
        measures[label.strip()] = {
            "runs": values,
            "min": min(values),
            "median": statistics.median(values),
            "max": max(values),
        }
    goals = {goal: sum(1 for r in runs if r["goals"][goal]) for goal in runs[0]["goals"]}
    return {"runs": len(runs), "measures": measures, "goals_met": goals}


def print_table(runs: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    width = max(len(label) for label, _, _ in MEASURES)
    head = "".join(f"{'run ' + str(i + 1):>12}" for i in range(len(runs)))
    print(f"\n  {'':<{width}}{head}{'median':>12}")
    for label, read, fmt in MEASURES:
        cells = "".join(f"{fmt.format(read(r)):>12}" for r in runs)
        median = summary["measures"][label.strip()]["median"]
        shown = fmt.format(int(median)) if fmt == "{:d}" else fmt.format(median)
        print(f"  {label:<{width}}{cells}{shown:>12}")
    print()
    for goal, met in summary["goals_met"].items():
        print(f"  [{met}/{len(runs)}] {goal}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--runs", type=int, default=3)
    args, sync_args = parser.parse_known_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if any(a == "--out" or a.startswith("--out=") for a in sync_args):
        parser.error("--out is set per run here (bench/results/sync-repeat-K.json)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    runs = []
    for k in range(1, args.runs + 1):
        out = RESULTS / f"sync-repeat-{k}.json"
        print(f"--- run {k} of {args.runs}", flush=True)
        done = subprocess.run([sys.executable, "bench/sync.py", "--out", str(out), *sync_args], cwd=ROOT)
        if done.returncode:
            print(f"run {k} failed ({done.returncode}); stopping", file=sys.stderr)
            return done.returncode
        runs.append(json.loads(out.read_text()))
    summary = summarise(runs)
    print_table(runs, summary)
    (RESULTS / "sync-repeat.json").write_text(
        json.dumps({"when": datetime.now(UTC).isoformat(timespec="seconds"), **summary}, indent=2)
    )
    print(f"\nwrote {RESULTS / 'sync-repeat.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
