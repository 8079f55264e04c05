#!/usr/bin/env python
"""Django's command-line utility for administrative tasks.

With DATABASE_URL unset, a command uses torii's embedded PostgreSQL when it is running (under
`make run`), or starts it for the length of the command and stops it afterwards.
"""

import contextlib
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "torii.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    from torii import embedded_db

    try:
        data_dir = settings.EMBEDDED_DATABASE_DIR
    except ImproperlyConfigured:
        data_dir = None  # execute_from_command_line reports what is wrong with the settings
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(embedded_db.serving(data_dir))
        except embedded_db.EmbeddedDatabaseError as exc:
            sys.exit(f"torii: {exc}")
        execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
