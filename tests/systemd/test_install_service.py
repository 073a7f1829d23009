"""`hostpipe install-service --no-start`: the unit files it writes, checked by systemd's own parser."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]


def install(home: Path, *args: str, path: str, executable: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run install-service --no-start as a user whose HOME is `home`, from the console script `executable`."""
    command = [executable or str(Path(sys.executable).parent / "hostpipe"), "install-service", "--no-start", *args]
    env = {"HOME": str(home), "PATH": path, "USER": "root", "LANG": "C.UTF-8"}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def verify(units: list[Path], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    runtime_dir = tmp_path / "run"
    runtime_dir.mkdir(mode=0o700, exist_ok=True)
    # --man=no: Documentation=man:hostpipe(1) names the man page the CLI generates, which no pip route installs.
    return subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *map(str, units)],
        capture_output=True,
        text=True,
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime_dir)},
        timeout=60,
        check=False,
    )


needs_console_script = pytest.mark.skipif(
    not (Path(sys.executable).parent / "hostpipe").exists(), reason="the hostpipe console script is not installed"
)
needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")


@needs_console_script
@needs_analyze
def test_installed_units_pass_systemd_analyze_verify(tmp_path):
    """The socket and the service install-service writes, strict drop-in included, are units systemd accepts."""
    home = tmp_path / "home"
    result = install(home, "--strict", path="/usr/bin:/bin")
    assert result.returncode == 0, result.stderr
    folder = home / ".config" / "systemd" / "user"
    checked = verify([folder / "hostpipe.socket", folder / "hostpipe.service"], tmp_path)
    problems = [line for line in checked.stderr.splitlines() if "hostpipe" in line]
    assert checked.returncode == 0 and not problems, checked.stderr


@needs_console_script
def test_exec_start_is_the_hostpipe_that_ran_install_service(tmp_path):
    """ExecStart= names the console script install-service ran from, so a pipx or venv install starts itself."""
    home = tmp_path / "home"
    assert install(home, path="/usr/bin:/bin").returncode == 0
    service = (home / ".config" / "systemd" / "user" / "hostpipe.service").read_text()
    starts = [line for line in service.splitlines() if line.startswith("ExecStart=")]
    assert starts == [f"ExecStart={Path(sys.executable).parent / 'hostpipe'} serve"]


@needs_console_script
@needs_analyze
def test_exec_start_survives_spaces_and_percent_signs_in_the_path(tmp_path):
    """A hostpipe installed under a folder with a space and a % is quoted so that systemd finds it."""
    folder = tmp_path / "my tools 100%"
    folder.mkdir()
    (folder / "hostpipe").symlink_to(Path(sys.executable).parent / "hostpipe")
    home = tmp_path / "home"
    result = install(home, path="/usr/bin:/bin", executable=str(folder / "hostpipe"))
    assert result.returncode == 0, result.stderr
    units = home / ".config" / "systemd" / "user"
    service = (units / "hostpipe.service").read_text()
    assert f'ExecStart="{tmp_path}/my tools 100%%/hostpipe" serve' in service
    checked = verify([units / "hostpipe.socket", units / "hostpipe.service"], tmp_path)
    assert checked.returncode == 0, checked.stderr


@needs_console_script
def test_path_drop_in_carries_the_shells_absolute_folders(tmp_path):
    """The shell's PATH reaches the service through a drop-in; empty and relative entries are left out and named."""
    home = tmp_path / "home"
    result = install(home, path="/opt/site/bin::bin:/usr/bin:/opt/site/bin")
    assert result.returncode == 0, result.stderr
    drop_in = home / ".config" / "systemd" / "user" / "hostpipe.service.d" / "path.conf"
    assert "Environment=PATH=/opt/site/bin:/usr/bin\n" in drop_in.read_text()
    assert "left out '', 'bin'" in result.stdout


@needs_console_script
def test_strict_drop_in_is_added_on_request_and_kept_on_a_later_install(tmp_path):
    """--strict adds the shipped strict drop-in; running install-service again without it keeps it and says so."""
    home = tmp_path / "home"
    assert install(home, "--strict", path="/usr/bin").returncode == 0
    strict = home / ".config" / "systemd" / "user" / "hostpipe.service.d" / "strict.conf"
    assert strict.read_text() == (REPO / "systemd" / "hostpipe.service.d" / "strict.conf").read_text()
    again = install(home, path="/usr/bin")
    assert strict.exists()
    assert "kept the strict drop-in" in again.stdout


@needs_console_script
def test_reports_linger_and_how_to_turn_it_on(tmp_path):
    """Without linger the output says so and names the command that turns it on."""
    result = install(tmp_path / "home", path="/usr/bin")
    linger = [line for line in result.stdout.splitlines() if line.startswith("linger:")]
    assert len(linger) == 1
    assert linger[0].startswith("linger: on") or "loginctl enable-linger root" in linger[0]


def test_repository_units_are_the_shipped_ones():
    """systemd/ in the repository shows the very files the package installs (links, never copies that drift)."""
    shipped = REPO / "hostpipe" / "data" / "systemd"
    for link, name in [
        ("hostpipe.service", "hostpipe.service"),
        ("hostpipe.socket", "hostpipe.socket"),
        ("hostpipe.service.d/strict.conf", "strict.conf"),
    ]:
        assert (REPO / "systemd" / link).resolve() == (shipped / name).resolve()


@needs_console_script
@pytest.mark.skipif(shutil.which("systemctl") is None, reason="systemctl is not installed")
def test_without_a_user_manager_says_so_in_one_line_and_exits_4(tmp_path):
    """Where no user manager answers, the files are written and the error is one line with exit code 4."""
    home, runtime_dir = tmp_path / "home", tmp_path / "run"
    runtime_dir.mkdir(mode=0o700)
    # An empty XDG_RUNTIME_DIR: no manager's socket there, whatever runs on this machine.
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "USER": "root", "XDG_RUNTIME_DIR": str(runtime_dir)}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "hostpipe"), "install-service"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 4
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("hostpipe: `systemctl --user daemon-reload`")
    assert "the unit files are written" in result.stderr
    assert (home / ".config" / "systemd" / "user" / "hostpipe.service").exists()
