"""The argument rules docker and podman share, modelled on the Kubernetes Pod Security Standards "baseline".

Each rule judges one element of one option occurrence: the value as the runtime receives it (podman's list
options are cut into their CSV elements first, see `oci`). A runtime module maps every option it can read to
one of these rules (or to `harmless`), so an option nobody classified can never slip through. Every
occurrence is judged, even where the runtime would let a later one override it: `--privileged
--privileged=false` is refused. Where the CLI or the engine normalises a value (docker lower-cases the
fields of `--network` and `--mount`, podman the keys of `--log-opt`), the rule judges the normalised value,
and compares mode words (host, shared, ...) in any case.

A refusal names the rule, the option exactly as written, why it matters, and the knob a site's policy can
turn to allow it. Rules that refuse an option by its name alone give way to `allow_options`; rules that judge
a value give way to their own knob (`allow_host_network`, `bind_roots`, ...). The engine socket is never
allowed: a pod that reaches it controls every container on the host.

Host paths follow `roots`: a path counts only when both the kernel's and Go's reading of it land under a
root, and relative paths are relative to the job's working directory (the daemon user's HOME). Under a
`bind_roots` folder anything goes. Under a `read_only_roots` folder only what leaves the host files as they
are: a bind the engine mounts read-only (`-v SRC:DST:ro`; `--mount` with exactly one of `ro`/`readonly`
set true, or podman's `rw=false`), without relabelling or re-owning the host files (`z`, `Z`, `U`,
`relabel=`, `chown`) and, for docker's `--mount`, without `bind-recursive=writable`; and the files the
engine only reads (--env-file, --label-file, --authfile, a seccomp profile, and podman's --init-path, which
it binds read-only). Files the CLI or engine writes (--pidfile, --conmon-pidfile, profiles, a --log-opt
path), podman's overlay binds (`:O`) and a `--rootfs` folder need a bind root: podman writes its
mount points and /etc files into a --rootfs folder, and an overlay's copy-on-write is the engine's promise,
not something the argv states.
"""

from __future__ import annotations

import contextlib
import fnmatch
import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from hostpipe.core.runtimes.base import ArgumentRules, ArgvRefused, Host, Option
from hostpipe.core.runtimes.govalues import csv_fields, kernel_size
from hostpipe.core.runtimes.oci_limits import tmpfs_mount_size, tmpfs_size
from hostpipe.core.runtimes.pflag import parse_bool
from hostpipe.core.runtimes.roots import HostRoots, describe_roots, host_roots, read_write_refused

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
    _roots: HostRoots | None = field(default=None, repr=False)

    def roots(self) -> HostRoots:
        if self._roots is None:
            self._roots = host_roots(self.rules, self.host)
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
    """--cap-add: only PSS baseline capabilities, plus those the site lists in allow_capabilities (ALL: any).

    One element names one capability: docker passes `A,B` on as one (invalid) name, podman's list type has
    already cut it in two.
    """
    allowed = {_capability(c) for c in judge.rules.allow_capabilities}
    token = option.value or ""
    cap = _capability(token)
    if not _CAPABILITY.fullmatch(cap):
        raise ArgvRefused("capabilities", option.spelling, f"{option.name} names {token!r}, which is not a capability")
    if cap in allowed or "ALL" in allowed or (cap in BASELINE_CAPABILITIES and cap != "ALL"):
        return
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
            "baseline forbids it); a site may allow it with allow_host_namespaces = true",
        )

    return check


def _refuse_network(option: Option, why: str) -> ArgvRefused:
    return ArgvRefused(
        "host-network",
        option.spelling,
        f"{option.name} {why}; a site may allow it with allow_host_network = true",
    )


