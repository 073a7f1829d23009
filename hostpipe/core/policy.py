"""The policy: which runtimes, subcommands and images a pod may ask for, and how jobs are bounded.

`Policy` is the validated content of a policy file (or the built-in default). `decide` turns a request into
an `Allowed` command line with its environment and timeout, or a `Refused` with the rule, the argument and a
reason. Resolving executables on PATH and reading the file are the daemon's work; they reach this module as
values (`LoadedPolicy.executables`, `Host`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hostpipe.core.containers import ContainerHandle, container_handle
from hostpipe.core.durations import parse_duration
from hostpipe.core.request import Submit
from hostpipe.core.runtimes.base import ArgumentRules, ArgvRefused, Host
from hostpipe.core.runtimes.registry import GRAMMARS

BASE_ENV = ("PATH", "HOME", "USER", "LANG")
"""What every job gets from the daemon's environment; anything else must be named by the policy."""

_WRAPPERS = frozenset({"setsid", "nohup", "nice", "exec", "eval", "env", "sudo", "sh", "bash", "timeout"})


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


class Policy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_concurrent: int = Field(default=64, ge=1, le=100_000)
    max_queued: int = Field(default=10_000, ge=0, le=10_000_000)
    timeout: float = 0.0
    """Default per-job timeout in seconds; 0 means none."""
    max_timeout: float = 0.0
    """Cap for a request's own timeout in seconds; 0 means no cap."""
    kill_grace: float = 10.0
    """Seconds between SIGTERM and SIGKILL when a job is stopped."""
    requeue_max_age: float = 3600.0
    """Jobs still queued when the daemon stopped run at its next start unless they waited longer than this
    (then they are recorded as expired); 0 means they always run."""
    runtimes: dict[str, RuntimePolicy] = Field(default_factory=dict)

    @field_validator("timeout", "max_timeout", "kill_grace", "requeue_max_age", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError("expected seconds as a number or a duration like '90s', '15m', '2h'")
        return parse_duration(value)

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


def builtin_policy() -> Policy:
    """The policy in force when no file exists: every known runtime, any image, the safe argument rules."""
    return Policy(runtimes={kind: {} for kind in ("docker", "podman", "apptainer", "singularity", "shifter")})


@dataclass(frozen=True)
class LoadedPolicy:
    """A policy with each runtime's executable resolved (None: not installed here) and where it came from."""

    policy: Policy
    executables: Mapping[str, str | None]
    source: str


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
    timeout, note = job_timeout(request, policy)
    return Allowed(
        runtime=name,
        argv=(executable, *request.argv[1:]),
        env=job_env(runtime, daemon_env),
        timeout=timeout,
        image=image,
        note=note,
        container=container_handle(runtime.kind, invocation, request.argv),
    )
