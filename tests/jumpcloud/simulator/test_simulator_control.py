"""Out-of-process control (/__simulator__/), the CLI and the management command."""

from __future__ import annotations

import io
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from jumpcloud.management.commands.jumpcloud_simulator import Command
from jumpcloud.simulator import Simulator, SimulatorConfig
from jumpcloud.simulator.cli import serve, write_keys_file
from tests.jumpcloud.simulator.support import ANCHOR, Api

REPO = Path(__file__).resolve().parent.parent.parent.parent


def _control(sim: Simulator, method: str, action: str, body: Any = None) -> requests.Response:
    return requests.request(method, f"{sim.base_url}/__simulator__/{action}", json=body, timeout=30)


def test_info(fresh_sim: Simulator) -> None:
    info = _control(fresh_sim, "GET", "info").json()
    assert info["base_url"] == fresh_sim.base_url
    assert info["keys"] == fresh_sim.keys and info["org_ids"] == fresh_sim.org_ids
    assert info["counts"]["primary"]["users"] == 60
    assert info["counts"]["primary"]["events"] == 1500
    assert info["counts"]["no_di"]["events"] == 0


def test_faults_over_http(fresh_sim: Simulator) -> None:
    r = _control(fresh_sim, "POST", "faults", {"rate_503": 1.0, "path_prefixes": ["/api/users"]})
    assert r.status_code == 200 and r.json()["rate_503"] == 1.0
    assert Api(fresh_sim).get("/api/users").status_code == 503
    assert Api(fresh_sim).get("/api/systemusers").status_code == 200
    assert _control(fresh_sim, "GET", "faults").json()["path_prefixes"] == ["/api/users"]
    bad = _control(fresh_sim, "POST", "faults", {"rate_429": 2})
    assert bad.status_code == 400
    assert _control(fresh_sim, "POST", "faults", {"typo": 1}).status_code == 400
    _control(fresh_sim, "POST", "faults", {})
    assert Api(fresh_sim).get("/api/users").status_code == 200


def test_events_and_requests_over_http(fresh_sim: Simulator) -> None:
    before = fresh_sim.tenant().events.count_visible(int(time.time() * 1000))
    added = _control(fresh_sim, "POST", "events", {"count": 25, "org": "primary", "service": "sso"}).json()
    assert added["count"] == 25 and len(added["ids"]) == 25
    assert fresh_sim.tenant().events.count_visible(int(time.time() * 1000)) == before + 25
    Api(fresh_sim).get("/api/organizations")
    logged = _control(fresh_sim, "GET", "requests").json()
    assert [(r["method"], r["path"], r["status"]) for r in logged] == [("GET", "/api/organizations", 200)]
    assert fresh_sim.keys["admin"] not in json.dumps(logged)
    assert _control(fresh_sim, "POST", "requests/clear").json() == {"cleared": 1}
    assert _control(fresh_sim, "GET", "requests").json() == []
    assert _control(fresh_sim, "POST", "events", {"org": "nowhere"}).status_code == 400
    assert _control(fresh_sim, "GET", "nothing").status_code == 404


def test_control_can_be_disabled() -> None:
    config = SimulatorConfig(seed=1, users=10, apps=1, days=1, events=10, anchor=ANCHOR)
    with Simulator(config, control=False).start() as sim:
        assert _control(sim, "GET", "info").status_code == 404
        assert Api(sim).get("/api/organizations").status_code == 200


def test_keys_file_is_private(tmp_path: Path, fresh_sim: Simulator) -> None:
    path = write_keys_file(tmp_path / "nested" / "keys.json", fresh_sim)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    data = json.loads(path.read_text())
    assert data["keys"] == fresh_sim.keys and data["base_url"] == fresh_sim.base_url


def _options(**overrides: Any) -> dict[str, Any]:
    parser = Command().create_parser("manage.py", "jumpcloud_simulator")
    options = vars(
        parser.parse_args(["--port", "0", "--users", "20", "--apps", "2", "--days", "1", "--events", "50"])
    )
    options.update(overrides)
    return options


