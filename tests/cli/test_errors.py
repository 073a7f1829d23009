"""Errors a person reads: one sentence with the path and what to do; unsafe pipe modes refused; hints in TOML."""

from __future__ import annotations

import os

from tests.conftest import Daemon, hostpipe


def test_an_unreadable_path_is_one_sentence_with_the_path_and_no_errno(tmp_path):
    """A state folder below a file, a policy that is missing: the path and what to do, never `[Errno N]`."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    env = {**os.environ, "HOME": str(tmp_path)}
    for args, code in (
        (["serve", "--state-dir", str(blocker / "state"), "--pipe", str(tmp_path / "p" / "vk")], 4),
        (["check", "--policy", str(tmp_path / "absent.toml"), "docker run x"], 3),
    ):
        result = hostpipe(*args, env=env, check=False)
        assert result.returncode == code, (args, result.stderr)
        assert "[Errno" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
        assert str(tmp_path) in result.stderr
    serve = hostpipe("serve", "--state-dir", str(blocker / "state"), env=env, check=False).stderr
    assert "check the path" in serve


def test_pipe_modes_others_could_read_are_refused(tmp_path):
    """--pipe-mode 777 or 644 would let any user take other pods' lines: a usage error naming a safe mode."""
    for mode in ("777", "644", "700"):
        result = hostpipe("serve", "--pipe-mode", mode, "--state-dir", str(tmp_path / "s"), check=False)
        assert result.returncode == 2 and "--pipe-mode" in result.stderr and "600" in result.stderr, mode
    assert not (tmp_path / "s").exists()
    folder = hostpipe("serve", "--folder-mode", "777", "--state-dir", str(tmp_path / "s"), check=False)
    assert folder.returncode == 2 and "--folder-mode" in folder.stderr


def test_a_pipe_every_user_may_write_is_served_with_a_warning(make_daemon):
    """622 (pods running as another user) is the site's choice: the daemon serves and says so on stderr."""
    daemon: Daemon = make_daemon(start=False)
    daemon.start("--pipe-mode", "622")
    assert "every user on this host can write lines" in daemon.stderr_path.read_text()  # type: ignore[union-attr]
    assert os.stat(daemon.pipe).st_mode & 0o777 == 0o622


def test_refusal_hints_are_valid_toml(tmp_path):
    """A refusal names the key to set as TOML (`allow_host_network = true`), not as YAML."""
    policy = tmp_path / "policy.toml"
    policy.write_text("[runtimes.docker]\n")
    result = hostpipe("check", "--policy", str(policy), "docker run --network host x", check=False)
    assert result.returncode == 1
    assert "allow_host_network = true" in result.stdout and "allow_host_network: true" not in result.stdout
