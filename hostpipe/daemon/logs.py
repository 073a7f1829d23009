"""structlog set-up: JSON lines for the service manager, readable lines on a terminal, the journal natively.

Log lines are written in batches: every line logged while the event loop runs one round of callbacks goes
out in one write at the end of that round. A flood of refused lines, each of which is logged, then costs one
system call per batch instead of one per line; nothing waits longer than the round that logged it.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import sys
import threading
import time
from collections.abc import MutableMapping
from typing import Any, Literal, TextIO

import structlog

from hostpipe.core.terminal import escape, needs_escape
from hostpipe.daemon import journal

LogFormat = Literal["auto", "json", "console"]


class BatchedLogger:
    """A structlog logger that writes whole lines, flushed once per loop round (at once outside a loop)."""

    def __init__(self, file: TextIO) -> None:
        self._file = file
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._scheduled = False
        atexit.register(self.flush)

    def msg(self, message: str) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._lock:
            self._pending.append(message)
            if loop is not None and self._scheduled:
                return
            if loop is not None:
                self._scheduled = True
        if loop is not None:
            loop.call_soon(self.flush)
        else:
            self.flush()

    log = debug = info = warn = warning = error = critical = exception = fatal = msg

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
            self._scheduled = False
        if pending:
            try:
                self._file.write("\n".join(pending) + "\n")
                self._file.flush()
            except (OSError, ValueError):
                # stderr gone (the service manager closed it): losing log lines must not stop the daemon.
                pass


class BatchedLoggerFactory:
    def __init__(self, file: TextIO) -> None:
        self._logger = BatchedLogger(file)

    def __call__(self, *args: Any) -> BatchedLogger:
        return self._logger


_ENCODER = json.JSONEncoder(default=repr, ensure_ascii=False)


def _encode(event: Any, **_options: Any) -> str:
    """One encoder made once: json.dumps with a `default` builds a new encoder for every line."""
    return _ENCODER.encode(event)


class UtcTimestamp:
    """Adds `timestamp` as structlog's TimeStamper(fmt="iso", utc=True) does, at a third of the cost.

    The date and time of day are formatted once per second; every refused line is logged, so this matters.
    """

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, _logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        event["timestamp"] = f"{self._prefix}.{int((now - second) * 1_000_000):06d}Z"
        return event


def escape_for_terminal(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Console lines go to a terminal: pod text in them is shown escaped, not obeyed. The console renderer
    prints every value but the event's name with repr(), which escapes already; the name it prints as it is.
    (JSON lines escape control characters themselves.)"""
    name = event.get("event")
    if isinstance(name, str) and needs_escape(name):
        event["event"] = escape(name)
    return event


def configure(fmt: LogFormat = "auto", *, level: int = logging.INFO) -> None:
    """Log to stderr as `fmt` says; when stderr is the journal, with priorities (see hostpipe.daemon.journal)."""
    journald = journal.stderr_is_journal()
    library = journal.native() if journald and fmt == "auto" else None
    json_lines = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        UtcTimestamp(),
    ]
    factory: Any
    if library is not None:
        processors.append(journal.JournalRenderer())
        factory = journal.JournalLoggerFactory(library)
    else:
        if not json_lines:
            processors.append(escape_for_terminal)
        processors.append(
            structlog.processors.JSONRenderer(serializer=_encode)
            if json_lines
            # NO_COLOR (https://no-color.org): set and not empty, the console lines carry no colour codes; nor
            # do lines that go to the journal.
            else structlog.dev.ConsoleRenderer(colors=not journald and not os.environ.get("NO_COLOR"))
        )
        if journald:
            processors.append(journal.level_prefix)
        factory = BatchedLoggerFactory(sys.stderr)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
