"""Full-page screenshots of every torii page at 1440×900 and 390×844, for review by eye.

    .venv/bin/python scripts/screenshots.py [--out screenshots] [--only users,overview]

Builds a throw-away test database (from DATABASE_URL, like the test suite; it is dropped at the
end), connects the JumpCloud simulator's accounts through the real services (first syncs run
in-process), starts torii on a free port, signs in as an Admin in Debian's chromium and writes
<out>/<width>x<height>/<page>.png. Nothing is compared: the pictures are for people.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = ((1440, 900), (390, 844))
CHROMIUM = os.environ.get("TORII_CHROMIUM", "/usr/bin/chromium")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default=str(ROOT / "screenshots"), help="output folder (git-ignored)")
    parser.add_argument("--only", default="", help="comma-separated page names (default: every page)")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("TORII_ENV", "test")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "torii.settings")
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    import django

    django.setup()
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.db import connection
    from django.test.testcases import LiveServerThread
    from django.test.utils import setup_test_environment
    from playwright.sync_api import sync_playwright

    from tests.browser.demo import ADMIN_USERNAME, PAGES, PASSWORD, demo_simulator, seed_demo
    from torii.celery import app as celery_app

    only = {n.strip() for n in args.only.split(",") if n.strip()}
    out = Path(args.out)
    setup_test_environment(debug=False)
    celery_app.conf.task_always_eager = True
    db_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    print(f"test database {db_name}", flush=True)
    sim = demo_simulator().start(host="127.0.0.1", port=0)
    server = None
    try:
        started = time.monotonic()
        demo = seed_demo(sim)
        print(f"seeded in {time.monotonic() - started:.1f} s", flush=True)
        server = LiveServerThread("localhost", StaticFilesHandler, port=0)
        server.daemon = True
        server.start()
        server.is_ready.wait()
        if server.error:
            raise server.error
        base = f"http://localhost:{server.port}"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            for width, height in SIZES:
                folder = out / f"{width}x{height}"
                folder.mkdir(parents=True, exist_ok=True)
                context = browser.new_context(viewport={"width": width, "height": height})
                page = context.new_page()
                if not only or "login" in only:
                    page.goto(f"{base}/login/")
                    page.screenshot(path=str(folder / "login.png"), full_page=True)
                page.goto(f"{base}/login/")
                page.get_by_label("Username").fill(ADMIN_USERNAME)
                page.get_by_label("Password").fill(PASSWORD)
                page.get_by_role("button", name="Log in").click()
                page.wait_for_url(f"{base}/")
                for item in PAGES:
                    if only and item.name not in only:
                        continue
                    page.goto(base + item.path(demo))
                    page.wait_for_selector(item.ready)
                    page.wait_for_load_state("networkidle")
                    page.screenshot(path=str(folder / f"{item.name}.png"), full_page=True)
                if not only or "connect-org-picker" in only:
                    page.goto(f"{base}/integrations/connect/jumpcloud/")
                    page.get_by_label("API key").fill(sim.keys["multi_tenant"])
                    page.get_by_label("API endpoint").select_option(sim.base_url)
                    page.get_by_role("button", name="Connect").click()
                    page.wait_for_selector("#id_org_id")
                    page.screenshot(path=str(folder / "connect-org-picker.png"), full_page=True)
                context.close()
                print(f"{folder}: {len(list(folder.glob('*.png')))} pages", flush=True)
            browser.close()
    finally:
        if server is not None:
            server.terminate()
        sim.stop()
        connection.creation.destroy_test_db(db_name, verbosity=0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
