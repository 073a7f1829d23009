"""How podman (4.3) reads `podman [global options] run [options] IMAGE [COMMAND [ARG...]]`.

The option tables follow podman's own definitions (cmd/podman/root.go for the global options,
cmd/podman/containers/run.go and cmd/podman/common/create.go and netflags.go for `run`), with the hidden
options (`--gpus`, `--kernel-memory`, `--signature-policy`, `-H/--host`, `--config`, `--context`, ...) and
the old spellings podman still reads through its flag-name aliases (`--net`, `--dns-opt`,
`--healthcheck-*`, `--purge`, `--override-arch`, `--cni-config-dir`, `--ns`). podman's global options come in
two kinds: those only the top-level command reads (`--url`, `--connection`, `--remote`, ...) and persistent
ones (`--root`, `--runroot`, `--storage-driver`, `--runtime`, ...), which `run` also reads among its own
options. Where the global options end is decided by cobra's Traverse (see `oci`).

Every option has a rule (see `oci_checks`); what is refused by default is what docker refuses (see `docker`),
plus podman's own ways out: every persistent option that picks another store, runtime, conmon, hooks,
network backend or configuration; `--env-host` (the daemon's environment), `--preserve-fds` (the daemon's
open files), `--sdnotify` other than `ignore` (the daemon's systemd socket), `--secret`, `--pod` and
`--pod-id-file` (another pod's namespaces), `--replace` and `--requires` (other containers),
`--group-add keep-groups`, `--hostuser`, `--tls-verify=false`, `--signature-policy`, and a `--rootfs` folder
outside bind_roots (a read-only root is not enough: podman writes into it). Environment passed into the
container (`-e CONTAINER_HOST=...`) is harmless.
"""

from __future__ import annotations

from hostpipe.core.runtimes import oci
from hostpipe.core.runtimes import oci_checks as rules
from hostpipe.core.runtimes.base import ArgumentRules, ArgvRefused, Grammar, Host, Invocation, Option, OptionSpec
from hostpipe.core.runtimes.oci import switch, valued

KIND = "podman"

ROOT_OPTIONS: tuple[OptionSpec, ...] = (
    valued("--ssh"),
    valued("--connection", "-c"),
    valued("--url"),
    valued("--host", "-H"),
    valued("--config"),
    valued("--context"),
    valued("--identity"),
    switch("--noout"),
    switch("--remote", "-r"),
    switch("--debug", "-D"),
    switch("--version", "-v"),
)
"""Options only the top-level command reads."""


def _persistent(*, namespace: tuple[str, ...], network_config_dir: tuple[str, ...]) -> tuple[OptionSpec, ...]:
    return (
        valued("--cgroup-manager"),
        valued("--cpu-profile"),
        valued("--memory-profile"),
        valued("--conmon"),
        valued("--network-cmd-path"),
        valued(*network_config_dir),
        valued("--default-mounts-file"),
        valued("--events-backend"),
        valued("--hooks-dir"),
        valued("--max-workers"),
        valued(*namespace),
        valued("--network-backend"),
        valued("--root"),
        valued("--registries-conf"),
        valued("--runroot"),
        valued("--runtime"),
        valued("--storage-driver"),
        valued("--tmpdir"),
        switch("--trace"),
        valued("--volumepath"),
        valued("--storage-opt"),
        switch("--help"),
        valued("--log-level"),
        valued("--runtime-flag"),
        switch("--syslog"),
    )


# The top-level command reads --cni-config-dir as --network-config-dir; `run` reads every name through its
# own aliases instead, which turn --namespace into --ns (so both spellings reach the same option there).
GLOBAL_OPTIONS: tuple[OptionSpec, ...] = ROOT_OPTIONS + _persistent(
    namespace=("--namespace",), network_config_dir=("--network-config-dir", "--cni-config-dir")
)

