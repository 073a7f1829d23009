"""Policy reload: on file change and on SIGHUP; an invalid file never replaces a valid policy."""

from __future__ import annotations

import os
import signal

from tests.conftest import Daemon, wait_for

ONLY_A = """
[runtimes.docker]
images = ["a/*"]
"""
ONLY_B = ONLY_A.replace("a/*", "b/*")


def _reloads(daemon: Daemon) -> list[dict]:
    return [e for e in daemon.events() if e["event"] == "policy_reloaded"]


def test_reloads_when_the_file_is_replaced(make_daemon):
    """Writing a new policy file (by rename, as editors do) changes what runs, without a restart."""
    daemon: Daemon = make_daemon(ONLY_A)
    daemon.write("docker run b/x\n")
    assert daemon.wait_records(1)[-1]["rule"] == "image"
    new = daemon.policy.with_suffix(".new")
    new.write_text(ONLY_B)
    os.replace(new, daemon.policy)
    wait_for(lambda: _reloads(daemon))
    daemon.write("docker run b/x\n")
    assert daemon.wait_records(2)[-1]["state"] == "succeeded"


def test_reloads_on_sighup(make_daemon):
    """SIGHUP re-reads the file (systemctl reload)."""
    daemon: Daemon = make_daemon(ONLY_A)
    assert daemon.process is not None
    daemon.process.send_signal(signal.SIGHUP)
    (event,) = wait_for(lambda: _reloads(daemon))
    assert event["trigger"] == "SIGHUP"


def test_invalid_file_keeps_the_old_policy(make_daemon):
    """A file that does not validate is reported with its field and reason; the policy in force stays."""
    daemon: Daemon = make_daemon(ONLY_A)
    daemon.policy.write_text("[runtimes.docker]\nimages = 3\n")
    (event,) = wait_for(lambda: [e for e in daemon.events() if e["event"] == "policy_invalid"])
    assert event["file"] == str(daemon.policy)
    assert any("runtimes.docker.images" in p for p in event["problems"])
    daemon.write("docker run a/x\n")
    assert daemon.wait_records(1)[-1]["state"] == "succeeded"
    assert not _reloads(daemon)


def test_deleted_file_keeps_the_old_policy(make_daemon):
    """Removing the policy file does not fall back to the built-in policy while the daemon runs."""
    daemon: Daemon = make_daemon(ONLY_A)
    daemon.policy.unlink()
    wait_for(lambda: [e for e in daemon.events() if e["event"] == "policy_invalid"])
    daemon.write("podman run a/x\n")
    assert daemon.wait_records(1)[-1]["rule"] == "program"
