"""How the docker CLI (28.x) reads `docker [global options] run [options] IMAGE [COMMAND] [ARG...]`.

The option tables follow the docker CLI's own definitions (cli/flags/options.go and cli/cobra.go for the
global options, cli/command/container/run.go and opts.go for `run`), hidden spellings included (`--net`,
`--net-alias`, `--dns-opt`), each with the Go type that holds its value. docker reads its global options with
pflag up to the first positional word, then `run` reads its own, also up to the first positional word, which
is the image. docker's list options (opts.ListOpts) keep every value whole; its own option types parse the
value themselves, and their rules read it as they do: `--network` and `--mount` as CSV with the fields
lower-cased (`name=HOST` is the host network, `bind-propagation=RSHARED` is rshared), sizes with
docker/go-units, numbers with strconv (`--pids-limit 010` is 8).

Every option has a rule (see `oci_checks` and `oci_limits`). What is refused by default, and the knob that
relaxes it:
privileged mode, capabilities beyond the baseline set (allow_capabilities), host or shared namespaces
(allow_host_namespaces), the host network (allow_host_network), devices and GPUs (allow_devices), published
ports (allow_ports), security profiles other than the defaults (allow_unconfined), binds and host files
outside bind_roots (or, where only read, outside read_only_roots: see `oci_checks`), `--volumes-from`,
sysctls outside the baseline set, the options that point the CLI at another daemon, context, configuration
or TLS identity, and a few options that reach into the engine (`--runtime`, `--cgroup-parent`,
`--annotation`, `--volume-driver`, `--link`); those give way to allow_options. Log drivers and log options that
have the engine connect somewhere from the host (allow_log_drivers, allow_log_options), `--mount type=image`
(allow_image_mounts), restart policies (allow_restart), and resources beyond the site's numbers (pids,
OOM score, ulimits, tmpfs and storage sizes, real-time CPU: see `oci_limits`).
`--use-api-socket`, a line's own `--cidfile` and binds of an engine socket are never allowed. Environment
passed into the container (`-e DOCKER_HOST=...`) is harmless: it changes nothing for the CLI hostpipe runs.
"""

from __future__ import annotations

from hostpipe.core.runtimes import oci
from hostpipe.core.runtimes import oci_checks as rules
from hostpipe.core.runtimes import oci_limits as limits
from hostpipe.core.runtimes.base import (
    ArgumentRules,
    ArgvRefused,
    Grammar,
    Host,
    Invocation,
    Option,
    OptionSpec,
)
from hostpipe.core.runtimes.base import ValueType as T
from hostpipe.core.runtimes.oci import switch, valued

KIND = "docker"

GLOBAL_OPTIONS: tuple[OptionSpec, ...] = (
    valued(T.STRING, "--config"),
    valued(T.STRING, "--context", "-c"),
    switch("--debug", "-D"),
    valued(T.LIST, "--host", "-H"),
    valued(T.STRING, "--log-level", "-l"),
    switch("--tls"),
    valued(T.QUOTED_STRING, "--tlscacert"),
    valued(T.QUOTED_STRING, "--tlscert"),
    valued(T.QUOTED_STRING, "--tlskey"),
    switch("--tlsverify"),
    switch("--version", "-v"),
    switch("--help", "-h"),
)

