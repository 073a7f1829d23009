"""The argument rules docker and podman share, modelled on the Kubernetes Pod Security Standards "baseline".

Each rule judges one option occurrence. A runtime module maps every option it can read to one of these rules
(or to `harmless`), so an option nobody classified can never slip through. Every occurrence is judged, even
where the runtime would let a later one override it: `--privileged --privileged=false` is refused.

A refusal names the rule, the option exactly as written, why it matters, and the knob a site's policy can
turn to allow it. Rules that refuse an option by its name alone give way to `allow_options`; rules that judge
a value give way to their own knob (`allow_host_network`, `bind_roots`, ...). The engine socket is never
allowed: a pod that reaches it controls every container on the host.

Host paths follow `roots`: a path counts only when both the kernel's and Go's reading of it land under a
`bind_roots` folder, and relative paths are relative to the job's working directory (the daemon user's
HOME). A root admits read-only and read-write binds alike; `ro` changes what the container may do, not
which host folders a pod may name.
"""

from __future__ import annotations

import contextlib
import fnmatch
import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from hostpipe.core.runtimes.base import ArgumentRules, ArgvRefused, Host, Option
from hostpipe.core.runtimes.pflag import parse_bool
from hostpipe.core.runtimes.roots import describe_roots, host_path_under_roots, resolved_roots

BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
"""Capabilities PSS baseline lets a container add (the container engines' defaults)."""

SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
"""Sysctls PSS baseline allows: namespaced, and unable to touch the host or other containers."""

ENGINE_SOCKETS = (
    "/run/docker.sock",
    "/run/podman/podman.sock",
    "/run/containerd/containerd.sock",
    "/run/crio/crio.sock",
    "/run/user/*/docker.sock",
    "/run/user/*/podman/podman.sock",
    "/var/run/docker.sock",
    "/var/run/podman/podman.sock",
    "/var/run/containerd/containerd.sock",
    "/var/run/crio/crio.sock",
    "/var/run/user/*/docker.sock",
    "/var/run/user/*/podman/podman.sock",
)
"""Where container engines listen. Binding one of these, or a folder holding one, hands over the engine."""

ENGINE_SOCKET_NAMES = frozenset(
    {"docker.sock", "podman.sock", "containerd.sock", "crio.sock", "buildkitd.sock", "cri-dockerd.sock"}
)

_CAPABILITY = re.compile(r"[A-Z0-9_]+")
_VOLUME_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass
class Judge:
    """What one check needs: the site's rules, the host, and the runtime's name for messages."""

    rules: ArgumentRules
    host: Host
    kind: str
    _roots: tuple[str, ...] | None = field(default=None, repr=False)

    def roots(self) -> tuple[str, ...]:
        if self._roots is None:
            self._roots = resolved_roots(self.rules, self.host)
        return self._roots

    def named_allowed(self, option: Option) -> bool:
        return option.name in self.rules.allow_options


Rule = Callable[[Option, Judge], None]
"""Judges one option occurrence: returns when it is allowed, raises ArgvRefused otherwise."""


def _allow_hint(name: str) -> str:
    return f'a site may allow it with allow_options: ["{name}"]'


def harmless(option: Option, judge: Judge) -> None:
    """Options that change only what happens inside the container (names, limits, environment, ...)."""


def refused(rule: str, why: str) -> Rule:
    """A rule refusing the option by its name, whatever its value, unless `allow_options` lists it."""

    def check(option: Option, judge: Judge) -> None:
        if not judge.named_allowed(option):
            raise ArgvRefused(rule, option.spelling, f"{option.name} {why}; {_allow_hint(option.name)}")

    return check


def refused_when(rule: str, why: str, *, allowed: Callable[[str | None], bool]) -> Rule:
    """A rule refusing the option, unless `allowed(value)` or `allow_options` lists it."""

    def check(option: Option, judge: Judge) -> None:
        if not allowed(option.value) and not judge.named_allowed(option):
            raise ArgvRefused(rule, option.spelling, f"{option.name} {why}; {_allow_hint(option.name)}")

    return check


def refused_when_true(rule: str, why: str) -> Rule:
    """A boolean option refused when set (`--x`, `--x=true`), allowed when `--x=false`."""
    return refused_when(rule, why, allowed=lambda value: value == "false")


