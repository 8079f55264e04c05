"""What error reports may show: nothing that opens a data store or an account.

Django's own filter hides settings whose names look secret, and only outside DEBUG hides the local
variables of functions marked sensitive. This one also hides every connection URL (DATABASE_URL,
REDIS_URL, the broker, the cache: as settings and as environment variables in request.META), the
Authorization header, and sensitive variables in DEBUG too: the development debug page is seen by
whoever triggered the error, a Viewer included.
"""

from __future__ import annotations

import re
from typing import Any

from django.views.debug import SafeExceptionReporterFilter

# A URL of a data store or broker (postgres://, redis://, amqp://, sqlite:///, filesystem://...):
# it may carry a password. Web URLs (http, https) are left as they are.
_SERVICE_URL = re.compile(r"^(?!https?://)[a-z][a-z0-9+.-]*://", re.IGNORECASE)


class ToriiExceptionReporterFilter(SafeExceptionReporterFilter):
    hidden_settings = re.compile(
        "API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|AUTH|URL|DATABASE|REDIS|BROKER|CACHES|LOCATION|DSN|CREDENTIAL",
        flags=re.IGNORECASE,
    )

    def is_active(self, request: Any) -> bool:
        return True

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        cleansed = super().cleanse_setting(key, value)
        if type(cleansed) is str and _SERVICE_URL.match(cleansed):  # not lazy objects: never evaluate them
            return self.cleansed_substitute
        return cleansed
