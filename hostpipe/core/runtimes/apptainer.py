"""How apptainer (and `singularity`, the same program under its old name) reads `run` and `exec`, and what
hostpipe lets a pod ask of them.

apptainer is a cobra program. Global options (`--debug`, `-c/--config`, ...) come before the subcommand and
are read by the root command; cobra finds the subcommand by its own scan of the words, which can disagree
with pflag's reading (`apptainer -dc FILE run` has pflag take FILE as the config and cobra take it as the
subcommand), so an argv where the two disagree is refused. The subcommand's options stop at the first
positional word, the image; everything after it goes to the container untouched, a `--` included
(`apptainer run x.sif -- cmd` runs the runscript with `-- cmd`).

The option tables hold every option apptainer 1.x accepts for `run` and `exec` (`--boot` too, which older
releases and singularity accepted); anything else is refused. The program named `singularity` may be
apptainer or SingularityCE, whose pflag types differ (`apptainer_values`): each value is read as every
program that may run the line reads it, and refused when they would read it differently. The rules refuse,
unless a site relaxes them:

- host paths outside `bind_roots`: `-B/--bind` and `--mount` sources, the `-H/--home` source, `-o/--overlay`
  images, `--containlibs`, `-W/--workdir` ("bind-outside-roots"); files apptainer itself reads or writes on
  the host: `--env-file`, `--apply-cgroups`, `--authfile`, `--pem-path`, `--tmpdir` ("path-outside-roots");
  a local image or an image archive ("image-outside-roots"). Under `read_only_roots` only read-only uses
  are allowed: a bind written read-only (`-B src:dst:ro`, `--mount ...,ro`, `-o path:ro`), the files
  apptainer only reads (`--env-file`, `--apply-cgroups`, `--authfile`, `--pem-path`) and local images and
  archives, unless `--writable` writes into the image. Any other bind there is refused as
  "bind-read-write", and `-H/--home`, `-W/--workdir` (both written), `--containlibs` and `--tmpdir` need a
  bind root;
- options that need root, change the host or reach past the container: `-f/--fakeroot`, `-w/--writable`,
  `--keep-privs`, `--allow-setuid`, `--boot`, `--fusemount`, `--oom-kill-disable`, `--sharens`, the
  `--ignore-*` fakeroot knobs, `--cdi-dirs`, `--docker-host`, and the global `-c/--config` and
  `--build-config`; the cgroup options that raise a job's claim on the host against every other process
  (`--cpu-shares`, `--blkio-weight`, `--blkio-weight-device`, `--memory-reservation`); a site lists the
  option in `allow_options`;
- devices (`--nv`, `--nvccli`, `--rocm`, `--intel-hpu`, `--device`) unless `allow_devices`; `--add-caps`
  beyond `allow_capabilities`; `--security` profiles unless `allow_unconfined` (`uid:`/`gid:` only through
  `allow_options`); `--netns-path` unless `allow_host_namespaces`; `--network-args` port maps unless
  `allow_ports`, other network arguments only through `allow_options`;
- images read from the host's Docker engine (`docker-daemon:`) or joining a running instance
  (`instance://`).

Options that only add isolation or limit the container (`--contain`, `--containall`, `--userns`, `--net`,
`--network`, `--writable-tmpfs`, `--no-privs`, `--drop-caps`, `--env`, `--memory`, `--cpus`,
`--pids-limit`, ...) are allowed. Without `--net` apptainer shares the host's network, as any host process
does; there is no host network to ask for, so `allow_host_network` does not apply, and which networks
`--network` may bring up is the site's apptainer.conf decision.

By default apptainer binds the user's home folder and the working folder into every container, read-write,
and `--no-home` does not apply when the working folder is the home folder, as it is for hostpipe's jobs. So
hostpipe adds `--no-mount=home,cwd` right after the subcommand of every line (`job_words`): a job sees
neither the daemon user's HOME nor its working folder. A site that needs the home folder in its containers
says so with the runtime's `home_bind`: "read-only" adds `--bind=HOME:HOME:ro` instead, "read-write" leaves
apptainer's own home bind. A line with its own `-H/--home` (under a bind root) keeps it: only `cwd` is left
out. `--no-mount` reads `home` and `cwd` in apptainer 1.0 and later and in SingularityCE 3.7 and later (both
in native and OCI mode); older releases reject the option and the job fails, binding nothing. Relative paths,
a relative local image among them, stay relative to the job's working folder, the daemon user's HOME:
apptainer opens the image on the host before it builds the container, so leaving the working folder out of
the container does not change which file a relative path names.

apptainer still binds the host's /tmp, /var/tmp and /dev (so /dev/shm), and the site's own `bind path`
entries of apptainer.conf, and reads options from APPTAINER_*/SINGULARITY_* environment variables; those
reach it only through a policy's `pass_env` or `env`, and `bind_roots` governs only what the argv adds.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass

from hostpipe.core.runtimes.apptainer_values import values
from hostpipe.core.runtimes.base import (
    ArgumentRules,
    ArgvRefused,
    Grammar,
    Host,
    Invocation,
    Option,
    OptionSpec,
)
from hostpipe.core.runtimes.pflag import parse_bool, read_flags
from hostpipe.core.runtimes.roots import HostRoots, describe_roots, host_roots, read_write_refused

SUBCOMMANDS = ("run", "exec")


def _flag(*names: str) -> OptionSpec:
    return OptionSpec(names, takes_value=False)


def _value(*names: str) -> OptionSpec:
    return OptionSpec(names, takes_value=True)


GLOBAL_OPTIONS: tuple[OptionSpec, ...] = (
    _flag("--debug", "-d"),
    _flag("--nocolor"),
    _flag("--silent", "-s"),
    _flag("--quiet", "-q"),
    _flag("--verbose", "-v"),
    _value("--config", "-c"),
    _flag("--build-config"),
    _flag("--help", "-h"),
    _flag("--version"),
)
"""The root command's options, read before the subcommand."""

