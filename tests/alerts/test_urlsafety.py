"""Webhook URLs go through integrations.urlsafety: no internal address, whatever the spelling."""

from __future__ import annotations

import pytest

from alerts.kinds import EventKind
from alerts.models import Channel, Delivery
from alerts.services import ChannelInvalid, alert_emit, channel_create
from integrations.urlsafety import UnsafeURL, normalize_origin, outbound_url_check

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5/hook",
        "http://192.168.1.1/hook",
        "http://172.16.0.1/",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://[fd00::1]/hook",
        "http://[::ffff:10.0.0.1]/hook",  # IPv4-mapped private
        "http://0.0.0.0:8000/",
        "http://100.64.0.1/",  # carrier-grade NAT
        "http://224.0.0.1/",
        "http://localhost:8000/hook",
        "http://127.0.0.1:8000/hook",
        "http://[::1]/hook",
        "http://2130706433/",  # 127.0.0.1 as one number
        "ftp://example.com/hook",
        "http://user:pass@example.com/hook",
        "http://example.com:99999/",
        "not a url",
        "http://exa mple.com/",
        "http://example.com/\r\nX: y",
    ],
)
def test_internal_and_malformed_urls_are_refused(url, settings):
    settings.TORII_OUTBOUND_ALLOW_LOOPBACK = False
    with pytest.raises(UnsafeURL):
        outbound_url_check(url)


def test_loopback_only_with_the_development_setting(settings):
    settings.TORII_OUTBOUND_ALLOW_LOOPBACK = True
    assert outbound_url_check("http://127.0.0.1:9/hook") == "http://127.0.0.1:9/hook"
    # The setting opens loopback only: private networks stay closed.
    for url in ("http://10.0.0.5/hook", "http://169.254.169.254/", "http://192.168.0.10/"):
        with pytest.raises(UnsafeURL):
            outbound_url_check(url)


def test_public_address_is_allowed(settings):
    settings.TORII_OUTBOUND_ALLOW_LOOPBACK = False
    assert outbound_url_check(" https://93.184.215.14/hooks/torii ") == "https://93.184.215.14/hooks/torii"


def test_channel_with_internal_url_is_refused_and_nothing_saved(settings):
    settings.TORII_OUTBOUND_ALLOW_LOOPBACK = False
    with pytest.raises(ChannelInvalid) as caught:
        channel_create(
            actor=None,
            name="Internal",
            kind=Channel.Kind.WEBHOOK,
            url="http://169.254.169.254/latest",
            event_kinds=[EventKind.RECONNECT],
        )
    assert "internal" in caught.value.errors["url"]
    assert not Channel.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_url_is_checked_again_before_each_delivery(settings):
    """A channel saved while loopback was allowed is not sent to once it no longer is."""
    settings.TORII_OUTBOUND_ALLOW_LOOPBACK = True
    settings.ALERTS_MAX_ATTEMPTS = 1
    channel, _ = channel_create(
        actor=None,
        name="Hook",
        kind=Channel.Kind.WEBHOOK,
        url="http://127.0.0.1:9/x",
        event_kinds=[EventKind.RECONNECT],
    )
    settings.TORII_OUTBOUND_ALLOW_LOOPBACK = False
    alert_emit(kind=EventKind.RECONNECT, subject="x", body="", data={})
    delivery = Delivery.objects.get(channel=channel)
    assert delivery.status == Delivery.Status.FAILED
    assert delivery.last_error.startswith("Not sent:")


def test_normalize_origin_still_serves_the_jumpcloud_allow_list():
    assert normalize_origin("HTTP://Sim.Example:8765/") == "http://sim.example:8765"
    assert normalize_origin("http://sim.example:8765/path") == ""
