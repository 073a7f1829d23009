"""How podman (4.3) reads `podman [global options] run [options] IMAGE [COMMAND [ARG...]]`.

The option tables follow podman's own definitions (cmd/podman/root.go for the global options,
cmd/podman/containers/run.go and cmd/podman/common/create.go and netflags.go for `run`), with the hidden
options (`--gpus`, `--kernel-memory`, `--signature-policy`, `-H/--host`, `--config`, `--context`, ...) and
the old spellings podman still reads through its flag-name aliases (`--net`, `--dns-opt`,
`--healthcheck-*`, `--purge`, `--override-arch`, `--cni-config-dir`, `--ns`). podman's global options come in
two kinds: those only the top-level command reads (`--url`, `--connection`, `--remote`, ...) and persistent
ones (`--root`, `--runroot`, `--storage-driver`, `--runtime`, ...), which `run` also reads among its own
options. Where the global options end is decided by cobra's Traverse (see `oci`). Each option carries the Go
type podman holds it in: a StringSlice (`--env-file`, `--log-opt`, `--cap-add`, `--group-add`, ...) is read as
pflag reads it, one CSV record cut into elements that are each judged, and refused where quotes or line
breaks would make CSV read other elements than the words show.

Every option has a rule (see `oci_checks`); what is refused by default is what docker refuses (see `docker`),
plus podman's own ways out: every persistent option that picks another store, runtime, conmon, hooks,
network backend or configuration; `--env-host` (the daemon's environment), `--preserve-fds` (the daemon's
open files), `--sdnotify` other than `ignore` (the daemon's systemd socket), `--secret`, `--pod` and
`--pod-id-file` (another pod's namespaces), `--replace` and `--requires` (other containers),
`--group-add keep-groups`, `--hostuser`, `--tls-verify=false`, `--signature-policy`, and a `--rootfs` folder
outside bind_roots (a read-only root is not enough: podman writes into it); systemd mode (`--systemd=always`
in any case, or by default for an init or systemd command), which on a cgroup v1 host binds the host's
systemd cgroup tree read-write; `seccomp=builtin`, which podman reads as a file named builtin; pasta with
options; `--health-on-failure=restart`; `--log-opt driver=`, `PATH=` and the like, whose keys podman reads
in any case. Environment passed into the container (`-e CONTAINER_HOST=...`) is harmless.
"""

from __future__ import annotations

import json
import posixpath
import shlex
from collections.abc import Sequence

from hostpipe.core.runtimes import oci
from hostpipe.core.runtimes import oci_checks as rules
from hostpipe.core.runtimes import oci_limits as limits
from hostpipe.core.runtimes.base import ArgumentRules, ArgvRefused, Grammar, Host, Invocation, Option, OptionSpec
from hostpipe.core.runtimes.base import ValueType as T
from hostpipe.core.runtimes.oci import switch, valued

KIND = "podman"

ROOT_OPTIONS: tuple[OptionSpec, ...] = (
    valued(T.STRING, "--ssh"),
    valued(T.STRING, "--connection", "-c"),
    valued(T.STRING, "--url"),
    valued(T.STRING, "--host", "-H"),
    valued(T.STRING, "--config"),
    valued(T.STRING, "--context"),
    valued(T.STRING, "--identity"),
    switch("--noout"),
    switch("--remote", "-r"),
    switch("--debug", "-D"),
    switch("--version", "-v"),
)
"""Options only the top-level command reads."""


def _persistent(*, namespace: tuple[str, ...], network_config_dir: tuple[str, ...]) -> tuple[OptionSpec, ...]:
    return (
        valued(T.STRING, "--cgroup-manager"),
        valued(T.STRING, "--cpu-profile"),
        valued(T.STRING, "--memory-profile"),
        valued(T.STRING, "--conmon"),
        valued(T.STRING, "--network-cmd-path"),
        valued(T.STRING, *network_config_dir),
        valued(T.STRING, "--default-mounts-file"),
        valued(T.STRING, "--events-backend"),
        valued(T.STRING_SLICE, "--hooks-dir"),
        valued(T.INT, "--max-workers"),
        valued(T.STRING, *namespace),
        valued(T.STRING, "--network-backend"),
        valued(T.STRING, "--root"),
        valued(T.STRING, "--registries-conf"),
        valued(T.STRING, "--runroot"),
        valued(T.STRING, "--runtime"),
        valued(T.STRING, "--storage-driver"),
        valued(T.STRING, "--tmpdir"),
        switch("--trace"),
        valued(T.STRING, "--volumepath"),
        valued(T.STRING_ARRAY, "--storage-opt"),
        switch("--help"),
        valued(T.STRING, "--log-level"),
        valued(T.STRING_ARRAY, "--runtime-flag"),
        switch("--syslog"),
    )


