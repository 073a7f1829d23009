"""hostpipe under a real `systemd --user` manager: socket activation, restarts, the journal, hardening.

The manager runs for a throw-away user (see manager.py and the recipe in user-manager.sh). Where it cannot run
every test here skips and says why; with HOSTPIPE_E2E_REQUIRE=1 (a CI that has run scripts/e2e-setup.sh) the
same reasons fail the run instead.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any, NoReturn

import pytest

from tests.conftest import wait_for, write_line
from tests.systemd.manager import Unavailable, UserManager, prerequisites

REQUIRED = os.environ.get("HOSTPIPE_E2E_REQUIRE") == "1"
POLICY = 'max_concurrent = 8\nkill_grace = "1s"\n\n[runtimes.docker]\n'


def unavailable(reason: str) -> NoReturn:
    if REQUIRED:
        pytest.fail(f"a user manager is required (HOSTPIPE_E2E_REQUIRE=1) but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def manager() -> Iterator[UserManager]:
    try:
        prerequisites()
    except Unavailable as error:
        unavailable(str(error))
    started = UserManager()
    try:
        try:
            started.start()
        except Unavailable as error:
            unavailable(str(error))
        policy = started.home / ".config" / "hostpipe" / "policy.toml"
        policy.parent.mkdir(parents=True)
        policy.write_text(POLICY)
        for path in (policy.parent.parent, policy.parent, policy):
            os.chown(path, started.uid, started.gid)
        yield started
    finally:
        started.close()
        assert not started.cgroups_left(), f"cgroups left behind: {started.cgroups_left()}"
        leftovers = subprocess.run(
            ["pgrep", "-u", str(started.uid)], check=False, capture_output=True, text=True
        ).stdout
        assert not leftovers.strip(), f"processes left behind: {leftovers}"


def records(manager: UserManager) -> list[dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, "-m", "hostpipe", "ps", "--json", "--state-dir", str(manager.state_dir), "--last", "100000"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return json.loads(result.stdout) if result.returncode == 0 and result.stdout.strip() else []


def settled(manager: UserManager, count: int) -> list[dict[str, Any]] | None:
    found = records(manager)
    if len(found) < count or any(r["state"] in ("queued", "running") for r in found):
        return None
    return found


def install(manager: UserManager, *args: str) -> subprocess.CompletedProcess[str]:
    # The stand-in docker is on this shell's PATH only, not on the manager's: the PATH drop-in must carry it.
    result = manager.as_user(
        str(manager.hostpipe), "install-service", "--no-start", *args, path=f"{manager.standins}:/usr/bin:/bin"
    )
    assert result.returncode == 0, result.stderr
    reloaded = manager.systemctl("daemon-reload")
    assert reloaded.returncode == 0, reloaded.stderr
    return result


def active(manager: UserManager) -> bool:
    return manager.systemctl("is-active", "--quiet", "hostpipe.service").returncode == 0


def test_no_line_is_lost_before_the_start_or_across_a_restart(manager: UserManager):
    """Lines written before the service ever ran and while it restarts each get exactly one record."""
    install(manager)
    started = manager.systemctl("start", "hostpipe.socket")
    assert started.returncode == 0, started.stderr
    assert not active(manager)
    assert manager.pipe.exists() and oct(manager.pipe.stat().st_mode & 0o777) == "0o600"
    assert oct(manager.pipe.parent.stat().st_mode & 0o777) == "0o700"

    # One write before the service runs: the socket unit holds the pipe, and the write starts the service.
    write_line(manager.pipe, "".join(f"docker run test/x echo before-{n}\n" for n in range(3)))
    wait_for(lambda: settled(manager, 3), 60, interval=0.3)
    assert active(manager)

    written: list[str] = []

    def writer() -> None:
        for n in range(20):
            line = f"docker run test/x echo during-{n}"
            write_line(manager.pipe, line + "\n")
            written.append(line)
            time.sleep(0.1)

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(0.4)
    restarted = manager.systemctl("restart", "hostpipe.service")
    thread.join()
    assert restarted.returncode == 0, restarted.stderr
    assert len(written) == 20

    found = wait_for(lambda: settled(manager, 23), 60, interval=0.3)
    lines = Counter(r["line"] for r in found)
    expected = [f"docker run test/x echo before-{n}" for n in range(3)] + written
    assert {line: lines[line] for line in expected} == dict.fromkeys(expected, 1)
    # A line the stopping daemon had taken but not started is cancelled; every other one ran.
    assert all(r["state"] in ("succeeded", "cancelled") for r in found), found
    assert sum(r["state"] == "succeeded" for r in found) >= 20


def test_status_reload_and_journal_priorities(manager: UserManager):
    """The unit shows the live STATUS= summary, reloads through RELOADING=1/READY=1, and a refusal is a warning
    in the journal with its rule as a field."""
    if not active(manager):
        install(manager)
        assert manager.systemctl("start", "hostpipe.socket", "hostpipe.service").returncode == 0
    status = wait_for(
        lambda: re.fullmatch(
            r"\d+ running, \d+ queued, \d+ lines \(\d+ refused\)",
            manager.systemctl("show", "-p", "StatusText", "--value", "hostpipe.service").stdout.strip(),
        ),
        30,
        interval=0.5,
    )
    assert status

    reload = manager.systemctl("reload", "hostpipe.service")
    assert reload.returncode == 0, reload.stderr
    assert active(manager)

    write_line(manager.pipe, "rm -rf /\n")

    def warnings() -> list[dict[str, Any]]:
        shown = manager.journal_entries("-p", "warning", "-o", "json")
        entries = [json.loads(line) for line in shown.stdout.splitlines() if line.startswith("{")]
        return [e for e in entries if "lines_refused" in str(e.get("MESSAGE", ""))]

    refused = wait_for(warnings, 30, interval=0.5)
    assert all(e["PRIORITY"] == "4" for e in refused)
    shown = manager.journal_entries("-p", "warning", "-o", "cat")
    assert "ready" not in shown.stdout.split(), "an info event passed -p warning"
    native = manager.as_user(str(manager.home / ".venv" / "bin" / "python3"), "-c", "import systemd.journal")
    if native.returncode == 0:
        # With systemd-python the event's fields are journal fields of their own.
        assert any(e.get("EVENT") == "lines_refused" and e.get("RULE") for e in refused), refused


def security_score(manager: UserManager) -> float:
    shown = manager.as_user("systemd-analyze", "security", "--user", "--no-pager", "hostpipe.service")
    match = re.search(r"Overall exposure level for hostpipe\.service: (\d+\.\d)", shown.stdout)
    assert match, shown.stdout + shown.stderr
    return float(match.group(1))


def test_strict_drop_in_lowers_the_score_and_still_runs_docker_lines(manager: UserManager):
    """The strict drop-in lowers the unit's `systemd-analyze security` exposure, and the service still runs a
    docker line under it."""
    default = security_score(manager)
    install(manager, "--strict")
    strict_conf = manager.home / ".config" / "systemd" / "user" / "hostpipe.service.d" / "strict.conf"
    try:
        strict = security_score(manager)
        print(f"systemd-analyze security --user: {default} without the strict drop-in, {strict} with it")
        assert strict < default
        restarted = manager.systemctl("restart", "hostpipe.service")
        assert restarted.returncode == 0, restarted.stderr + manager.journal_entries("-n", "20").stdout
        before = len(records(manager))
        write_line(manager.pipe, "docker run test/x echo strict\n")
        found = wait_for(lambda: settled(manager, before + 1), 60, interval=0.3)
        assert [r["state"] for r in found if r["line"] == "docker run test/x echo strict"] == ["succeeded"]
    finally:
        strict_conf.unlink(missing_ok=True)
        manager.systemctl("daemon-reload")


def test_configuration_error_stops_the_unit_without_restarts(manager: UserManager):
    """An invalid policy exits 3, which RestartPreventExitStatus= keeps from restarting again and again."""
    policy = manager.home / ".config" / "hostpipe" / "policy.toml"
    policy.write_text("max_concurrent = -1\n")
    manager.systemctl("restart", "hostpipe.service")
    wait_for(lambda: manager.systemctl("is-failed", "--quiet", "hostpipe.service").returncode == 0, 30)
    time.sleep(3)  # longer than RestartSec=: a restart would have begun by now
    shown = manager.systemctl(
        "show", "-p", "NRestarts", "-p", "ExecMainStatus", "-p", "ActiveState", "hostpipe.service"
    )
    assert dict(line.split("=", 1) for line in shown.stdout.split()) == {
        "NRestarts": "0",
        "ExecMainStatus": "3",
        "ActiveState": "failed",
    }
