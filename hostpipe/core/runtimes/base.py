"""The values every runtime grammar produces and every rule reads.

A runtime module (docker, podman, apptainer, shifter) reads an argv the way the real CLI does and returns an
`Invocation`, or raises `ArgvRefused` when the argv cannot be read without doubt. Rules then look at the
invocation and the runtime's policy (`ArgumentRules`) and refuse with the rule's name and the exact argument.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator


class ValueType(Enum):
    """The Go type that holds an option's value in the runtime's own code, which decides how a value is read.

    pflag's StringSlice reads every occurrence as one CSV record (quotes processed, commas split) and appends
    its fields; StringArray and docker's ListOpts append each occurrence whole; the scalar types keep the last
    occurrence. docker's own option types (MountOpt, NetworkOpt, MapOpts, ...) parse the value themselves,
    which the rule for that option follows. The enum's value is the type's name in the Go source.
    """

    BOOL = "bool"
    STRING = "string"
    STRING_ARRAY = "stringArray"
    STRING_SLICE = "stringSlice"
    INT = "int"
    INT64 = "int64"
    UINT = "uint"
    UINT16 = "uint16"
    UINT64 = "uint64"
    FLOAT64 = "float64"
    DURATION = "duration"
    LIST = "opts.ListOpts"
    MAP = "opts.MapOpts"
    MOUNT = "opts.MountOpt"
    NETWORK = "opts.NetworkOpt"
    ULIMIT = "opts.UlimitOpt"
    GPUS = "opts.GpuOpts"
    MEM_BYTES = "opts.MemBytes"
    MEM_SWAP_BYTES = "opts.MemSwapBytes"
    NANO_CPUS = "opts.NanoCPUs"
    THROTTLE_DEVICE = "opts.ThrottledeviceOpt"
    WEIGHT_DEVICE = "opts.WeightdeviceOpt"
    QUOTED_STRING = "opts.QuotedString"

    @property
    def splits(self) -> bool:
        """True when pflag itself cuts one occurrence into several elements (CSV)."""
        return self is ValueType.STRING_SLICE

    @property
    def help_word(self) -> str:
        """The word `--help` prints after the option's name (pflag's UnquoteUsage), "" for a boolean."""
        return _HELP_WORDS[self]


_HELP_WORDS = {
    ValueType.BOOL: "",
    ValueType.STRING: "string",
    ValueType.STRING_ARRAY: "stringArray",
    ValueType.STRING_SLICE: "strings",
    ValueType.INT: "int",
    ValueType.INT64: "int",
    ValueType.UINT: "uint",
    ValueType.UINT16: "uint16",
    ValueType.UINT64: "uint",
    ValueType.FLOAT64: "float",
    ValueType.DURATION: "duration",
    ValueType.LIST: "list",
    ValueType.MAP: "map",
    ValueType.MOUNT: "mount",
    ValueType.NETWORK: "network",
    ValueType.ULIMIT: "ulimit",
    ValueType.GPUS: "gpu-request",
    ValueType.MEM_BYTES: "bytes",
    ValueType.MEM_SWAP_BYTES: "bytes",
    ValueType.NANO_CPUS: "decimal",
    ValueType.THROTTLE_DEVICE: "list",
    ValueType.WEIGHT_DEVICE: "list",
    ValueType.QUOTED_STRING: "string",
}


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
    value_type: ValueType | None = None
    """The Go type of the option's value in the runtime's source, where hostpipe models it (docker, podman);
    None reads every value whole."""

    @property
    def canonical(self) -> str:
        return self.names[0]


@dataclass(frozen=True)
class Option:
    """One occurrence of an option in an argv: canonical name, its value, and the words as written."""

    name: str
    value: str | None
    spelling: str
    elements: tuple[str, ...] | None = None
    """What the runtime makes of `value` when its type cuts it into several (a pflag StringSlice), in order;
    None when the value is one element."""

    def items(self) -> tuple[str | None, ...]:
        """Every element the runtime sees: `elements` when the value is cut, else the value itself."""
        return self.elements if self.elements is not None else (self.value,)


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


Flag = Annotated[bool, Strict()]
"""A policy switch: only a TOML boolean (`true`/`false`), never "yes", "on" or 1."""
Count = Annotated[int, Strict()]
"""A policy number: only a TOML integer, never 1.0, "1" or true."""
Name = Annotated[str, Strict()]
Names = tuple[Name, ...]
"""A list of strings in the policy file: a TOML array whose every item is a string."""

GIB = 1024**3

DEFAULT_ULIMITS: dict[str, int] = {
    "nofile": 1_048_576,
    "nproc": 65_536,
    "core": -1,
    "cpu": -1,
    "data": -1,
    "fsize": -1,
    "rss": -1,
    "stack": -1,
    "as": -1,
}
"""Resource limits a line may set, each with the highest value it may ask for (-1: unlimited too). Those left
out (memlock, rtprio, nice, msgqueue, sigpending, locks, rttime) pin host memory, kernel memory or CPU time
beyond what the host gives a process, so a line may not raise them unless the site lists them."""


class ArgumentRules(BaseModel):
    """The argument-level relaxations a site may grant one runtime. Every default is the safe one.

    Every key takes exactly its TOML type: a switch only `true`/`false`, a number only an integer, a list only
    an array of strings. A value of another type stops the policy from loading, naming the key.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    bind_roots: Names = ()
    """Host folders under which binds, volumes and local images may lie. `~` means the daemon user's home."""
    read_only_roots: Names = ()
    """Host folders under which binds are allowed only read-only (`-v SRC:DST:ro`, `--mount ...,readonly`,
    `-B SRC:DST:ro`, `-V SRC:DST:ro`), and files only for the runtime to read. `~` and path resolution work as
    for bind_roots. A path under both kinds of root is read-write only if it lies under a bind root."""
    allow_host_network: Flag = False
    allow_ports: Flag = False
    """Published ports (-p/-P, --publish)."""
    allow_devices: Flag = False
    allow_host_namespaces: Flag = False
    """Host PID/IPC/UTS/user/cgroup namespaces."""
    allow_capabilities: Names = ()
    """Capabilities that may be added beyond the baseline set."""
    allow_unconfined: Flag = False
    """Unconfined seccomp/apparmor/SELinux profiles."""
    modules: Names = ()
    """Shifter modules that may be asked for with --module."""
    allow_options: Names = ()
    """Options refused by default that this site allows anyway, by canonical name (e.g. "--fakeroot")."""
    pass_env: Names = ()
    """Names of the daemon's environment variables that reach this runtime's process."""
    env: dict[Name, Name] = Field(default_factory=dict)
    """Fixed environment for this runtime's process (e.g. DOCKER_HOST for a rootless or remote engine)."""

    allow_restart: Flag = False
    """docker and podman `--restart` policies other than `no` (and podman's `--health-on-failure=restart`),
    which have the engine start the container again after hostpipe's job has ended."""
    allow_log_drivers: Names = ()
    """docker and podman log drivers beyond those that keep the log with the engine (json-file, local,
    journald, none; podman's k8s-file)."""
    allow_log_options: Names = ()
    """`--log-opt` keys beyond the size, rotation and tag keys every driver reads the same way."""
    allow_image_mounts: Flag = False
    """`--mount type=image`, which mounts an image the `images` patterns never judged."""
    max_pids_limit: Count = Field(default=32_768, ge=-1)
    """The highest `--pids-limit` a line may set; 0, negative and unlimited values are refused. -1: any."""
    min_oom_score_adj: Count = Field(default=0, ge=-1000, le=1000)
    """The lowest `--oom-score-adj` a line may set; below 0 the host's OOM killer spares the container."""
    max_tmpfs_size: Count = Field(default=GIB, ge=-1)
    """The largest tmpfs (and `--shm-size`) in bytes; a tmpfs without a size is refused. -1: any, unsized too."""
    max_storage_size: Count = Field(default=0, ge=-1)
    """The largest docker `--storage-opt size=` in bytes, which overrides the engine's own quota; 0: a line
    may not set one. -1: any."""
    ulimits: dict[Name, Count] = Field(default_factory=lambda: dict(DEFAULT_ULIMITS))
    """The `--ulimit` names a line may set, each with the highest soft and hard value it may ask for; -1 allows
    unlimited. Names left out are refused."""

    @field_validator("max_pids_limit")
    @classmethod
    def _some_pids(cls, value: int) -> int:
        if value == 0:
            raise ValueError("0 would refuse every --pids-limit; write a positive number, or -1 for any")
        return value

    @field_validator("ulimits")
    @classmethod
    def _limits(cls, value: dict[str, int]) -> dict[str, int]:
        for name, maximum in value.items():
            if maximum < -1:
                raise ValueError(f"{name}: a maximum is 0 or more, or -1 to allow unlimited")
        return value


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