# The top-level command reads --cni-config-dir as --network-config-dir; `run` reads every name through its
# own aliases instead, which turn --namespace into --ns (so both spellings reach the same option there).
GLOBAL_OPTIONS: tuple[OptionSpec, ...] = ROOT_OPTIONS + _persistent(
    namespace=("--namespace",), network_config_dir=("--network-config-dir", "--cni-config-dir")
)

_RUN_OWN: tuple[OptionSpec, ...] = (
    valued(T.STRING_SLICE, "--add-host"),
    valued(T.STRING_SLICE, "--annotation"),
    valued(T.STRING, "--arch", "--override-arch"),
    valued(T.STRING_SLICE, "--attach", "-a"),
    valued(T.STRING, "--authfile"),
    valued(T.STRING, "--blkio-weight"),
    valued(T.STRING_SLICE, "--blkio-weight-device"),
    valued(T.STRING_SLICE, "--cap-add"),
    valued(T.STRING_SLICE, "--cap-drop"),
    valued(T.STRING_SLICE, "--cgroup-conf"),
    valued(T.STRING, "--cgroup-parent"),
    valued(T.STRING, "--cgroupns"),
    valued(T.STRING, "--cgroups"),
    valued(T.STRING_SLICE, "--chrootdirs"),
    valued(T.STRING, "--cidfile"),
    valued(T.STRING, "--conmon-pidfile"),
    valued(T.UINT64, "--cpu-period"),
    valued(T.INT64, "--cpu-quota"),
    valued(T.UINT64, "--cpu-rt-period"),
    valued(T.INT64, "--cpu-rt-runtime"),
    valued(T.UINT64, "--cpu-shares", "-c"),
    valued(T.FLOAT64, "--cpus"),
    valued(T.STRING, "--cpuset-cpus"),
    valued(T.STRING, "--cpuset-mems"),
    switch("--detach", "-d"),
    valued(T.STRING, "--detach-keys"),
    valued(T.STRING_SLICE, "--device"),
    valued(T.STRING_SLICE, "--device-cgroup-rule"),
    valued(T.STRING_SLICE, "--device-read-bps"),
    valued(T.STRING_SLICE, "--device-read-iops"),
    valued(T.STRING_SLICE, "--device-write-bps"),
    valued(T.STRING_SLICE, "--device-write-iops"),
    switch("--disable-content-trust"),
    valued(T.STRING_SLICE, "--dns"),
    valued(T.STRING_SLICE, "--dns-option", "--dns-opt"),
    valued(T.STRING_SLICE, "--dns-search"),
    valued(T.STRING, "--entrypoint"),
    valued(T.STRING_ARRAY, "--env", "-e"),
    valued(T.STRING_SLICE, "--env-file"),
    switch("--env-host"),
    valued(T.STRING_ARRAY, "--env-merge"),
    valued(T.STRING_SLICE, "--expose"),
    valued(T.STRING_SLICE, "--gidmap"),
    valued(T.STRING_SLICE, "--group-add"),
    valued(T.STRING, "--health-cmd", "--healthcheck-command"),
    valued(T.STRING, "--health-interval", "--healthcheck-interval"),
    valued(T.STRING, "--health-on-failure"),
    valued(T.UINT, "--health-retries", "--healthcheck-retries"),
    valued(T.STRING, "--health-start-period", "--healthcheck-start-period"),
    valued(T.STRING, "--health-timeout", "--healthcheck-timeout"),
    switch("--help"),
    valued(T.STRING, "--hostname", "-h"),
    valued(T.STRING_SLICE, "--hostuser"),
    switch("--http-proxy"),
    valued(T.STRING, "--image-volume"),
    switch("--init"),
    valued(T.STRING, "--init-path"),
    switch("--interactive", "-i"),
    valued(T.STRING, "--ip"),
    valued(T.STRING, "--ip6"),
    valued(T.STRING, "--ipc"),
    valued(T.STRING_ARRAY, "--label", "-l"),
    valued(T.STRING_SLICE, "--label-file"),
    valued(T.STRING, "--log-driver"),
    valued(T.STRING_SLICE, "--log-opt"),
    valued(T.STRING, "--mac-address"),
    valued(T.STRING, "--memory", "-m"),
    valued(T.STRING, "--memory-reservation"),
    valued(T.STRING, "--memory-swap"),
    valued(T.INT64, "--memory-swappiness"),
    valued(T.STRING_ARRAY, "--mount"),
    valued(T.STRING, "--name"),
    valued(T.STRING_ARRAY, "--network", "--net"),
    valued(T.STRING_SLICE, "--network-alias"),
    switch("--no-healthcheck"),
    switch("--no-hosts"),
    switch("--oom-kill-disable"),
    valued(T.INT, "--oom-score-adj"),
    valued(T.STRING, "--os", "--override-os"),
    switch("--passwd"),
    valued(T.STRING, "--passwd-entry"),
    valued(T.STRING, "--personality"),
    valued(T.STRING, "--pid"),
    valued(T.STRING, "--pidfile"),
    valued(T.INT64, "--pids-limit"),
    valued(T.STRING, "--platform"),
    valued(T.STRING, "--pod"),
    valued(T.STRING, "--pod-id-file"),
    valued(T.UINT, "--preserve-fds"),
    switch("--privileged"),
    valued(T.STRING_SLICE, "--publish", "-p"),
    switch("--publish-all", "-P"),
    valued(T.STRING, "--pull"),
    switch("--quiet", "-q"),
    switch("--read-only"),
    switch("--read-only-tmpfs"),
    switch("--replace"),
    valued(T.STRING_SLICE, "--requires"),
    valued(T.STRING, "--restart"),
    switch("--rm", "--purge"),
    switch("--rmi"),
    switch("--rootfs"),
    valued(T.STRING, "--sdnotify"),
    valued(T.STRING, "--seccomp-policy"),
    valued(T.STRING_ARRAY, "--secret"),
    valued(T.STRING_ARRAY, "--security-opt"),
    valued(T.STRING, "--shm-size"),
    switch("--sig-proxy"),
    valued(T.STRING, "--stop-signal"),
    valued(T.UINT, "--stop-timeout"),
    valued(T.STRING, "--subgidname"),
    valued(T.STRING, "--subuidname"),
    valued(T.STRING_SLICE, "--sysctl"),
    valued(T.STRING, "--systemd"),
    valued(T.UINT, "--timeout"),
    switch("--tls-verify"),
    valued(T.STRING_ARRAY, "--tmpfs"),
    switch("--tty", "-t"),
    valued(T.STRING, "--tz"),
    valued(T.STRING_SLICE, "--uidmap"),
    valued(T.STRING_SLICE, "--ulimit"),
    valued(T.STRING, "--umask"),
    valued(T.STRING_ARRAY, "--unsetenv"),
    switch("--unsetenv-all"),
    valued(T.STRING, "--user", "-u"),
    valued(T.STRING, "--userns"),
    valued(T.STRING, "--uts"),
    valued(T.STRING, "--variant", "--override-variant"),
    valued(T.STRING_ARRAY, "--volume", "-v"),
    valued(T.STRING_ARRAY, "--volumes-from"),
    valued(T.STRING, "--workdir", "-w"),
    valued(T.STRING, "--gpus"),
    valued(T.STRING, "--kernel-memory"),
    valued(T.STRING, "--signature-policy"),
)