_DOCKER_LONG_SYNTAX = re.compile(r"\w+=\w+(,\w+=\w+)*", re.ASCII)
_DOCKER_NETWORK_KEYS = frozenset({"name", "alias", "ip", "ip6", "mac-address", "link-local-ip", "gw-priority"})
_NETWORK_MODES = frozenset(
    {"bridge", "default", "none", "host", "container", "private", "slirp4netns", "pasta", "pod", "ns"}
)
"""Words docker or podman (any version) read as a network mode rather than a network's name."""


def _docker_network_target(option: Option, judge: Judge) -> str:
    """The network docker's NetworkOpt attaches to, as the CLI sends it to the engine.

    With `key=value` fields anywhere in the value (an unanchored match, as docker's) the CLI reads it as CSV,
    lower-cases every field and trims the spaces around keys and values: `name=HOST` joins the host network.
    """
    value = option.value or ""
    if not _DOCKER_LONG_SYNTAX.search(value):
        return value
    fields = csv_fields(value)
    if fields is None:
        raise _refuse_network(option, "is written with quotes or line breaks, which docker reads as CSV")
    targets = []
    for item in fields:
        key, _, setting = item.lower().partition("=")
        key, setting = key.strip(), setting.strip()
        if key == "driver-opt" and not judge.named_allowed(option):
            raise ArgvRefused(
                "network-option",
                option.spelling,
                f"{option.name} with driver-opt sets driver options and interface sysctls of the engine's choosing; "
                f'a site may allow it with allow_options: ["{option.name}"]',
            )
        if key not in _DOCKER_NETWORK_KEYS | {"driver-opt"}:
            raise _refuse_network(option, f"has the field {item!r}, which hostpipe does not know")
        if key == "name":
            targets.append(setting)
    if len(targets) != 1:
        raise _refuse_network(option, "does not name exactly one network")
    return targets[0]


def _network_name(option: Option, name: str) -> None:
    """A network given by name: a plain name, never a mode word in any case, never what may be an ID."""
    if name.lower() in _NETWORK_MODES or name.lower().startswith(("container:", "ns:")):
        raise _refuse_network(option, f"names {name!r}, which the engine may read as a network mode")
    if not _VOLUME_NAME.fullmatch(name):
        raise _refuse_network(option, f"names {name!r}, which is neither a network mode nor a network name")


def docker_network(option: Option, judge: Judge) -> None:
    """--network for docker: the default bridge, none, or a user-defined network, as the CLI sends it."""
    name = _docker_network_target(option, judge)
    if judge.rules.allow_host_network or name in ("", "bridge", "default", "none"):
        return
    if name.lower() == "host" or name.lower().startswith("container:"):
        raise _refuse_network(option, f"puts the container in the network namespace of {name}")
    _network_name(option, name)
    if re.fullmatch(r"[0-9a-f]+", name, re.IGNORECASE):
        # dockerd finds a network by name, then by ID prefix: a hex word may be the host network's ID.
        raise _refuse_network(option, f"names {name!r}, which dockerd may read as the ID of the host network")


_SLIRP_SAFE = {
    "cidr": None,
    "mtu": None,
    "enable_ipv6": None,
    "port_handler": None,
    "allow_host_loopback": "false",
}
"""slirp4netns options (podman reads them exactly, key=value) that keep the container off the host's loopback,
with the one value each must have where it matters."""
_BRIDGE_KEYS = frozenset({"ip", "ip6", "mac", "alias", "interface_name"})


def _bridge_options(option: Option, options: str) -> None:
    for item in options.split(",") if options else []:
        if item.partition("=")[0] not in _BRIDGE_KEYS:
            raise _refuse_network(option, f"has the network option {item!r}, which hostpipe does not know")