def daemon_option(option: Option, judge: Judge) -> None:
    """Options that point the CLI at another engine, store, runtime or configuration than the site's."""
    if not judge.named_allowed(option):
        raise ArgvRefused(
            "daemon-option",
            option.spelling,
            f"{option.name} points {judge.kind} at an engine, store or configuration other than the one "
            f"the site set up for hostpipe; {_allow_hint(option.name)}",
        )


def privileged(option: Option, judge: Judge) -> None:
    if option.value != "false" and not judge.named_allowed(option):
        raise ArgvRefused(
            "privileged",
            option.spelling,
            f"{option.name} gives the container every capability and every host device (PSS baseline "
            f"forbids it); {_allow_hint(option.name)}",
        )


def _capability(token: str) -> str:
    cap = token.strip().upper()
    return cap[4:] if cap.startswith("CAP_") else cap


def capabilities(option: Option, judge: Judge) -> None:
    """--cap-add: only PSS baseline capabilities, plus those the site lists in allow_capabilities (ALL: any)."""
    allowed = {_capability(c) for c in judge.rules.allow_capabilities}
    for token in (option.value or "").split(","):
        cap = _capability(token)
        if not _CAPABILITY.fullmatch(cap):
            raise ArgvRefused(
                "capabilities", option.spelling, f"{option.name} names {token!r}, which is not a capability"
            )
        if cap in allowed or "ALL" in allowed or (cap in BASELINE_CAPABILITIES and cap != "ALL"):
            continue
        what = "every capability" if cap == "ALL" else f"CAP_{cap}"
        raise ArgvRefused(
            "capabilities",
            option.spelling,
            f"{option.name} adds {what}, beyond the PSS baseline set; a site may allow it with "
            f'allow_capabilities: ["{cap}"]',
        )


def namespace(*, safe: Iterable[str], safe_prefixes: Iterable[str] = (), what: str) -> Rule:
    """--pid/--ipc/--uts/--userns/--cgroupns: only the values that keep the container's own namespace."""
    safe_values = frozenset(safe)
    prefixes = tuple(safe_prefixes)

    def check(option: Option, judge: Judge) -> None:
        value = option.value or ""
        if value in safe_values or value.startswith(prefixes) or judge.rules.allow_host_namespaces:
            return
        raise ArgvRefused(
            "host-namespace",
            option.spelling,
            f"{option.name}={value} shares the {what} namespace of the host or of another container (PSS "
            "baseline forbids it); a site may allow it with allow_host_namespaces: true",
        )

    return check


def _refuse_network(option: Option, why: str) -> ArgvRefused:
    return ArgvRefused(
        "host-network",
        option.spelling,
        f"{option.name} {why}; a site may allow it with allow_host_network: true",
    )


def _docker_network_name(option: Option) -> str:
    value = option.value or ""
    if "=" not in value:
        return value
    # docker reads `name=...,alias=...` as CSV; anything a plain split might read differently is refused.
    if any(c in value for c in '"\n\r'):
        raise _refuse_network(option, "is written in a form hostpipe cannot read without doubt")
    names = [item[5:] for item in value.split(",") if item.startswith("name=")]
    if len(names) != 1:
        raise _refuse_network(option, "does not name exactly one network")
    return names[0]


def docker_network(option: Option, judge: Judge) -> None:
    """--network for docker: the default bridge, none, or a user-defined network."""
    if judge.rules.allow_host_network:
        return
    name = _docker_network_name(option)
    if name in ("", "bridge", "default", "none"):
        return
    if name == "host" or name.startswith("container:"):
        raise _refuse_network(option, f"puts the container in the network namespace of {name}")
    if not _VOLUME_NAME.fullmatch(name):
        raise _refuse_network(option, f"names {name!r}, which is neither a network mode nor a network name")
    if re.fullmatch(r"[0-9a-f]+", name):
        # dockerd finds a network by name, then by ID prefix: a hex word may be the host network's ID.
        raise _refuse_network(option, f"names {name!r}, which dockerd may read as the ID of the host network")


_PODMAN_NETWORK_MODES = frozenset(
    {"bridge", "slirp4netns", "pod", "none", "default", "private", "ns", "container", "host"}
)


