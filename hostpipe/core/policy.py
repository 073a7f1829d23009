"""The policy: which runtimes, subcommands and images a pod may ask for, and how jobs are bounded.

`Policy` is the validated content of a policy file (or the built-in default). `decide` turns a request into
an `Allowed` command line with its environment and timeout, or a `Refused` with the rule, the argument and a
reason. Resolving executables on PATH and reading the file are the daemon's work; they reach this module as
values (`LoadedPolicy.executables`, `Host`).

A policy file is read strictly: a boolean must be a TOML boolean, a count a TOML integer, a duration a TOML
number or a duration string (`allow_host_network = "yes"`, `max_concurrent = "4"` and `max_concurrent =
4.0` are errors that name the field), so that no spelling means something the site did not write.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from hostpipe.core.containers import ContainerHandle, container_handle
from hostpipe.core.durations import parse_duration
from hostpipe.core.request import Submit
from hostpipe.core.runtimes import apptainer
from hostpipe.core.runtimes.base import ArgumentRules, ArgvRefused, Host
from hostpipe.core.runtimes.registry import GRAMMARS
from hostpipe.core.sizes import format_size, parse_size

BASE_ENV = ("PATH", "HOME", "USER", "LANG")
"""What every job gets from the daemon's environment; anything else must be named by the policy."""

_WRAPPERS = frozenset({"setsid", "nohup", "nice", "exec", "eval", "env", "sudo", "sh", "bash", "timeout"})

DEFAULT_MAX_TIMEOUT = 7 * 86400.0
"""The cap on a line's own timeout when a policy sets none: a week. It bounds what a line may ask for, not
jobs that ask for nothing: those run under `timeout`, none by default, so long-running services stay
possible."""
MAX_KILL_GRACE = 3600.0
"""The longest `kill_grace`: an hour between SIGTERM and SIGKILL is already more than any job needs."""

DEFAULT_RETENTION = 30 * 86400.0
"""How long records, job logs and replies are kept when a policy sets no `retention`: 30 days."""
DEFAULT_LOG_CAP = 64 << 20
"""The most of one job's log kept on disk when a policy sets no `log_cap`: 64 MiB."""
MIN_LOG_CAP = 64 << 10
"""The smallest `log_cap` other than 0: the kept head and tail are whole blocks of the filesystem."""
MAX_REFUSED_INTERVAL = 86400.0

APPTAINER_KINDS = frozenset({"apptainer", "singularity"})

HomeBind = Literal["none", "read-only", "read-write"]


def _toml(value: Any) -> str:
    """A value as TOML writes it, for messages about a policy file."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


_TRUE_WORDS = frozenset({"true", "yes", "on", "1", "y", "t"})
_FALSE_WORDS = frozenset({"false", "no", "off", "0", "n", "f"})


def _strict_scalar(fields: Mapping[str, Any], value: Any, info: ValidationInfo) -> Any:
    """Refuse what pydantic would coerce: a boolean or a count must have its own TOML type."""
    name = info.field_name or ""
    field_info = fields.get(name)
    annotation = field_info.annotation if field_info is not None else None
    if annotation is bool and not isinstance(value, bool):
        word = str(value).strip().lower()
        meant = "true" if word in _TRUE_WORDS else "false" if word in _FALSE_WORDS else "true or false"
        raise ValueError(f"expected a TOML boolean, not {_toml(value)}; write {name} = {meant}, without quotes")
    if annotation is int and (isinstance(value, bool) or not isinstance(value, int)):
        whole = "4"
        if isinstance(value, str) and value.strip().isdigit():
            whole = value.strip()
        elif isinstance(value, float) and value.is_integer():
            whole = str(int(value))
        example = f"{name} = {whole}"
        raise ValueError(f"expected a TOML integer, not {_toml(value)}; write a whole number without quotes: {example}")
    return value


class RuntimePolicy(ArgumentRules):
    """One allowed runtime: `[runtimes.NAME]` in the policy file. NAME is the program word in a line."""

    kind: str = ""
    """Which grammar reads its arguments: docker, podman, apptainer, singularity or shifter. Defaults to NAME."""
    executable: str = ""
    """A program name looked up on the daemon's PATH, or an absolute path. Defaults to NAME."""
    subcommands: tuple[str, ...] | None = None
    """Subcommands allowed; default: every one the grammar reads (run, and exec for apptainer)."""
    images: tuple[str, ...] = ("*",)
    """Glob patterns (fnmatch, case-sensitive) an image must match."""
    home_bind: HomeBind = "none"
    """apptainer and singularity only: whether a job sees the daemon user's HOME. "none" (hostpipe adds
    `--no-mount=home,cwd`), "read-only" (and `--bind=HOME:HOME:ro`), or "read-write" (apptainer's own home
    bind, which lets every job change what later jobs run with unless nothing they run with lies in HOME)."""

    keep_containers: bool = False
    """docker and podman only: keep a job's container once its end is recorded. By default hostpipe removes
    the containers its jobs created that the engine does not remove by itself (lines without --rm)."""

    @field_validator("*", mode="before")
    @classmethod
    def _strict(cls, value: Any, info: ValidationInfo) -> Any:
        return _strict_scalar(cls.model_fields, value, info)