def podman_network(option: Option, judge: Judge) -> None:
    """--network for podman, read as podman's ParseNetworkFlag reads each value.

    Allowed: the default, private, none, bridge (with its per-network options), slirp4netns without the host's
    loopback, and networks by name. Refused: host, ns:, container:, pod, and pasta, which maps the host's
    loopback into the container by default (podman 4.4 and later; podman 4.3 takes it for a network's name).
    `pasta:OPTIONS` is refused even where the host network is allowed: podman hands the options to the host's
    pasta program, and some of them write host files.
    """
    value = option.value or ""
    mode, sep, options = value.partition(":")
    if mode == "pasta" and sep and not judge.named_allowed(option):
        raise ArgvRefused(
            "network-option",
            option.spelling,
            f"{option.name} {value} hands {options!r} to the host's pasta program, which podman 4.4 and later run "
            "as the engine's user (its options write files, open sockets and forward host ports); write "
            f'--network=pasta without options, or a site may allow it with allow_options: ["{option.name}"]',
        )
    if judge.rules.allow_host_network or value in ("", "default", "private", "none", "bridge"):
        return
    if value.startswith("bridge:"):
        _bridge_options(option, options)
        return
    if mode == "slirp4netns":
        for item in options.split(",") if sep else []:
            key, has_value, setting = item.partition("=")
            if not has_value or key not in _SLIRP_SAFE or _SLIRP_SAFE[key] not in (None, setting):
                why = (
                    "lets the container reach the host's loopback interface"
                    if key == "allow_host_loopback"
                    else f"passes {item!r} to slirp4netns, which hostpipe does not allow"
                )
                raise _refuse_network(option, why)
        return
    if mode == "pasta":
        raise _refuse_network(option, "uses pasta, which maps the host's loopback into the container (podman 4.4+)")
    if value in ("host", "pod") or value.startswith(("ns:", "container:")):
        raise _refuse_network(option, f"puts the container in the network namespace of {value}")
    if sep:
        _network_name(option, mode)
        _bridge_options(option, options)
        return
    # podman 4 still reads `a,b` as two networks.
    for name in value.split(","):
        _network_name(option, name)


def devices(option: Option, judge: Judge) -> None:
    if judge.rules.allow_devices or judge.named_allowed(option):
        return
    raise ArgvRefused(
        "devices",
        option.spelling,
        f"{option.name} gives the container host devices (PSS baseline forbids it); a site may allow it "
        "with allow_devices = true",
    )


def _refuse_ports(option: Option) -> ArgvRefused:
    return ArgvRefused(
        "ports",
        option.spelling,
        f"{option.name} opens ports on the host; a site may allow it with allow_ports = true",
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
        "with allow_unconfined = true",
    )


_PROC_FLAGS = frozenset({"ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec"})


def _is_proc_option(item: str) -> bool:
    """A procfs mount option: podman's proc-opts replace every option of the container's /proc mount, so only
    the procfs settings and plain flags are allowed (never bind, rbind or a propagation)."""
    key, sep, _ = item.partition("=")
    return (bool(sep) and key in ("hidepid", "gid")) or item == "subset=pid" or item in _PROC_FLAGS


def security_opt(option: Option, judge: Judge) -> None:
    """--security-opt: tightening is allowed; any other profile is refused, custom ones must be readable.

    `seccomp=builtin` names docker's default profile, but for podman it is a file named `builtin` in the job's
    working folder, which podman loads as the profile: only docker may use it as the default.
    """
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
    if key == "mask" and sep:
        return
    if key == "proc-opts" and sep and all(_is_proc_option(item) for item in setting.split(",")):
        return
    if key == "seccomp" and setting == "builtin" and judge.kind == "docker":
        return
    if key == "writable-cgroups" and parse_bool(setting) is False:
        return
    if not judge.rules.allow_unconfined:
        what = f"sets {key or value!r} away from the runtime's default confinement"
        if key == "seccomp" and setting == "builtin":
            what = "loads the seccomp profile from a file named 'builtin' (podman has no built-in keyword)"
        raise _unconfined(option, what)
    if key == "seccomp" and setting != "unconfined" and not (setting == "builtin" and judge.kind == "docker"):
        # The CLI (docker) or the engine (podman) reads a custom profile from the host, like --env-file.
        _host_path(option, judge, setting, "reads the seccomp profile", read_only_fix=None)


