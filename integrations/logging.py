"""A logging filter that masks any live credential that reaches a log record.

Nothing should log a key in the first place; this is the second wall. Keys are registered when a
connection's credentials are decrypted (integrations.services.connection_credentials) and by the
client, so the filter knows the exact strings to mask.
"""

from __future__ import annotations

import logging
import threading

_lock = threading.Lock()
_secrets: set[str] = set()
MASK = "[redacted]"


def register_secret(value: str) -> None:
    if value and len(value) >= 8:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    if not _secrets:
        return text
    for secret in list(_secrets):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            message = record.getMessage()
            clean = redact(message)
            if clean != message:
                record.msg, record.args = clean, None
            if record.exc_info and record.exc_info[1] is not None:
                import traceback

                formatted = "".join(traceback.format_exception(*record.exc_info))
                record.exc_text = redact(formatted)
                record.exc_info = None
        return True