RUN_OPTIONS: tuple[OptionSpec, ...] = (
    switch("--detach", "-d"),
    switch("--sig-proxy"),
    valued(T.STRING, "--name"),
    valued(T.STRING, "--detach-keys"),
    valued(T.STRING, "--pull"),
    switch("--quiet", "-q"),
    switch("--use-api-socket"),
    switch("--help"),
    valued(T.STRING, "--platform"),
    switch("--disable-content-trust"),
    valued(T.LIST, "--attach", "-a"),
    valued(T.LIST, "--device-cgroup-rule"),
    valued(T.LIST, "--device"),
    valued(T.GPUS, "--gpus"),
    valued(T.LIST, "--env", "-e"),
    valued(T.LIST, "--env-file"),
    valued(T.STRING, "--entrypoint"),
    valued(T.LIST, "--group-add"),
    valued(T.STRING, "--hostname", "-h"),
    valued(T.STRING, "--domainname"),
    switch("--interactive", "-i"),
    valued(T.LIST, "--label", "-l"),
    valued(T.LIST, "--label-file"),
    switch("--read-only"),
    valued(T.STRING, "--restart"),
    valued(T.STRING, "--stop-signal"),
    valued(T.INT, "--stop-timeout"),
    valued(T.MAP, "--sysctl"),
    switch("--tty", "-t"),
    valued(T.ULIMIT, "--ulimit"),
    valued(T.STRING, "--user", "-u"),
    valued(T.STRING, "--workdir", "-w"),
    switch("--rm"),
    valued(T.LIST, "--cap-add"),
    valued(T.LIST, "--cap-drop"),
    switch("--privileged"),
    valued(T.LIST, "--security-opt"),
    valued(T.STRING, "--userns"),
    valued(T.STRING, "--cgroupns"),
    valued(T.LIST, "--add-host"),
    valued(T.LIST, "--dns"),
    valued(T.LIST, "--dns-option", "--dns-opt"),
    valued(T.LIST, "--dns-search"),
    valued(T.LIST, "--expose"),
    valued(T.STRING, "--ip"),
    valued(T.STRING, "--ip6"),
    valued(T.LIST, "--link"),
    valued(T.LIST, "--link-local-ip"),
    valued(T.STRING, "--mac-address"),
    valued(T.LIST, "--publish", "-p"),
    switch("--publish-all", "-P"),
    valued(T.NETWORK, "--network", "--net"),
    valued(T.LIST, "--network-alias", "--net-alias"),
    valued(T.STRING, "--log-driver"),
    valued(T.STRING, "--volume-driver"),
    valued(T.LIST, "--log-opt"),
    valued(T.LIST, "--storage-opt"),
    valued(T.LIST, "--tmpfs"),
    valued(T.LIST, "--volumes-from"),
    valued(T.LIST, "--volume", "-v"),
    valued(T.MOUNT, "--mount"),
    valued(T.STRING, "--health-cmd"),
    valued(T.DURATION, "--health-interval"),
    valued(T.INT, "--health-retries"),
    valued(T.DURATION, "--health-timeout"),
    valued(T.DURATION, "--health-start-period"),
    valued(T.DURATION, "--health-start-interval"),
    switch("--no-healthcheck"),
    valued(T.UINT16, "--blkio-weight"),
    valued(T.WEIGHT_DEVICE, "--blkio-weight-device"),
    valued(T.STRING, "--cidfile"),
    valued(T.STRING, "--cpuset-cpus"),
    valued(T.STRING, "--cpuset-mems"),
    valued(T.INT64, "--cpu-count"),
    valued(T.INT64, "--cpu-percent"),
    valued(T.INT64, "--cpu-period"),
    valued(T.INT64, "--cpu-quota"),
    valued(T.INT64, "--cpu-rt-period"),
    valued(T.INT64, "--cpu-rt-runtime"),
    valued(T.INT64, "--cpu-shares", "-c"),
    valued(T.NANO_CPUS, "--cpus"),
    valued(T.THROTTLE_DEVICE, "--device-read-bps"),
    valued(T.THROTTLE_DEVICE, "--device-read-iops"),
    valued(T.THROTTLE_DEVICE, "--device-write-bps"),
    valued(T.THROTTLE_DEVICE, "--device-write-iops"),
    valued(T.MEM_BYTES, "--io-maxbandwidth"),
    valued(T.UINT64, "--io-maxiops"),
    valued(T.MEM_BYTES, "--kernel-memory"),
    valued(T.MEM_BYTES, "--memory", "-m"),
    valued(T.MEM_BYTES, "--memory-reservation"),
    valued(T.MEM_SWAP_BYTES, "--memory-swap"),
    valued(T.INT64, "--memory-swappiness"),
    switch("--oom-kill-disable"),
    valued(T.INT, "--oom-score-adj"),
    valued(T.INT64, "--pids-limit"),
    valued(T.STRING, "--cgroup-parent"),
    valued(T.STRING, "--ipc"),
    valued(T.STRING, "--isolation"),
    valued(T.STRING, "--pid"),
    valued(T.MEM_BYTES, "--shm-size"),
    valued(T.STRING, "--uts"),
    valued(T.STRING, "--runtime"),
    switch("--init"),
    valued(T.MAP, "--annotation"),
)

_HARMLESS = (
    "--debug", "--log-level",
    "--detach", "--sig-proxy", "--name", "--detach-keys", "--pull", "--quiet", "--platform", "--attach",
    "--env", "--entrypoint", "--group-add", "--hostname", "--domainname", "--interactive", "--label",
    "--read-only", "--stop-signal", "--stop-timeout", "--tty", "--user", "--workdir",
    "--rm", "--cap-drop", "--add-host", "--dns", "--dns-option", "--dns-search", "--expose", "--ip", "--ip6",
    "--link-local-ip", "--mac-address", "--network-alias",
    "--health-cmd", "--health-interval", "--health-retries", "--health-timeout",
    "--health-start-period", "--health-start-interval", "--no-healthcheck", "--blkio-weight",
    "--blkio-weight-device", "--cpuset-cpus", "--cpuset-mems", "--cpu-count", "--cpu-percent",
    "--cpu-period", "--cpu-quota", "--cpu-shares", "--cpus",
    "--device-read-bps", "--device-read-iops", "--device-write-bps", "--device-write-iops",
    "--io-maxbandwidth", "--io-maxiops", "--kernel-memory", "--memory", "--memory-reservation",
    "--memory-swap", "--memory-swappiness",
    "--isolation", "--init",
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
    "--mount": rules.mount(types=("bind", "volume", "tmpfs", "image")),
    "--volumes-from": rules.volumes_from,
    "--env-file": rules.host_file("reads the host file", writes=False),
    "--label-file": rules.host_file("reads the host file", writes=False),
    "--cidfile": limits.cidfile,
    "--log-driver": rules.log_driver,
    "--log-opt": rules.log_opt,
    "--tmpfs": rules.tmpfs,
    "--restart": limits.restart,
    "--pids-limit": limits.pids_limit,
    "--oom-score-adj": limits.oom_score_adj,
    "--oom-kill-disable": limits.oom_kill_disable,
    "--cpu-rt-runtime": limits.realtime_cpu,
    "--cpu-rt-period": limits.realtime_cpu,
    "--ulimit": limits.ulimit,
    "--shm-size": limits.shm_size,
    "--storage-opt": limits.storage_opt,
    "--link": rules.refused(
        "option-refused", "links another container, whose environment (and secrets in it) it copies into this one"
    ),
    "--sysctl": rules.sysctl,
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