EXEC_OPTIONS: tuple[OptionSpec, ...] = (
    _value("--app"),
    _value("--bind", "-B"),
    _value("--mount"),
    _value("--home", "-H"),
    _value("--overlay", "-o"),
    _value("--scratch", "-S"),
    _value("--workdir", "-W"),
    _value("--cwd"),
    _value("--pwd"),
    _value("--hostname"),
    _value("--network"),
    _value("--network-args"),
    _value("--netns-path"),
    _value("--dns"),
    _value("--security"),
    _value("--apply-cgroups"),
    _value("--containlibs"),
    _value("--fusemount"),
    _value("--tmpdir"),
    _value("--add-caps"),
    _value("--drop-caps"),
    _value("--env"),
    _value("--no-env"),
    _value("--env-file"),
    _value("--no-mount"),
    _value("--blkio-weight"),
    _value("--blkio-weight-device"),
    _value("--cpu-shares"),
    _value("--cpus"),
    _value("--cpuset-cpus"),
    _value("--cpuset-mems"),
    _value("--memory"),
    _value("--memory-reservation"),
    _value("--memory-swap"),
    _value("--pids-limit"),
    _value("--device"),
    _value("--cdi-dirs"),
    _value("--pem-path"),
    _value("--authfile"),
    _value("--docker-host"),
    _value("--docker-username"),
    _value("--docker-password"),
    _flag("--boot"),
    _flag("--fakeroot", "-f"),
    _flag("--cleanenv", "-e"),
    _flag("--compat"),
    _flag("--contain", "-c"),
    _flag("--containall", "-C"),
    _flag("--nv"),
    _flag("--nvccli"),
    _flag("--compat32"),
    _flag("--rocm"),
    _flag("--intel-hpu"),
    _flag("--writable", "-w"),
    _flag("--writable-tmpfs"),
    _flag("--no-home"),
    _flag("--no-init"),
    _flag("--no-nv"),
    _flag("--no-rocm"),
    _flag("--pid", "-p"),
    _flag("--no-pid"),
    _flag("--ipc", "-i"),
    _flag("--net", "-n"),
    _flag("--uts"),
    _flag("--userns", "-u"),
    _flag("--keep-privs"),
    _flag("--no-privs"),
    _flag("--allow-setuid"),
    _flag("--no-umask"),
    _flag("--no-eval"),
    _flag("--oom-kill-disable"),
    _flag("--unsquash"),
    _flag("--ignore-subuid"),
    _flag("--ignore-fakeroot-command"),
    _flag("--ignore-userns"),
    _flag("--underlay"),
    _flag("--sharens"),
    _flag("--disable-cache"),
    _flag("--passphrase"),
    _flag("--no-https"),
    _flag("--nohttps"),
    _flag("--docker-login"),
    _flag("--help", "-h"),
)
"""`exec`'s options."""

