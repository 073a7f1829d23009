"""The values every runtime grammar produces and every rule reads.

A runtime module (docker, podman, apptainer, shifter) reads an argv the way the real CLI does and returns an
`Invocation`, or raises `ArgvRefused` when the argv cannot be read without doubt. Rules then look at the
invocation and the runtime's policy (`ArgumentRules`) and refuse with the rule's name and the exact argument.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field


@dataclass(frozen=True)
class OptionSpec:
    """One option as the real CLI defines it.

    `names` holds every spelling the CLI accepts for it, long ones with `--` and short ones with `-`; the first
    is the canonical name used in records and in `allow_options`. `takes_value` is False for a boolean or
    counted flag. `optional_value` marks a flag that may take `--name=value` but never a separate value word
    (pflag's NoOptDefVal).
    """

    names: tuple[str, ...]
    takes_value: bool
    optional_value: bool = False

    @property
    def canonical(self) -> str:
        return self.names[0]


@dataclass(frozen=True)
class Option:
    """One occurrence of an option in an argv: canonical name, its value, and the words as written."""

    name: str
    value: str | None
    spelling: str


@dataclass(frozen=True)
class Invocation:
    """An argv read the way the runtime reads it."""

    kind: str
    global_options: tuple[Option, ...]
    subcommand: str
    """Canonical subcommand ("run", "exec"), or "" for a runtime without one (shifter)."""
    options: tuple[Option, ...]
    image: str | None
    args: tuple[str, ...]
    """The command and its arguments, as given after the image (or after `--`)."""

    def all_options(self) -> tuple[Option, ...]:
        return self.global_options + self.options


class ArgvRefused(Exception):
    """An argv that a rule refuses, or that cannot be read without doubt."""

    def __init__(self, rule: str, argument: str, reason: str) -> None:
        super().__init__(f"{rule}: {argument}: {reason}")
        self.rule = rule
        self.argument = argument
        self.reason = reason


class Host(Protocol):
    """What a rule may learn about the host. The daemon supplies the real one; the core never touches disk."""

    @property
    def home(self) -> str: ...

    def realpath(self, path: str) -> str:
        """The absolute path with `..` and symlinks resolved, as os.path.realpath does."""
        ...


class ArgumentRules(BaseModel):
    """The argument-level relaxations a site may grant one runtime. Every default is the safe one."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bind_roots: tuple[str, ...] = ()
    """Host folders under which binds, volumes and local images may lie. `~` means the daemon user's home."""
    read_only_roots: tuple[str, ...] = ()
    """Host folders under which binds are allowed only read-only (`-v SRC:DST:ro`, `--mount ...,readonly`,
    `-B SRC:DST:ro`, `-V SRC:DST:ro`), and files only for the runtime to read. `~` and path resolution work as
    for bind_roots. A path under both kinds of root is read-write only if it lies under a bind root."""
    allow_host_network: bool = False
    allow_ports: bool = False
    """Published ports (-p/-P, --publish)."""
    allow_devices: bool = False
    allow_host_namespaces: bool = False
    """Host PID/IPC/UTS/user/cgroup namespaces."""
    allow_capabilities: tuple[str, ...] = ()
    """Capabilities that may be added beyond the baseline set."""
    allow_unconfined: bool = False
    """Unconfined seccomp/apparmor/SELinux profiles."""
    modules: tuple[str, ...] = ()
    """Shifter modules that may be asked for with --module."""
    allow_options: tuple[str, ...] = ()
    """Options refused by default that this site allows anyway, by canonical name (e.g. "--fakeroot")."""
    pass_env: tuple[str, ...] = ()
    """Names of the daemon's environment variables that reach this runtime's process."""
    env: dict[str, str] = Field(default_factory=dict)
    """Fixed environment for this runtime's process (e.g. DOCKER_HOST for a rootless or remote engine)."""


Checker = Callable[[Invocation, ArgumentRules, Host], None]
"""A rule set: returns when the invocation is allowed, raises ArgvRefused otherwise."""


@dataclass(frozen=True)
class Grammar:
    """A runtime's reader and rule set, as the policy looks them up by kind."""

    kind: str
    parse: Callable[[tuple[str, ...]], Invocation]
    """Reads argv[1:] (everything after the program name). Raises ArgvRefused."""
    check: Checker
    subcommands: tuple[str, ...] = field(default=())
    """Subcommands this grammar can read; a policy may allow a subset."""
