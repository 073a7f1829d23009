"""How a job's process is made: with every signal at its default and none blocked, whatever the daemon
ignores."""

from __future__ import annotations

import signal
from pathlib import Path


def _status(text: str, key: str) -> int:
    [line] = [line for line in text.splitlines() if line.startswith(f"{key}:")]
    return int(line.split()[1], 16)


def _bit(number: int) -> int:
    return 1 << (number - 1)


def test_a_job_starts_with_default_signals_even_when_the_daemon_was_started_ignoring_some(make_daemon):
    """Under `nohup` (SIGHUP ignored) and Python (SIGPIPE, SIGXFSZ ignored) a job still gets every signal at
    its default and none blocked: exec keeps what is ignored, so the spawn resets them."""
    daemon = make_daemon(start=False)
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        daemon.start()
    finally:
        signal.signal(signal.SIGHUP, previous)
    daemon.write("docker run test/x grep ^Sig /proc/self/status\n")
    (record,) = daemon.wait_records(1)
    assert record["state"] == "succeeded", record
    text = Path(record["log"]).read_text()
    ignored = _status(text, "SigIgn")
    for number in (signal.SIGHUP, signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTERM, signal.SIGINT):
        assert not ignored & _bit(number), f"{signal.Signals(number).name} ignored in the job: {text}"
    assert _status(text, "SigBlk") == 0, text