RUN_OPTIONS: tuple[OptionSpec, ...] = (*EXEC_OPTIONS, _value("--runscript-timeout"))
"""`run`'s options: `exec`'s and the runscript timeout."""

_NAMED: dict[str, str] = {
    "--fakeroot": "runs the container as a fake root user",
    "--writable": "writes into the container image itself",
    "--keep-privs": "lets root keep its privileges in the container",
    "--allow-setuid": "allows setuid programs in the container",
    "--boot": "boots the container's /sbin/init",
    "--fusemount": "runs a FUSE program, on the host for a host: mount",
    "--oom-kill-disable": "turns the kernel's OOM killer off for the container",
    "--sharens": "shares namespaces and the image with other containers of the same parent process, which "
    "for hostpipe are other pods' jobs",
    "--ignore-subuid": "changes how fakeroot maps user ids",
    "--ignore-fakeroot-command": "changes how fakeroot is set up",
    "--ignore-userns": "changes how the container's namespaces are set up",
    "--cdi-dirs": "reads device definitions, which can bind any host path or device",
    "--docker-host": "talks to a Docker engine",
    "--config": "replaces the site's apptainer.conf",
    "--build-config": "switches to the configuration apptainer uses for building",
    # A cgroup weight or a memory reservation is a claim against every other process on the host, other
    # pods' jobs and the daemon among them; the limits (--memory, --cpus, --pids-limit) only bound the job.
    "--cpu-shares": "raises the job's share of CPU time against every other process on the host",
    "--blkio-weight": "raises the job's share of disk I/O against every other process on the host",
    "--blkio-weight-device": "raises the job's share of a host disk's I/O against every other process",
    "--memory-reservation": "reserves memory for the job that the kernel then reclaims from other processes",
}
"""Options refused whatever their value (a boolean: when true) unless listed in `allow_options`."""

_FLAGS = frozenset(name for spec in (*GLOBAL_OPTIONS, *RUN_OPTIONS) if not spec.takes_value for name in spec.names)
_DEVICES = frozenset({"--nv", "--nvccli", "--rocm", "--intel-hpu", "--device"})
_BIND_OPTIONS = frozenset({"--bind", "--mount", "--home", "--overlay", "--containlibs", "--workdir"})
_PATH_OPTIONS = frozenset({"--env-file", "--apply-cgroups", "--authfile", "--pem-path", "--tmpdir"})
_HOST_PATH_OPTIONS = _BIND_OPTIONS | _PATH_OPTIONS

_REMOTE_TRANSPORTS = frozenset({"docker", "library", "oras", "shub", "http", "https", "ipfs"})
_ARCHIVE_TRANSPORTS = frozenset({"docker-archive", "oci-archive", "oci"})
_REFUSED_TRANSPORTS = frozenset({"docker-daemon", "instance"})
_KNOWN_URIS = _REMOTE_TRANSPORTS | _ARCHIVE_TRANSPORTS | {"docker-daemon", "buildkit", "dockerfile"}
"""The schemes apptainer recognises without `//` (a `name:rest` word with another name is a file name)."""


def _refuse_value(rule: str, option: Option, reason: str) -> ArgvRefused:
    return ArgvRefused(rule, option.spelling, reason)


@dataclass(frozen=True)
class HostPath:
    """A host path an option names, and whether apptainer leaves it as it is."""

    path: str
    read_only_fix: str | None
    """None when apptainer only reads the path or mounts it read-only (a read-only root allows that);
    otherwise how the line could use it read-only, or why it cannot."""