def podman_network(option: Option, judge: Judge) -> None:
    """--network for podman: bridge, slirp4netns without host loopback, none, private, or named networks."""
    if judge.rules.allow_host_network:
        return
    value = option.value or ""
    mode, _, options = value.partition(":")
    if value in ("", "default", "private", "none", "bridge", "slirp4netns") or mode == "bridge":
        return
    if mode == "slirp4netns":
        for item in options.split(","):
            key, _, setting = item.partition("=")
            if key.strip() == "allow_host_loopback" and setting.strip() != "false":
                raise _refuse_network(option, "lets the container reach the host's loopback interface")
        return
    if mode in ("host", "ns", "container", "pod"):
        raise _refuse_network(option, f"puts the container in the network namespace of {value}")
    names = mode.split(",") if not options else [mode]
    for name in names:
        if name in _PODMAN_NETWORK_MODES or not _VOLUME_NAME.fullmatch(name):
            raise _refuse_network(option, f"names {name!r}, which is not a network hostpipe can tell apart")


def devices(option: Option, judge: Judge) -> None:
    if judge.rules.allow_devices or judge.named_allowed(option):
        return
    raise ArgvRefused(
        "devices",
        option.spelling,
        f"{option.name} gives the container host devices (PSS baseline forbids it); a site may allow it "
        "with allow_devices: true",
    )


def _refuse_ports(option: Option) -> ArgvRefused:
    return ArgvRefused(
        "ports",
        option.spelling,
        f"{option.name} opens ports on the host; a site may allow it with allow_ports: true",
    )


def ports(option: Option, judge: Judge) -> None:
    """-p/--publish: any published port."""
    if not (judge.rules.allow_ports or judge.named_allowed(option)):
        raise _refuse_ports(option)


def publish_all(option: Option, judge: Judge) -> None:
    """-P/--publish-all, unless written as false."""
    if option.value != "false" and not (judge.rules.allow_ports or judge.named_allowed(option)):
        raise _refuse_ports(option)


def _unconfined(option: Option, what: str) -> ArgvRefused:
    return ArgvRefused(
        "unconfined",
        option.spelling,
        f"{option.name} {what} (PSS baseline keeps the runtime's default profiles); a site may allow it "
        "with allow_unconfined: true",
    )


def security_opt(option: Option, judge: Judge) -> None:
    """--security-opt: tightening is allowed; any other profile is refused, custom ones must be readable."""
    value = option.value or ""
    key, sep, setting = value.partition("=")
    if not sep and key != "no-new-privileges":
        key, sep, setting = value.partition(":")
    if key == "no-new-privileges":
        if not sep or parse_bool(setting) is True:
            return
        if judge.rules.allow_unconfined:
            return
        raise _unconfined(option, "lets processes gain privileges through setuid files")
    if key in ("mask", "proc-opts") and sep:
        return
    if key == "seccomp" and setting == "builtin":
        return
    if key == "writable-cgroups" and parse_bool(setting) is False:
        return
    if not judge.rules.allow_unconfined:
        raise _unconfined(option, f"sets {key or value!r} away from the runtime's default confinement")
    if key == "seccomp" and setting not in ("unconfined", "builtin"):
        # The CLI itself reads a custom profile, so it is a host file like --env-file.
        _host_path(option, judge, setting, "reads the seccomp profile")


def seccomp_policy(option: Option, judge: Judge) -> None:
    if option.value == "default" or judge.rules.allow_unconfined:
        return
    raise _unconfined(option, "takes the seccomp profile from the image instead of the runtime's default")


def sysctl(*, comma_separated: bool) -> Rule:
    """--sysctl: only the sysctls PSS baseline lists as safe."""

    def check(option: Option, judge: Judge) -> None:
        if judge.named_allowed(option):
            return
        value = option.value or ""
        for item in value.split(",") if comma_separated else [value]:
            name = item.partition("=")[0].strip().replace("/", ".")
            if name not in SAFE_SYSCTLS:
                raise ArgvRefused(
                    "sysctl",
                    option.spelling,
                    f"{option.name} sets {name!r}, which is not a sysctl PSS baseline allows; "
                    f"{_allow_hint(option.name)}",
                )

    return check


def volumes_from(option: Option, judge: Judge) -> None:
    if not judge.named_allowed(option):
        raise ArgvRefused(
            "volumes-from",
            option.spelling,
            f"{option.name} mounts every volume and bind of another container, including host folders "
            f"outside the bind roots; {_allow_hint(option.name)}",
        )


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p]