_RUN_OWN: tuple[OptionSpec, ...] = (
    valued("--add-host"),
    valued("--annotation"),
    valued("--arch", "--override-arch"),
    valued("--attach", "-a"),
    valued("--authfile"),
    valued("--blkio-weight"),
    valued("--blkio-weight-device"),
    valued("--cap-add"),
    valued("--cap-drop"),
    valued("--cgroup-conf"),
    valued("--cgroup-parent"),
    valued("--cgroupns"),
    valued("--cgroups"),
    valued("--chrootdirs"),
    valued("--cidfile"),
    valued("--conmon-pidfile"),
    valued("--cpu-period"),
    valued("--cpu-quota"),
    valued("--cpu-rt-period"),
    valued("--cpu-rt-runtime"),
    valued("--cpu-shares", "-c"),
    valued("--cpus"),
    valued("--cpuset-cpus"),
    valued("--cpuset-mems"),
    switch("--detach", "-d"),
    valued("--detach-keys"),
    valued("--device"),
    valued("--device-cgroup-rule"),
    valued("--device-read-bps"),
    valued("--device-read-iops"),
    valued("--device-write-bps"),
    valued("--device-write-iops"),
    switch("--disable-content-trust"),
    valued("--dns"),
    valued("--dns-option", "--dns-opt"),
    valued("--dns-search"),
    valued("--entrypoint"),
    valued("--env", "-e"),
    valued("--env-file"),
    switch("--env-host"),
    valued("--env-merge"),
    valued("--expose"),
    valued("--gidmap"),
    valued("--group-add"),
    valued("--health-cmd", "--healthcheck-command"),
    valued("--health-interval", "--healthcheck-interval"),
    valued("--health-on-failure"),
    valued("--health-retries", "--healthcheck-retries"),
    valued("--health-start-period", "--healthcheck-start-period"),
    valued("--health-timeout", "--healthcheck-timeout"),
    switch("--help"),
    valued("--hostname", "-h"),
    valued("--hostuser"),
    switch("--http-proxy"),
    valued("--image-volume"),
    switch("--init"),
    valued("--init-path"),
    switch("--interactive", "-i"),
    valued("--ip"),
    valued("--ip6"),
    valued("--ipc"),
    valued("--label", "-l"),
    valued("--label-file"),
    valued("--log-driver"),
    valued("--log-opt"),
    valued("--mac-address"),
    valued("--memory", "-m"),
    valued("--memory-reservation"),
    valued("--memory-swap"),
    valued("--memory-swappiness"),
    valued("--mount"),
    valued("--name"),
    valued("--network", "--net"),
    valued("--network-alias"),
    switch("--no-healthcheck"),
    switch("--no-hosts"),
    switch("--oom-kill-disable"),
    valued("--oom-score-adj"),
    valued("--os", "--override-os"),
    switch("--passwd"),
    valued("--passwd-entry"),
    valued("--personality"),
    valued("--pid"),
    valued("--pidfile"),
    valued("--pids-limit"),
    valued("--platform"),
    valued("--pod"),
    valued("--pod-id-file"),
    valued("--preserve-fds"),
    switch("--privileged"),
    valued("--publish", "-p"),
    switch("--publish-all", "-P"),
    valued("--pull"),
    switch("--quiet", "-q"),
    switch("--read-only"),
    switch("--read-only-tmpfs"),
    switch("--replace"),
    valued("--requires"),
    valued("--restart"),
    switch("--rm", "--purge"),
    switch("--rmi"),
    switch("--rootfs"),
    valued("--sdnotify"),
    valued("--seccomp-policy"),
    valued("--secret"),
    valued("--security-opt"),
    valued("--shm-size"),
    switch("--sig-proxy"),
    valued("--stop-signal"),
    valued("--stop-timeout"),
    valued("--subgidname"),
    valued("--subuidname"),
    valued("--sysctl"),
    valued("--systemd"),
    valued("--timeout"),
    switch("--tls-verify"),
    valued("--tmpfs"),
    switch("--tty", "-t"),
    valued("--tz"),
    valued("--uidmap"),
    valued("--ulimit"),
    valued("--umask"),
    valued("--unsetenv"),
    switch("--unsetenv-all"),
    valued("--user", "-u"),
    valued("--userns"),
    valued("--uts"),
    valued("--variant", "--override-variant"),
    valued("--volume", "-v"),
    valued("--volumes-from"),
    valued("--workdir", "-w"),
    valued("--gpus"),
    valued("--kernel-memory"),
    valued("--signature-policy"),
)