def seccomp_policy(option: Option, judge: Judge) -> None:
    if option.value == "default" or judge.rules.allow_unconfined:
        return
    raise _unconfined(option, "takes the seccomp profile from the image instead of the runtime's default")


def sysctl(option: Option, judge: Judge) -> None:
    """--sysctl: only the sysctls PSS baseline lists as safe (one `name=value` per element)."""
    if judge.named_allowed(option):
        return
    name = (option.value or "").partition("=")[0].strip().replace("/", ".")
    if name not in SAFE_SYSCTLS:
        raise ArgvRefused(
            "sysctl",
            option.spelling,
            f"{option.name} sets {name!r}, which is not a sysctl PSS baseline allows; {_allow_hint(option.name)}",
        )


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


_WRITTEN = "only a folder in bind_roots will do for a file the runtime writes"


def _host_path(
    option: Option,
    judge: Judge,
    path: str,
    what: str,
    *,
    read_only_fix: str | None,
    rule: str = "host-file",
) -> None:
    """Refuses unless `path` lies under a root and neither is nor holds an engine socket.

    `read_only_fix` is None when the option only reads `path` (or mounts it read-only), which a read-only
    root allows; otherwise it says how the line could use the path read-only, or why it cannot.
    """
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
    access = judge.roots().access(path, judge.host)
    if access is None:
        widen = "bind_roots" if read_only_fix is not None else "bind_roots (or read_only_roots, to read it only)"
        raise ArgvRefused(
            rule,
            option.spelling,
            f"{option.name} {what} {path}, which is not under any root ({describe_roots(judge.rules)}); "
            f"a site may add its folder to {widen}",
        )
    if access == "read-only" and read_only_fix is not None:
        if rule == "bind-outside-roots":
            raise read_write_refused(option.spelling, f"{option.name} {what}", path, judge.rules, read_only_fix)
        raise ArgvRefused(
            rule,
            option.spelling,
            f"{option.name} {what} {path}, which lies under a read-only root, not a bind root "
            f"({describe_roots(judge.rules)}); {read_only_fix}",
        )


def host_file(what: str, *, writes: bool) -> Rule:
    """Options naming a host file the CLI reads or writes (--env-file, --cidfile, ...).

    A file the runtime only reads may lie under a read-only root; one it writes needs a bind root.
    """

    def check(option: Option, judge: Judge) -> None:
        if judge.named_allowed(option):
            return
        _host_path(option, judge, option.value or "", what, read_only_fix=_WRITTEN if writes else None)

    return check


SAFE_LOG_DRIVERS = {
    "docker": frozenset({"json-file", "local", "journald", "none"}),
    "podman": frozenset({"k8s-file", "json-file", "journald", "none"}),
}
"""Log drivers that keep a container's output with the engine, in its own files or the host's journal. Every
other driver has the engine connect somewhere from the host (syslog, fluentd, gelf, splunk, awslogs, a plugin)
or hands the container the CLI's own output (podman's passthrough)."""

_DOCKER_LOG_OPTIONS = (
    "max-size", "max-file", "compress", "labels", "labels-regex", "env", "env-regex", "tag", "mode", "max-buffer-size",
)  # fmt: skip
SAFE_LOG_OPTIONS = {
    "docker": frozenset(_DOCKER_LOG_OPTIONS),
    "podman": frozenset({"max-size", "tag", "path", "driver"}),
}
"""`--log-opt` keys that size, rotate or tag the log. podman also reads `path` (a host file it writes, judged
as one) and `driver` (another spelling of --log-driver, judged as one); it reads the keys in any case."""