RUN_OPTIONS: tuple[OptionSpec, ...] = _RUN_OWN + tuple(
    spec
    for spec in _persistent(namespace=("--namespace", "--ns"), network_config_dir=("--network-config-dir",))
    if spec.canonical != "--help"
)

_HARMLESS = (
    "--debug", "--noout", "--log-level", "--trace", "--syslog", "--max-workers",
    "--add-host", "--arch", "--attach", "--blkio-weight", "--blkio-weight-device", "--cap-drop", "--chrootdirs",
    "--cpu-period", "--cpu-quota", "--cpu-shares", "--cpus",
    "--cpuset-cpus", "--cpuset-mems", "--detach", "--detach-keys", "--device-read-bps", "--device-read-iops",
    "--device-write-bps", "--device-write-iops", "--disable-content-trust", "--dns", "--dns-option",
    "--dns-search", "--entrypoint", "--env", "--env-merge", "--expose", "--gidmap", "--health-cmd",
    "--health-interval", "--health-retries", "--health-start-period", "--health-timeout",
    "--hostname", "--http-proxy", "--image-volume", "--init", "--interactive", "--ip", "--ip6", "--label",
    "--mac-address", "--memory", "--memory-reservation", "--memory-swap", "--memory-swappiness",
    "--name", "--network-alias", "--no-healthcheck", "--no-hosts",
    "--os", "--passwd", "--passwd-entry", "--personality", "--platform", "--pull", "--quiet",
    "--read-only", "--read-only-tmpfs", "--rm", "--rmi", "--sig-proxy",
    "--stop-signal", "--stop-timeout", "--subgidname", "--subuidname", "--timeout",
    "--tty", "--tz", "--uidmap", "--umask", "--unsetenv", "--unsetenv-all", "--user", "--variant",
    "--workdir", "--kernel-memory",
    # --rootfs turns the image word into a host folder, which `check` judges once the image is known.
    "--rootfs",
)  # fmt: skip

