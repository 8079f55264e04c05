"""A producer run in a child Python process, its results read back as frames.

Used where a sync's Python work would otherwise share one GIL with the rest of the sync: the
Directory Insights fetcher (jumpcloud.event_pipeline) and the app-assignment reader
(jumpcloud.assignment_reader). The child is a plain `python -m <module>` subprocess (Celery's
pool workers are daemonic processes, which multiprocessing forbids to have children). It reads
its parameters, API key included, as one pickled message on stdin (never argv or the
environment), and writes length-prefixed pickled frames to stdout: ("done", None) at the end,
("error", ...) for a JumpCloud error, which the parent raises as the same typed error, and
("crash", name) for anything else. The pipe holds about one frame, so a child stays at most a
frame or two ahead of its reader.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

from jumpcloud import errors

_FRAME = struct.Struct("!I")

Send = Callable[[tuple[str, Any]], None]


def error_frame(exc: errors.JumpCloudError) -> tuple[str, str | None, int | None, str, float | None]:
    """A JumpCloud error as plain values (the child's classes are __main__'s, not the parent's)."""
    return (type(exc).__name__, exc.message, exc.status, exc.request_id, getattr(exc, "retry_after", None))


def rebuild_error(
    name: str, message: str, status: int | None, request_id: str, retry_after: float | None
) -> Exception:
    cls = getattr(errors, name, errors.UpstreamError)
    if not (isinstance(cls, type) and issubclass(cls, errors.JumpCloudError)):
        cls = errors.UpstreamError
    if cls is errors.RateLimited:
        return errors.RateLimited(message, retry_after=retry_after, status=status, request_id=request_id)
    return cls(message, status=status, request_id=request_id)


def serve(produce: Callable[..., None]) -> None:
    """Child side: `produce(send, **params)` with params from stdin; frames to stdout. A JumpCloud
    error or any other failure is reported as a frame, never as a traceback on stderr."""
    params = pickle.load(sys.stdin.buffer)  # noqa: S301 - written by our own parent process
    out = sys.stdout.fileno()

    def send(message: tuple[str, Any]) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        _write_all(out, _FRAME.pack(len(data)))
        _write_all(out, data)

    try:
        produce(send, **params)
        send(("done", None))
    except errors.JumpCloudError as exc:
        send(("error", error_frame(exc)))
    except BaseException as exc:  # reported to the parent, which raises it as an upstream failure
        send(("crash", type(exc).__name__))


def _write_all(fd: int, data: bytes) -> None:
    """All of `data` to the pipe, unbuffered. A stop signal (Ctrl-Z on `integrations_sync --wait`,
    a paused container, a sampling profiler) ends a big pipe write part-way; through sys.stdout's
    buffered writer the frame then arrived corrupted (tests/jumpcloud/test_child.py)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class Child:
    """Parent side: `python -m module` started with `params`; read its frames with `frames()`.
    `stop()` ends it from any thread (a reader blocked on the pipe then sees it end)."""

    def __init__(self, module: str, params: dict[str, Any], what: str):
        self.what = what
        self._process = subprocess.Popen(  # noqa: S603 - our own module, no shell, no user input in argv
            [sys.executable, "-m", module],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(pickle.dumps(params, protocol=pickle.HIGHEST_PROTOCOL))
            self._process.stdin.close()
        except BaseException:
            self.stop()
            raise

    def frames(self) -> Iterator[tuple[str, Any]]:
        """The child's frames until "done". Raises the child's JumpCloud errors as such."""
        out = self._process.stdout
        assert out is not None
        while True:
            header = out.read(_FRAME.size)
            if len(header) < _FRAME.size:
                raise errors.UpstreamError(f"The {self.what} stopped unexpectedly.")
            (size,) = _FRAME.unpack(header)
            try:
                kind, payload = pickle.loads(out.read(size))  # noqa: S301 - our own child's frames
            except Exception as exc:  # a damaged frame: JumpCloud's answer was not read whole; retried
                raise errors.UpstreamError(f"The {self.what} sent a damaged answer.") from exc
            if kind == "done":
                return
            if kind == "error":
                raise rebuild_error(*payload)
            if kind == "crash":
                raise errors.UpstreamError(f"The {self.what} failed ({payload}).")
            yield kind, payload

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
        self._process.wait(timeout=10)
        if self._process.stdout is not None:
            self._process.stdout.close()


def frames(module: str, params: dict[str, Any], what: str) -> Iterator[tuple[str, Any]]:
    """The frames of a child run to its end; leaving the loop early stops the child."""
    child = Child(module, params, what)
    try:
        yield from child.frames()
    finally:
        child.stop()
