"""Log set-up: JSON lines with the fields every line carries, written whole."""

from __future__ import annotations

import datetime
import io
import time

from hostpipe.daemon.logs import BatchedLogger, UtcTimestamp


def test_timestamp_is_iso_utc_and_current():
    """The stamp parses as ISO 8601 in UTC and names this moment to the microsecond's precision."""
    before = time.time()
    stamp = UtcTimestamp()(None, "info", {})["timestamp"]
    after = time.time()
    assert stamp.endswith("Z")
    parsed = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    assert before - 1e-6 <= parsed <= after + 1e-6


def test_lines_logged_outside_a_loop_are_written_at_once():
    """Without an event loop nothing waits for a round to end: each line is written as it is logged."""
    out = io.StringIO()
    logger = BatchedLogger(out)
    logger.msg('{"event": "a"}')
    assert out.getvalue() == '{"event": "a"}\n'


def test_console_lines_honour_no_color(monkeypatch):
    """With NO_COLOR set, the console renderer writes no escape sequence; without it, it colours the level."""
    import structlog

    from hostpipe.daemon.logs import configure

    def rendered() -> str:
        configure("console")
        renderer = structlog.get_config()["processors"][-1]
        return str(renderer(None, "warning", {"event": "pipe_ready", "level": "warning", "pod": "ns/p"}))

    try:
        monkeypatch.setenv("NO_COLOR", "1")
        assert "\x1b" not in rendered() and "pipe_ready" in rendered()
        monkeypatch.delenv("NO_COLOR")
        assert "\x1b[" in rendered()
    finally:
        structlog.reset_defaults()


def test_console_lines_show_a_pods_control_characters_escaped(monkeypatch):
    """A line holding an OSC title sequence reaches the console log escaped; the JSON log keeps it exact."""
    import json

    import structlog

    from hostpipe.daemon.logs import configure

    line = "docker run x\x1b]0;owned\x07"
    try:
        monkeypatch.setenv("NO_COLOR", "1")
        configure("console")
        processors = structlog.get_config()["processors"]
        event: dict[str, object] = {"event": f"refused {line}", "line": line}
        for processor in processors[1:]:
            event = processor(None, "warning", event)  # type: ignore[assignment]
        assert "\x1b" not in str(event) and "\x07" not in str(event)
        assert str(event).count("\\x1b]0;owned\\x07") == 2  # the event's name and the value, each once
        configure("json")
        processors = structlog.get_config()["processors"]
        event = {"event": "job_refused", "line": line}
        for processor in processors[1:]:
            event = processor(None, "warning", event)  # type: ignore[assignment]
        assert json.loads(str(event))["line"] == line
    finally:
        structlog.reset_defaults()