def _log_driver(option: Option, judge: Judge, driver: str) -> None:
    if driver in ("", *SAFE_LOG_DRIVERS[judge.kind]) or driver in judge.rules.allow_log_drivers:
        return
    raise ArgvRefused(
        "log-driver",
        option.spelling,
        f"the log driver {driver!r} has the engine send or hand the container's output elsewhere from the host "
        f"(hostpipe keeps it with the engine: {', '.join(sorted(SAFE_LOG_DRIVERS[judge.kind]))}); a site may "
        f'allow it with allow_log_drivers: ["{driver}"]',
    )


def log_driver(option: Option, judge: Judge) -> None:
    """--log-driver: only the drivers that keep the log with the engine, unless allow_log_drivers lists it."""
    _log_driver(option, judge, option.value or "")


def log_opt(option: Option, judge: Judge) -> None:
    """--log-opt: size, rotation and tag keys; others only where allow_log_options lists them.

    podman lower-cases the key, so `PATH=` is its log file and `Driver=` its log driver. A file the engine
    writes (podman's `path=`, or a value of a key a site allowed that names a host path) must lie under a
    bind root.
    """
    key, _, setting = (option.value or "").partition("=")
    if judge.kind == "podman":
        key = key.lower()
    safe = key.lower() in SAFE_LOG_OPTIONS[judge.kind]
    if not safe and key not in judge.rules.allow_log_options:
        raise ArgvRefused(
            "log-option",
            option.spelling,
            f"{option.name} sets {key!r}, which may have the engine open an address, socket or file from the host "
            f"(hostpipe allows {', '.join(sorted(SAFE_LOG_OPTIONS[judge.kind]))}); a site may allow it with "
            f'allow_log_options: ["{key}"]',
        )
    if key == "driver" and judge.kind == "podman":
        _log_driver(option, judge, setting)
    elif key == "path" or (not safe and setting.startswith(("/", ".", "~"))):
        _host_path(option, judge, setting, f"has the engine use the host file for {key}:", read_only_fix=_WRITTEN)


def bind_source(option: Option, judge: Judge, source: str, read_only_fix: str | None) -> None:
    """A bind's host path: under a root and no engine socket; `~` is not expanded by the runtime.

    `read_only_fix` is None for a bind the engine mounts read-only, which a read-only root allows; otherwise
    it says how to write the bind read-only.
    """
    if source.startswith("~"):
        raise ArgvRefused(
            "bind-outside-roots",
            option.spelling,
            f"{option.name} names the host path {source!r}; no shell expands `~` here, write the full path",
        )
    _host_path(option, judge, source, "binds the host path", read_only_fix=read_only_fix, rule="bind-outside-roots")


def mount_syntax(option: Option, why: str) -> ArgvRefused:
    return ArgvRefused("mount-syntax", option.spelling, f"{option.name} {why}; hostpipe refuses mounts it cannot read")


def propagation(option: Option, judge: Judge, mode: str) -> None:
    """Shared propagation in any case: docker lower-cases `bind-propagation`, podman passes it on as written."""
    if mode.strip().lower() in ("shared", "rshared") and not judge.rules.allow_host_namespaces:
        raise ArgvRefused(
            "host-namespace",
            option.spelling,
            f"{option.name} with {mode} propagation shares mount events with the host's mount namespace; "
            "a site may allow it with allow_host_namespaces = true",
        )


_VOLUME_FLAGS = frozenset(
    {
        "ro", "rw", "z", "Z", "U", "O", "nocopy", "copy", "consistent", "cached", "delegated",
        "shared", "rshared", "slave", "rslave", "private", "rprivate", "unbindable", "runbindable",
        "bind", "rbind", "dev", "nodev", "exec", "noexec", "suid", "nosuid", "noswap", "idmap",
    }
)  # fmt: skip


_CHANGES_HOST_FILES = {
    "z": "relabels the host files",
    "Z": "relabels the host files",
    "U": "changes the owner of the host files",
    "relabel": "relabels the host files",
    "u": "changes the owner of the host files",
    "chown": "changes the owner of the host files",
}
"""Options that write to the host files' labels or owners however the bind is mounted."""


