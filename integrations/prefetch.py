"""Overlap fetching with writing: run an iterator in a background thread, a few items ahead.

A sync spends its time either waiting on the provider or writing to the database; fetching page
N+1 while page N is written roughly halves the wall time. The producer thread only touches the
HTTP client (the consumer must not use the same client meanwhile) and never the database.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


class Prefetch(Iterator[T]):
    """Items of `iterable`, produced up to `depth` ahead by a thread that starts at once (so the
    first items are on their way while the caller prepares). Use it as a context manager, or call
    close(): that stops the producer, whether or not iteration began or finished."""

    def __init__(self, iterable: Iterable[T], depth: int = 2):
        self._q: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self._produce, args=(iterable,), name="prefetch", daemon=True)
        self._thread.start()

    def _produce(self, iterable: Iterable[T]) -> None:
        q, stop = self._q, self._stop
        try:
            for item in iterable:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as exc:  # handed to the consumer, re-raised there
            q.put(_Failure(exc))

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        item = self._q.get()
        if item is _DONE:
            self.close()
            raise StopIteration
        if isinstance(item, _Failure):
            self.close()
            raise item.exc
        return item  # type: ignore[return-value]

    def close(self) -> None:
        self._finished = True
        self._stop.set()
        # Drain so a blocked producer can finish; then wait for it so the client is free again.
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._q.get(timeout=0.1)
        self._thread.join()

    def __enter__(self) -> Prefetch[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def prefetch(iterable: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Items of `iterable`, produced up to `depth` ahead in a thread started on first use; the
    producer stops when the loop ends, however it ends."""
    with Prefetch(iterable, depth) as items:
        yield from items
