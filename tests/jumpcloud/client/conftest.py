"""Fixtures for the JumpCloud client tests: a client with a recognisable fake key, recorded sleeps,
and a scripted local HTTP server for what `responses` cannot show (urllib3 sleeps, timeouts,
refused connections, bodies cut short)."""

from __future__ import annotations

import collections
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import responses

from jumpcloud import retry as jc_retry
from jumpcloud.client import JumpCloudClient

# Long and distinctive so a leak is found by plain substring search.
API_KEY = "jcapi-SECRET-0123456789abcdef0123456789abKEY9"
CONSOLE = "https://console.jumpcloud.com"
DI = "https://api.jumpcloud.com/insights/directory/v1"


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every wait the client would have made, instead of making it."""
    recorded: list[float] = []
    monkeypatch.setattr(jc_retry, "_sleep", recorded.append)
    return recorded


@pytest.fixture
def mocked(sleeps: list[float]) -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def client(mocked: responses.RequestsMock) -> Iterator[JumpCloudClient]:
    with JumpCloudClient(API_KEY) as c:
        yield c


def users_page(count: int, *, start: int = 0, total: int | None = None) -> dict[str, Any]:
    return {
        "totalCount": count if total is None else total,
        "results": [{"_id": f"u{start + i:05d}", "username": f"user.{start + i}"} for i in range(count)],
    }


# --------------------------------------------------------------------------------------------------
# Scripted server


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-serialisable, or bytes sent as-is
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    truncate: bool = False  # announce the full length, send half, close


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class ScriptedServer:
    def __init__(self) -> None:
        self.replies: collections.deque[Reply] = collections.deque()
        self.seen: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.seen.append(Seen(self.command, self.path, dict(self.headers), body, time.monotonic()))
                reply = server.replies.popleft() if server.replies else Reply(500, {"message": "unscripted"})
                if reply.delay:
                    time.sleep(reply.delay)
                raw = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                if reply.body is None:
                    raw = b""
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    if raw or reply.status != 204:
                        self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    if reply.truncate:
                        self.wfile.write(raw[: len(raw) // 2])
                        self.wfile.flush()
                        self.close_connection = True
                    else:
                        self.wfile.write(raw)
                except OSError:
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda *args: None  # type: ignore[method-assign]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(sleeps: list[float]) -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    yield srv
    srv.stop()


@pytest.fixture
def closed_port() -> int:
    """A local port nobody listens on: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
