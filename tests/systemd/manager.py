"""A real `systemd --user` manager for a throw-away user, on a host whose PID 1 is not systemd.

As root: a new user with a home under /home, hostpipe and its dependencies copied where that user can read
them (the checkout and the test runner's interpreter may live under /root), and user-manager.sh started in a
private mount namespace with its own journald and a delegated cgroup. `systemctl --user` and the user's own
commands run through runuser. `close()` stops the manager, kills whatever is left in its mount namespace or
owned by the user, removes the cgroups, the folders and the user: nothing outlives the test.

The user runs hostpipe with the system python3 (it must be the runner's minor version: pydantic-core is a
compiled module), from a virtual environment without pip whose site folder holds the copied packages.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).parents[2]
SCRIPT = Path(__file__).with_name("user-manager.sh")
STANDINS = REPO / "tests" / "standins"
SYSTEM_PYTHON = Path("/usr/bin/python3")
MANAGER = Path("/lib/systemd/systemd")
JOURNALD = Path("/lib/systemd/systemd-journald")
PACKAGES = (
    "hostpipe",
    "click",
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "typing_extensions",
    "typing_inspection",
    "structlog",
    "watchdog",
)
DEBIAN_SYSTEMD = Path("/usr/lib/python3/dist-packages/systemd")
"""python3-systemd, built for the system python3 (scripts/e2e-setup.sh installs it)."""


def _namespaces(*pids: str) -> frozenset[str]:
    found = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            found.add(os.readlink(f"/proc/{pid}/ns/mnt"))
    return frozenset(found)


_HOST_NAMESPACES = _namespaces("self", "1")
"""The mount namespaces of this test and of PID 1: the manager's own is neither, and nothing in them is killed."""
TOOLS = ("unshare", "setpriv", "runuser", "useradd", "userdel", "systemctl", "journalctl", "systemd-analyze")


class Unavailable(Exception):
    """A user manager cannot run here; the message says why."""


def prerequisites() -> None:
    """Raise Unavailable with the first reason a user manager cannot run on this machine."""
    if os.geteuid() != 0:
        raise Unavailable("needs root: the recipe fakes a booted host in a private mount namespace")
    for path in (MANAGER, JOURNALD, SYSTEM_PYTHON):
        if not path.exists():
            raise Unavailable(f"{path} is missing (scripts/e2e-setup.sh installs systemd)")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise Unavailable(f"missing {', '.join(missing)}")
    version = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", "import sys; print(*sys.version_info[:2])"],
        check=False,
        capture_output=True,
        text=True,
    ).stdout.split()
    if version != [str(n) for n in sys.version_info[:2]]:
        raise Unavailable(f"{SYSTEM_PYTHON} is Python {'.'.join(version)}, the tests run {sys.version_info[:2]}")
    if not any(Path(f"/sys/fs/cgroup/{h}/cgroup.procs").exists() for h in ("systemd", "unified")):
        raise Unavailable("no cgroup hierarchy at /sys/fs/cgroup/systemd or /sys/fs/cgroup/unified to delegate")
    if Path("/run/systemd/system").exists() and Path("/proc/1/comm").read_text().strip() == "systemd":
        raise Unavailable("PID 1 is systemd here: use the host's own user manager rather than this recipe")