def _socket_patterns(judge: Judge) -> list[str]:
    addresses = [judge.rules.env.get(name, "") for name in ("DOCKER_HOST", "CONTAINER_HOST")]
    patterns = list(ENGINE_SOCKETS) + [a[len("unix://") :] for a in addresses if a.startswith("unix://")]
    for pattern in list(patterns):
        if "*" not in pattern:
            # /var/run is usually a link to /run: the socket's resolved path is the one a bind would reach.
            with contextlib.suppress(OSError, ValueError):
                patterns.append(judge.host.realpath(pattern))
    return patterns


def _holds_engine_socket(resolved: str, judge: Judge) -> bool:
    """True when `resolved` is an engine socket or a folder on the way to one."""
    mine = _parts(resolved)
    if mine and mine[-1] in ENGINE_SOCKET_NAMES:
        return True
    for pattern in _socket_patterns(judge):
        theirs = _parts(pattern)
        if len(mine) <= len(theirs) and all(fnmatch.fnmatchcase(m, t) for m, t in zip(mine, theirs, strict=False)):
            return True
    return False


def _host_path(option: Option, judge: Judge, path: str, what: str, *, rule: str = "host-file") -> None:
    """Refuses unless `path` lies under the bind roots and neither is nor holds an engine socket."""
    if not path or "\0" in path:
        raise ArgvRefused(rule, option.spelling, f"{option.name} {what} from an empty or unreadable path")
    absolute = path if path.startswith("/") else judge.host.home.rstrip("/") + "/" + path
    absolute = "/" + absolute.lstrip("/")
    # As in `roots`: the kernel's reading and Go's clean-first reading must both stay clear of a socket.
    for candidate in (absolute, posixpath.normpath(absolute)):
        try:
            resolved = judge.host.realpath(candidate)
        except (OSError, ValueError) as error:
            raise ArgvRefused(
                rule, option.spelling, f"{option.name} {what} {path}, which the host cannot resolve"
            ) from error
        if _holds_engine_socket(resolved, judge):
            raise ArgvRefused(
                "engine-socket",
                option.spelling,
                f"{option.name} {what} {path}, which is or holds a container engine's socket; hostpipe "
                "never lets a pod reach the engine",
            )
    if not host_path_under_roots(path, judge.roots(), judge.host):
        raise ArgvRefused(
            rule,
            option.spelling,
            f"{option.name} {what} {path}, which is not under the bind roots "
            f"({describe_roots(judge.rules)}); a site may add its folder to bind_roots",
        )


def host_file(what: str) -> Rule:
    """Options naming a host file the CLI reads or writes (--env-file, --cidfile, ...): under bind roots."""

    def check(option: Option, judge: Judge) -> None:
        if judge.named_allowed(option):
            return
        _host_path(option, judge, option.value or "", what)

    return check


def log_opt(option: Option, judge: Judge) -> None:
    """--log-opt: a value naming a host path (podman's `path=`, TLS files) must lie under the bind roots."""
    key, _, setting = (option.value or "").partition("=")
    names_path = key.strip() == "path" or setting.startswith(("/", ".", "~"))
    if names_path and not judge.named_allowed(option):
        _host_path(option, judge, setting, f"has the engine use the host file for {key}:")


def bind_source(option: Option, judge: Judge, source: str) -> None:
    """A bind's host path: under the bind roots and no engine socket; `~` is not expanded by the runtime."""
    if source.startswith("~"):
        raise ArgvRefused(
            "bind-outside-roots",
            option.spelling,
            f"{option.name} names the host path {source!r}; no shell expands `~` here, write the full path",
        )
    _host_path(option, judge, source, "binds the host path", rule="bind-outside-roots")


def mount_syntax(option: Option, why: str) -> ArgvRefused:
    return ArgvRefused("mount-syntax", option.spelling, f"{option.name} {why}; hostpipe refuses mounts it cannot read")


def propagation(option: Option, judge: Judge, mode: str) -> None:
    if mode in ("shared", "rshared") and not judge.rules.allow_host_namespaces:
        raise ArgvRefused(
            "host-namespace",
            option.spelling,
            f"{option.name} with {mode} propagation shares mount events with the host's mount namespace; "
            "a site may allow it with allow_host_namespaces: true",
        )