_DAEMON_OPTIONS = (
    "--ssh", "--connection", "--url", "--host", "--config", "--context", "--identity", "--remote",
    "--cgroup-manager", "--conmon", "--network-cmd-path", "--network-config-dir", "--default-mounts-file",
    "--events-backend", "--hooks-dir", "--namespace", "--network-backend", "--root", "--registries-conf",
    "--runroot", "--runtime", "--runtime-flag", "--storage-driver", "--storage-opt", "--tmpdir", "--volumepath",
)  # fmt: skip


def _group_add(option: Option, judge: rules.Judge) -> None:
    if (option.value or "").strip() == "keep-groups" and not judge.named_allowed(option):
        raise ArgvRefused(
            "option-refused",
            option.spelling,
            f"{option.name} keep-groups gives the container the supplementary groups of the daemon's user on "
            f'the host; a site may allow it with allow_options: ["{option.name}"]',
        )


_SYSTEMD_COMMANDS = frozenset({"/sbin/init", "/usr/sbin/init", "/usr/local/sbin/init"})


def _runs_systemd(command: Sequence[str]) -> bool:
    """podman's own test for a command that makes `--systemd=true` (the default) run the container as systemd."""
    if len(command) > 2 and command[0] == "/bin/sh" and command[1] == "-c":
        command = command[2:]
    return bool(command) and (command[0] in _SYSTEMD_COMMANDS or posixpath.basename(command[0]) == "systemd")


