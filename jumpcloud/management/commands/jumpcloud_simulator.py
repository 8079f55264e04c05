"""manage.py jumpcloud_simulator: serve the local JumpCloud simulator until Ctrl-C / SIGTERM."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from jumpcloud import demo
from jumpcloud.simulator import Simulator
from jumpcloud.simulator.cli import add_arguments, serve


class Command(BaseCommand):
    help = "Serve a local JumpCloud API (v1, v2, Directory Insights) with generated data and optional faults."

    def add_arguments(self, parser: CommandParser) -> None:
        add_arguments(parser)
        parser.add_argument(
            "--demo-connect",
            action="store_true",
            help="once serving, connect the simulator to torii as the demo JumpCloud account",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        on_ready = self._demo_connect if options["demo_connect"] else None
        serve(options, on_ready=on_ready, out=self.stdout)

    def _demo_connect(self, sim: Simulator) -> None:
        try:
            connection = demo.connect_demo(base_url=sim.base_url, api_key=sim.keys["admin"])
        except Exception as exc:  # the simulator keeps serving; only the demo wiring failed
            self.stderr.write(self.style.ERROR(f"--demo-connect failed: {exc}"))
            return
        if connection is None:
            self.stderr.write(
                self.style.WARNING("--demo-connect: torii did not connect the simulator (see the log).")
            )
            return
        self.stdout.write("Connected the simulator as the demo JumpCloud account.")
