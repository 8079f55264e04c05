"""One JumpCloud organization in memory: users, administrators, SSO apps, user groups, events.

Generated deterministically from (seed, tenant name); dates are relative to the anchor. Writes go
through methods that hold the tenant lock and never mutate a user dict in place (a new dict
replaces the old), so readers rendering a page concurrently see either version, never half of one.
"""

from __future__ import annotations

import json
import random
import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from jumpcloud.simulator.events import EventStore, EventWorld
from jumpcloud.simulator.hashing import object_id, seed64
from jumpcloud.simulator.names import (
    APP_CATALOG,
    APP_LABEL_SUFFIXES,
    DEPARTMENTS,
    EMPLOYEE_TYPES,
    EXTRA_GROUPS,
    FIRST_NAMES,
    LAST_NAMES,
    LOCATIONS,
)
from jumpcloud.simulator.timefmt import iso_ms
from jumpcloud.usernames import MAX_LENGTH, username_problems

DAY_MS = 86_400_000

ROLE_NAMES: tuple[str, ...] = (
    "Administrator With Billing",
    "Administrator",
    "Manager",
    "Command Runner With Billing",
    "Command Runner",
    "Help Desk",
    "Billing Only",
    "Read Only",
)
ROLE_IDS: dict[str, str] = {name: object_id("role", name) for name in ROLE_NAMES}

# The spec's enum for application color / logo.color.
APP_COLORS: tuple[str, ...] = (
    "#202D38",
    "#005466",
    "#3E8696",
    "#006CAC",
    "#0617AC",
    "#7C6ADA",
    "#D5779D",
    "#9E2F00",
    "#FFB000",
    "#58C469",
    "#57C49F",
    "#FF6C03",
)

_EMPTY_LIST: list[Any] = []  # shared by thousands of users; never mutated (writes replace values)

# Fields a PUT may change (systemuserput in the V1 spec, minus the ones handled specially).
PUT_FIELDS: frozenset[str] = frozenset(
    {
        "account_locked",
        "addresses",
        "allow_public_key",
        "alternateEmail",
        "attributes",
        "company",
        "costCenter",
        "delegatedAuthority",
        "department",
        "description",
        "disableDeviceMaxLoginAttempts",
        "displayname",
        "email",
        "employeeIdentifier",
        "employeeType",
        "enable_managed_uid",
        "enable_user_portal_multifactor",
        "external_dn",
        "external_password_expiration_date",
        "external_source_type",
        "externally_managed",
        "firstname",
        "jobTitle",
        "lastname",
        "ldap_binding_user",
        "location",
        "managedAppleId",
        "manager",
        "mfa",
        "middlename",
        "password_never_expires",
        "phoneNumbers",
        "public_key",
        "relationships",
        "restrictedFields",
        "samba_service_user",
        "ssh_keys",
        "state",
        "sudo",
        "suspended",
        "unix_guid",
        "unix_uid",
        "username",
    }
)
POST_FIELDS: frozenset[str] = (PUT_FIELDS - {"ssh_keys"}) | {
    "activated",
    "passwordless_sudo",
    "recoveryEmail",
    "password",
}
_STRING_FIELDS = (
    "firstname",
    "lastname",
    "middlename",
    "displayname",
    "department",
    "jobTitle",
    "company",
    "costCenter",
    "location",
    "employeeType",
    "employeeIdentifier",
    "description",
    "alternateEmail",
    "manager",
)
_BOOL_FIELDS = (
    "account_locked",
    "activated",
    "suspended",
    "sudo",
    "passwordless_sudo",
    "password_never_expires",
    "enable_user_portal_multifactor",
    "ldap_binding_user",
    "allow_public_key",
    "externally_managed",
)


