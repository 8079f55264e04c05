"""Hostile upstream data: records planted straight into a simulator tenant (JumpCloud's own API
rules, such as its username rules, would refuse some of them; a compromised or buggy upstream
would not), so a sync carries them into torii exactly as JumpCloud would send them."""

from __future__ import annotations

import time
from typing import Any

from jumpcloud.simulator import Simulator
from jumpcloud.simulator.timefmt import iso_ms

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(2)>"
SVG = '"><svg onload=alert(3)>'
QUOTE = "' onmouseover='alert(4)' x='"
JSON_BREAK = "</script><script>alert(5)</script>"
ORG = 'Acme <script>alert("org")</script>'
JS_URLS = ["javascript:alert(6)", " JaVaScRiPt:alert(7)", "data:text/html,<script>alert(8)</script>"]
# Every payload that must only ever appear escaped.
MARKUP = [SCRIPT, IMG, SVG, QUOTE, JSON_BREAK, ORG]

FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-1+1", "@SUM(1,1)", "\t=1+1", "\r=1+1"]

HOSTILE_USERNAME = SCRIPT
XSS_APP_ID = "5f00000000000000000000c0"  # the first planted application
FORMULA_USERNAME = FORMULAS[0]


def escaped(payload: str) -> str:
    """The payload as Django's autoescaping writes it."""
    from django.utils.html import escape

    return str(escape(payload))


def plant(sim: Simulator, tenant_name: str = "primary") -> dict[str, Any]:
    """Put hostile users, an administrator, applications and events into a tenant."""
    tenant = sim.tenant(tenant_name)
    template = next(u for u in tenant.users if u["state"] == "ACTIVATED")
    now = int(time.time() * 1000)
    with tenant.lock:
        tenant.org["displayName"] = ORG
        tenant.org["settings"]["name"] = ORG
        xss_user = {
            **template,
            "_id": "5f00000000000000000000a1",
            "username": HOSTILE_USERNAME,
            "email": "xss.user@acme.example",
            "firstname": IMG,
            "lastname": SVG,
            "displayname": JSON_BREAK,
            "jobTitle": QUOTE,
            "department": SCRIPT,
            "manager": "",
        }
        csv_user = {
            **template,
            "_id": "5f00000000000000000000a2",
            "username": FORMULA_USERNAME,
            "email": "=1+1@acme.example",
            "firstname": FORMULAS[1],
            "lastname": FORMULAS[2],
            "displayname": FORMULAS[3],
            "manager": "",
        }
        for user in (xss_user, csv_user):
            tenant._insert_user(user)
        tenant.admins.append(
            {
                "_id": "5f00000000000000000000b1",
                "email": "xss.admin@it-partner.example",
                "firstname": IMG,
                "lastname": SCRIPT,
                "created": iso_ms(now - 86_400_000 * 400),
                "organization": tenant.org_id,
                "provider": "",
                "role": "5f0000000000000000000001",
                "roleName": QUOTE,
                "roles": [],
                "roleNames": [QUOTE],
                "suspended": False,
                "enableMultiFactor": False,
                "totpEnrolled": False,
                "apiKeyAllowed": True,
                "apiKeySet": False,
                "passwordUpdatedAt": iso_ms(now - 86_400_000 * 30),
            }
        )
        base_app = tenant.apps[0]
        apps = []
        for n, (label, name, url) in enumerate(
            [
                (IMG, SVG, JS_URLS[0]),
                (QUOTE, SCRIPT, JS_URLS[1]),
                (FORMULAS[0], JSON_BREAK, JS_URLS[2]),
            ]
        ):
            app = {
                **base_app,
                "_id": XSS_APP_ID[:-1] + str(n),
                "displayLabel": label,
                "displayName": label,
                "name": name,
                "ssoUrl": url,
                "active": True,
                "description": SCRIPT,
            }
            tenant.apps.append(app)
            tenant._apps_by_id[app["_id"]] = app
            tenant.app_direct_users[app["_id"]] = [xss_user["_id"], csv_user["_id"]]
            tenant.app_groups[app["_id"]] = []
            apps.append(app)
        tenant.version += 1
    actor = {"id": xss_user["_id"], "type": "user", "username": HOSTILE_USERNAME, "email": IMG}
    for minutes, ok in ((50, True), (40, False), (30, True)):
        at = now - minutes * 60_000
        tenant.events.append(
            {
                "service": "directory",
                "event_type": "user_login_attempt",
                "timestamp": iso_ms(at),
                "organization": tenant.org_id,
                "initiated_by": actor,
                "success": ok,
                "auth_method": "password",
                "client_ip": IMG,
                "error_message": "" if ok else SVG,
                "useragent": {"name": SCRIPT},
            },
            ts_ms=at,
            visible_at_ms=at,
        )
        tenant.events.append(
            {
                "service": "sso",
                "event_type": "sso_auth",
                "timestamp": iso_ms(at + 1000),
                "organization": tenant.org_id,
                "initiated_by": actor,
                "sso_token_success": ok,
                "error_message": "" if ok else QUOTE,
                "client_ip": "203.0.113.9",
                "application": {
                    "id": apps[0]["_id"],
                    "name": SVG,
                    "display_label": IMG,
                    "sso_url": JS_URLS[0],
                },
            },
            ts_ms=at + 1000,
            visible_at_ms=at + 1000,
        )
    return {"xss_user": xss_user, "csv_user": csv_user, "apps": apps}