def _is_bind_option(text: str) -> bool:
    return text in ("ro", "rw") or text.startswith(("image-src=", "id="))


def _bind_read_only_fix(parts: list[str], options: list[str]) -> str | None:
    # apptainer mounts a bind read-only when its options hold `ro`, even beside `rw`; hostpipe wants it alone.
    if "ro" in options and "rw" not in options:
        return None
    if len(parts) < 3:
        return "write it as src:dst:ro to bind it read-only"
    return "add :ro (without rw) to bind it read-only"


def bind_paths(option: Option, kind: str = "apptainer") -> tuple[HostPath, ...]:
    """The host paths one `-B/--bind` value binds: `src[:dst[:opts]]`, several joined by `,`.

    The value is first read as every program that may run a line of `kind` reads it (SingularityCE's
    `--bind` is a CSV list, apptainer's is not). apptainer's own reader treats backslashes, `^`, spaces,
    quotes and stray options in ways that are easy to misread, so only the plain form is read: no empty
    parts, no escapes, no quotes, and `ro`/`rw`/`image-src=`/`id=` after a comma only where they extend a
    preceding `src:dst:opts`, whose options they join.
    """
    (value,) = values(option, kind)
    if not value or any(ch in '\\^"' or ch.isspace() or not ch.isprintable() for ch in value):
        raise _refuse_value(
            "bad-bind",
            option,
            f"hostpipe reads only plain bind specifications (src[:dst[:opts]], comma separated, without "
            f"spaces, quotes, backslashes or '^'); {value!r} is not one",
        )
    specs: list[tuple[list[str], list[str]]] = []
    previous_parts = 0
    for piece in value.split(","):
        parts = piece.split(":")
        if "" in parts:
            problem = "has an empty part"
        elif len(parts) == 1 and _is_bind_option(piece):
            problem = "" if previous_parts == 3 else "is a bind option with no src:dst:opts before it"
            if not problem:
                specs[-1][1].append(piece)
                continue
        elif _is_bind_option(parts[0]):
            problem = "starts with what apptainer could read as a bind option"
        elif len(parts) > 3:
            problem = "has more than src:dst:opts"
        elif len(parts) == 3 and not _is_bind_option(parts[2]):
            problem = "has options other than ro, rw, image-src= and id="
        else:
            problem = ""
        if problem:
            raise _refuse_value("bad-bind", option, f"the bind specification {piece!r} {problem}")
        specs.append((parts, parts[2:]))
        previous_parts = len(parts)
    return tuple(HostPath(parts[0], _bind_read_only_fix(parts, options)) for parts, options in specs)


def mount_paths(option: Option) -> tuple[HostPath, ...]:
    """The host paths one `--mount` value binds: `type=bind,src=...,dst=...[,ro]` (docker's form).

    apptainer makes the bind read-only for any `ro` or `readonly` field, whatever its value; hostpipe counts
    it read-only only when every such field is bare or true, so `ro=false` is not mistaken either way.
    """
    value = option.value or ""
    if any(ch in '"\r\n' for ch in value):
        raise _refuse_value(
            "bad-mount",
            option,
            "hostpipe reads --mount without CSV quotes or line breaks; write one mount each",
        )
    sources: list[str] = []
    destinations = 0
    read_only: list[bool] = []
    for field in value.split(","):
        key, sep, val = field.partition("=")
        if key == "type" and val == "bind":
            continue
        if key in ("source", "src") and val:
            sources.append(val)
        elif key in ("destination", "dst", "target") and val:
            destinations += 1
        elif key in ("image-src", "id") and val:
            continue
        elif key in ("ro", "readonly"):
            read_only.append(not sep or parse_bool(val) is True)
        elif key != "nonested":
            raise _refuse_value(
                "bad-mount", option, f"{field!r} is not a --mount field apptainer accepts for a bind mount"
            )
    if not sources or not destinations:
        raise _refuse_value("bad-mount", option, "a --mount needs a source and a destination")
    fix = None if read_only and all(read_only) else "add ro (bare, or ro=true) to bind it read-only"
    return tuple(HostPath(source, fix) for source in sources)


