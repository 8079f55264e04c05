"""Outbound URLs torii builds from what people type: provider origins and alert webhooks.

Provider-neutral. Two rules live here, once:
- `normalize_origin`: a bare scheme://host[:port] (used for the JumpCloud base-URL allow-list);
- `outbound_url_check`: a URL torii may POST to on someone's behalf (alert webhooks). Its host must
  resolve only to public addresses: loopback, private, link-local (cloud metadata), multicast,
  reserved and unspecified addresses are refused, so a webhook cannot reach the server's own network
  (SSRF). TORII_OUTBOUND_ALLOW_LOOPBACK lets loopback through, for tests and local development only.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings


class UnsafeURL(ValueError):
    """A URL torii refuses to contact; the message says why, for the person who typed it."""


def normalize_origin(url: str) -> str:
    """`scheme://host[:port]` of an http(s) URL that is nothing but an origin; "" for anything else
    (credentials, a path, a query, a port that is not a number): the SSRF guard's canonical form."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    if parts.username or parts.password or parts.query or parts.fragment or parts.path not in ("", "/"):
        return ""
    try:
        port_number = parts.port
    except ValueError:  # not a number or out of range ("http://host:80\r\nHost: x"): not an origin
        return ""
    port = f":{port_number}" if port_number else ""
    return f"{parts.scheme}://{parts.hostname.lower()}{port}"


def _address_allowed(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return bool(settings.TORII_OUTBOUND_ALLOW_LOOPBACK)
    return address.is_global and not address.is_multicast


def resolve_addresses(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeURL(f"The host {host!r} cannot be resolved.") from exc
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


@dataclass(frozen=True)
class CheckedURL:
    url: str
    scheme: str
    host: str
    port: int
    # Where the request goes: the addresses checked, so that a name that resolves differently a
    # moment later (DNS rebinding) cannot send it elsewhere.
    addresses: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]
    path: str


def outbound_url_resolve(url: str) -> CheckedURL:
    """Check a URL (see outbound_url_check) and return where it may be sent."""
    url = (url or "").strip()
    if any(ch in url for ch in "\r\n\t "):
        raise UnsafeURL("The URL must not contain spaces or line breaks.")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL("Enter a full http:// or https:// URL.")
    if parts.username or parts.password:
        raise UnsafeURL("Put no user name or password in the URL; the signature authenticates torii.")
    if settings.PRODUCTION and parts.scheme != "https":
        raise UnsafeURL("Webhook URLs must use https://.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeURL("The URL's port is not a number between 1 and 65535.") from exc
    addresses = resolve_addresses(parts.hostname, port)
    if not addresses or not all(_address_allowed(a) for a in addresses):
        raise UnsafeURL(
            "This URL points to an internal or reserved address (loopback, private network, "
            "link-local or cloud metadata); torii only sends to public addresses."
        )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return CheckedURL(url, parts.scheme, parts.hostname, port, tuple(addresses), path)


def outbound_url_check(url: str) -> str:
    """Return the URL (trimmed) if torii may send to it; raise UnsafeURL otherwise.

    Checked when a channel is saved and again before every delivery, because what a name resolves
    to can change after it was saved."""
    return outbound_url_resolve(url).url
