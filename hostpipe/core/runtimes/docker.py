"""How the docker CLI (28.x) reads `docker [global options] run [options] IMAGE [COMMAND] [ARG...]`.

The option tables follow the docker CLI's own definitions (cli/flags/options.go and cli/cobra.go for the
global options, cli/command/container/run.go and opts.go for `run`), hidden spellings included (`--net`,
`--net-alias`, `--dns-opt`). docker reads its global options with pflag up to the first positional word,
then `run` reads its own, also up to the first positional word, which is the image.

Every option has a rule (see `oci_checks`). What is refused by default, and the knob that relaxes it:
privileged mode, capabilities beyond the baseline set (allow_capabilities), host or shared namespaces
(allow_host_namespaces), the host network (allow_host_network), devices and GPUs (allow_devices), published
ports (allow_ports), security profiles other than the defaults (allow_unconfined), binds and host files
outside bind_roots (or, where only read, outside read_only_roots: see `oci_checks`), `--volumes-from`,
sysctls outside the baseline set, the options that point the CLI at another daemon, context, configuration
or TLS identity, and a few options that reach into the engine (`--runtime`, `--cgroup-parent`,
`--annotation`, `--volume-driver`); those give way to allow_options.
`--use-api-socket` and binds of an engine socket are never allowed. Environment passed into the container
(`-e DOCKER_HOST=...`) is harmless: it changes nothing for the CLI hostpipe runs.
"""

from __future__ import annotations

from hostpipe.core.runtimes import oci
from hostpipe.core.runtimes import oci_checks as rules
from hostpipe.core.runtimes.base import (
    ArgumentRules,
    ArgvRefused,
    Grammar,
    Host,
    Invocation,
    Option,
    OptionSpec,
)
from hostpipe.core.runtimes.oci import switch, valued

KIND = "docker"

GLOBAL_OPTIONS: tuple[OptionSpec, ...] = (
    valued("--config"),
    valued("--context", "-c"),
    switch("--debug", "-D"),
    valued("--host", "-H"),
    valued("--log-level", "-l"),
    switch("--tls"),
    valued("--tlscacert"),
    valued("--tlscert"),
    valued("--tlskey"),
    switch("--tlsverify"),
    switch("--version", "-v"),
    switch("--help", "-h"),
)

RUN_OPTIONS: tuple[OptionSpec, ...] = (
    switch("--detach", "-d"),
    switch("--sig-proxy"),
    valued("--name"),
    valued("--detach-keys"),
    valued("--pull"),
    switch("--quiet", "-q"),
    switch("--use-api-socket"),
    switch("--help"),
    valued("--platform"),
    switch("--disable-content-trust"),
    valued("--attach", "-a"),
    valued("--device-cgroup-rule"),
    valued("--device"),
    valued("--gpus"),
    valued("--env", "-e"),
    valued("--env-file"),
    valued("--entrypoint"),
    valued("--group-add"),
    valued("--hostname", "-h"),
    valued("--domainname"),
    switch("--interactive", "-i"),
    valued("--label", "-l"),
    valued("--label-file"),
    switch("--read-only"),
    valued("--restart"),
    valued("--stop-signal"),
    valued("--stop-timeout"),
    valued("--sysctl"),
    switch("--tty", "-t"),
    valued("--ulimit"),
    valued("--user", "-u"),
    valued("--workdir", "-w"),
    switch("--rm"),
    valued("--cap-add"),
    valued("--cap-drop"),
    switch("--privileged"),
    valued("--security-opt"),
    valued("--userns"),
    valued("--cgroupns"),
    valued("--add-host"),
    valued("--dns"),
    valued("--dns-option", "--dns-opt"),
    valued("--dns-search"),
    valued("--expose"),
    valued("--ip"),
    valued("--ip6"),
    valued("--link"),
    valued("--link-local-ip"),
    valued("--mac-address"),
    valued("--publish", "-p"),
    switch("--publish-all", "-P"),
    valued("--network", "--net"),
    valued("--network-alias", "--net-alias"),
    valued("--log-driver"),
    valued("--volume-driver"),
    valued("--log-opt"),
    valued("--storage-opt"),
    valued("--tmpfs"),
    valued("--volumes-from"),
    valued("--volume", "-v"),
    valued("--mount"),
    valued("--health-cmd"),
    valued("--health-interval"),
    valued("--health-retries"),
    valued("--health-timeout"),
    valued("--health-start-period"),
    valued("--health-start-interval"),
    switch("--no-healthcheck"),
    valued("--blkio-weight"),
    valued("--blkio-weight-device"),
    valued("--cidfile"),
    valued("--cpuset-cpus"),
    valued("--cpuset-mems"),
    valued("--cpu-count"),
    valued("--cpu-percent"),
    valued("--cpu-period"),
    valued("--cpu-quota"),
    valued("--cpu-rt-period"),
    valued("--cpu-rt-runtime"),
    valued("--cpu-shares", "-c"),
    valued("--cpus"),
    valued("--device-read-bps"),
    valued("--device-read-iops"),
    valued("--device-write-bps"),
    valued("--device-write-iops"),
    valued("--io-maxbandwidth"),
    valued("--io-maxiops"),
    valued("--kernel-memory"),
    valued("--memory", "-m"),
    valued("--memory-reservation"),
    valued("--memory-swap"),
    valued("--memory-swappiness"),
    switch("--oom-kill-disable"),
    valued("--oom-score-adj"),
    valued("--pids-limit"),
    valued("--cgroup-parent"),
    valued("--ipc"),
    valued("--isolation"),
    valued("--pid"),
    valued("--shm-size"),
    valued("--uts"),
    valued("--runtime"),
    switch("--init"),
    valued("--annotation"),
)