class Policy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_concurrent: int = Field(default=64, ge=1, le=100_000)
    max_queued: int = Field(default=10_000, ge=0, le=10_000_000)
    timeout: float = 0.0
    """Default per-job timeout in seconds; 0 means none."""
    max_timeout: float = DEFAULT_MAX_TIMEOUT
    """Cap for a request's own timeout in seconds; 0 means no cap but the longest duration (366 days). When
    a file does not set it: a week, or the default `timeout` if that is longer."""
    kill_grace: float = 10.0
    """Seconds between SIGTERM and SIGKILL when a job is stopped; at most an hour."""
    job_cgroups: bool = True
    """Give each job a cgroup of its own where the host allows it (root, or a delegated cgroup), so that nothing
    a job starts outlives it; false leaves only the subreaper to catch what leaves a job's process group."""
    max_job_pids: int = Field(default=4096, ge=0, le=4_194_304)
    """The most processes one job may have at once, where hostpipe gives each job a cgroup (see the docs on
    job isolation); 0 means no limit. A fork bomb in a job stops there."""
    requeue_max_age: float = 3600.0
    """Jobs still queued when the daemon stopped run at its next start unless they waited longer than this
    (then they are recorded as expired); 0 means they always run."""
    retention: float = DEFAULT_RETENTION
    """Records, job logs and replies to pods older than this are removed (a job's age counts from its end);
    0 keeps them for ever (replies: until their client read them). Records of queued and running jobs are never
    removed."""
    log_cap: int = DEFAULT_LOG_CAP
    """The most bytes of one job's log kept on disk: its first quarter and its latest output; 0 means no cap."""
    refused_interval: float = 60.0
    """The window of the rate limit on refused lines."""
    refused_per_pod: int = Field(default=10, ge=0, le=1_000_000)
    """Refused lines of one pod recorded one by one in each window; more are counted into one summary."""
    refused_overall: int = Field(default=60, ge=0, le=1_000_000)
    """Refused lines of all pods together recorded one by one in each window; more are counted into summaries."""
    runtimes: dict[str, RuntimePolicy] = Field(default_factory=dict)

    @field_validator(
        "max_concurrent",
        "max_queued",
        "max_job_pids",
        "job_cgroups",
        "refused_per_pod",
        "refused_overall",
        mode="before",
    )
    @classmethod
    def _strict(cls, value: Any, info: ValidationInfo) -> Any:
        return _strict_scalar(cls.model_fields, value, info)

    @field_validator(
        "timeout", "max_timeout", "kill_grace", "requeue_max_age", "retention", "refused_interval", mode="before"
    )
    @classmethod
    def _duration(cls, value: Any, info: ValidationInfo) -> float:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(
                f"expected a TOML number of seconds or a duration string, not {_toml(value)}; write "
                f'{info.field_name} = 90 or {info.field_name} = "15m" ("90s", "2h", "1d", "1h30m")'
            )
        seconds = parse_duration(value)
        if info.field_name == "kill_grace" and seconds > MAX_KILL_GRACE:
            raise ValueError(
                f'{_toml(value)} is longer than an hour, the longest grace; write kill_grace = "1h" or less'
            )
        if info.field_name == "refused_interval" and not 0 < seconds <= MAX_REFUSED_INTERVAL:
            raise ValueError(
                f'{_toml(value)} is not a window of the rate limit; write refused_interval = "1m" (more than 0, '
                "at most a day)"
            )
        return seconds

    @field_validator("log_cap", mode="before")
    @classmethod
    def _size(cls, value: Any) -> int:
        try:
            size = parse_size(value)
        except ValueError as error:
            raise ValueError(f"{error}; log_cap = 0 means no cap") from None
        if 0 < size < MIN_LOG_CAP:
            raise ValueError(
                f"{_toml(value)} is smaller than {format_size(MIN_LOG_CAP)}, the smallest cap; write "
                f'log_cap = "{format_size(MIN_LOG_CAP)}" or more, or 0 for no cap'
            )
        return size

    @model_validator(mode="before")
    @classmethod
    def _default_cap(cls, data: Any) -> Any:
        # Without max_timeout, the cap is a week, or the file's own default timeout if that is longer:
        # a site that writes `timeout = "30d"` and nothing else means jobs may run 30 days.
        if not isinstance(data, dict) or "max_timeout" in data:
            return data
        timeout = data.get("timeout", 0)
        try:
            seconds = parse_duration(timeout) if isinstance(timeout, str | int | float) else 0.0
        except ValueError:
            seconds = 0.0
        return {**data, "max_timeout": max(DEFAULT_MAX_TIMEOUT, seconds)}

    @field_validator("runtimes", mode="before")
    @classmethod
    def _fill_names(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        filled: dict[str, Any] = {}
        for name, table in value.items():
            if isinstance(table, dict):
                filled[name] = {"kind": name if name in GRAMMARS else "", "executable": name, **table}
            else:
                filled[name] = table
        return filled

    @model_validator(mode="after")
    def _check_runtimes(self) -> Policy:
        for name, runtime in self.runtimes.items():
            if "/" in name or not name:
                raise ValueError(f"runtimes.{name}: a runtime is named by its program word, without '/'")
            grammar = GRAMMARS.get(runtime.kind)
            if grammar is None:
                raise ValueError(
                    f"runtimes.{name}.kind: {runtime.kind or '(missing)'!r} is not one of {', '.join(sorted(GRAMMARS))}"
                )
            if runtime.home_bind != "none" and runtime.kind not in APPTAINER_KINDS:
                raise ValueError(f"runtimes.{name}.home_bind: {_HOME_BIND_ELSEWHERE.get(runtime.kind, '')}")
            unknown = set(runtime.subcommands or ()) - set(grammar.subcommands)
            if unknown:
                raise ValueError(
                    f"runtimes.{name}.subcommands: {', '.join(sorted(unknown))} cannot be read by the "
                    f"{runtime.kind} grammar (it reads: {', '.join(grammar.subcommands) or 'no subcommands'})"
                )
        if self.max_timeout and self.timeout > self.max_timeout:
            raise ValueError("timeout: the default timeout is longer than max_timeout")
        return self

    def allowed_subcommands(self, name: str) -> tuple[str, ...]:
        runtime = self.runtimes[name]
        if runtime.subcommands is not None:
            return runtime.subcommands
        return GRAMMARS[runtime.kind].subcommands


_HOME_BIND_ELSEWHERE = {
    "shifter": "shifter mounts the folders its udiRoot.conf lists (siteFs), the home folders among them, "
    "whatever hostpipe asks; hostpipe counts HOME as a folder every shifter job can write. Leave home_bind out",
    "docker": "docker binds no home folder by itself; a line binds a folder with -v under bind_roots. "
    "Leave home_bind out",
    "podman": "podman binds no home folder by itself; a line binds a folder with -v under bind_roots. "
    "Leave home_bind out",
}


def builtin_policy() -> Policy:
    """The policy in force when no file exists: every known runtime, any image, the safe argument rules."""
    return Policy(runtimes={kind: {} for kind in ("docker", "podman", "apptainer", "singularity", "shifter")})


@dataclass(frozen=True)
class LoadedPolicy:
    """A policy with each runtime's executable resolved (None: not installed here) and where it came from."""

    policy: Policy
    executables: Mapping[str, str | None]
    source: str
    withheld: Mapping[str, str] = field(default_factory=dict)
    """Runtimes the built-in policy names but does not run on this host, each with the reason (see
    `hostpipe.core.writable`): their jobs could change what later jobs run with."""


@dataclass(frozen=True)
class Allowed:
    runtime: str
    argv: tuple[str, ...]
    """argv[0] is the runtime's absolute executable."""
    env: Mapping[str, str]
    timeout: float | None
    image: str | None
    note: str | None = None
    container: ContainerHandle | None = None
    """How to reach a docker or podman job's container when the job is stopped."""
    added: tuple[str, ...] = ()
    """Words hostpipe added to the line, already in `argv` (apptainer's `--no-mount=home,cwd`)."""


@dataclass(frozen=True)
class Refused:
    rule: str
    reason: str
    argument: str | None = None


Decision = Allowed | Refused


def _runtime_for(program: str, loaded: LoadedPolicy) -> str | None:
    if program in loaded.policy.runtimes:
        return program
    if program.startswith("/"):
        for name, path in loaded.executables.items():
            if path == program:
                return name
    return None


def job_timeout(request: Submit, policy: Policy) -> tuple[float | None, str | None]:
    """The timeout a job runs under, and a note when the request asked for more than the policy allows."""
    if request.timeout is None:
        return (policy.timeout or None), None
    if policy.max_timeout and request.timeout > policy.max_timeout:
        return policy.max_timeout, f"timeout capped at max_timeout {policy.max_timeout:g}s"
    return request.timeout, None


def job_env(runtime: RuntimePolicy, daemon_env: Mapping[str, str]) -> dict[str, str]:
    """A clean environment: the base names, the names the runtime's policy passes, then its fixed values."""
    env = {name: daemon_env[name] for name in (*BASE_ENV, *runtime.pass_env) if name in daemon_env}
    env.update(runtime.env)
    return env


def decide(request: Submit, loaded: LoadedPolicy, host: Host, daemon_env: Mapping[str, str]) -> Decision:
    policy = loaded.policy
    program = request.argv[0]
    name = _runtime_for(program, loaded)
    if name is None:
        allowed = ", ".join(sorted(policy.runtimes)) or "none"
        hint = ""
        if program in _WRAPPERS:
            hint = (
                "; every job already runs in the background in its own session and its output goes to its "
                "log, so write the runtime command alone"
            )
        return Refused("program", f"{program!r} is not an allowed runtime (allowed: {allowed}){hint}", program)
    runtime = policy.runtimes[name]
    withheld = loaded.withheld.get(name)
    if withheld is not None:
        return Refused("runtime-withheld", withheld, program)
    executable = loaded.executables.get(name)
    if executable is None:
        return Refused(
            "not-installed",
            f"{name} is allowed but {runtime.executable!r} is not installed on this host",
            program,
        )
    grammar = GRAMMARS[runtime.kind]
    try:
        invocation = grammar.parse(request.argv[1:])
    except ArgvRefused as refused:
        return Refused(refused.rule, refused.reason, refused.argument)
    subcommands = policy.allowed_subcommands(name)
    if grammar.subcommands and invocation.subcommand not in subcommands:
        return Refused(
            "subcommand",
            f"{name} {invocation.subcommand or '(none)'} is not allowed (allowed: {', '.join(subcommands) or 'none'})",
            invocation.subcommand or program,
        )
    image = invocation.image
    # "*" matches every image; most policies allow any image, so that is checked before any pattern is run.
    images = runtime.images
    if image is not None and "*" not in images and not any(fnmatch.fnmatchcase(image, p) for p in images):
        return Refused(
            "image",
            f"image {image!r} is not allowed for {name} (allowed: {', '.join(runtime.images)})",
            image,
        )
    try:
        grammar.check(invocation, runtime, host)
    except ArgvRefused as refused:
        return Refused(refused.rule, refused.reason, refused.argument)
    argv: tuple[str, ...] = (executable, *request.argv[1:])
    added: tuple[str, ...] = ()
    if runtime.kind in APPTAINER_KINDS:
        try:
            added = apptainer.job_words(invocation, runtime.home_bind, host.home)
        except ArgvRefused as refused:
            return Refused(refused.rule, refused.reason, refused.argument)
        argv = apptainer.with_job_words(argv, added)
    timeout, note = job_timeout(request, policy)
    return Allowed(
        runtime=name,
        argv=argv,
        env=job_env(runtime, daemon_env),
        timeout=timeout,
        image=image,
        note=note,
        container=_handle(runtime, invocation, request.argv),
        added=added,
    )


def _handle(runtime: RuntimePolicy, invocation: Any, argv: tuple[str, ...]) -> ContainerHandle | None:
    handle = container_handle(runtime.kind, invocation, argv)
    if handle is None or not runtime.keep_containers:
        return handle
    return dataclasses.replace(handle, kept=True)
