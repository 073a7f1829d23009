"""How a job's process is made: with every signal at its default and none blocked, whatever the daemon
ignores."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from hostpipe.daemon import spawn as spawn_module


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


def _fds_of_child(spawn_log: Path) -> set[int]:
    return {int(name) for name in spawn_log.read_text().split()}


@pytest.mark.parametrize("closefrom", [True, False], ids=["closefrom", "marked-close-on-exec"])
def test_no_descriptor_but_0_1_2_reaches_a_child(closefrom, tmp_path, monkeypatch):
    """An inheritable descriptor of the daemon (as the socket to its holder is) does not reach the child,
    with libc's closefrom and without it."""
    if not closefrom:
        monkeypatch.setattr(spawn_module, "_addclosefrom", None)
    elif spawn_module._addclosefrom is None:
        pytest.skip("this libc has no posix_spawn_file_actions_addclosefrom_np")
    read_end, write_end = os.pipe()
    os.set_inheritable(read_end, True)
    os.set_inheritable(write_end, True)
    try:
        log = tmp_path / "fds.log"
        pid = spawn_module.spawn(["/bin/sh", "-c", "ls /proc/$$/fd"], {"PATH": "/usr/bin:/bin"}, log)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, log.read_text()
        assert _fds_of_child(log) == {0, 1, 2}
    finally:
        os.close(read_end)
        os.close(write_end)


def test_a_job_inherits_no_descriptor_of_the_daemon(make_daemon):
    """A job sees only its stdin, stdout and stderr: not the socket to the holder, not the policy watcher's
    inotify instance, nothing the daemon holds."""
    daemon = make_daemon()
    daemon.write("docker run test/x ls -l /proc/self/fd\n")
    (record,) = daemon.wait_records(1)
    assert record["state"] == "succeeded", record
    text = Path(record["log"]).read_text()
    targets = {int(line.split()[-3]): line.split()[-1] for line in text.splitlines() if " -> " in line}
    # 3 is the folder `ls` itself opened to list it.
    assert sorted(targets) == [0, 1, 2, 3], text
    assert targets[0] == "/dev/null" and targets[1] == targets[2] == record["log"], text
    assert targets[3].startswith("/proc/") and targets[3].endswith("/fd"), text