def _comma_items(option: Option) -> tuple[str, ...]:
    """The items of a plain string that apptainer splits at commas itself (`--add-caps`)."""
    value = option.value or ""
    if any(ch in '"\r\n' for ch in value):
        raise _refuse_value(
            "bad-value",
            option,
            f"{option.name} takes a comma-separated list; hostpipe reads it without quotes or line breaks",
        )
    return tuple(value.split(","))


def home_source(option: Option) -> str:
    """The host folder `-H/--home src[:dst]` makes the container's home."""
    parts = (option.value or "").split(":")
    if len(parts) > 2 or "" in parts:
        raise _refuse_value("bad-home", option, "--home takes src or src:dst, both non-empty")
    return parts[0]


def overlay_paths(option: Option, kind: str = "apptainer") -> tuple[HostPath, ...]:
    """The host images or folders one `-o/--overlay` value layers over the container (`path[:ro|rw]`).

    An overlay without `:ro` is the container's writable layer.
    """
    paths: list[HostPath] = []
    for item in values(option, kind):
        path, colon, mode = item.partition(":")
        if not path or (colon and mode not in ("ro", "rw")):
            raise _refuse_value("bad-overlay", option, f"the overlay {item!r} is not path, path:ro or path:rw")
        paths.append(HostPath(path, None if mode == "ro" else "add :ro to use it as a read-only layer"))
    return tuple(paths)


def _path_list(option: Option, kind: str) -> tuple[str, ...]:
    items = values(option, kind)
    if "" in items:
        raise _refuse_value("bad-value", option, f"{option.name} holds an empty path")
    return items


_NEEDS_BIND_ROOT: dict[str, str] = {
    "--home": "apptainer mounts the home folder read-write",
    "--workdir": "apptainer writes the work folder (the container's /tmp and /var/tmp)",
    "--containlibs": "hostpipe does not count --containlibs as a read-only use",
    "--tmpdir": "apptainer writes its temporary files there",
}
"""Host-path options that are never read-only uses, and why."""


def _host_paths(option: Option, kind: str) -> tuple[HostPath, ...]:
    """The host paths an option names, by what its value means to apptainer, and how it uses them."""
    readers: dict[str, Callable[[Option, str], tuple[HostPath, ...]]] = {
        "--bind": bind_paths,
        "--mount": lambda option, _kind: mount_paths(option),
        "--overlay": overlay_paths,
    }
    reader = readers.get(option.name)
    if reader is not None:
        return reader(option, kind)
    fix = _NEEDS_BIND_ROOT.get(option.name)
    if option.name == "--home":
        return (HostPath(home_source(option), fix),)
    if option.name in ("--containlibs", "--env-file"):
        return tuple(HostPath(path, fix) for path in _path_list(option, kind))
    if not option.value:
        raise _refuse_value("bad-value", option, f"{option.name} needs a non-empty path")
    return (HostPath(option.value, fix),)


def _transport(image: str) -> tuple[str, str]:
    """Split an image the way apptainer does: (transport, reference), or ("", image) for a local path."""
    transport, colon, reference = image.partition(":")
    if colon and (reference.startswith("//") or transport in _KNOWN_URIS):
        return transport, reference
    return "", image


def _archive_paths(reference: str) -> tuple[str, ...]:
    # The archive path ends at the first ':' (a tag may follow). Whether `//` after the scheme is dropped
    # depends on the layer reading it, so both readings are checked.
    path = reference.partition(":")[0]
    if path.startswith("//"):
        return (path, path[2:])
    return (path,)