def _entrypoints(value: str) -> list[list[str]]:
    """What podman may make of --entrypoint: a JSON array of strings, or the word itself (both, if unsure)."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return [[value]]
    if isinstance(parsed, list) and all(isinstance(item, str) for item in parsed):
        return [parsed]
    # Go reads `null` as an empty entrypoint; anything else that is JSON but no list of strings is the word.
    return [[], [value]]


def _systemd_refused(spelling: str, why: str) -> ArgvRefused:
    return ArgvRefused(
        "systemd-mode",
        spelling,
        f"{why}: podman then mounts cgroup file systems for systemd, and on a cgroup v1 host binds the host's own "
        "systemd cgroup tree read-write into the container; write --systemd=false, or a site may allow it with "
        'allow_options: ["--systemd"]',
    )


def _systemd(option: Option, judge: rules.Judge) -> None:
    # podman lower-cases the value before it reads it.
    if (option.value or "").lower() == "always" and not judge.named_allowed(option):
        raise _systemd_refused(option.spelling, f"{option.name}={option.value} runs the container in systemd mode")


def _systemd_by_command(invocation: Invocation, judge: rules.Judge) -> None:
    """Refuses a line whose own command podman would run in systemd mode by default (`--systemd=true`).

    The command podman tests is the entrypoint (the line's --entrypoint, else the image's) followed by the
    arguments. An image whose own entrypoint or command is init or systemd is the site's choice of images.
    """
    modes = [option for option in invocation.options if option.name == "--systemd"]
    if "--systemd" in judge.rules.allow_options or (modes and (modes[-1].value or "").lower() == "false"):
        return
    args = list(invocation.args)
    entrypoints = [option for option in invocation.options if option.name == "--entrypoint"]
    if not entrypoints:
        if _runs_systemd(args):
            raise _systemd_refused(shlex.join(args), f"{args[0]} runs the container in systemd mode")
        return
    for entry in _entrypoints(entrypoints[-1].value or ""):
        # podman leaves an entrypoint of one empty word out of the command.
        command = (entry if entry != [""] else []) + args
        if _runs_systemd(command):
            written = entrypoints[-1].spelling if entry not in ([], [""]) else shlex.join(args)
            raise _systemd_refused(written, f"{command[0]} runs the container in systemd mode")


def _pod(option: Option, judge: rules.Judge) -> None:
    if (option.value or "").startswith("new:") or judge.rules.allow_host_namespaces:
        return
    raise ArgvRefused(
        "host-namespace",
        option.spelling,
        f"{option.name} puts the container in the namespaces of an existing pod; a site may allow it with "
        "allow_host_namespaces = true",
    )


_READS = "reads the host file"
_WRITES = "writes the host file"

RULES: dict[str, rules.Rule] = (
    {name: rules.harmless for name in _HARMLESS}
    | {name: rules.daemon_option for name in _DAEMON_OPTIONS}
    | {
        "--version": rules.refused_when_true("option-refused", "prints information instead of running"),
        "--help": rules.refused_when_true("option-refused", "prints help instead of running"),
        "--cpu-profile": rules.host_file(_WRITES, writes=True),
        "--memory-profile": rules.host_file(_WRITES, writes=True),
        "--privileged": rules.privileged,
        "--cap-add": rules.capabilities,
        "--security-opt": rules.security_opt,
        "--seccomp-policy": rules.seccomp_policy,
        "--pid": rules.namespace(safe=("", "private"), what="PID"),
        "--ipc": rules.namespace(safe=("", "none", "private", "shareable"), what="IPC"),
        "--uts": rules.namespace(safe=("", "private"), what="UTS"),
        "--userns": rules.namespace(
            safe=("", "private", "auto", "keep-id", "nomap"), safe_prefixes=("auto:", "keep-id:"), what="user"
        ),
        "--cgroupns": rules.namespace(safe=("", "private"), what="cgroup"),
        "--pod": _pod,
        "--pod-id-file": rules.refused(
            "host-namespace", "puts the container in the namespaces of a pod named in a host file"
        ),
        "--network": rules.podman_network,
        "--publish": rules.ports,
        "--publish-all": rules.publish_all,
        "--device": rules.devices,
        "--device-cgroup-rule": rules.devices,
        "--gpus": rules.devices,
        "--volume": rules.volume,
        "--mount": rules.mount(types=("bind", "volume", "tmpfs", "image", "devpts")),
        "--volumes-from": rules.volumes_from,
        "--env-file": rules.host_file(_READS, writes=False),
        "--label-file": rules.host_file(_READS, writes=False),
        "--authfile": rules.host_file(_READS, writes=False),
        # podman binds the init binary into the container read-only.
        "--init-path": rules.host_file(_READS, writes=False),
        "--cidfile": limits.cidfile,
        "--pidfile": rules.host_file(_WRITES, writes=True),
        "--conmon-pidfile": rules.host_file(_WRITES, writes=True),
        "--log-driver": rules.log_driver,
        "--log-opt": rules.log_opt,
        "--tmpfs": rules.tmpfs,
        "--restart": limits.restart,
        "--health-on-failure": limits.health_on_failure,
        "--pids-limit": limits.pids_limit,
        "--oom-score-adj": limits.oom_score_adj,
        "--oom-kill-disable": limits.oom_kill_disable,
        "--cpu-rt-runtime": limits.realtime_cpu,
        "--cpu-rt-period": limits.realtime_cpu,
        "--ulimit": limits.ulimit,
        "--shm-size": limits.shm_size,
        "--systemd": _systemd,
        "--sysctl": rules.sysctl,
        "--group-add": _group_add,
        "--tls-verify": rules.refused_when(
            "insecure-registry",
            "=false pulls images without checking the registry's TLS certificate",
            allowed=lambda value: value == "true",
        ),
        "--signature-policy": rules.refused("insecure-registry", "replaces the site's image signature policy"),
        "--cgroup-parent": rules.refused("option-refused", "places the container in a host cgroup of its choice"),
        "--cgroup-conf": rules.refused("option-refused", "writes cgroup settings of its choice"),
        "--cgroups": rules.refused_when(
            "option-refused",
            "other than enabled leaves the container outside a cgroup of its own",
            allowed=lambda value: value == "enabled",
        ),
        "--annotation": rules.refused("option-refused", "passes annotations that steer the OCI runtime"),
        "--secret": rules.refused("option-refused", "hands the container a secret stored on the host"),
        "--preserve-fds": rules.refused_when(
            "option-refused", "hands the container files the daemon has open", allowed=lambda value: value == "0"
        ),
        "--replace": rules.refused_when_true("option-refused", "removes another container with the same name"),
        "--requires": rules.refused("option-refused", "starts other containers first"),
        "--hostuser": rules.refused("option-refused", "copies a host user's account into the container"),
        "--env-host": rules.refused_when_true(
            "option-refused", "copies the daemon's whole environment into the container"
        ),
        "--sdnotify": rules.refused_when(
            "option-refused",
            "other than ignore hands the daemon's systemd notify socket to the container or to conmon",
            allowed=lambda value: value == "ignore",
        ),
    }
)

DIALECT = oci.Dialect(
    kind=KIND,
    global_options=GLOBAL_OPTIONS,
    run_options=RUN_OPTIONS,
    cobra_traverse=True,
    rules=RULES,
)


_REMOTE_LONG = frozenset({"remote", "connection", "url", "identity", "host", "context"})
_REMOTE_SHORT = frozenset("rcH")


def _remote_switch(words: tuple[str, ...]) -> str | None:
    """The word that would put podman into remote mode before cobra reads the command line, if any.

    Before its real parsing, podman scans its arguments with a throw-away pflag set that knows only the
    remote-mode flags, skips every other flag (taking the next word as that flag's value when it does not start
    with '-'), and stops at the first word it takes for a positional. A remote flag reached that way points
    podman at another engine even when cobra later reads the same word as something else (`-c` is
    --cpu-shares in `run`), so every word that scan can reach is checked here, conservatively.
    """
    index = 0
    while index < len(words):
        word = words[index]
        if word in {"--", "-"} or not word.startswith("-"):
            return None
        has_value = "=" in word
        if word.startswith("--"):
            if word[2:].partition("=")[0] in _REMOTE_LONG:
                return word
        elif _REMOTE_SHORT & set(word[1:].partition("=")[0]):
            return word
        takes_next = not has_value and index + 1 < len(words) and not words[index + 1].startswith("-")
        index += 2 if takes_next else 1
    return None


def parse(words: tuple[str, ...]) -> Invocation:
    """Reads argv[1:] of a podman command line. Raises ArgvRefused."""
    remote = _remote_switch(words)
    if remote is not None:
        raise ArgvRefused(
            "daemon-option",
            remote,
            f"podman reads {remote!r} as a remote-connection flag before it reads the command, which would point "
            "it at another engine; spell the option out in full (e.g. --cpu-shares for -c) or leave it out",
        )
    return oci.parse(words, DIALECT)


def check(invocation: Invocation, argument_rules: ArgumentRules, host: Host) -> None:
    """Judges a parsed `podman run` against a site's rules. Raises ArgvRefused."""
    oci.check(invocation, argument_rules, host, DIALECT)
    judge = rules.Judge(rules=argument_rules, host=host, kind=KIND)
    _systemd_by_command(invocation, judge)
    for option in invocation.options:
        if option.name == "--rootfs" and option.value == "true" and invocation.image is not None:
            rules.rootfs_image(option, judge, invocation.image)


GRAMMAR = Grammar(kind=KIND, parse=parse, check=check, subcommands=oci.SUBCOMMANDS)
