"""What error reports may show: nothing that opens a data store or an account.

Django's own filter hides settings whose names look secret, and only outside DEBUG hides the local
variables of functions marked sensitive. This one also hides every connection URL (DATABASE_URL,
REDIS_URL, the broker, the cache: as settings and as environment variables in request.META), the
Authorization header, and sensitive variables in DEBUG too. And the development debug page itself
is shown to torii Admins only: a Viewer who triggers an error sees a plain error page.
"""

from __future__ import annotations

import re
from typing import Any

from django.utils.safestring import SafeString, mark_safe
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

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

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Any:
        """Each frame's local variables cleansed like settings: a variable or dict key named like a
        secret (the WSGI environ's DATABASE_URL, a `key`, a `password`) and any data store URL are
        hidden, in every frame, not only in functions marked sensitive."""
        variables = super().get_traceback_frame_variables(request, tb_frame)
        return [(name, self.cleanse_setting(name, value)) for name, value in variables]

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        cleansed = super().cleanse_setting(key, value)
        if type(cleansed) is str and _SERVICE_URL.match(cleansed):  # not lazy objects: never evaluate them
            return self.cleansed_substitute
        return cleansed


class ToriiExceptionReporter(ExceptionReporter):
    """The development debug page shows the traceback to torii Admins only. Anyone else who hits
    an error there (a Viewer, someone without a role, an anonymous visitor) gets a plain page; the
    error e-mails to ADMINS keep the full report (filtered as above)."""

    def _for_admin(self) -> bool:
        if self.is_email or self.request is None:
            return True
        from accounts.roles import is_admin

        return is_admin(getattr(self.request, "user", None))

    def get_traceback_html(self) -> SafeString:
        if self._for_admin():
            return super().get_traceback_html()
        return mark_safe(  # noqa: S308 - a constant
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Server error</title>'
            "</head><body><h1>Server error</h1><p>Something went wrong. The details are shown to torii "
            "Admins only (development).</p></body></html>"
        )

    def get_traceback_text(self) -> SafeString:
        if self._for_admin():
            return super().get_traceback_text()
        return mark_safe("Server error. The details are shown to torii Admins only (development).\n")  # noqa: S308