def _check_image_syntax(image: str, kind: str) -> None:
    if not image:
        raise ArgvRefused("bad-image", image, "the image is an empty word")
    transport, reference = _transport(image)
    if not transport:
        return
    if transport in _REMOTE_TRANSPORTS and not reference.startswith("//"):
        raise ArgvRefused("bad-image", image, f"write the image as {transport}://{reference}")
    if transport in _ARCHIVE_TRANSPORTS and not _archive_paths(reference)[-1]:
        raise ArgvRefused("bad-image", image, f"the {transport} image names no archive")
    if transport not in _REMOTE_TRANSPORTS | _ARCHIVE_TRANSPORTS | _REFUSED_TRANSPORTS:
        raise ArgvRefused("bad-image", image, f"{kind} does not run images from {transport}: sources")


_GLOBAL_FLAGS = tuple(name for spec in GLOBAL_OPTIONS if not spec.takes_value for name in spec.names)
_GLOBAL_LONG_FLAGS = frozenset(name[2:] for name in _GLOBAL_FLAGS if name.startswith("--"))
_GLOBAL_SHORT_FLAGS = frozenset(name[1] for name in _GLOBAL_FLAGS if not name.startswith("--"))


def _cobra_subcommand_at(words: tuple[str, ...]) -> int:
    """Where cobra's Traverse looks for the subcommand among the root command's words."""
    value_next = False
    for at, word in enumerate(words):
        if word.startswith("--") and "=" not in word:
            value_next = word[2:] not in _GLOBAL_LONG_FLAGS
        elif word.startswith("-") and "=" not in word and len(word) == 2 and word[1] not in _GLOBAL_SHORT_FLAGS:
            value_next = True
        elif value_next:
            value_next = False
        elif not ((len(word) >= 3 and word.startswith("--")) or (len(word) >= 2 and word[0] == "-" != word[1])):
            return at
    return len(words)


def _parse(words: tuple[str, ...], kind: str) -> Invocation:
    global_options, rest = read_flags(words, GLOBAL_OPTIONS, interspersed=False, command=kind)
    at = len(words) - len(rest)
    if not rest:
        raise ArgvRefused("missing-subcommand", kind, f"{kind} needs a subcommand ({', '.join(SUBCOMMANDS)})")
    if _cobra_subcommand_at(words) != at:
        raise ArgvRefused(
            "ambiguous-spelling",
            shlex.join(words[: at + 1]),
            f"{kind} would take a different word than pflag does as the subcommand; write each global "
            "option as its own word, with its value after '=' (--config=FILE), and no '--' before the "
            "subcommand",
        )
    subcommand = rest[0]
    if subcommand not in SUBCOMMANDS:
        raise ArgvRefused(
            "unknown-subcommand",
            subcommand,
            f"hostpipe reads only {kind} {' and '.join(SUBCOMMANDS)}; {subcommand!r} is not one of them",
        )
    table = RUN_OPTIONS if subcommand == "run" else EXEC_OPTIONS
    options, positionals = read_flags(rest[1:], table, interspersed=False, command=f"{kind} {subcommand}")
    if not positionals:
        raise ArgvRefused("missing-image", subcommand, f"{kind} {subcommand} needs an image")
    if subcommand == "exec" and len(positionals) < 2:
        raise ArgvRefused("missing-command", positionals[0], f"{kind} exec needs a command after the image")
    image = positionals[0]
    _check_image_syntax(image, kind)
    for option in options:
        if option.name in _HOST_PATH_OPTIONS:
            _host_paths(option, kind)
    return Invocation(
        kind=kind,
        global_options=global_options,
        subcommand=subcommand,
        options=options,
        image=image,
        args=positionals[1:],
    )


def parse(words: tuple[str, ...]) -> Invocation:
    """Read apptainer's argv[1:]: global options, `run` or `exec`, their options, the image, the rest."""
    return _parse(words, "apptainer")


def parse_singularity(words: tuple[str, ...]) -> Invocation:
    """Read singularity's argv[1:], which is apptainer's command line under its older name."""
    return _parse(words, "singularity")