def _copy_package(name: str, site: Path) -> None:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise Unavailable(f"the test runner cannot import {name}")
    if spec.submodule_search_locations:
        source = Path(next(iter(spec.submodule_search_locations)))
        shutil.copytree(source, site / name, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        shutil.copy2(spec.origin, site / Path(spec.origin).name)


class UserManager:
    def __init__(self) -> None:
        self.user = f"hpsd{secrets.token_hex(3)}"
        self.home = Path("/home") / self.user
        self.journal = Path(tempfile.mkdtemp(prefix="hpsd-journal-"))
        self.process: subprocess.Popen[bytes] | None = None
        self.namespace: str | None = None
        self.uid = self.gid = -1
        self.created = False

    # -- set-up -----------------------------------------------------------------------------------------------

    @property
    def runtime_dir(self) -> Path:
        return self.home / ".run"

    @property
    def hostpipe(self) -> Path:
        return self.home / ".venv" / "bin" / "hostpipe"

    @property
    def standins(self) -> Path:
        return self.home / ".standins"

    @property
    def state_dir(self) -> Path:
        return self.home / ".local" / "state" / "hostpipe"

    @property
    def pipe(self) -> Path:
        return self.home / "hostpipe" / "vk-cmd"

    def start(self) -> None:
        subprocess.run(
            [
                "useradd",
                "--no-create-home",
                "--home-dir",
                str(self.home),
                "--shell",
                "/bin/sh",
                "--user-group",
                self.user,
            ],
            check=True,
            capture_output=True,
        )
        self.created = True
        info = pwd.getpwnam(self.user)
        self.uid, self.gid = info.pw_uid, info.pw_gid
        self.home.mkdir(mode=0o700)
        self._install_hostpipe()
        self.runtime_dir.mkdir(mode=0o700)
        for path in (self.home, *self.home.rglob("*")):
            os.chown(path, self.uid, self.gid, follow_symlinks=False)
        log = (self.journal.parent / f"{self.journal.name}.manager.log").open("wb")
        self.process = subprocess.Popen(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                str(SCRIPT),
                self.user,
                str(self.uid),
                str(self.gid),
                str(self.home),
                str(self.runtime_dir),
                str(self.journal),
                "/usr/local/bin:/usr/bin:/bin",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise Unavailable(f"the user manager exited with {self.process.returncode}: {self.manager_log()}")
            if self.namespace is None:
                with contextlib.suppress(OSError):
                    namespace = os.readlink(f"/proc/{self.process.pid}/ns/mnt")
                    # Until unshare has made the private namespace, the process is still in ours.
                    if namespace not in _HOST_NAMESPACES:
                        self.namespace = namespace
            state = self.systemctl("show", "-p", "SystemState", "--value").stdout.strip()
            if state in ("running", "degraded"):
                return
            time.sleep(0.2)
        raise Unavailable(f"the user manager did not come up within 30 s: {self.manager_log()}")

    def _install_hostpipe(self) -> None:
        venv = self.home / ".venv"
        subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
        site = venv / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
        for name in PACKAGES:
            _copy_package(name, site)
        if DEBIAN_SYSTEMD.is_dir():
            shutil.copytree(DEBIAN_SYSTEMD, site / "systemd", ignore=shutil.ignore_patterns("__pycache__", "test"))
        elif importlib.util.find_spec("systemd.journal") is not None:
            _copy_package("systemd", site)
        self.hostpipe.write_text(
            f"#!{venv / 'bin' / 'python3'}\nimport sys\nfrom hostpipe.cli.main import main\nsys.exit(main())\n"
        )
        self.hostpipe.chmod(0o755)
        shutil.copytree(STANDINS, self.standins, symlinks=True)

    # -- use --------------------------------------------------------------------------------------------------

    def env(self, path: str | None = None) -> list[str]:
        return [
            "env",
            "-i",
            f"HOME={self.home}",
            f"USER={self.user}",
            f"LOGNAME={self.user}",
            f"XDG_RUNTIME_DIR={self.runtime_dir}",
            "LANG=C.UTF-8",
            f"PATH={path or '/usr/local/bin:/usr/bin:/bin'}",
        ]

    def as_user(self, *command: str, path: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["runuser", "-u", self.user, "--", *self.env(path), *command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    def systemctl(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return self.as_user("systemctl", "--user", *args, timeout=timeout)

    def journal_entries(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The service's entries, read as root from the test journal's files. (`--user -u` would also match
        _UID= of whoever runs journalctl; the user runs `journalctl --user -u hostpipe` on their own journal.)"""
        return subprocess.run(
            ["journalctl", "-D", str(self.journal), "--no-pager", "_SYSTEMD_USER_UNIT=hostpipe.service", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def manager_log(self) -> str:
        path = self.journal.parent / f"{self.journal.name}.manager.log"
        with contextlib.suppress(OSError):
            return path.read_text(errors="replace").strip()[-2000:] or "(no output)"
        return "(no output)"

    # -- tear-down --------------------------------------------------------------------------------------------

    def _leftovers(self) -> list[int]:
        """Processes in the manager's private mount namespace, or owned by the test user: never any other."""
        namespace = self.namespace if self.namespace not in _HOST_NAMESPACES else None
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) in (1, os.getpid()):
                continue
            try:
                same_namespace = namespace is not None and os.readlink(entry / "ns" / "mnt") == namespace
                owned = self.uid > 0 and entry.stat().st_uid == self.uid
            except OSError:
                continue
            if same_namespace or owned:
                pids.append(int(entry.name))
        return pids

    def close(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.systemctl("stop", "hostpipe.service", "hostpipe.socket", timeout=90)
                self.systemctl("exit", timeout=30)
                try:
                    self.process.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(10)
            for _ in range(50):
                leftovers = self._leftovers()
                if not leftovers:
                    break
                for pid in leftovers:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                time.sleep(0.1)
        if self.uid >= 0:
            for hierarchy in ("systemd", "unified"):
                folder = Path(f"/sys/fs/cgroup/{hierarchy}/user.slice/user-{self.uid}.slice")
                if folder.exists():
                    for cgroup in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                        if cgroup.is_dir():
                            with contextlib.suppress(OSError):
                                cgroup.rmdir()
                    with contextlib.suppress(OSError):
                        folder.rmdir()
                    with contextlib.suppress(OSError):
                        folder.parent.rmdir()  # user.slice, unless another manager still uses it
        shutil.rmtree(self.home, ignore_errors=True)
        shutil.rmtree(self.journal, ignore_errors=True)
        with contextlib.suppress(OSError):
            (self.journal.parent / f"{self.journal.name}.manager.log").unlink()
        if self.created:
            subprocess.run(["userdel", self.user], capture_output=True, check=False)

    def cgroups_left(self) -> list[str]:
        return [
            str(path)
            for hierarchy in ("systemd", "unified")
            for path in [Path(f"/sys/fs/cgroup/{hierarchy}/user.slice/user-{self.uid}.slice")]
            if path.exists()
        ]