def test_management_command_options() -> None:
    parser = Command().create_parser("manage.py", "jumpcloud_simulator")
    options = vars(
        parser.parse_args(
            [
                "--port",
                "8765",
                "--host",
                "127.0.0.1",
                "--seed",
                "1",
                "--users",
                "5000",
                "--apps",
                "40",
                "--days",
                "30",
                "--events",
                "1000",
                "--fault-429",
                "0.3",
                "--fault-503",
                "0.05",
                "--latency-ms",
                "20",
                "--truncate-rate",
                "0.01",
                "--malformed-rate",
                "0.001",
                "--keys-file",
                "var/simulator-keys.json",
                "--no-control",
                "--demo-connect",
            ]
        )
    )
    assert options["fault_429"] == 0.3 and options["fault_503"] == 0.05 and options["latency_ms"] == 20
    assert options["truncate_rate"] == 0.01 and options["malformed_rate"] == 0.001
    assert options["no_control"] is True and options["demo_connect"] is True


def test_serve_prints_keys_and_stops(tmp_path: Path) -> None:
    out = io.StringIO()
    stop = threading.Event()
    seen: dict[str, Any] = {}

    def on_ready(sim: Simulator) -> None:
        seen["status"] = Api(sim).get("/api/organizations").status_code
        seen["url"] = sim.base_url
        stop.set()

    serve(_options(keys_file=str(tmp_path / "keys.json")), on_ready=on_ready, out=out, stop=stop)
    text = out.getvalue()
    assert seen["status"] == 200 and seen["url"] in text
    assert "key admin" in text and "org primary" in text
    assert json.loads((tmp_path / "keys.json").read_text())["base_url"] == seen["url"]


def test_demo_connect_hands_the_admin_key_to_torii(monkeypatch: pytest.MonkeyPatch) -> None:
    from jumpcloud import demo

    calls: list[dict[str, str]] = []
    monkeypatch.setattr(demo, "connect_demo", lambda **kwargs: calls.append(kwargs) or object())
    command = Command(stdout=io.StringIO(), stderr=io.StringIO())
    config = SimulatorConfig(seed=1, users=5, apps=1, days=1, events=5, anchor=ANCHOR)
    with Simulator(config).start() as sim:
        command._demo_connect(sim)
        assert calls == [{"base_url": sim.base_url, "api_key": sim.keys["admin"]}]
    assert "Connected" in command.stdout._out.getvalue()  # type: ignore[attr-defined]


def test_module_entry_point_serves_until_sigterm(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jumpcloud.simulator",
            "--port",
            "0",
            "--users",
            "20",
            "--apps",
            "2",
            "--days",
            "1",
            "--events",
            "100",
            "--keys-file",
            str(keys),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        # The keys file is written once the server listens; wait until it is there and complete.
        deadline = time.monotonic() + 60
        info = None
        while info is None:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the simulator wrote no keys file"
            try:
                info = json.loads(keys.read_text())
            except (OSError, ValueError):
                time.sleep(0.05)
        r = requests.get(
            info["base_url"] + "/api/systemusers", headers={"x-api-key": info["keys"]["admin"]}, timeout=10
        )
        assert r.json()["totalCount"] == 20
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert b"Stopping the simulator" in (proc.stdout.read() if proc.stdout else b"")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_stopped_simulator_can_start_again() -> None:
    sim = Simulator(SimulatorConfig(seed=1, users=10, apps=1, days=1, events=3000, anchor=ANCHOR))
    for _ in range(2):
        sim.start()
        a = Api(sim)
        events = a.all_events({"service": ["all"], "start_time": "2025-01-01T00:00:00Z", "limit": 1000})
        assert len(events) == 3000
        a.close()
        sim.stop()
    sim.stop()  # idempotent
    with pytest.raises(RuntimeError):
        _ = sim.base_url