@dataclass(frozen=True)
class _Context:
    kind: str
    rules: ArgumentRules
    host: Host
    roots: HostRoots

    def relaxed(self, option: Option) -> bool:
        return option.name in self.rules.allow_options

    def refuse(self, rule: str, option: Option, what: str, relax: str) -> ArgvRefused:
        return ArgvRefused(rule, option.spelling, f"{option.name} {what}; {relax}")

    def allow_with(self, *settings: str) -> str:
        """How a site relaxes the refusal, as the TOML lines of the runtime's table."""
        return f"a site can allow it with {' or '.join(settings)} in [runtimes.{self.kind}]"

    def by_name(self, option: Option) -> str:
        return self.allow_with(_allow_options(option))


def _allow_options(option: Option) -> str:
    return f'allow_options = ["{option.name}"]'


def _capability(name: str) -> str:
    name = name.strip().upper()
    return name if name.startswith("CAP_") or name == "ALL" else f"CAP_{name}"


def _check_add_caps(option: Option, ctx: _Context) -> None:
    allowed = {_capability(cap) for cap in ctx.rules.allow_capabilities}
    for cap in _comma_items(option):
        if cap.strip() and _capability(cap) not in allowed:
            raise ctx.refuse(
                "add-caps",
                option,
                f"adds the capability {_capability(cap)}",
                ctx.allow_with(f'allow_capabilities = ["{_capability(cap)}"]', _allow_options(option)),
            )


def _check_security(option: Option, ctx: _Context) -> None:
    for item in values(option, ctx.kind):
        kind = item.partition(":")[0]
        if kind in ("seccomp", "apparmor", "selinux"):
            if not ctx.rules.allow_unconfined:
                raise ctx.refuse(
                    "security",
                    option,
                    f"replaces the container's {kind} profile",
                    ctx.allow_with("allow_unconfined = true", _allow_options(option)),
                )
        elif item:
            raise ctx.refuse("security", option, f"sets {item!r}, which needs root", ctx.by_name(option))


def _check_network_args(option: Option, ctx: _Context) -> None:
    for item in values(option, ctx.kind):
        if item.startswith("portmap="):
            if not ctx.rules.allow_ports:
                raise ctx.refuse(
                    "ports",
                    option,
                    f"publishes container ports on the host ({item})",
                    ctx.allow_with("allow_ports = true", _allow_options(option)),
                )
        elif item:
            raise ctx.refuse("network-args", option, f"passes {item!r} to the host's CNI plugins", ctx.by_name(option))


def _check_host_paths(option: Option, ctx: _Context) -> None:
    bind = option.name in _BIND_OPTIONS
    rule = "bind-outside-roots" if bind else "path-outside-roots"
    verb = "makes the host path" if bind else "has apptainer use the host path"
    for host_path in _host_paths(option, ctx.kind):
        path, fix = host_path.path, host_path.read_only_fix
        access = ctx.roots.access(path, ctx.host)
        if access is None:
            widen = "bind_roots" if fix is not None else "bind_roots (or read_only_roots, to read it only)"
            raise ctx.refuse(
                rule,
                option,
                f"{verb} {path!r}{' visible in the container' if bind else ''}, "
                f"which is not under any root ({describe_roots(ctx.rules)})",
                f"a site can add its folder to {widen} in [runtimes.{ctx.kind}]",
            )
        if access == "read-write" or fix is None:
            continue
        if bind:
            raise read_write_refused(option.spelling, f"{option.name} {verb}", path, ctx.rules, fix)
        raise ctx.refuse(
            rule,
            option,
            f"{verb} {path!r}, which lies under a read-only root, not a bind root ({describe_roots(ctx.rules)}), "
            f"and {fix}",
            f"a site can add its folder to bind_roots in [runtimes.{ctx.kind}]",
        )


def _check_option(option: Option, ctx: _Context) -> None:
    if option.name in _HOST_PATH_OPTIONS:
        _check_host_paths(option, ctx)
        return
    if (option.name in _FLAGS and option.value == "false") or ctx.relaxed(option):
        return
    if option.name in _NAMED:
        raise ctx.refuse(option.name[2:], option, _NAMED[option.name], ctx.by_name(option))
    if option.name in _DEVICES and not ctx.rules.allow_devices:
        raise ctx.refuse(
            "devices",
            option,
            "gives the container host devices",
            ctx.allow_with("allow_devices = true", _allow_options(option)),
        )
    if option.name == "--netns-path" and not ctx.rules.allow_host_namespaces:
        raise ctx.refuse(
            "netns-path",
            option,
            "joins an existing network namespace on the host",
            ctx.allow_with("allow_host_namespaces = true", _allow_options(option)),
        )
    if option.name == "--add-caps":
        _check_add_caps(option, ctx)
    elif option.name == "--security":
        _check_security(option, ctx)
    elif option.name == "--network-args":
        _check_network_args(option, ctx)


