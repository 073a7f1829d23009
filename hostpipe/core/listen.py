"""Where a local HTTP endpoint (the metrics) may listen: an address read from the command line, loopback only.

A loopback port is still reachable from every pod that shares the host's network namespace (host-network
pods), but not from the rest of the network; any other address exposes the daemon's counts to whoever can
reach the host, so it must be asked for explicitly.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


class AddressError(ValueError):
    """An address that cannot be used, with a one-sentence reason."""


@dataclass(frozen=True)
class ListenAddress:
    host: str
    """An IP address literal (names are not resolved: `localhost` is 127.0.0.1)."""
    port: int
    """0 lets the kernel pick a free port."""

    @property
    def loopback(self) -> bool:
        return ipaddress.ip_address(self.host).is_loopback

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen_address(text: str, *, allow_remote: bool = False) -> ListenAddress:
    """`HOST:PORT`, `[V6]:PORT` or a bare `PORT` (on 127.0.0.1); a non-loopback host only with `allow_remote`."""
    text = text.strip()
    if text.isdigit():
        host, port_text = "127.0.0.1", text
    elif text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
        if not sep:
            raise AddressError(f"{text!r} is not an address like [::1]:9464")
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or ":" in host:
            raise AddressError(f"{text!r} is not an address like 127.0.0.1:9464 (write an IPv6 address as [::1]:9464)")
    if host == "localhost":
        host = "127.0.0.1"
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        raise AddressError(f"{host!r} in {text!r} is not an IP address; use 127.0.0.1 or ::1") from None
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise AddressError(f"{port_text!r} in {text!r} is not a port number (0-65535)")
    address = ListenAddress(host, int(port_text))
    if not allow_remote and not address.loopback:
        raise AddressError(
            f"{text} is not a loopback address: metrics are served on 127.0.0.1 or ::1 only, unless "
            "--metrics-allow-remote says that every host that can reach this one may read them"
        )
    return address
