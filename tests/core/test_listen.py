"""Where the metrics endpoint may listen: addresses read from the command line, loopback unless allowed."""

from __future__ import annotations

import pytest

from hostpipe.core.listen import AddressError, ListenAddress, parse_listen_address


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9464", ListenAddress("127.0.0.1", 9464)),
        ("127.0.0.2:9464", ListenAddress("127.0.0.2", 9464)),
        ("localhost:9464", ListenAddress("127.0.0.1", 9464)),
        ("9464", ListenAddress("127.0.0.1", 9464)),
        ("[::1]:9464", ListenAddress("::1", 9464)),
        ("127.0.0.1:0", ListenAddress("127.0.0.1", 0)),
    ],
)
def test_loopback_addresses_are_accepted(text, expected):
    """Loopback in every spelling an operator may use, a bare port meaning 127.0.0.1."""
    assert parse_listen_address(text) == expected


@pytest.mark.parametrize("text", ["0.0.0.0:9464", "[::]:9464", "10.1.2.3:9464", "[2001:db8::1]:9464"])
def test_other_addresses_are_refused_unless_allowed(text):
    """A non-loopback address is refused with a sentence naming loopback, and accepted when allowed."""
    with pytest.raises(AddressError, match="not a loopback address"):
        parse_listen_address(text)
    assert not parse_listen_address(text, allow_remote=True).loopback


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("example.org:9464", "not an IP address"),
        ("127.0.0.1", "not an address like"),
        ("::1:9464", "write an IPv6 address as"),
        ("[::1]9464", "not an address like"),
        ("127.0.0.1:65536", "not a port number"),
        ("127.0.0.1:http", "not a port number"),
        ("127.0.0.1:", "not a port number"),
    ],
)
def test_malformed_addresses_say_what_is_wrong(text, problem):
    """Names are not resolved, and a missing or impossible port is named as such."""
    with pytest.raises(AddressError, match=problem):
        parse_listen_address(text, allow_remote=True)


def test_an_ipv6_address_prints_in_brackets():
    """The address as logged can be pasted into a URL."""
    assert str(ListenAddress("::1", 9464)) == "[::1]:9464"
    assert str(ListenAddress("127.0.0.1", 9464)) == "127.0.0.1:9464"