_HARMLESS = (
    "--debug", "--log-level",
    "--detach", "--sig-proxy", "--name", "--detach-keys", "--pull", "--quiet", "--platform", "--attach",
    "--env", "--entrypoint", "--group-add", "--hostname", "--domainname", "--interactive", "--label",
    "--read-only", "--restart", "--stop-signal", "--stop-timeout", "--tty", "--ulimit", "--user", "--workdir",
    "--rm", "--cap-drop", "--add-host", "--dns", "--dns-option", "--dns-search", "--expose", "--ip", "--ip6",
    "--link", "--link-local-ip", "--mac-address", "--network-alias", "--log-driver", "--storage-opt",
    "--tmpfs", "--health-cmd", "--health-interval", "--health-retries", "--health-timeout",
    "--health-start-period", "--health-start-interval", "--no-healthcheck", "--blkio-weight",
    "--blkio-weight-device", "--cpuset-cpus", "--cpuset-mems", "--cpu-count", "--cpu-percent",
    "--cpu-period", "--cpu-quota", "--cpu-rt-period", "--cpu-rt-runtime", "--cpu-shares", "--cpus",
    "--device-read-bps", "--device-read-iops", "--device-write-bps", "--device-write-iops",
    "--io-maxbandwidth", "--io-maxiops", "--kernel-memory", "--memory", "--memory-reservation",
    "--memory-swap", "--memory-swappiness", "--oom-kill-disable", "--oom-score-adj", "--pids-limit",
    "--isolation", "--shm-size", "--init",
)  # fmt: skip


def _engine_socket(option: Option, judge: rules.Judge) -> None:
    if option.value != "false":
        raise ArgvRefused(
            "engine-socket",
            option.spelling,
            f"{option.name} binds the docker API socket into the container; hostpipe never lets a pod reach the engine",
        )


RULES: dict[str, rules.Rule] = {name: rules.harmless for name in _HARMLESS} | {
    # Global options that choose another daemon, context, configuration or TLS identity.
    "--config": rules.daemon_option,
    "--context": rules.daemon_option,
    "--host": rules.daemon_option,
    "--tls": rules.daemon_option,
    "--tlscacert": rules.daemon_option,
    "--tlscert": rules.daemon_option,
    "--tlskey": rules.daemon_option,
    "--tlsverify": rules.daemon_option,
    "--version": rules.refused_when_true("option-refused", "prints information instead of running"),
    "--help": rules.refused_when_true("option-refused", "prints help instead of running"),
    "--privileged": rules.privileged,
    "--cap-add": rules.capabilities,
    "--security-opt": rules.security_opt,
    "--pid": rules.namespace(safe=("", "private"), what="PID"),
    "--ipc": rules.namespace(safe=("", "none", "private", "shareable"), what="IPC"),
    "--uts": rules.namespace(safe=("", "private"), what="UTS"),
    "--userns": rules.namespace(safe=("", "private"), what="user"),
    "--cgroupns": rules.namespace(safe=("", "private"), what="cgroup"),
    "--network": rules.docker_network,
    "--publish": rules.ports,
    "--publish-all": rules.publish_all,
    "--device": rules.devices,
    "--device-cgroup-rule": rules.devices,
    "--gpus": rules.devices,
    "--volume": rules.volume,
    "--mount": rules.mount(types=("bind", "volume", "tmpfs")),
    "--volumes-from": rules.volumes_from,
    "--env-file": rules.host_file("reads the host file", writes=False),
    "--label-file": rules.host_file("reads the host file", writes=False),
    "--cidfile": rules.host_file("writes the host file", writes=True),
    "--log-opt": rules.log_opt,
    "--sysctl": rules.sysctl(comma_separated=False),
    "--use-api-socket": _engine_socket,
    "--disable-content-trust": rules.refused_when_true(
        "insecure-registry", "skips the image signature checks a site may require with DOCKER_CONTENT_TRUST"
    ),
    "--runtime": rules.refused("option-refused", "picks another OCI runtime than the engine's default"),
    "--cgroup-parent": rules.refused("option-refused", "places the container in a host cgroup of its choice"),
    "--annotation": rules.refused("option-refused", "passes annotations that steer the OCI runtime"),
    "--volume-driver": rules.refused(
        "option-refused", "hands volumes to a volume plugin, which may bind any host path"
    ),
}

DIALECT = oci.Dialect(
    kind=KIND,
    global_options=GLOBAL_OPTIONS,
    run_options=RUN_OPTIONS,
    cobra_traverse=False,
    rules=RULES,
)


def parse(words: tuple[str, ...]) -> Invocation:
    """Reads argv[1:] of a docker command line. Raises ArgvRefused."""
    return oci.parse(words, DIALECT)


def check(invocation: Invocation, argument_rules: ArgumentRules, host: Host) -> None:
    """Judges a parsed `docker run` against a site's rules. Raises ArgvRefused."""
    oci.check(invocation, argument_rules, host, DIALECT)


GRAMMAR = Grammar(kind=KIND, parse=parse, check=check, subcommands=oci.SUBCOMMANDS)
