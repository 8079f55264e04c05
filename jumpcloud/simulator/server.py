"""HTTP transport: a stdlib ThreadingHTTPServer speaking HTTP/1.1 with keep-alive.

Each response is written in one piece (status line, headers, body) with TCP_NODELAY, so pooled
client connections never wait on Nagle/delayed-ACK, and always with Content-Length.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from jumpcloud.simulator.api import Request, Response, error_response

# (request, arrival monotonic time) -> (response, truncate the body?)
Dispatch = Callable[[Request, float], tuple[Response, bool]]


class SimulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], dispatch: Dispatch) -> None:
        self.dispatch = dispatch
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, conn: socket.socket, alive: bool) -> None:
        with self._connections_lock:
            if alive:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def close_connections(self) -> None:
        """Drop idle keep-alive connections so their handler threads end with the server."""
        with self._connections_lock:
            conns = list(self._connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "JumpCloudSimulator/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 300  # idle keep-alive connections are dropped after this many seconds
    server: SimulatorHTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        # Requests are recorded in Simulator.requests; per-request stderr lines would drown test output.
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def _serve(self) -> None:
        arrived = time.monotonic()
        split = urlsplit(self.path)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self._send(error_response(400, "Bad Request: invalid Content-Length"), truncate=False)
            self.close_connection = True
            return
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            body = self._read_chunked()
        else:
            body = self.rfile.read(length) if length > 0 else b""
        request = Request(
            self.command, split.path, parse_qs(split.query, keep_blank_values=True), self.headers, body
        )
        response, truncate = self.server.dispatch(request, arrived)
        self._send(response, truncate=truncate)

    def _read_chunked(self) -> bytes:
        # Read the whole chunked body so the keep-alive connection stays in step with the client.
        parts: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()  # CRLF after each chunk

    def _send(self, response: Response, *, truncate: bool) -> None:
        body = response.body
        try:
            phrase = HTTPStatus(response.status).phrase
        except ValueError:
            phrase = ""
        lines = [
            f"HTTP/1.1 {response.status} {phrase}",
            f"Server: {self.server_version}",
            f"Date: {self.date_time_string()}",
            f"Content-Length: {len(body)}",
        ]
        if response.content_type:
            lines.append(f"Content-Type: {response.content_type}")
        lines.extend(f"{name}: {value}" for name, value in response.headers.items())
        if self.close_connection or truncate:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            if truncate:
                # Promise the whole body, deliver half, hang up: what a dropped upstream connection looks like.
                self.wfile.write(head + body[: len(body) // 2])
                self.close_connection = True
            else:
                self.wfile.write(head + body)
        finally:
            if response.after_send is not None:
                response.after_send()
