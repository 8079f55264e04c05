"""Helpers for the simulator's own tests: a fixed anchor, a small config, a request helper."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import requests

from jumpcloud.simulator import Simulator, SimulatorConfig

# A fixed anchor in the past: every generated event is visible and dates never move between runs.
ANCHOR = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SMALL = SimulatorConfig(seed=3, users=150, apps=12, days=10, events=4000, admins=8, groups=12, anchor=ANCHOR)


class Api:
    """requests against one simulator with one key (and optionally one x-org-id)."""

    def __init__(self, sim: Simulator, role: str | None = "admin", org: str | None = None) -> None:
        self.sim = sim
        self.session = requests.Session()
        if role is not None:
            self.session.headers["x-api-key"] = sim.keys[role]
        if org is not None:
            self.session.headers["x-org-id"] = sim.org_ids.get(org, org)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.sim.base_url + path, timeout=30, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def events(self, body: dict[str, Any]) -> requests.Response:
        return self.post("/insights/directory/v1/events", json=body)

    def all_events(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """Every page, the documented way: resend with X-Search_after until a short page."""
        body = dict(body)
        out: list[dict[str, Any]] = []
        while True:
            r = self.events(body)
            assert r.status_code == 200, r.text
            page = r.json()
            out.extend(page)
            if int(r.headers["X-Result-Count"]) < int(r.headers["X-Limit"]):
                return out
            body["search_after"] = json.loads(r.headers["X-Search_after"])

    def close(self) -> None:
        self.session.close()
