"""SSRF guard for outbound webhook URLs (webhooks/destinations.py)."""

import socket

import pytest

from webhooks.outbound.destinations import DestinationRefused, address_allowed, destination_resolve


@pytest.fixture
def loopback_on(settings):
    settings.OUTBOUND_WEBHOOK_ALLOW_LOOPBACK_IN_TEST_MODE = True


@pytest.mark.parametrize(
    "url", ["https://127.1.2.3/", "https://127.0.0.2:8443/x", "http://127.0.0.1.nip.io/"]
)
def test_loopback_is_refused_unless_the_host_is_literally_local(loopback_on, url, monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [(0, 0, 0, "", ("127.0.0.1", 80))])
    with pytest.raises(DestinationRefused):
        destination_resolve(url, mode="test")


def test_a_name_resolving_to_loopback_is_refused_even_in_test_mode(loopback_on, monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [(0, 0, 0, "", ("127.0.0.1", 443))])
    with pytest.raises(DestinationRefused):
        destination_resolve("https://receiver.example.com/hook", mode="test")


def test_literal_localhost_is_allowed_in_test_mode_only_when_switched_on(settings):
    settings.OUTBOUND_WEBHOOK_ALLOW_LOOPBACK_IN_TEST_MODE = True
    assert destination_resolve("http://127.0.0.1:9000/hook", mode="test").address == "127.0.0.1"
    with pytest.raises(DestinationRefused):
        destination_resolve("https://127.0.0.1:9000/hook", mode="live")
    settings.OUTBOUND_WEBHOOK_ALLOW_LOOPBACK_IN_TEST_MODE = False
    with pytest.raises(DestinationRefused):
        destination_resolve("http://127.0.0.1:9000/hook", mode="test")


@pytest.mark.parametrize(
    "address",
    ["10.0.0.1", "192.168.1.1", "169.254.169.254", "::1", "::ffff:127.0.0.1", "2002:7f00:1::", "fe80::1"],
)
def test_private_and_wrapped_addresses_are_refused_in_live_mode(address):
    assert not address_allowed(address, mode="live", host="receiver.example.com")


def test_public_address_is_allowed():
    assert address_allowed("93.184.216.34", mode="live", host="receiver.example.com")
