"""A producer for tests/jumpcloud/test_child.py: `count` frames of `size` random hex characters,
each with its SHA-256, served as jumpcloud.child serves the sync's real children."""

from __future__ import annotations

import hashlib
import os
import struct
import sys

from jumpcloud.child import Send, serve


def _produce(send: Send, count: int, size: int, damaged: bool = False) -> None:
    if damaged:  # a frame whose length is right and whose bytes are not a pickle
        data = b"\x80\x05not a pickle"
        sys.stdout.buffer.write(struct.pack("!I", len(data)) + data)
        sys.stdout.buffer.flush()
        return
    for n in range(count):
        text = os.urandom(size // 2).hex()
        send(("page", (n, text, hashlib.sha256(text.encode()).hexdigest())))


if __name__ == "__main__":
    serve(_produce)