def _is_path(source: str) -> bool:
    return source.startswith(("/", ".", "~"))


def _volume_read_only_fix(flags: list[str]) -> str | None:
    """None when `-v` flags mount the bind read-only and leave the host files alone; else how to get there."""
    if "O" in flags:
        return "an overlay (O) is not a read-only bind; bind it with :ro instead"
    for flag in flags:
        if flag in _CHANGES_HOST_FILES:
            return f"drop {flag}, which {_CHANGES_HOST_FILES[flag]} even through a read-only bind"
    if flags.count("ro") != 1 or "rw" in flags:
        return "add :ro (once, without rw) to bind it read-only"
    return None


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
    flags = parts[2].split(",") if len(parts) == 3 else []
    for flag in flags:
        if flag not in _VOLUME_FLAGS and not flag.startswith("idmap="):
            raise mount_syntax(option, f"has the option {flag!r}, which hostpipe does not know")
        propagation(option, judge, flag)
    source = parts[0]
    if _is_path(source):
        bind_source(option, judge, source, _volume_read_only_fix(flags))
    elif not _VOLUME_NAME.fullmatch(source):
        raise mount_syntax(option, f"names {source!r}, which is neither a path nor a volume name")


_MOUNT_KEYS = frozenset(
    {
        "type", "source", "src", "target", "dst", "destination", "readonly", "ro", "rw", "readwrite",
        "consistency", "bind-propagation", "bind-nonrecursive", "bind-recursive", "volume-nocopy",
        "volume-subpath", "volume-label", "tmpfs-size", "tmpfs-mode", "tmpcopyup", "notmpcopyup", "exec",
        "noexec", "dev", "nodev", "suid", "nosuid", "relabel", "u", "chown", "z", "idmap", "nocopy", "copy",
        "uid", "gid", "mode", "ptxmode", "newinstance", "max", "shared", "rshared", "private", "rprivate",
        "slave", "rslave", "unbindable", "runbindable", "image-subpath",
    }
)  # fmt: skip
_PROPAGATIONS = frozenset({"shared", "rshared", "private", "rprivate", "slave", "rslave", "unbindable", "runbindable"})
_READ_ONLY_KEYS = frozenset({"ro", "readonly"})
_READ_WRITE_KEYS = frozenset({"rw", "readwrite"})


def _is_true(text: str) -> bool:
    # docker reads the value with strconv.ParseBool, podman compares it to "true" without case.
    return parse_bool(text) is True or text.lower() == "true"


def _is_false(text: str) -> bool:
    return parse_bool(text) is False or text.lower() == "false"


def _mount_read_only_fix(fields: list[tuple[str, bool, str]]) -> str | None:
    """None when `--mount` fields (key, has '=', value) make the bind read-only; else how to get there.

    docker lets the last of several ro/readonly fields win and podman refuses more than one, so only a
    single field counts: `ro`/`readonly` bare or true, or podman's `rw=false`.
    """
    for key, _, setting in fields:
        if key in _CHANGES_HOST_FILES:
            return f"drop {key}, which {_CHANGES_HOST_FILES[key]} even through a read-only bind"
        if key == "bind-recursive" and setting.lower() not in ("enabled", "disabled", "readonly"):
            return f"drop bind-recursive={setting}, which leaves the mounts below the bind writable"
    modes = [(key, sep, setting) for key, sep, setting in fields if key in _READ_ONLY_KEYS | _READ_WRITE_KEYS]
    if len(modes) == 1:
        key, sep, setting = modes[0]
        if key in _READ_ONLY_KEYS and (not sep or _is_true(setting)):
            return None
        if key == "rw" and sep and _is_false(setting):
            return None
    return "add readonly (once, with no other ro, readonly or rw field) to bind it read-only"