def _check_image(invocation: Invocation, ctx: _Context) -> None:
    image = invocation.image or ""
    transport, reference = _transport(image)
    if transport in _REFUSED_TRANSPORTS:
        what = {
            "docker-daemon": "reads the image from the host's Docker engine",
            "instance": "joins a running instance instead of starting a container",
        }[transport]
        raise ArgvRefused(
            "image-transport",
            image,
            f"{transport}: {what}; use a registry image, or an image file or archive under a bind root",
        )
    if transport in _REMOTE_TRANSPORTS:
        return
    paths = _archive_paths(reference) if transport else (image,)
    writable = any(option.name == "--writable" and option.value == "true" for option in invocation.options)
    for path in paths:
        access = ctx.roots.access(path, ctx.host)
        if access is None:
            raise ArgvRefused(
                "image-outside-roots",
                image,
                f"the local image {path!r} is not under any root ({describe_roots(ctx.rules)}; a relative "
                f"path is relative to the daemon user's HOME); a site can add its folder to bind_roots or "
                f"read_only_roots in [runtimes.{ctx.kind}]",
            )
        if access == "read-only" and writable:
            doing = "--writable writes into the local image"
            raise read_write_refused(image, doing, path, ctx.rules, "drop --writable")


def check(invocation: Invocation, rules: ArgumentRules, host: Host) -> None:
    """Refuse what the module docstring lists; return when every option and the image are allowed."""
    ctx = _Context(invocation.kind, rules, host, host_roots(rules, host))
    for option in invocation.all_options():
        _check_option(option, ctx)
    _check_image(invocation, ctx)


GRAMMAR = Grammar(kind="apptainer", parse=parse, check=check, subcommands=SUBCOMMANDS)
SINGULARITY = Grammar(kind="singularity", parse=parse_singularity, check=check, subcommands=SUBCOMMANDS)


HOME_BINDS = ("none", "read-only", "read-write")
"""What a runtime's `home_bind` may say: no home folder in the container, HOME read-only, or apptainer's own
read-write home bind."""

_PLAIN_PATH = re.compile(r"/[^,:\s\\^\"]*")


def job_words(invocation: Invocation, home_bind: str, home: str) -> tuple[str, ...]:
    """The words hostpipe adds right after the subcommand of an allowed line (see the module docstring).

    `home` is the daemon user's HOME, the jobs' working folder. Raises ArgvRefused when `home_bind` is
    "read-only" and HOME cannot be written as a bind specification.
    """
    if home_bind == "read-write" or any(option.name == "--home" for option in invocation.options):
        return ("--no-mount=cwd",)
    if home_bind != "read-only":
        return ("--no-mount=home,cwd",)
    if not _PLAIN_PATH.fullmatch(home) or not home.isprintable():
        raise ArgvRefused(
            "home-bind",
            home,
            f'home_bind = "read-only" binds HOME with --bind=HOME:HOME:ro, and {home!r} cannot be written '
            "as a bind specification (an absolute path without commas, colons, spaces, quotes, backslashes "
            "or '^'); give the daemon another HOME, or set home_bind to \"none\"",
        )
    return ("--no-mount=home,cwd", f"--bind={home}:{home}:ro")


def with_job_words(argv: tuple[str, ...], words: tuple[str, ...]) -> tuple[str, ...]:
    """`argv` (program, global options, subcommand, ...) with `words` right after the subcommand."""
    _, rest = read_flags(argv[1:], GLOBAL_OPTIONS, interspersed=False)
    at = len(argv) - len(rest) + 1
    return (*argv[:at], *words, *argv[at:])