_VOLUME_FLAGS = frozenset(
    {
        "ro", "rw", "z", "Z", "U", "O", "nocopy", "copy", "consistent", "cached", "delegated",
        "shared", "rshared", "slave", "rslave", "private", "rprivate", "unbindable", "runbindable",
        "bind", "rbind", "dev", "nodev", "exec", "noexec", "suid", "nosuid", "noswap", "idmap",
    }
)  # fmt: skip


def _is_path(source: str) -> bool:
    return source.startswith(("/", ".", "~"))


def volume(option: Option, judge: Judge) -> None:
    """-v/--volume `[SOURCE:]TARGET[:OPTIONS]`: a path source is a bind and must lie under the bind roots."""
    value = option.value or ""
    if "\0" in value:
        raise mount_syntax(option, "holds a NUL byte")
    parts = value.split(":")
    if len(parts) > 3 or "" in parts:
        raise mount_syntax(option, f"is not SOURCE:TARGET[:OPTIONS] ({value!r})")
    if len(parts) == 1:
        return  # an anonymous volume at a path in the container
    for flag in parts[2].split(",") if len(parts) == 3 else ():
        if flag not in _VOLUME_FLAGS and not flag.startswith("idmap="):
            raise mount_syntax(option, f"has the option {flag!r}, which hostpipe does not know")
        propagation(option, judge, flag)
    source = parts[0]
    if _is_path(source):
        bind_source(option, judge, source)
    elif not _VOLUME_NAME.fullmatch(source):
        raise mount_syntax(option, f"names {source!r}, which is neither a path nor a volume name")


_MOUNT_KEYS = frozenset(
    {
        "type", "source", "src", "target", "dst", "destination", "readonly", "ro", "rw", "readwrite",
        "consistency", "bind-propagation", "bind-nonrecursive", "bind-recursive", "volume-nocopy",
        "volume-subpath", "volume-label", "tmpfs-size", "tmpfs-mode", "tmpcopyup", "notmpcopyup", "exec",
        "noexec", "dev", "nodev", "suid", "nosuid", "relabel", "u", "chown", "z", "idmap", "nocopy", "copy",
        "uid", "gid", "mode", "ptxmode", "newinstance", "max", "shared", "rshared", "private", "rprivate",
        "slave", "rslave", "unbindable", "runbindable",
    }
)  # fmt: skip
_PROPAGATIONS = frozenset({"shared", "rshared", "private", "rprivate", "slave", "rslave", "unbindable", "runbindable"})


def mount(*, types: Iterable[str]) -> Rule:
    """--mount `type=...,source=...,...`: bind sources under the bind roots, named volumes by name only."""
    known_types = frozenset(types)

    def check(option: Option, judge: Judge) -> None:
        value = option.value or ""
        # Both engines read the value as CSV; quotes and line breaks could make them see other fields.
        if any(c in value for c in '"\n\r\0'):
            raise mount_syntax(option, "holds quotes or line breaks")
        kinds: list[str] = []
        sources: list[str] = []
        for item in value.split(","):
            key, sep, setting = item.partition("=")
            key = key.lower()
            if key not in _MOUNT_KEYS:
                raise mount_syntax(option, f"has the field {item!r}, which hostpipe does not know")
            if key == "type":
                kinds.append(setting.lower())
            elif key in ("source", "src"):
                sources.append(setting)
            elif key == "bind-propagation":
                propagation(option, judge, setting)
            elif key in _PROPAGATIONS and not sep:
                propagation(option, judge, key)
        if len(kinds) > 1:
            raise mount_syntax(option, "gives the type more than once")
        kind = kinds[0] if kinds else "volume"
        if kind not in known_types:
            raise mount_syntax(option, f"has the type {kind!r}, which hostpipe does not allow")
        if kind == "bind" and not sources:
            raise mount_syntax(option, "binds no source")
        for source in sources:
            if kind == "bind" or _is_path(source):
                bind_source(option, judge, source)
            elif kind == "volume" and not _VOLUME_NAME.fullmatch(source):
                raise mount_syntax(option, f"names the volume {source!r}, which is not a volume name")
            elif kind not in ("volume", "image"):
                raise mount_syntax(option, f"gives a source to a {kind} mount")

    return check


def rootfs_image(option: Option, judge: Judge, image: str) -> None:
    """podman --rootfs: the image word is a host folder, used read-write (or as an overlay with `:O`)."""
    path = image[: -len(":O")] if image.endswith(":O") else image
    bind_source(option, judge, path)
