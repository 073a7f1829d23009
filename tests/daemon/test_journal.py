"""Logging into the journal: priorities journald understands and the fields an operator filters on."""

from __future__ import annotations

import json
import os

from hostpipe.daemon.journal import journal_fields, stderr_is_journal
from tests.conftest import Daemon, wait_for


def test_refusal_batch_is_a_warning_with_one_rule_field_per_rule():
    """A batch of refusals has PRIORITY=4 and a RULE= for each rule, its counts kept as a field."""
    event = {"event": "lines_refused", "count": 3, "rules": {"not-allowed": 2, "privileged": 1}, "first_job": 7}
    fields = journal_fields("warning", {**event, "level": "warning", "timestamp": "2026-01-01T00:00:00Z"})
    assert "PRIORITY=4" in fields
    assert "EVENT=lines_refused" in fields
    assert [f for f in fields if f.startswith("RULE=")] == ["RULE=not-allowed", "RULE=privileged"]
    assert "RULES=" + json.dumps(event["rules"]) in fields
    assert "FIRST_JOB=7" in fields
    assert not any(f.startswith(("LEVEL=", "TIMESTAMP=")) for f in fields)
    message = next(f for f in fields if f.startswith("MESSAGE="))
    assert message.startswith("MESSAGE=lines_refused count=3 ")


def test_job_event_carries_job_pod_and_state_fields():
    """An event about a job is findable by JOB=, POD= and STATE=; an error has PRIORITY=3, info 6."""
    event = {"event": "job_finished", "job": 12, "pod": "ns/pod-a", "state": "failed", "exit_code": 2}
    fields = journal_fields("error", event)
    assert {"PRIORITY=3", "JOB=12", "POD=ns/pod-a", "STATE=failed", "EXIT_CODE=2"} <= set(fields)
    assert "PRIORITY=6" in journal_fields("info", event)
    assert "PRIORITY=7" in journal_fields("debug", event)


def test_stderr_is_the_journal_only_when_journal_stream_names_it(tmp_path):
    """JOURNAL_STREAM must name stderr's own device and inode; an inherited value for another stream is ignored."""
    with (tmp_path / "err").open("w") as stream:
        info = os.fstat(stream.fileno())
        assert stderr_is_journal({"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"}, stream)
        assert not stderr_is_journal({"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino + 1}"}, stream)
        assert not stderr_is_journal({}, stream)


def test_daemon_prefixes_lines_with_their_priority_when_stderr_is_the_journal(make_daemon):
    """With stderr the journal and JSON lines, each line starts with <N>: a refusal batch <4>, `ready` <6>."""
    daemon: Daemon = make_daemon(start=False)
    log = daemon.stderr_path
    assert log is not None
    log.write_text("")  # Daemon.start truncates and appends to this very file: its inode stays
    info = os.stat(log)
    # As systemd sets it for a service whose stderr goes to journald.
    daemon.env["JOURNAL_STREAM"] = f"{info.st_dev}:{info.st_ino}"

    def prefixed() -> list[tuple[str, dict]]:
        return [(line[:3], json.loads(line[3:])) for line in log.read_text().splitlines() if line[:1] == "<"]

    daemon.events = lambda: [event for _, event in prefixed()]  # type: ignore[method-assign]
    daemon.start()
    daemon.write("rm -rf /\n")
    wait_for(lambda: any(e["event"] == "lines_refused" for e in daemon.events()))
    daemon.stop()
    priorities = {event["event"]: prefix for prefix, event in prefixed()}
    assert priorities["lines_refused"] == "<4>"
    assert priorities["ready"] == "<6>"
    assert len(prefixed()) == len(log.read_text().splitlines())