RUN_OPTIONS: tuple[OptionSpec, ...] = _RUN_OWN + tuple(
    spec
    for spec in _persistent(namespace=("--namespace", "--ns"), network_config_dir=("--network-config-dir",))
    if spec.canonical != "--help"
)

_HARMLESS = (
    "--debug", "--noout", "--log-level", "--trace", "--syslog", "--max-workers",
    "--add-host", "--arch", "--attach", "--blkio-weight", "--blkio-weight-device", "--cap-drop", "--chrootdirs",
    "--cpu-period", "--cpu-quota", "--cpu-rt-period", "--cpu-rt-runtime", "--cpu-shares", "--cpus",
    "--cpuset-cpus", "--cpuset-mems", "--detach", "--detach-keys", "--device-read-bps", "--device-read-iops",
    "--device-write-bps", "--device-write-iops", "--disable-content-trust", "--dns", "--dns-option",
    "--dns-search", "--entrypoint", "--env", "--env-merge", "--expose", "--gidmap", "--health-cmd",
    "--health-interval", "--health-on-failure", "--health-retries", "--health-start-period", "--health-timeout",
    "--hostname", "--http-proxy", "--image-volume", "--init", "--interactive", "--ip", "--ip6", "--label",
    "--log-driver", "--mac-address", "--memory", "--memory-reservation", "--memory-swap", "--memory-swappiness",
    "--name", "--network-alias", "--no-healthcheck", "--no-hosts", "--oom-kill-disable", "--oom-score-adj",
    "--os", "--passwd", "--passwd-entry", "--personality", "--pids-limit", "--platform", "--pull", "--quiet",
    "--read-only", "--read-only-tmpfs", "--restart", "--rm", "--rmi", "--shm-size", "--sig-proxy",
    "--stop-signal", "--stop-timeout", "--subgidname", "--subuidname", "--systemd", "--timeout", "--tmpfs",
    "--tty", "--tz", "--uidmap", "--ulimit", "--umask", "--unsetenv", "--unsetenv-all", "--user", "--variant",
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
    groups = [g.strip() for g in (option.value or "").split(",")]
    if "keep-groups" in groups and not judge.named_allowed(option):
        raise ArgvRefused(
            "option-refused",
            option.spelling,
            f"{option.name} keep-groups gives the container the supplementary groups of the daemon's user on "
            f'the host; a site may allow it with allow_options: ["{option.name}"]',
        )


def _pod(option: Option, judge: rules.Judge) -> None:
    if (option.value or "").startswith("new:") or judge.rules.allow_host_namespaces:
        return
    raise ArgvRefused(
        "host-namespace",
        option.spelling,
        f"{option.name} puts the container in the namespaces of an existing pod; a site may allow it with "
        "allow_host_namespaces: true",
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
        "--mount": rules.mount(types=("bind", "volume", "tmpfs", "image", "devpts", "ramfs")),
        "--volumes-from": rules.volumes_from,
        "--env-file": rules.host_file(_READS, writes=False),
        "--label-file": rules.host_file(_READS, writes=False),
        "--authfile": rules.host_file(_READS, writes=False),
        # podman binds the init binary into the container read-only.
        "--init-path": rules.host_file(_READS, writes=False),
        "--cidfile": rules.host_file(_WRITES, writes=True),
        "--pidfile": rules.host_file(_WRITES, writes=True),
        "--conmon-pidfile": rules.host_file(_WRITES, writes=True),
        "--log-opt": rules.log_opt,
        "--sysctl": rules.sysctl(comma_separated=True),
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
    for option in invocation.options:
        if option.name == "--rootfs" and option.value == "true" and invocation.image is not None:
            rules.rootfs_image(option, judge, invocation.image)


GRAMMAR = Grammar(kind=KIND, parse=parse, check=check, subcommands=oci.SUBCOMMANDS)
