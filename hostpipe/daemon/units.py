"""Installing hostpipe as a systemd user service: the unit files, the PATH drop-in, enabling, linger.

The units ship inside the package (hostpipe/data/systemd), so every install route has them: pipx, a venv, a
checkout. ExecStart= is written as the absolute path of the hostpipe being run, so the unit starts exactly the
installation that installed it. The service gets the manager's PATH, not the login shell's, so the PATH of the
shell that runs `install-service` is written into a drop-in: runtimes found there (~/bin, `module load`) are
found by the service too.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from hostpipe.daemon import paths

SERVICE = "hostpipe.service"
SOCKET = "hostpipe.socket"
STRICT = "strict.conf"
PATH_DROP_IN = "path.conf"
_EXEC_START = "ExecStart=%h/.local/bin/hostpipe serve"
"""The shipped unit's ExecStart= line, up to the arguments, which install-service points at this installation."""
LINGER_DIR = Path("/var/lib/systemd/linger")


class InstallError(Exception):
    """The units could not be installed or started. The message is one line for the operator."""


def shipped(name: str) -> str:
    """The text of a unit file as shipped in the package."""
    return resources.files("hostpipe").joinpath("data", "systemd", name).read_text()


def unit_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(paths.home() / ".config")
    return Path(base) / "systemd" / "user"


def _quote(word: str) -> str:
    """One word of a unit file's command line or assignment: specifiers and variables kept literal."""
    escaped = word.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return f'"{escaped}"' if any(c.isspace() for c in word) or escaped != word else escaped


def running_hostpipe() -> list[str]:
    """The command that runs this installation of hostpipe, with absolute paths (pipx, venv, checkout)."""
    argv0 = sys.argv[0] if sys.argv else ""
    if os.path.basename(argv0) == "hostpipe":
        found = argv0 if os.sep in argv0 else shutil.which(argv0)
        if found:
            return [os.path.abspath(found)]
    beside = Path(sys.executable).parent / "hostpipe"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside.absolute())]
    # Run as `python -m hostpipe`: -P keeps the working folder (HOME, where the pipe folder is) off sys.path.
    return [os.path.abspath(sys.executable), "-P", "-m", "hostpipe"]


def service_text(command: list[str]) -> str:
    """The service unit with ExecStart= running `command`."""
    text = shipped(SERVICE)
    if _EXEC_START not in text:
        raise InstallError(f"the shipped {SERVICE} has no line starting {_EXEC_START!r}")
    start = "ExecStart=" + " ".join(_quote(word).replace("$", "$$") for word in command) + " serve"
    return text.replace(_EXEC_START, start, 1)


def usable_path(value: str) -> tuple[list[str], list[str]]:
    """The absolute folders of a PATH value, and the entries left out (empty or relative: they would be looked
    up from the service's working folder)."""
    kept: list[str] = []
    dropped: list[str] = []
    for entry in value.split(os.pathsep):
        if entry and os.path.isabs(entry):
            if entry not in kept:
                kept.append(entry)
        else:
            dropped.append(entry)
    return kept, dropped


def path_drop_in(folders: list[str]) -> str:
    value = os.pathsep.join(folders)
    return (
        "# Written by `hostpipe install-service` from the PATH of the shell it ran in: the service looks up the\n"
        "# runtimes where that shell does. Run install-service again after changing PATH, or edit this file and\n"
        "# run `systemctl --user daemon-reload` and `systemctl --user restart hostpipe`.\n"
        "[Service]\n"
        f"Environment={_quote('PATH=' + value)}\n"
    )


@dataclass
class Installed:
    folder: Path
    written: list[Path] = field(default_factory=list)
    path_dropped: list[str] = field(default_factory=list)
    strict: bool = False
    """The strict drop-in is in place (written now, or kept from before)."""


def _write(path: Path, text: str) -> None:
    """Write whole: a temporary file renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


def write_units(*, command: list[str], path: str, strict: bool, folder: Path | None = None) -> Installed:
    """Write the socket, the service, its PATH drop-in and (asked for) the strict drop-in into `folder`."""
    folder = folder or unit_dir()
    installed = Installed(folder)
    drop_ins = folder / f"{SERVICE}.d"
    folders, installed.path_dropped = usable_path(path)
    files = {
        folder / SOCKET: shipped(SOCKET),
        folder / SERVICE: service_text(command),
        drop_ins / PATH_DROP_IN: path_drop_in(folders),
    }
    if strict:
        files[drop_ins / STRICT] = shipped(STRICT)
    for target, text in files.items():
        _write(target, text)
        installed.written.append(target)
    installed.strict = (drop_ins / STRICT).exists()
    # The strict drop-in makes the home folder read-only but for the pipe's and the state's folders, so both
    # must exist before the service starts; the socket unit makes the pipe's.
    state = paths.home() / ".local" / "state" / "hostpipe"
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    return installed


def systemctl(*args: str) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("systemctl")
    if executable is None:
        raise InstallError("systemctl is not installed; the units are written, start them where systemd runs")
    command = [executable, "--user", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL)


def _checked(*args: str) -> str:
    result = systemctl(*args)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        reason = detail[-1] if detail else f"exit status {result.returncode}"
        raise InstallError(f"`systemctl --user {' '.join(args)}` failed: {reason}")
    return result.stdout


def enable_and_start() -> bool:
    """Reload the manager, enable both units and start them. True when the service was already running (it
    keeps running the unit it started with until restarted)."""
    _checked("daemon-reload")
    was_running = systemctl("is-active", "--quiet", SERVICE).returncode == 0
    _checked("enable", "--now", SOCKET, SERVICE)
    return was_running


def current_user() -> str:
    return os.environ.get("USER") or pwd.getpwuid(os.geteuid()).pw_name


def linger(user: str) -> bool | None:
    """Whether the user's manager outlives their sessions (and starts at boot); None when nobody can tell."""
    loginctl = shutil.which("loginctl")
    if loginctl is not None:
        try:
            result = subprocess.run(
                [loginctl, "show-user", user, "-p", "Linger", "--value"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired):
            result = None
        if result is not None and result.returncode == 0 and result.stdout.strip() in ("yes", "no"):
            return result.stdout.strip() == "yes"
    # logind does not run (a container, a minimal host), or does not know the user yet: its file says it.
    if LINGER_DIR.parent.is_dir():
        return (LINGER_DIR / user).exists()
    return None