def _image_mount(option: Option, judge: Judge) -> None:
    if not judge.rules.allow_image_mounts:
        raise ArgvRefused(
            "image-mount",
            option.spelling,
            f"{option.name} type=image mounts an image that the policy's `images` patterns never judged; a site "
            "may allow it with allow_image_mounts = true",
        )


def mount(*, types: Iterable[str]) -> Rule:
    """--mount `type=...,source=...,...`: bind sources under the bind roots, named volumes by name only.

    docker reads the keys, the type and `bind-propagation` in any case (it lower-cases them); podman reads
    them as written. hostpipe lower-cases them for both, which is the stricter reading for podman.
    """
    known_types = frozenset(types)

    def check(option: Option, judge: Judge) -> None:
        value = option.value or ""
        # Both engines read the value as CSV; quotes and line breaks could make them see other fields.
        if any(c in value for c in '"\n\r\0'):
            raise mount_syntax(option, "holds quotes or line breaks")
        kinds: list[str] = []
        sources: list[str] = []
        fields: list[tuple[str, bool, str]] = []
        for item in value.split(","):
            key, sep, setting = item.partition("=")
            key = key.lower()
            fields.append((key, bool(sep), setting))
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
        if kind == "image":
            _image_mount(option, judge)
            return
        if kind == "bind" and not sources:
            raise mount_syntax(option, "binds no source (podman would bind the target's path on the host)")
        if kind == "tmpfs":
            tmpfs_mount_size(option, judge, fields)
        read_only_fix = _mount_read_only_fix(fields)
        for source in sources:
            if kind == "bind" or _is_path(source):
                bind_source(option, judge, source, read_only_fix)
            elif kind == "volume" and not _VOLUME_NAME.fullmatch(source):
                raise mount_syntax(option, f"names the volume {source!r}, which is not a volume name")
            elif kind != "volume":
                raise mount_syntax(option, f"gives a source to a {kind} mount")

    return check


_TMPFS_FLAGS = frozenset(
    {"rw", "ro", "noexec", "exec", "nosuid", "suid", "nodev", "dev", "tmpcopyup", "notmpcopyup",
     "shared", "rshared", "private", "rprivate", "slave", "rslave", "unbindable", "runbindable", "U"}
)  # fmt: skip
_TMPFS_SETTINGS = frozenset({"size", "mode", "uid", "gid", "nr_inodes"})


def tmpfs(option: Option, judge: Judge) -> None:
    """--tmpfs PATH[:OPTIONS]: known mount options, a size the kernel reads, no shared propagation.

    docker cuts the value at its first `:`, podman at every `:` and keeps the second part, so a value with
    two is read differently by the two and refused.
    """
    value = option.value or ""
    path, _, options = value.partition(":")
    if ":" in options or not path:
        raise mount_syntax(option, f"is not PATH[:OPTIONS] ({value!r})")
    sizes: list[str] = []
    for item in options.split(",") if options else []:
        key, sep, setting = item.partition("=")
        if sep and key in _TMPFS_SETTINGS:
            if key == "size":
                sizes.append(setting)
            elif key == "nr_inodes" and not kernel_size(setting):
                raise mount_syntax(option, f"has {item!r}; nr_inodes takes a positive number (0 is unlimited)")
            continue
        if item in ("shared", "rshared"):
            propagation(option, judge, item)
        if sep or item not in _TMPFS_FLAGS:
            raise mount_syntax(option, f"has the tmpfs option {item!r}, which hostpipe does not know")
    if len(sizes) > 1:
        raise mount_syntax(option, "gives the size more than once")
    tmpfs_size(option, judge, sizes[0] if sizes else None, kernel_size, "size")


def rootfs_image(option: Option, judge: Judge, image: str) -> None:
    """podman --rootfs: the image word is a host folder, used read-write (or as an overlay with `:O`)."""
    path = image[: -len(":O")] if image.endswith(":O") else image
    fix = "a --rootfs folder is the container's root, which podman writes into (an :O overlay counts alike)"
    bind_source(option, judge, path, fix)
