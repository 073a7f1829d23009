"""Logging into the systemd journal: each event's priority, and its fields as journal fields.

Only when stderr is the journal (JOURNAL_STREAM names stderr's device and inode, as systemd sets it for a
service whose output goes to journald) does logging change at all; a daemon in a terminal or writing to a file
logs as before. Then, with systemd-python installed, each event is sent to journald natively: MESSAGE is the
event as one readable line, PRIORITY is its level, and JOB, POD, STATE and RULE (one RULE per rule of a batch
of refusals) and every other key become fields of their own, so `journalctl --user -u hostpipe -p warning` and
`journalctl --user -u hostpipe JOB=12` work. Without systemd-python, each line on stderr starts with the
syslog priority in angle brackets (`<4>{...}`), which journald reads as the line's priority and strips.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO

PRIORITY = {
    "critical": 2,
    "exception": 3,
    "error": 3,
    "warning": 4,
    "warn": 4,
    "info": 6,
    "debug": 7,
}
"""syslog priorities by structlog's method name (journalctl -p takes the same numbers)."""
IDENTIFIER = "hostpipe"
_NOT_A_FIELD = re.compile(r"[^A-Z0-9_]")
_DROPPED = frozenset({"event", "level", "timestamp"})
"""Keys the journal records in its own way: MESSAGE and EVENT, PRIORITY, its own timestamps."""


def stderr_is_journal(environ: Mapping[str, str] | None = None, stream: TextIO | None = None) -> bool:
    """True when stderr is connected to journald (JOURNAL_STREAM is `DEVICE:INODE` of stderr)."""
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    try:
        info = os.fstat((stream or sys.stderr).fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return value == f"{info.st_dev}:{info.st_ino}"


def native() -> Any | None:
    """systemd-python's journal module, or None where it is not installed."""
    try:
        # Imported by name: the repository's own systemd/ folder of unit files must not shadow the library.
        return importlib.import_module("systemd.journal")
    except ImportError:
        return None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=repr, ensure_ascii=False)


def field_name(key: str) -> str:
    """A journal field name for an event's key: upper case letters, digits and underscores, no leading one."""
    name = _NOT_A_FIELD.sub("_", key.upper()).lstrip("_")
    return name if name and not name[0].isdigit() else f"F_{name}"


def journal_fields(method_name: str, event: Mapping[str, Any]) -> list[str]:
    """The `FIELD=value` items of one event for sd_journal_sendv."""
    name = str(event.get("event", ""))
    rest = {key: value for key, value in event.items() if key not in _DROPPED}
    words = [name, *(f"{key}={_text(value)}" for key, value in rest.items())]
    fields = [
        f"MESSAGE={' '.join(words)}",
        f"PRIORITY={PRIORITY.get(method_name, 6)}",
        f"SYSLOG_IDENTIFIER={IDENTIFIER}",
        f"EVENT={name}",
    ]
    for key, value in rest.items():
        if value is None:
            continue
        if key == "rules" and isinstance(value, Mapping):
            # A batch of refusals counts them per rule: each rule is a RULE= of its own, for RULE=name matches.
            fields.extend(f"RULE={rule}" for rule in value)
        fields.append(f"{field_name(key)}={_text(value)}")
    return fields


class JournalRenderer:
    """The last processor: turns an event into the journal fields JournalLogger sends."""

    def __call__(
        self, _logger: Any, method_name: str, event: MutableMapping[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (journal_fields(method_name, event),), {}


class JournalLogger:
    """Sends each event to journald as one native journal entry; a journald that is gone loses the entry only."""

    def __init__(self, journal: Any) -> None:
        self._sendv = journal.sendv

    def msg(self, fields: list[str]) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._sendv(*fields)

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


class JournalLoggerFactory:
    def __init__(self, journal: Any) -> None:
        self._logger = JournalLogger(journal)

    def __call__(self, *args: Any) -> JournalLogger:
        return self._logger


def level_prefix(_logger: Any, method_name: str, line: Any) -> Any:
    """After the renderer: `<N>` before the rendered line, which journald reads as its priority."""
    return f"<{PRIORITY.get(method_name, 6)}>{line}"
