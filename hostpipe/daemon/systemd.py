"""Talking to systemd: readiness, status and watchdog pings.

systemd-python is used when installed (the `systemd` extra); without it the notify protocol is simple enough
to speak directly: one datagram to the socket named by NOTIFY_SOCKET. Outside systemd both do nothing.
"""

from __future__ import annotations

import importlib
import os
import socket
import time
from collections.abc import Callable
from typing import Any

_notify: Callable[[str], bool] | None
try:
    # Imported by name: the repository's own systemd/ folder of unit files must not shadow the library.
    _sd_daemon: Any = importlib.import_module("systemd.daemon")
except ImportError:
    _notify = None
else:

    def _via_library(state: str) -> bool:
        return bool(_sd_daemon.notify(state))

    _notify = _via_library


def _via_socket(state: str) -> bool:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            sock.sendto(state.encode(), address)
        except OSError:
            return False
    return True


def notify(state: str) -> bool:
    """Send `state` ("READY=1", "STATUS=...", "RELOADING=1", "WATCHDOG=1", ...); False when not under systemd."""
    if not os.environ.get("NOTIFY_SOCKET"):
        return False
    return _notify(state) if _notify is not None else _via_socket(state)


def reloading() -> str:
    """The message that starts a reload; READY=1 ends it (MONOTONIC_USEC as systemd 253's notify-reload asks)."""
    return f"RELOADING=1\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}"


def watchdog_interval() -> float | None:
    """Half the watchdog timeout systemd set for this process, in seconds, or None."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 2_000_000
    except ValueError:
        return None