class WriteError(Exception):
    """A refused write; the API layer answers 400 (or `status`) with this message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class TenantSpec:
    name: str
    org_id: str
    display_name: str
    domain: str
    seed: int
    users: int
    apps: int
    groups: int
    admins: int
    events: int
    days: int
    anchor_ms: int
    directory_insights: bool
    default_state: str
    sso_share: float
    late_share: float
    late_min_ms: int
    late_max_ms: int
    write_event_delay_ms: int
    # (key role, role name) for the administrators whose API keys the simulator hands out.
    key_admins: tuple[tuple[str, str], ...] = ()


@dataclass
class Group:
    id: str
    name: str
    description: str
    user_ids: list[str] = field(default_factory=list)
    group_ids: list[str] = field(default_factory=list)
    _set_of: list[str] | None = field(default=None, init=False, repr=False, compare=False)
    _set: frozenset[str] = field(default=frozenset(), init=False, repr=False, compare=False)

    def has_user(self, user_id: str) -> bool:
        """Direct membership in O(1); rebuilt when user_ids is replaced (writes assign a new list)."""
        if self._set_of is not self.user_ids:
            self._set, self._set_of = frozenset(self.user_ids), self.user_ids
        return user_id in self._set

    def to_api(self, org_id: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "type": "user_group",
            "description": self.description,
            "email": "",
            "membershipMethod": "STATIC",
            "organizationObjectId": org_id,
        }


class Tenant:
    def __init__(self, spec: TenantSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.org_id = spec.org_id
        self.lock = threading.RLock()
        self.version = 0
        self._users: dict[str, dict[str, Any]] = {}
        self._position: dict[str, int] = {}
        self._by_username: dict[str, str] = {}
        self._by_email: dict[str, str] = {}
        self.admins: list[dict[str, Any]] = []
        self.key_admins: dict[str, dict[str, Any]] = {}
        self.apps: list[dict[str, Any]] = []
        self._apps_by_id: dict[str, dict[str, Any]] = {}
        self.groups: list[Group] = []
        self._groups_by_id: dict[str, Group] = {}
        self.app_direct_users: dict[str, list[str]] = {}
        self.app_groups: dict[str, list[str]] = {}
        self._new_ids = 0
        self._cache: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._kept: dict[tuple[Any, ...], Any] = {}
        self._kept_version = 0
        self.org = self._make_org()
        rng = random.Random(seed64(spec.seed, spec.name, "tenant"))
        generated = self._generate_users(rng)
        self._generate_admins(rng, generated)
        self._generate_groups(rng, generated)
        self._generate_apps(rng, generated)
        self.events = self._make_events(generated)

    # --- generation ------------------------------------------------------------------------------

    @property
    def _anchor_day_ms(self) -> int:
        # Object dates hang off the anchor's day so they stay put when a demo restarts the same day.
        return self.spec.anchor_ms - self.spec.anchor_ms % DAY_MS

    def _make_org(self) -> dict[str, Any]:
        s = self.spec
        created = iso_ms(self._anchor_day_ms - 1400 * DAY_MS)
        products = [
            {
                "name": "JumpCloud Platform",
                "productCode": "platform",
                "productCategory": "platform",
                "committedUsers": max(s.users, 10),
                "uncommittedUsers": 0,
                "maxUserCount": max(s.users * 2, 20),
                "contractType": "annual",
                "pricePerUser": 0,
            }
        ]
        if s.directory_insights:
            products.append(
                {
                    "name": "Directory Insights",
                    "productCode": "directory_insights",
                    "productCategory": "add_on",
                    "committedUsers": max(s.users, 10),
                    "uncommittedUsers": 0,
                    "maxUserCount": max(s.users * 2, 20),
                    "contractType": "annual",
                    "pricePerUser": 0,
                }
            )
        return {
            "_id": s.org_id,
            "displayName": s.display_name,
            "logoUrl": f"https://{s.domain}/logo.png",
            "created": created,
            "accessRestriction": "",
            "provider": "",
            "hasCreditCard": True,
            "hasStripeCustomerId": True,
            "totalBillingEstimate": 0,
            "entitlement": {
                "billingModel": "user",
                "capUserQuantity": False,
                "isManuallyBilled": False,
                "maxUserQuantity": max(s.users * 2, 20),
                "purchaseChannel": "direct",
                "entitlementProducts": products,
            },
            "settings": {
                "name": s.display_name,
                "contactName": "IT Team",
                "contactEmail": f"it@{s.domain}",
                "maxSystemUsers": max(s.users * 2, 20),
                "newSystemUserStateDefaults": {
                    "manualEntry": s.default_state,
                    "csvImport": "STAGED",
                    "applicationImport": "STAGED",
                },
                "passwordPolicy": {
                    "minLength": 12,
                    "needsLowercase": True,
                    "needsUppercase": True,
                    "needsNumeric": True,
                    "needsSymbolic": False,
                    "enablePasswordExpirationInDays": True,
                    "passwordExpirationInDays": 180,
                    "enableMaxLoginAttempts": True,
                    "maxLoginAttempts": 6,
                    "enableLockoutTimeInSeconds": True,
                    "lockoutTimeInSeconds": 600,
                },
                "requireAdminMFA": True,
                "systemUsersCanEdit": False,
                "features": {
                    "directoryInsights": {"enabled": s.directory_insights},
                    "directoryInsightsPremium": {"enabled": False},
                    "systemInsights": {"enabled": True},
                },
                "userPortal": {"cookieExpirationType": "session", "idleSessionDurationMinutes": 60},
            },
        }

    def _generate_users(self, rng: random.Random) -> list[dict[str, Any]]:
        s = self.spec
        day0 = self._anchor_day_ms
        dept_names = [d[0] for d in DEPARTMENTS]
        dept_weights = [d[1] for d in DEPARTMENTS]
        titles = {d[0]: d[2] for d in DEPARTMENTS}
        seen: dict[str, int] = {}
        users: list[dict[str, Any]] = []
        by_dept: dict[str, list[int]] = {}
        for n in range(s.users):
            first = rng.choice(FIRST_NAMES)
            last = rng.choice(LAST_NAMES)
            style = rng.random()
            if style < 0.75:
                base = f"{first}.{last}"
            elif style < 0.9:
                base = f"{first[0]}{last}"
            else:
                base = f"{first}_{last}"
            base = base.lower()[: MAX_LENGTH - 4]
            count = seen.get(base, 0)
            seen[base] = count + 1
            username = base if count == 0 else f"{base}{count + 1}"
            while username in self._by_username:  # "anna.smith2" could already be someone's base
                count += 1
                username = f"{base}{count + 1}"
            email = f"{username}@{s.domain}"
            dept = rng.choices(dept_names, dept_weights)[0]
            r = rng.random()
            state = "ACTIVATED" if r < 0.87 else "STAGED" if r < 0.93 else "SUSPENDED"
            if state == "STAGED":
                created_ms = day0 - rng.randrange(0, s.days) * DAY_MS - rng.randrange(DAY_MS)
            else:
                created_ms = day0 - (s.days + 1 + rng.randrange(0, 1100)) * DAY_MS - rng.randrange(DAY_MS)
            uid = object_id(s.seed, s.name, "user", n)
            locked = state == "ACTIVATED" and rng.random() < 0.015
            expired = state == "ACTIVATED" and not locked and rng.random() < 0.02
            never_expires = state != "STAGED" and rng.random() < 0.05
            password_ms = None if state == "STAGED" else day0 - rng.randrange(1, 200) * DAY_MS
            if expired:
                password_ms = day0 - (181 + rng.randrange(0, 60)) * DAY_MS
            mfa_roll = rng.random()
            if state != "ACTIVATED" and state != "SUSPENDED":
                mfa_kind = "none" if rng.random() < 0.8 else "pending"
            else:
                mfa_kind = (
                    "totp"
                    if mfa_roll < 0.62
                    else "push"
                    if mfa_roll < 0.72
                    else "exclusion"
                    if mfa_roll < 0.77
                    else "none"
                )
            user = self._user_record(
                uid=uid,
                username=username,
                email=email,
                first=first,
                last=last,
                dept=dept,
                title=rng.choice(titles[dept]),
                location=rng.choice(LOCATIONS),
                employee_type=rng.choice(EMPLOYEE_TYPES),
                state=state,
                created_ms=created_ms + rng.randrange(1000),
                locked=locked,
                locked_ms=day0 - rng.randrange(0, 3 * DAY_MS) if locked else None,
                expired=expired,
                never_expires=never_expires,
                password_ms=password_ms,
                mfa_kind=mfa_kind,
                exclusion_until_ms=day0 + rng.randrange(1, 14) * DAY_MS,
                portal_mfa=rng.random() < 0.6,
                employee_number=n + 1000,
                unix_id=5000 + n,
            )
            users.append(user)
            by_dept.setdefault(dept, []).append(n)
            self._insert_user(user)
        # Managers form a tree per department (fan-out 8) so "manager" points at real users.
        for members in by_dept.values():
            for k in range(1, len(members)):
                child = users[members[k]]
                if rng.random() < 0.9:
                    manager = users[members[(k - 1) // 8]]
                    updated = {**child, "manager": manager["_id"]}
                    users[members[k]] = updated
                    self._users[updated["_id"]] = updated
        return users

    def _user_record(
        self,
        *,
        uid: str,
        username: str,
        email: str,
        first: str,
        last: str,
        dept: str,
        title: str,
        location: str,
        employee_type: str,
        state: str,
        created_ms: int,
        locked: bool,
        locked_ms: int | None,
        expired: bool,
        never_expires: bool,
        password_ms: int | None,
        mfa_kind: str,
        exclusion_until_ms: int,
        portal_mfa: bool,
        employee_number: int,
        unix_id: int,
    ) -> dict[str, Any]:
        enrolled = mfa_kind in ("totp", "push")
        mfa: dict[str, Any] = {"configured": enrolled, "exclusion": mfa_kind == "exclusion"}
        if mfa_kind == "exclusion":
            mfa["exclusionDays"] = 7
            mfa["exclusionUntil"] = iso_ms(exclusion_until_ms)
        status = "ENROLLED" if enrolled else "PENDING_ACTIVATION" if mfa_kind == "pending" else "NOT_ENROLLED"
        password_exp = None
        if password_ms is not None and not never_expires:
            password_exp = iso_ms(password_ms + 180 * DAY_MS)
        return {
            "_id": uid,
            "account_locked": locked,
            "account_locked_date": iso_ms(locked_ms) if locked_ms is not None else None,
            "activated": state == "ACTIVATED" or (state == "SUSPENDED" and password_ms is not None),
            "addresses": _EMPTY_LIST,
            "allow_public_key": True,
            "alternateEmail": "",
            "attributes": _EMPTY_LIST,
            "badLoginAttempts": 6 if locked else 0,
            "company": self.spec.display_name,
            "costCenter": f"CC-{100 + DEPARTMENTS_INDEX[dept]}",
            "created": iso_ms(created_ms),
            "creationSource": "jumpcloud:manual",
            "department": dept,
            "description": "",
            "disableDeviceMaxLoginAttempts": False,
            "displayname": f"{first} {last}",
            "email": email,
            "employeeIdentifier": f"E{employee_number:06d}",
            "employeeType": employee_type,
            "enable_managed_uid": False,
            "enable_user_portal_multifactor": portal_mfa,
            "external_dn": "",
            "external_source_type": "",
            "externally_managed": False,
            "firstname": first,
            "jobTitle": title,
            "lastname": last,
            "ldap_binding_user": False,
            "location": location,
            "managedAppleId": "",
            "mfa": mfa,
            "mfaEnrollment": {
                "overallStatus": status,
                "totpStatus": status if mfa_kind == "totp" else "NOT_ENROLLED",
                "webAuthnStatus": "NOT_ENROLLED",
                "pushStatus": status if mfa_kind == "push" else "NOT_ENROLLED",
            },
            "middlename": "",
            "organization": self.org_id,
            "password_date": iso_ms(password_ms) if password_ms is not None else None,
            "password_expiration_date": password_exp,
            "password_expired": expired,
            "password_never_expires": never_expires,
            "passwordless_sudo": False,
            "phoneNumbers": _EMPTY_LIST,
            "public_key": "",
            "relationships": _EMPTY_LIST,
            "restrictedFields": _EMPTY_LIST,
            "samba_service_user": False,
            "ssh_keys": _EMPTY_LIST,
            "state": state,
            "sudo": False,
            "suspended": state == "SUSPENDED",
            "totp_enabled": mfa_kind == "totp",
            "unix_guid": unix_id,
            "unix_uid": unix_id,
            "username": username,
        }

    def _insert_user(self, user: dict[str, Any]) -> None:
        self._users[user["_id"]] = user
        self._position[user["_id"]] = len(self._position)
        self._by_username[user["username"]] = user["_id"]
        self._by_email[user["email"].lower()] = user["_id"]

    def _admin_record(
        self, *, aid: str, email: str, first: str, last: str, role: str, mfa: bool, created_ms: int
    ) -> dict[str, Any]:
        return {
            "_id": aid,
            "email": email,
            "firstname": first,
            "lastname": last,
            "created": iso_ms(created_ms),
            "organization": self.org_id,
            "provider": "",
            "role": ROLE_IDS[role],
            "roleName": role,
            "roles": [ROLE_IDS[role]],
            "roleNames": [role],
            "suspended": False,
            "enableMultiFactor": mfa,
            "totpEnrolled": mfa,
            "apiKeyAllowed": True,
            "apiKeySet": False,
            "passwordUpdatedAt": iso_ms(created_ms + 30 * DAY_MS),
        }

    def _generate_admins(self, rng: random.Random, users: list[dict[str, Any]]) -> None:
        s = self.spec
        day0 = self._anchor_day_ms
        for key_role, role in s.key_admins:
            record = self._admin_record(
                aid=object_id(s.seed, s.name, "key-admin", key_role),
                email=f"api.{key_role.replace('_', '.')}@{s.domain}",
                first="API",
                last=role,
                role=role,
                mfa=True,
                created_ms=day0 - 700 * DAY_MS,
            )
            record["apiKeySet"] = True
            self.key_admins[key_role] = record
            self.admins.append(record)
        activated = [u for u in users if u["state"] == "ACTIVATED"]
        shared = rng.sample(activated, min(len(activated), s.admins)) if activated else []
        for k in range(s.admins):
            role = ROLE_NAMES[k % len(ROLE_NAMES)]
            # Two in three administrators are also users (matched by email); the others are outside
            # IT partners who only exist as administrators.
            if k % 3 != 2 and k < len(shared):
                u = shared[k]
                email, first, last = u["email"], u["firstname"], u["lastname"]
            else:
                first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
                email = f"{first}.{last}.{k}@it-partner.example".lower()
            self.admins.append(
                self._admin_record(
                    aid=object_id(s.seed, s.name, "admin", k),
                    email=email,
                    first=first,
                    last=last,
                    role=role,
                    mfa=k == 0 or rng.random() < 0.7,
                    created_ms=day0 - rng.randrange(30, 1200) * DAY_MS,
                )
            )

    def _add_group(self, name: str, description: str) -> Group:
        group = Group(
            id=object_id(self.spec.seed, self.spec.name, "group", len(self.groups), name),
            name=name,
            description=description,
        )
        self.groups.append(group)
        self._groups_by_id[group.id] = group
        return group

    def _generate_groups(self, rng: random.Random, users: list[dict[str, Any]]) -> None:
        """All Staff -> umbrella groups -> department groups -> users (depth 3, acyclic by construction:
        a group only ever contains groups created before it)."""
        total = self.spec.groups
        if total <= 0:
            return
        n_extra = min(len(EXTRA_GROUPS), (total - 1) // 3)
        n_dept = min(len(DEPARTMENTS), total - 1 - n_extra)
        n_extra = min(len(EXTRA_GROUPS), total - 1 - n_dept)
        by_dept: dict[str, list[str]] = {}
        for u in users:
            by_dept.setdefault(u["department"], []).append(u["_id"])
        dept_group: dict[str, Group] = {}
        for name, _, _ in DEPARTMENTS[:n_dept]:
            g = self._add_group(name, f"Everyone in {name}")
            g.user_ids = list(by_dept.get(name, []))
            dept_group[name] = g
        covered: set[str] = set(dept_group)
        umbrellas: list[Group] = []
        for name, depts in EXTRA_GROUPS[:n_extra]:
            g = self._add_group(name, f"{name} team")
            if depts:
                g.group_ids = [dept_group[d].id for d in depts if d in dept_group]
                g.user_ids = [uid for d in depts if d not in dept_group for uid in by_dept.get(d, [])]
                covered.update(depts)
                umbrellas.append(g)
            elif name == "Contractors":
                g.user_ids = [u["_id"] for u in users if u["employeeType"] == "Contractor"]
            elif name == "People Managers":
                managers = {u.get("manager") for u in users if u.get("manager")}
                g.user_ids = [u["_id"] for u in users if u["_id"] in managers]
            else:
                k = max(1, len(users) // 40) if users else 0
                g.user_ids = [u["_id"] for u in rng.sample(users, min(k, len(users)))]
                if name == "Early Access":
                    g.group_ids = [x.id for x in self.groups[:-1] if x.name == "Security Champions"]
        for extra in range(total - 1 - n_dept - n_extra):
            g = self._add_group(f"Team {extra + 1}", "Project team")
            k = max(1, len(users) // 60) if users else 0
            g.user_ids = [u["_id"] for u in rng.sample(users, min(k, len(users)))]
        everyone = Group(
            id=object_id(self.spec.seed, self.spec.name, "group", "all-staff"),
            name="All Staff",
            description="Every employee",
        )
        everyone.group_ids = [g.id for g in umbrellas] + [
            g.id for name, g in dept_group.items() if not any(g.id in u.group_ids for u in umbrellas)
        ]
        everyone.user_ids = [uid for d, ids in by_dept.items() if d not in covered for uid in ids]
        self.groups.insert(0, everyone)
        self._groups_by_id[everyone.id] = everyone

    def _generate_apps(self, rng: random.Random, users: list[dict[str, Any]]) -> None:
        s = self.spec
        day0 = self._anchor_day_ms
        all_staff = self.groups[0] if self.groups else None
        broad = [g for g in self.groups[1:] if g.group_ids or g.name in {d[0] for d in DEPARTMENTS}]
        narrow = [g for g in self.groups[1:] if g not in broad]
        contractors = next((g for g in self.groups if g.name == "Contractors"), None)
        for j in range(s.apps):
            slug, display = APP_CATALOG[j % len(APP_CATALOG)]
            cycle = j // len(APP_CATALOG)
            if cycle:
                suffix = APP_LABEL_SUFFIXES[(cycle - 1) % len(APP_LABEL_SUFFIXES)]
                round_no = (cycle - 1) // len(APP_LABEL_SUFFIXES)
                label = f"{display} {suffix}" + (f" {round_no + 1}" if round_no else "")
                url_slug = f"{slug}-{cycle}"
            else:
                label, url_slug = display, slug
            aid = object_id(s.seed, s.name, "app", j)
            sso_url = f"https://sso.jumpcloud.com/saml2/{url_slug}"
            app = {
                "_id": aid,
                "active": j % 17 != 16,  # ~6% of apps are configured but switched off
                "beta": False,
                "color": APP_COLORS[j % len(APP_COLORS)],
                "config": {
                    "acsUrl": {
                        "label": "ACS URL",
                        "type": "text",
                        "value": f"https://{url_slug}.saas.example/saml/acs",
                        "visible": True,
                        "readOnly": False,
                        "required": True,
                        "position": 1,
                    },
                    "idpEntityId": {
                        "label": "IdP Entity ID",
                        "type": "text",
                        "value": f"jumpcloud-{url_slug}",
                        "visible": True,
                        "readOnly": False,
                        "required": True,
                        "position": 2,
                    },
                    "spEntityId": {
                        "label": "SP Entity ID",
                        "type": "text",
                        "value": f"https://{url_slug}.saas.example",
                        "visible": True,
                        "readOnly": False,
                        "required": True,
                        "position": 3,
                    },
                },
                "created": iso_ms(day0 - rng.randrange(s.days + 1, 900) * DAY_MS - rng.randrange(DAY_MS)),
                "databaseAttributes": _EMPTY_LIST,
                "description": "",
                "displayLabel": label,
                "displayName": display,
                "learnMore": "",
                "logo": {
                    "url": f"https://cdn.jumpcloud.example/logos/{slug}.png",
                    "color": APP_COLORS[j % len(APP_COLORS)],
                },
                "name": slug,
                "organization": self.org_id,
                "sso": {"type": "saml", "hidden": False, "jit": False, "beta": False},
                "ssoUrl": sso_url,
            }
            self.apps.append(app)
            self._apps_by_id[aid] = app
            direct: list[str] = []
            groups: list[str] = []
            if j < 3 and all_staff is not None:
                groups.append(all_staff.id)
                if j == 2 and contractors is not None:
                    groups.append(contractors.id)  # contractors reach this app twice: several paths
            else:
                # Most of a big catalogue is niche: a department or two, a small team, a few people.
                r = rng.random()
                if r < 0.08:
                    pass  # configured but assigned to nobody
                elif r < 0.32 and broad:
                    groups.extend(
                        g.id for g in rng.sample(broad, min(len(broad), 1 if rng.random() < 0.8 else 2))
                    )
                    direct.extend(u["_id"] for u in rng.sample(users, min(len(users), rng.randint(0, 3))))
                elif r < 0.55 and narrow:
                    groups.append(rng.choice(narrow).id)
                    direct.extend(u["_id"] for u in rng.sample(users, min(len(users), rng.randint(0, 5))))
                elif users:
                    k = rng.randint(1, max(1, min(60, len(users) // 4)))
                    direct.extend(u["_id"] for u in rng.sample(users, min(k, len(users))))
            self.app_direct_users[aid] = direct
            self.app_groups[aid] = groups

    def _make_events(self, users: list[dict[str, Any]]) -> EventStore:
        s = self.spec
        index = {u["_id"]: n for n, u in enumerate(users)}
        refs = [
            json.dumps({"id": u["_id"], "type": "user", "username": u["username"]}, separators=(",", ":"))
            for u in users
        ]
        login_pool = array("l")
        refused_pool = array("l")
        rng = random.Random(seed64(s.seed, s.name, "activity"))
        for n, u in enumerate(users):
            if u["state"] == "SUSPENDED" or u["account_locked"]:
                refused_pool.append(n)
            elif u["state"] == "ACTIVATED" and rng.random() >= 0.08:  # ~8% dormant: never log in
                login_pool.append(n)
        admin_refs = [
            json.dumps({"id": a["_id"], "type": "admin", "email": a["email"]}, separators=(",", ":"))
            for a in self.admins
        ]
        app_refs, url_only, app_users, cum = [], [], [], [0]
        for app in self.apps:
            app_refs.append(
                json.dumps(
                    {
                        "id": app["_id"],
                        "name": app["name"],
                        "display_label": app["displayLabel"],
                        "sso_type": "saml",
                        "sso_url": app["ssoUrl"],
                    },
                    separators=(",", ":"),
                )
            )
            url_only.append(
                json.dumps(
                    {"id": "", "name": "", "display_label": "", "sso_type": "", "sso_url": app["ssoUrl"]},
                    separators=(",", ":"),
                )
            )
            members = array("l", sorted(index[uid] for uid in self.app_user_ids(app["_id"]) if uid in index))
            app_users.append(members)
            weight = 0 if not app["active"] else (int(len(members) ** 0.8 * 10) + 5 if len(members) else 1)
            cum.append(cum[-1] + weight)
        changes = [
            json.dumps([{"field": f, "from": a, "to": b}], separators=(",", ":"))
            for f, a, b in (
                ("department", "Sales", "Marketing"),
                ("jobTitle", "Software Engineer", "Senior Software Engineer"),
                ("location", "Denver", "Remote"),
                ("employeeType", "Contractor", "Full-time"),
                ("enable_user_portal_multifactor", False, True),
                ("lastname", "Smith", "Smith-Jones"),
                ("costCenter", "CC-100", "CC-104"),
                ("description", "", "On leave until Q3"),
            )
        ]
        world = EventWorld(
            org_id=self.org_id,
            user_refs=refs,
            login_pool=login_pool,
            refused_pool=refused_pool,
            admin_refs=admin_refs,
            app_refs=app_refs,
            app_url_only=url_only,
            app_users=app_users,
            app_cum=cum,
            changes=changes,
        )
        total = s.events
        sso = int(round(total * s.sso_share))
        return EventStore(
            world=world,
            seed=seed64(s.seed, s.name, "events"),
            directory_count=total - sso,
            sso_count=sso,
            t0_ms=s.anchor_ms - s.days * DAY_MS,
            hours=s.days * 24,
            late_share=s.late_share,
            late_min_ms=s.late_min_ms,
            late_max_ms=s.late_max_ms,
        )

    # --- reads -----------------------------------------------------------------------------------

    @property
    def users(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self._users.values())

    def user(self, user_id: str) -> dict[str, Any] | None:
        return self._users.get(user_id)

    def user_by_username(self, username: str) -> dict[str, Any] | None:
        uid = self._by_username.get(username)
        return self._users.get(uid) if uid else None

    def users_position(self, user_id: str) -> int:
        """Creation order of a user (what lists are ordered by)."""
        return self._position.get(user_id, len(self._position))

    def app(self, app_id: str) -> dict[str, Any] | None:
        return self._apps_by_id.get(app_id)

    def group(self, group_id: str) -> Group | None:
        return self._groups_by_id.get(group_id)

    def cached(self, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        """Results of list queries keyed by the data version, so paging 50,000 users sorts once."""
        full_key = (self.version, *key)
        with self.lock:
            if full_key in self._cache:
                self._cache.move_to_end(full_key)
                return self._cache[full_key]
        value = build()
        with self.lock:
            self._cache[full_key] = value
            while len(self._cache) > 64:
                self._cache.popitem(last=False)
        return value

    def kept(self, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        """What build() gives, kept until the next write. Unlike cached(), nothing is evicted: what
        is kept here is wanted for every group (their resolved members, their rendered membership
        pages) or is one rendering of a whole list's records, so a client paging through all of
        them does not make the server compute each again."""
        with self.lock:
            version = self.version
            if self._kept_version != version:
                self._kept = {}
                self._kept_version = version
            found = self._kept.get(key)
        if found is None:
            found = build()
            with self.lock:
                if self._kept_version == version == self.version:
                    self._kept[key] = found
        return found

    def group_user_set(self, group_id: str) -> frozenset[str]:
        """Users reachable from a group through any nesting."""

        def build() -> frozenset[str]:
            group = self._groups_by_id[group_id]
            members = set(group.user_ids)
            for child in group.group_ids:
                members |= self.group_user_set(child)
            return frozenset(members)

        return self.kept(("group-users", group_id), build)  # type: ignore[no-any-return]

    def app_user_ids(self, app_id: str) -> list[str]:
        """Users bound to an app directly or through groups, in user creation order."""

        def build() -> list[str]:
            ids = set(self.app_direct_users.get(app_id, ()))
            for gid in self.app_groups.get(app_id, ()):
                ids |= self.group_user_set(gid)
            return sorted((i for i in ids if i in self._position), key=self._position.__getitem__)

        return self.cached(("app-users", app_id), build)

    def group_paths(self, group_id: str, user_id: str) -> list[list[str]]:
        """Every chain of group ids from group_id down to a group that directly holds user_id."""
        group = self._groups_by_id[group_id]
        paths: list[list[str]] = []
        if group.has_user(user_id):
            paths.append([group_id])
        for child in group.group_ids:
            if user_id in self.group_user_set(child):
                paths.extend([group_id, *p] for p in self.group_paths(child, user_id))
        return paths

    def app_groups_resolved(self, app_id: str) -> list[tuple[str, list[list[str]]]]:
        """Groups bound to an app directly or as nested members of bound groups, with their paths."""
        found: dict[str, list[list[str]]] = {}

        def walk(gid: str, prefix: list[str]) -> None:
            path = [*prefix, gid]
            found.setdefault(gid, []).append(path)
            for child in self._groups_by_id[gid].group_ids:
                walk(child, path)

        for gid in self.app_groups.get(app_id, ()):
            if gid in self._groups_by_id:
                walk(gid, [])
        order = {g.id: n for n, g in enumerate(self.groups)}
        return sorted(found.items(), key=lambda item: order[item[0]])

    # --- writes ----------------------------------------------------------------------------------

    def _new_user_id(self) -> str:
        self._new_ids += 1
        return object_id(self.spec.seed, self.spec.name, "created-user", self._new_ids)

    def _record_event(
        self, event_type: str, actor: dict[str, Any], user: dict[str, Any], now_ms: int, **extra: Any
    ) -> None:
        event = {
            "service": "directory",
            "event_type": event_type,
            "timestamp": iso_ms(now_ms),
            "organization": self.org_id,
            "@version": "1",
            "provider": None,
            "initiated_by": {"id": actor["_id"], "type": "admin", "email": actor["email"]},
            "resource": {"id": user["_id"], "type": "user", "username": user["username"]},
            "auth_method": "api key",
            "success": True,
            **extra,
        }
        self.events.append(event, ts_ms=now_ms, visible_at_ms=now_ms + self.spec.write_event_delay_ms)

    def create_user(self, body: dict[str, Any], *, actor: dict[str, Any], now_ms: int) -> dict[str, Any]:
        for name in ("email", "username"):
            if not isinstance(body.get(name), str) or not body.get(name, "").strip():
                raise WriteError(f"Bad Request: {name} is required")
        _check_types(body)
        username = body["username"]
        problems = username_problems(username)
        if problems:
            raise WriteError(f"Bad Request: invalid username '{username}': " + " ".join(problems))
        email = body["email"].strip()
        _check_email(email)
        state = body.get("state") or self.org["settings"]["newSystemUserStateDefaults"]["manualEntry"]
        if state not in ("STAGED", "ACTIVATED", "SUSPENDED"):
            raise WriteError("Bad Request: state must be one of STAGED, ACTIVATED, SUSPENDED")
        suspended = body.get("suspended")
        if suspended is not None and "state" in body and (state == "SUSPENDED") != suspended:
            raise WriteError("Bad Request: state and suspended disagree")
        if suspended and "state" not in body:
            state = "SUSPENDED"
        with self.lock:
            if username in self._by_username:
                raise WriteError(f"Bad Request: username '{username}' already exists")
            if email.lower() in self._by_email:
                raise WriteError(f"Bad Request: email '{email}' already exists")
            first = body.get("firstname", "")
            last = body.get("lastname", "")
            user = self._user_record(
                uid=self._new_user_id(),
                username=username,
                email=email,
                first=first,
                last=last,
                dept="",
                title="",
                location="",
                employee_type="",
                state=state,
                created_ms=now_ms,
                locked=False,
                locked_ms=None,
                expired=False,
                never_expires=bool(body.get("password_never_expires", False)),
                password_ms=now_ms if body.get("password") else None,
                mfa_kind="none",
                exclusion_until_ms=now_ms,
                portal_mfa=bool(body.get("enable_user_portal_multifactor", False)),
                employee_number=0,
                unix_id=5000 + len(self._position),
            )
            user.update(
                {
                    "company": "",
                    "costCenter": "",
                    "employeeIdentifier": "",
                    "displayname": f"{first} {last}".strip(),
                    "creationSource": "jumpcloud:api",
                }
            )
            for key, value in body.items():
                if key in POST_FIELDS and key not in (
                    "password",
                    "state",
                    "suspended",
                    "activated",
                    "username",
                    "email",
                ):
                    user[key] = _copy(value)
            user["activated"] = state == "ACTIVATED"
            self._insert_user(user)
            self.version += 1
            self._record_event("user_create", actor, user, now_ms)
            return user

    def update_user(
        self, user_id: str, body: dict[str, Any], *, actor: dict[str, Any], now_ms: int
    ) -> dict[str, Any]:
        _check_types(body)
        with self.lock:
            current = self._users.get(user_id)
            if current is None:
                raise WriteError("Not Found", status=404)
            if "username" in body and body["username"] != current["username"]:
                raise WriteError("Bad Request: username cannot be changed")
            state = body.get("state")
            if state is not None and state not in ("ACTIVATED", "SUSPENDED"):
                raise WriteError("Bad Request: state must be ACTIVATED or SUSPENDED")
            suspended = body.get("suspended")
            if state is not None and suspended is not None and (state == "SUSPENDED") != suspended:
                raise WriteError("Bad Request: state and suspended disagree")
            if state is None and suspended is not None:
                if suspended:
                    state = "SUSPENDED"
                elif current["state"] == "SUSPENDED":
                    state = "ACTIVATED" if current["activated"] else "STAGED"
            new = dict(current)
            if "email" in body:
                email = str(body["email"]).strip()
                _check_email(email)
                owner = self._by_email.get(email.lower())
                if owner is not None and owner != user_id:
                    raise WriteError(f"Bad Request: email '{email}' already exists")
                new["email"] = email
            for key, value in body.items():
                if key in PUT_FIELDS and key not in ("state", "suspended", "username", "email"):
                    new[key] = _copy(value)
            if state is not None:
                new["state"] = state
                new["suspended"] = state == "SUSPENDED"
                if state == "ACTIVATED":
                    new["activated"] = True
            if body.get("account_locked") is False:
                new["account_locked_date"] = None
                new["badLoginAttempts"] = 0
            changes = [
                {"field": k, "from": current.get(k), "to": new.get(k)}
                for k in new
                if k not in ("state", "suspended", "activated") and new.get(k) != current.get(k)
            ]
            self._users[user_id] = new
            if new["email"].lower() != current["email"].lower():
                self._by_email.pop(current["email"].lower(), None)
                self._by_email[new["email"].lower()] = user_id
            self.version += 1
            if current["state"] != "SUSPENDED" and new["state"] == "SUSPENDED":
                self._record_event("user_suspended", actor, new, now_ms)
            elif current["state"] == "SUSPENDED" and new["state"] != "SUSPENDED":
                self._record_event("user_unsuspended", actor, new, now_ms)
            if changes:
                self._record_event("user_update", actor, new, now_ms, changes=changes)
            return new

    def delete_user(self, user_id: str, *, actor: dict[str, Any], now_ms: int) -> dict[str, Any]:
        with self.lock:
            user = self._users.pop(user_id, None)
            if user is None:
                raise WriteError("Not Found", status=404)
            self._position.pop(user_id, None)
            self._by_username.pop(user["username"], None)
            self._by_email.pop(user["email"].lower(), None)
            for group in self.groups:
                if group.has_user(user_id):
                    group.user_ids = [u for u in group.user_ids if u != user_id]
            for app_id, direct in self.app_direct_users.items():
                if user_id in direct:
                    self.app_direct_users[app_id] = [u for u in direct if u != user_id]
            for other_id, other in list(self._users.items()):
                if other.get("manager") == user_id:
                    self._users[other_id] = {**other, "manager": ""}
            self.version += 1
            self._record_event("user_delete", actor, user, now_ms)
            return user

    def activate_user(self, user_id: str, *, actor: dict[str, Any], now_ms: int) -> None:
        with self.lock:
            current = self._users.get(user_id)
            if current is None:
                raise WriteError("Not Found", status=404)
            if current["state"] == "SUSPENDED":
                raise WriteError("Conflict: user is suspended", status=409)
            if current["state"] == "ACTIVATED":
                return
            new = {**current, "state": "ACTIVATED", "activated": True, "suspended": False}
            self._users[user_id] = new
            self.version += 1
            self._record_event("user_activated", actor, new, now_ms)

    def unlock_user(self, user_id: str, *, actor: dict[str, Any], now_ms: int) -> None:
        with self.lock:
            current = self._users.get(user_id)
            if current is None:
                raise WriteError("Not Found", status=404)
            new = {**current, "account_locked": False, "account_locked_date": None, "badLoginAttempts": 0}
            self._users[user_id] = new
            self.version += 1
            self._record_event("user_unlocked", actor, new, now_ms)

    def counts(self, now_ms: int) -> dict[str, int]:
        return {
            "users": len(self._users),
            "admins": len(self.admins),
            "apps": len(self.apps),
            "groups": len(self.groups),
            "events": self.events.count_visible(now_ms),
            "events_generated": self.events.generated_count,
        }


DEPARTMENTS_INDEX: dict[str, int] = {d[0]: n for n, d in enumerate(DEPARTMENTS)} | {"": 99}


def _copy(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _check_email(email: str) -> None:
    local, _, domain = email.partition("@")
    if not local or "." not in domain or " " in email:
        raise WriteError(f"Bad Request: '{email}' is not a valid email address")


def _check_types(body: dict[str, Any]) -> None:
    for name in _STRING_FIELDS:
        if name in body and not isinstance(body[name], str):
            raise WriteError(f"Bad Request: {name} must be a string")
    for name in _BOOL_FIELDS:
        if name in body and not isinstance(body[name], bool):
            raise WriteError(f"Bad Request: {name} must be a boolean")
    for name in ("unix_uid", "unix_guid"):
        if name in body and (
            not isinstance(body[name], int) or isinstance(body[name], bool) or body[name] < 1
        ):
            raise WriteError(f"Bad Request: {name} must be a positive integer")


def sorted_records(
    records: Sequence[dict[str, Any]], sort: Sequence[tuple[str, bool]]
) -> list[dict[str, Any]]:
    """Multi-field sort (applied last field first, relying on sort stability); None sorts first."""
    out = list(records)
    for field_name, descending in reversed(sort):
        out.sort(key=_sort_key(field_name), reverse=descending)
    return out


def _sort_key(field_name: str) -> Callable[[dict[str, Any]], tuple[int, Any]]:
    def key(record: dict[str, Any]) -> tuple[int, Any]:
        return _sort_value(_field(record, field_name))

    return key


def _field(record: dict[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _sort_value(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (2, value)
    if isinstance(value, str):
        return (3, value)
    return (4, json.dumps(value, sort_keys=True))
