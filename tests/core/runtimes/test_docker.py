"""docker lines are read the way the docker 28 CLI reads them, and judged fail-closed against PSS baseline."""

from __future__ import annotations

import contextlib
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from host_tmp import TmpHost, build_host
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from oci_spelling import (
    HOME,
    Chosen,
    assert_cli_knows_every_option,
    assert_table_holds_listed_options,
    chosen_options,
    decide,
    permissive,
    real_cli,
    words_of,
    write,
)

from hostpipe.core.runtimes import docker
from hostpipe.core.runtimes.base import ArgumentRules, ArgvRefused

GRAMMAR = docker.GRAMMAR


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> TmpHost:
    base = tmp_path_factory.mktemp("docker")
    built = build_host(base)
    data = Path(built.home) / "data"
    # Links a pod could plant inside an opened folder, pointing at an engine socket or at its folder.
    (data / "sock_link").symlink_to("/run/docker.sock")
    (data / "run_link").symlink_to("/run")
    (data / "x.env").write_text("A=b\n")
    return built


def parsed(line: str, host: TmpHost) -> Any:
    return GRAMMAR.parse(words_of(line, host))


# --- reading -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "globals_", "options", "image", "args"),
    [
        # The plainest line: no options, an image, no command.
        ("docker run godlovedc/lolcow:latest", [], [], "godlovedc/lolcow:latest", []),
        # Words after the image are the command, even when they look like docker options.
        ("docker run ubuntu ls -la --privileged", [], [], "ubuntu", ["ls", "-la", "--privileged"]),
        # `container run` is the same command as `run`.
        (
            "docker container run -it --rm ubuntu",
            [],
            [("--interactive", "true"), ("--tty", "true"), ("--rm", "true")],
            "ubuntu",
            [],
        ),
        # `--` ends the options; the image is the next word, and later `--` belong to the command.
        ("docker run --rm -- ubuntu -- --privileged", [], [("--rm", "true")], "ubuntu", ["--", "--privileged"]),
        # Global options before the subcommand, with their short forms: -l is the log level there.
        ("docker -D -l debug run ubuntu", [("--debug", "true"), ("--log-level", "debug")], [], "ubuntu", []),
        # After `run`, -l is a label, -h a hostname and -c CPU shares, not their global namesakes.
        (
            "docker run -l a=b -h box -c 512 ubuntu",
            [],
            [("--label", "a=b"), ("--hostname", "box"), ("--cpu-shares", "512")],
            "ubuntu",
            [],
        ),
        # `--` among the global options ends them; docker then reads the subcommand as usual.
        ("docker -D -- run ubuntu", [("--debug", "true")], [], "ubuntu", []),
        # The hidden spellings docker still reads report their canonical names.
        (
            "docker run --net=none --net-alias a --dns-opt x ubuntu",
            [],
            [("--network", "none"), ("--network-alias", "a"), ("--dns-option", "x")],
            "ubuntu",
            [],
        ),
        # A boolean never takes the next word: here "false" is the image.
        ("docker run --privileged false", [], [("--privileged", "true")], "false", []),
    ],
)
def test_reads_argv_the_way_the_docker_cli_does(
    line: str, globals_: list[Any], options: list[Any], image: str, args: list[str], host: TmpHost
) -> None:
    """Global options, run options, image and command come out as the docker CLI splits them."""
    invocation = parsed(line, host)
    assert invocation.kind == "docker"
    assert invocation.subcommand == "run"
    assert [(o.name, o.value) for o in invocation.global_options] == globals_
    assert [(o.name, o.value) for o in invocation.options] == options
    assert invocation.image == image
    assert list(invocation.args) == args


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        # hostpipe runs containers; every other subcommand is refused while reading.
        ("docker ps", "subcommand"),
        ("docker exec box sh", "subcommand"),
        ("docker container ls", "subcommand"),
        ("docker container", "subcommand"),
        ("docker build .", "subcommand"),
        ("docker", "subcommand"),
        ("docker -D", "subcommand"),
        # run without an image.
        ("docker run", "missing-image"),
        ("docker run -it --rm", "missing-image"),
        ("docker run -- ''", "missing-image"),
        # Options docker does not define, including run options before `run` and globals after it.
        ("docker run --bogus ubuntu", "unknown-option"),
        ("docker --privileged run ubuntu", "unknown-option"),
        ("docker run -H tcp://x ubuntu", "unknown-option"),
        ("docker run -itx ubuntu", "unknown-option"),
        # A value option with nothing after it.
        ("docker run --name", "missing-value"),
        ("docker -H", "missing-value"),
        # A boolean with a value docker rejects.
        ("docker run --privileged=yes ubuntu", "bad-boolean"),
    ],
)
def test_refuses_argv_it_cannot_read_as_docker_run(line: str, rule: str, host: TmpHost) -> None:
    """Lines that are not `docker run IMAGE`, or that docker itself would reject, are refused by name."""
    with pytest.raises(ArgvRefused) as refused:
        parsed(line, host)
    assert refused.value.rule == rule


# --- rules -------------------------------------------------------------------------------------------------

NET = {"allow_host_network": True}
NS = {"allow_host_namespaces": True}
DATA = {"bind_roots": ("~/data",)}

CASES: list[tuple[str, dict[str, Any], str | None]] = [
    # Privileged mode, in every spelling pflag reads, and only when true.
    ("docker run --privileged ubuntu", {}, "privileged"),
    ("docker run --privileged=true ubuntu", {}, "privileged"),
    ("docker run --privileged=1 ubuntu", {}, "privileged"),
    ("docker container run -it --privileged ubuntu", {}, "privileged"),
    ("docker run --privileged=false ubuntu", {}, None),
    # Every occurrence counts, even one a later occurrence would override.
    ("docker run --privileged --privileged=false ubuntu", {}, "privileged"),
    ("docker run --privileged ubuntu", {"allow_options": ("--privileged",)}, None),
    # The same words as the container's command are not docker's business.
    ("docker run ubuntu --privileged", {}, None),
    ("docker run -- ubuntu --privileged", {}, None),
    # Capabilities: beyond the baseline set, with or without CAP_, any case, ALL.
    ("docker run --cap-add=SYS_ADMIN ubuntu", {}, "capabilities"),
    ("docker run --cap-add sys_admin ubuntu", {}, "capabilities"),
    ("docker run --cap-add CAP_SYS_ADMIN ubuntu", {}, "capabilities"),
    ("docker run --cap-add=ALL ubuntu", {}, "capabilities"),
    ("docker run --cap-add all ubuntu", {"allow_capabilities": ("SYS_ADMIN",)}, "capabilities"),
    ("docker run --cap-add NET_BIND_SERVICE,SYS_PTRACE ubuntu", {}, "capabilities"),
    ("docker run --cap-add 'SYS ADMIN' ubuntu", {}, "capabilities"),
    ("docker run --cap-add=CHOWN --cap-add cap_kill ubuntu", {}, None),
    ("docker run --cap-add cap_net_admin ubuntu", {"allow_capabilities": ("NET_ADMIN",)}, None),
    ("docker run --cap-add SYS_ADMIN --cap-add ALL ubuntu", {"allow_capabilities": ("ALL",)}, None),
    ("docker run --cap-add NET_ADMIN ubuntu", {"allow_capabilities": ("cap_net_admin",)}, None),
    ("docker run --cap-drop ALL ubuntu", {}, None),
    # Host namespaces and other containers' namespaces.
    ("docker run --pid=host ubuntu", {}, "host-namespace"),
    ("docker run --pid host ubuntu", {}, "host-namespace"),
    ("docker run --pid container:db ubuntu", {}, "host-namespace"),
    ("docker run --ipc host ubuntu", {}, "host-namespace"),
    ("docker run --ipc=container:db ubuntu", {}, "host-namespace"),
    ("docker run --uts=host ubuntu", {}, "host-namespace"),
    ("docker run --userns=host ubuntu", {}, "host-namespace"),
    ("docker run --cgroupns=host ubuntu", {}, "host-namespace"),
    ("docker run --ipc=shareable --cgroupns private ubuntu", {}, None),
    ("docker run --pid=host --uts host ubuntu", NS, None),
    # Host network, and the ways docker can be told to use it.
    ("docker run --network=host ubuntu", {}, "host-network"),
    ("docker run --network host ubuntu", {}, "host-network"),
    ("docker run --net=host ubuntu", {}, "host-network"),
    ("docker run --net host ubuntu", {}, "host-network"),
    ("docker run --network container:db ubuntu", {}, "host-network"),
    ("docker run --network name=host,alias=a ubuntu", {}, "host-network"),
    ("docker run --network 3f2a ubuntu", {}, "host-network"),
    ("docker run --network none ubuntu", {}, None),
    ("docker run --network bridge ubuntu", {}, None),
    ("docker run --network my-net ubuntu", {}, None),
    ("docker run --net=host ubuntu", NET, None),
    # Devices and GPUs.
    ("docker run --device /dev/fuse ubuntu", {}, "devices"),
    ("docker run --device=/dev/kvm:/dev/kvm:rwm ubuntu", {}, "devices"),
    ("docker run --device-cgroup-rule 'c 10:200 rwm' ubuntu", {}, "devices"),
    ("docker run --gpus all ubuntu", {}, "devices"),
    ("docker run --gpus=all ubuntu", {"allow_devices": True}, None),
    # Security profiles: unconfined in either syntax, custom ones, and turning no-new-privileges off.
    ("docker run --security-opt seccomp=unconfined ubuntu", {}, "unconfined"),
    ("docker run --security-opt seccomp:unconfined ubuntu", {}, "unconfined"),
    ("docker run --security-opt=apparmor=unconfined ubuntu", {}, "unconfined"),
    ("docker run --security-opt apparmor:unconfined ubuntu", {}, "unconfined"),
    ("docker run --security-opt label=disable ubuntu", {}, "unconfined"),
    ("docker run --security-opt label:disable ubuntu", {}, "unconfined"),
    ("docker run --security-opt label=type:spc_t ubuntu", {}, "unconfined"),
    ("docker run --security-opt systempaths=unconfined ubuntu", {}, "unconfined"),
    ("docker run --security-opt no-new-privileges=false ubuntu", {}, "unconfined"),
    ("docker run --security-opt seccomp=/etc/profile.json ubuntu", {}, "unconfined"),
    ("docker run --security-opt no-new-privileges ubuntu", {}, None),
    ("docker run --security-opt no-new-privileges:true ubuntu", {}, None),
    ("docker run --security-opt seccomp=unconfined ubuntu", {"allow_unconfined": True}, None),
    # Even where custom profiles are allowed, docker reads the profile file itself: it must be under a root.
    ("docker run --security-opt seccomp=/etc/passwd ubuntu", {"allow_unconfined": True}, "host-file"),
    ("docker run --security-opt seccomp=@HOME/data/x.env ubuntu", {"allow_unconfined": True, **DATA}, None),
    # Published ports.
    ("docker run -p 8080:80 ubuntu", {}, "ports"),
    ("docker run -p8080:80 ubuntu", {}, "ports"),
    ("docker run --publish=80 ubuntu", {}, "ports"),
    ("docker run -P ubuntu", {}, "ports"),
    ("docker run -dP ubuntu", {}, "ports"),
    ("docker run --publish-all=true ubuntu", {}, "ports"),
    ("docker run -P=false ubuntu", {}, None),
    # "false" is a (bad) port spec for -p, not a boolean: still a published port.
    ("docker run -p false ubuntu", {}, "ports"),
    ("docker run -p 80 ubuntu", {"allow_ports": True}, None),
    # Binds: the host path must resolve under a bind root, through symlinks and `..`.
    ("docker run -v /etc:/e ubuntu", {}, "bind-outside-roots"),
    ("docker run --volume=/etc:/e:ro ubuntu", {}, "bind-outside-roots"),
    ("docker run -itv/etc:/e ubuntu", {}, "bind-outside-roots"),
    ("docker run -v /proc:/host_proc ubuntu", {}, "bind-outside-roots"),
    ("docker run -v /proc:/host_proc ubuntu", {"bind_roots": ("/proc",)}, None),
    ("docker run -v @HOME/data:/d ubuntu", DATA, None),
    ("docker run -v @HOME/data/x:/d:ro ubuntu", DATA, None),
    ("docker run -v @HOME/data/../outside:/o ubuntu", DATA, "bind-outside-roots"),
    ("docker run -v @HOME/link_to_etc:/e ubuntu", {"bind_roots": ("~",)}, "bind-outside-roots"),
    ("docker run -v ./data:/d ubuntu", DATA, None),
    ("docker run -v ./data:/d ubuntu", {}, "bind-outside-roots"),
    ("docker run -v ~/data:/d ubuntu", DATA, "bind-outside-roots"),
    ("docker run --mount type=bind,source=/etc,target=/e ubuntu", {}, "bind-outside-roots"),
    ("docker run --mount=type=bind,src=/etc,dst=/e,readonly ubuntu", {}, "bind-outside-roots"),
    ("docker run --mount Type=Bind,Src=/etc,dst=/e ubuntu", {}, "bind-outside-roots"),
    ("docker run --mount type=bind,src=@HOME/data,dst=/d ubuntu", DATA, None),
    ("docker run --mount type=bind,src=@HOME/data,src=/etc,dst=/d ubuntu", DATA, "bind-outside-roots"),
    # Named and anonymous volumes and sized tmpfs stay inside the engine.
    ("docker run -v cache:/cache -v /scratch --tmpfs /t:size=64m ubuntu", {}, None),
    (
        "docker run --mount type=volume,src=cache,dst=/c --mount dst=/anon --mount type=tmpfs,dst=/t,tmpfs-size=64m "
        "ubuntu",
        {},
        None,
    ),
    # The engine socket, its folders, and links to it are refused even where every path is open.
    ("docker run -v /var/run/docker.sock:/var/run/docker.sock ubuntu", {"bind_roots": ("/",)}, "engine-socket"),
    ("docker run -v /run:/r ubuntu", {"bind_roots": ("/",)}, "engine-socket"),
    ("docker run -v /:/host ubuntu", {"bind_roots": ("/",)}, "engine-socket"),
    ("docker run -v @HOME/data/sock_link:/s ubuntu", DATA, "engine-socket"),
    ("docker run -v @HOME/data/run_link:/r ubuntu", DATA, "engine-socket"),
    ("docker run --mount type=bind,src=/run/docker.sock,dst=/s ubuntu", {"bind_roots": ("/",)}, "engine-socket"),
    ("docker run --use-api-socket ubuntu", {"allow_options": ("--use-api-socket",)}, "engine-socket"),
    # A site whose engine listens elsewhere (DOCKER_HOST in the runtime's env) has that socket guarded too.
    (
        "docker run -v /srv/engine:/e ubuntu",
        {"bind_roots": ("/srv",), "env": {"DOCKER_HOST": "unix:///srv/engine/docker-engine.sock"}},
        "engine-socket",
    ),
    ("docker run -v /srv/data:/d ubuntu", {"bind_roots": ("/srv",)}, None),
    ("docker run --use-api-socket=false ubuntu", {}, None),
    # Shared propagation links the container's mounts with the host's.
    ("docker run -v @HOME/data:/d:rshared ubuntu", DATA, "host-namespace"),
    ("docker run --mount type=bind,src=@HOME/data,dst=/d,bind-propagation=shared ubuntu", DATA, "host-namespace"),
    ("docker run -v @HOME/data:/d:rslave ubuntu", DATA, None),
    # Mount specs hostpipe cannot read without doubt.
    ("docker run -v a:b:c:d ubuntu", {}, "mount-syntax"),
    ("docker run -v /x:/y:exotic ubuntu", {}, "mount-syntax"),
    ("docker run --mount 'type=bind,\"src=/etc\",dst=/e' ubuntu", {}, "mount-syntax"),
    ("docker run --mount type=bind,type=volume,src=/etc,dst=/e ubuntu", {}, "mount-syntax"),
    ("docker run --mount type=volume,src=v,dst=/v,volume-driver=local ubuntu", {}, "mount-syntax"),
    ("docker run --mount type=volume,src=v,dst=/v,volume-opt=device=/etc ubuntu", {}, "mount-syntax"),
    ("docker run --mount type=npipe,src=x,dst=/x ubuntu", {}, "mount-syntax"),
    # Another container's volumes and binds.
    ("docker run --volumes-from db ubuntu", {}, "volumes-from"),
    ("docker run --volumes-from db ubuntu", {"allow_options": ("--volumes-from",)}, None),
    # Options that point the CLI at another daemon, context, configuration or TLS identity.
    ("docker -H tcp://x:2375 run ubuntu", {}, "daemon-option"),
    ("docker --host=unix:///tmp/d.sock run ubuntu", {}, "daemon-option"),
    ("docker -Htcp://x run ubuntu", {}, "daemon-option"),
    ("docker -DH tcp://x run ubuntu", {}, "daemon-option"),
    ("docker --context x run ubuntu", {}, "daemon-option"),
    ("docker -c x run ubuntu", {}, "daemon-option"),
    ("docker --config /tmp run ubuntu", {}, "daemon-option"),
    ("docker --tlsverify --tlscacert=/x run ubuntu", {}, "daemon-option"),
    ("docker -H tcp://x run ubuntu", {"allow_options": ("--host",)}, None),
    # Environment for the container is the container's: DOCKER_HOST inside it changes nothing here.
    ("docker run -e DOCKER_HOST=tcp://evil:2375 ubuntu", {}, None),
    # Host files the CLI reads or writes.
    ("docker run --env-file /etc/passwd ubuntu", {}, "host-file"),
    ("docker run --env-file=@HOME/data/x.env ubuntu", DATA, None),
    ("docker run --label-file /etc/hosts ubuntu", {}, "host-file"),
    # The container-id file is hostpipe's own, wherever a line would put it.
    ("docker run --cidfile /tmp/cid ubuntu", {}, "cidfile"),
    ("docker run --cidfile @HOME/data/cid ubuntu", {**DATA, "allow_options": ("--cidfile",)}, "cidfile"),
    # A log option a site opens that names a host file still needs the file under a bind root.
    ("docker run --log-opt syslog-tls-key=/root/key ubuntu", {}, "log-option"),
    ("docker run --log-opt syslog-tls-key=/root/key ubuntu", {"allow_log_options": ("syslog-tls-key",)}, "host-file"),
    ("docker run --log-opt max-size=10m ubuntu", {}, None),
    # Sysctls beyond PSS baseline's safe set.
    ("docker run --sysctl kernel.msgmax=1 ubuntu", {}, "sysctl"),
    ("docker run --sysctl=net.core.somaxconn=1024 ubuntu", {}, "sysctl"),
    ("docker run --sysctl net.ipv4.ip_unprivileged_port_start=0 --sysctl net/ipv4/tcp_syncookies=1 ubuntu", {}, None),
    ("docker run --sysctl kernel.msgmax=1 ubuntu", {"allow_options": ("--sysctl",)}, None),
    # Skipping image signature checks.
    ("docker run --disable-content-trust ubuntu", {}, "insecure-registry"),
    ("docker run --disable-content-trust=false ubuntu", {}, None),
    # Options that reach into the engine, or print instead of running.
    ("docker run --runtime=nvidia ubuntu", {}, "option-refused"),
    ("docker run --cgroup-parent=/x ubuntu", {}, "option-refused"),
    ("docker run --annotation a=b ubuntu", {}, "option-refused"),
    ("docker run --volume-driver=x ubuntu", {}, "option-refused"),
    ("docker run --help ubuntu", {}, "option-refused"),
    ("docker -v run ubuntu", {}, "option-refused"),
    ("docker --version run ubuntu", {}, "option-refused"),
    ("docker run --runtime=runc ubuntu", {"allow_options": ("--runtime",)}, None),
    # Everyday options are allowed.
    ("docker run -d --rm --name n -w /w -u 1000:1000 -e A=b -m 1g --cpus 2 --init --restart=no ubuntu", {}, None),
]


@pytest.mark.parametrize(("line", "rules", "expected"), CASES)
def test_judges_every_rule_in_every_spelling(
    line: str, rules: dict[str, Any], expected: str | None, host: TmpHost
) -> None:
    """Each rule refuses what it should in every spelling, and gives way to the knob that relaxes it."""
    assert decide(GRAMMAR, words_of(line, host), host, **rules) == expected


@pytest.mark.parametrize(
    "line", ["docker run godlovedc/lolcow:latest", "docker run ubuntu ls", "docker run stress:v1.0"]
)
def test_allows_plain_lines_by_default(line: str, host: TmpHost) -> None:
    """The everyday lines pods write are allowed by default rules."""
    assert decide(GRAMMAR, words_of(line, host), host) is None


@pytest.mark.parametrize(
    ("line", "rules"),
    [
        (
            "docker run -d --rm --name vd-ersap --network=host -e ERSAP_USER_DATA=/data "
            "--entrypoint=/ersap/run-pipeline.sh gurjyan/ersap:v0.4",
            {"allow_host_network": True},
        ),
        (
            "docker run -d --rm --net=host -v /proc:/host_proc jlabtsai/process-exporter:v1.0",
            {"allow_host_network": True, "bind_roots": ("/proc",)},
        ),
    ],
)
def test_refuses_jlab_lines_until_a_site_opens_them(line: str, rules: dict[str, Any], host: TmpHost) -> None:
    """The JLab ERSAP and process-exporter lines need the host network (and /proc): refused until granted."""
    assert decide(GRAMMAR, words_of(line, host), host) == "host-network"
    assert decide(GRAMMAR, words_of(line, host), host, **rules) is None
    if "bind_roots" in rules:
        # The network alone is not enough: /proc is still outside every root.
        assert decide(GRAMMAR, words_of(line, host), host, allow_host_network=True) == "bind-outside-roots"


def test_refusal_quotes_the_argument_and_names_the_knob(host: TmpHost) -> None:
    """A refusal carries the option exactly as written and tells a site how to relax it."""
    invocation = GRAMMAR.parse(("run", "--net", "host", "ubuntu"))
    with pytest.raises(ArgvRefused) as refused:
        GRAMMAR.check(invocation, ArgumentRules(), host)
    assert refused.value.argument == "--net host"
    assert "--network" in refused.value.reason
    assert "allow_host_network" in refused.value.reason


def test_grammar_reads_run_only() -> None:
    """The grammar says it reads `run`, under the kind the policy looks it up by."""
    assert (GRAMMAR.kind, GRAMMAR.subcommands) == ("docker", ("run",))


def test_every_option_has_a_rule() -> None:
    """No option docker reads is left without a rule, so none can slip through unjudged."""
    names = {s.canonical for s in docker.GLOBAL_OPTIONS + docker.RUN_OPTIONS}
    assert names <= set(docker.RULES)


# --- read-only roots --------------------------------------------------------------------------------------

RO = {"read_only_roots": ("~/data",)}
PROC = {"read_only_roots": ("/proc",)}

READ_ONLY_CASES: list[tuple[str, dict[str, Any], str | None]] = [
    # -v is read-only only with ro, given once, without rw, and without relabelling the host files.
    ("docker run -v @HOME/data:/d ubuntu", RO, "bind-read-write"),
    ("docker run -v @HOME/data:/d:ro ubuntu", RO, None),
    ("docker run --volume=@HOME/data/x:/x:ro ubuntu", RO, None),
    ("docker run --volume @HOME/data/x:/x ubuntu", RO, "bind-read-write"),
    ("docker run -itv@HOME/data:/d:ro ubuntu", RO, None),
    ("docker run -itv@HOME/data:/d ubuntu", RO, "bind-read-write"),
    ("docker run -v=@HOME/data:/d:rw ubuntu", RO, "bind-read-write"),
    ("docker run -v @HOME/data:/d:ro,rw ubuntu", RO, "bind-read-write"),
    ("docker run -v @HOME/data:/d:ro,ro ubuntu", RO, "bind-read-write"),
    ("docker run -v @HOME/data:/d:rslave ubuntu", RO, "bind-read-write"),
    ("docker run -v @HOME/data:/d:nocopy,ro,rslave ubuntu", RO, None),
    ("docker run -v @HOME/data:/d:z,ro ubuntu", RO, "bind-read-write"),
    ("docker run -v @HOME/data:/d:ro,Z ubuntu", RO, "bind-read-write"),
    # docker knows no `RO` and no `readonly` in -v: such a line is not read at all.
    ("docker run -v @HOME/data:/d:RO ubuntu", RO, "mount-syntax"),
    ("docker run -v @HOME/data:/d:readonly ubuntu", RO, "mount-syntax"),
    # --mount: exactly one ro/readonly field, bare or true in any spelling docker's ParseBool reads.
    ("docker run --mount type=bind,src=@HOME/data,dst=/d ubuntu", RO, "bind-read-write"),
    ("docker run --mount type=bind,src=@HOME/data,dst=/d,readonly ubuntu", RO, None),
    ("docker run --mount type=bind,source=@HOME/data,target=/d,ro ubuntu", RO, None),
    ("docker run --mount=type=bind,src=@HOME/data,dst=/d,ro=true ubuntu", RO, None),
    ("docker run --mount type=bind,src=@HOME/data,dst=/d,readonly=1 ubuntu", RO, None),
    ("docker run --mount type=bind,src=@HOME/data,dst=/d,readonly=T ubuntu", RO, None),
    ("docker run --mount Type=Bind,Src=@HOME/data,Dst=/d,RO=TRUE ubuntu", RO, None),
    ("docker run --mount type=bind,src=@HOME/data,dst=/d,ro=false ubuntu", RO, "bind-read-write"),
    ("docker run --mount type=bind,src=@HOME/data,dst=/d,readonly=0 ubuntu", RO, "bind-read-write"),
    ("docker run --mount type=bind,src=@HOME/data,dst=/d,ro=yes ubuntu", RO, "bind-read-write"),
    ("docker run --mount type=bind,src=@HOME/data,dst=/d,rw ubuntu", RO, "bind-read-write"),
    # docker lets the last of several ro fields win; hostpipe counts none of them.
    ("docker run --mount type=bind,src=@HOME/data,dst=/d,ro,ro=false ubuntu", RO, "bind-read-write"),
    ("docker run --mount type=bind,src=@HOME/data,dst=/d,ro=false,ro ubuntu", RO, "bind-read-write"),
    # bind-recursive=writable leaves the mounts below a read-only bind writable.
    (
        "docker run --mount type=bind,src=@HOME/data,dst=/d,readonly,bind-recursive=writable ubuntu",
        RO,
        "bind-read-write",
    ),
    ("docker run --mount type=bind,src=@HOME/data,dst=/d,readonly,bind-recursive=readonly ubuntu", RO, None),
    ("docker run --mount type=bind,src=@HOME/data,dst=/d,ro,bind-nonrecursive ubuntu", RO, None),
    # Symlinks and `..` resolve as they do for bind roots, relative paths from HOME.
    ("docker run -v @HOME/link_to_data:/d:ro ubuntu", RO, None),
    ("docker run -v @HOME/link_to_data:/d ubuntu", RO, "bind-read-write"),
    ("docker run -v ./data/x:/x:ro ubuntu", RO, None),
    ("docker run -v ./data/x:/x ubuntu", RO, "bind-read-write"),
    ("docker run -v @HOME/data/../data/x:/x ubuntu", RO, "bind-read-write"),
    ("docker run -v @HOME/data/..:/h:ro ubuntu", RO, "bind-outside-roots"),
    ("docker run -v @HOME/deep_link/../../../data:/d:ro ubuntu", RO, "bind-outside-roots"),
    ("docker run -v @HOME/link_to_etc:/e:ro ubuntu", {"read_only_roots": ("~",)}, "bind-outside-roots"),
    # A read-only root may itself be a symlink or be written with $HOME.
    ("docker run -v @HOME/data/x:/x ubuntu", {"read_only_roots": ("$HOME/link_to_data",)}, "bind-read-write"),
    ("docker run -v @HOME/data/x:/x:ro ubuntu", {"read_only_roots": ("$HOME/link_to_data",)}, None),
    # A path under a bind root stays read-write: a read-only root never narrows a bind root.
    ("docker run -v @HOME/data/x:/x ubuntu", {"bind_roots": ("~/data/x",), **RO}, None),
    ("docker run -v @HOME/data:/d ubuntu", {"bind_roots": ("~/data/x",), **RO}, "bind-read-write"),
    ("docker run -v @HOME/data:/d ubuntu", {"bind_roots": ("~/data",), **RO}, None),
    # The engine socket stays out of reach through a read-only root.
    ("docker run -v /run:/r:ro ubuntu", {"read_only_roots": ("/",)}, "engine-socket"),
    ("docker run -v @HOME/data/sock_link:/s:ro ubuntu", RO, "engine-socket"),
    # Files docker reads may lie under a read-only root; files it writes may not.
    ("docker run --env-file @HOME/data/x.env ubuntu", RO, None),
    ("docker run --label-file=@HOME/data/x.env ubuntu", RO, None),
    ("docker run --security-opt seccomp=@HOME/data/x.env ubuntu", {"allow_unconfined": True, **RO}, None),
    ("docker run --env-file /etc/passwd ubuntu", RO, "host-file"),
    (
        "docker run --log-opt syslog-tls-key=@HOME/data/key ubuntu",
        {"allow_log_options": ("syslog-tls-key",), **RO},
        "host-file",
    ),
    # The process exporter's bind of /proc, the reason read_only_roots exists.
    ("docker run -v /proc:/host_proc ubuntu", PROC, "bind-read-write"),
    ("docker run -v /proc:/host_proc:ro ubuntu", PROC, None),
    ("docker run --mount type=bind,src=/proc,dst=/host_proc,readonly ubuntu", PROC, None),
    ("docker run --mount type=bind,src=/proc,dst=/host_proc ubuntu", PROC, "bind-read-write"),
    ("docker run -v /proc/sys:/s ubuntu", PROC, "bind-read-write"),
]


@pytest.mark.parametrize(("line", "rules", "expected"), READ_ONLY_CASES)
def test_read_only_roots_admit_only_read_only_binds_in_every_spelling(
    line: str, rules: dict[str, Any], expected: str | None, host: TmpHost
) -> None:
    """Under a read-only root a bind must be read-only in a way docker honours; files only read are fine."""
    assert decide(GRAMMAR, words_of(line, host), host, **rules) == expected


@pytest.mark.parametrize(
    ("words", "argument", "fix"),
    [
        (("run", "-v", "/proc:/host_proc", "ubuntu"), "-v /proc:/host_proc", ":ro"),
        (("run", "--mount=type=bind,src=/proc,dst=/p", "ubuntu"), "--mount=type=bind,src=/proc,dst=/p", "readonly"),
    ],
)
def test_read_write_bind_refusal_quotes_the_argument_and_names_both_fixes(
    words: tuple[str, ...], argument: str, fix: str, host: TmpHost
) -> None:
    """The refusal quotes the bind as written and says to make it read-only or to open a bind root."""
    with pytest.raises(ArgvRefused) as refused:
        GRAMMAR.check(GRAMMAR.parse(words), ArgumentRules(read_only_roots=("/proc",)), host)
    assert (refused.value.rule, refused.value.argument) == ("bind-read-write", argument)
    assert fix in refused.value.reason
    assert "bind_roots" in refused.value.reason


# --- properties ----------------------------------------------------------------------------------------------

_VOCABULARY = sorted({n for s in docker.GLOBAL_OPTIONS + docker.RUN_OPTIONS for n in s.names})
_WORDS = st.lists(
    st.one_of(
        st.sampled_from([*_VOCABULARY, "run", "container", "--", "-", "ubuntu", "host", "/etc:/e", "=", ""]),
        st.text(alphabet="-=:/,.abHhvcl\x00 ", max_size=10),
    ),
    max_size=10,
)


@given(words=_WORDS)
@settings(max_examples=500, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_no_argv_crashes_the_reader_or_the_rules(words: list[str], host: TmpHost) -> None:
    """Whatever the words, reading and judging them ends in an Invocation, a pass, or ArgvRefused."""
    for rules in (ArgumentRules(), permissive(docker.RUN_OPTIONS + docker.GLOBAL_OPTIONS)):
        with contextlib.suppress(ArgvRefused):
            GRAMMAR.check(GRAMMAR.parse(tuple(words)), rules, host)


@st.composite
def respelled(draw: st.DrawFn) -> tuple[Chosen, list[str], list[str], list[str]]:
    chosen = draw(chosen_options(docker.RUN_OPTIONS))
    harmless_globals = draw(st.sampled_from([[], ["-D"], ["--log-level=info"], ["-l", "warn", "--debug=false"]]))
    container = draw(st.sampled_from([["run"], ["container", "run"]]))
    return chosen, write(draw, chosen), write(draw, chosen), harmless_globals + container


@given(case=respelled())
@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_decision_survives_respelling(case: tuple[Chosen, list[str], list[str], list[str]], host: TmpHost) -> None:
    """Another spelling, repeated options, `container run` and harmless global options never change a decision."""
    _, first, second, prefix = case
    home = [w.replace(HOME, host.home) for w in first]
    again = [w.replace(HOME, host.home) for w in second]
    rules = {"bind_roots": ("~/data",)}
    decision = decide(GRAMMAR, ["run", *home, "ubuntu", "ls"], host, **rules)
    assert decide(GRAMMAR, [*prefix, *again, "ubuntu", "ls"], host, **rules) == decision
    assert decide(GRAMMAR, ["run", *home, *home, "ubuntu"], host, **rules) == decision
    assert decide(GRAMMAR, ["run", "--", "ubuntu", *home], host, **rules) is None


_SPECS = {spec.canonical: spec for spec in docker.RUN_OPTIONS}
_READ_WRITE_BINDS = [
    ("--volume", "@HOME/data:/d"),
    ("--volume", "@HOME/data/x:/x:rw"),
    ("--volume", "./data:/d:rslave"),
    ("--volume", "@HOME/link_to_data:/d:z,ro"),
    ("--mount", "type=bind,src=@HOME/data,dst=/d"),
    ("--mount", "type=bind,source=@HOME/data,target=/d,ro=false"),
    ("--mount", "type=bind,src=@HOME/data/x,dst=/x,readonly,ro=0"),
    ("--mount", "type=bind,src=@HOME/data,dst=/d,readonly,bind-recursive=writable"),
]
_READ_ONLY_BINDS = [
    ("--volume", "@HOME/data:/d:ro"),
    ("--volume", "./data/x:/x:ro,rslave"),
    ("--mount", "type=bind,src=@HOME/data,dst=/d,readonly"),
    ("--mount", "type=bind,src=@HOME/link_to_data,dst=/d,ro=true"),
]
_ALONGSIDE = [
    ("--rm", "true"),
    ("--interactive", "true"),
    ("--tty", "true"),
    ("--detach", "true"),
    ("--env", "A=b"),
    ("--workdir", "/w"),
    ("--env-file", "@HOME/data/x.env"),
]


@st.composite
def bind_among_others(draw: st.DrawFn, binds: list[tuple[str, str]]) -> list[str]:
    """`run`, then one of `binds` among harmless options and read-only binds, all in a random spelling."""
    chosen = [(_SPECS[name], value) for name, value in draw(st.lists(st.sampled_from(_ALONGSIDE), max_size=4))]
    chosen += [(_SPECS[name], value) for name, value in draw(st.lists(st.sampled_from(_READ_ONLY_BINDS), max_size=2))]
    name, value = draw(st.sampled_from(binds))
    chosen.insert(draw(st.integers(0, len(chosen))), (_SPECS[name], value))
    prefix = draw(st.sampled_from([["run"], ["container", "run"], ["-D", "run"], ["--log-level=info", "run"]]))
    return [*prefix, *write(draw, chosen), "ubuntu"]


@given(words=bind_among_others(_READ_WRITE_BINDS))
@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_read_write_bind_under_a_read_only_root_stays_refused_in_any_spelling(words: list[str], host: TmpHost) -> None:
    """However the options around it are written, a read-write bind of a read-only root is refused as such."""
    line = [w.replace(HOME, host.home) for w in words]
    assert decide(GRAMMAR, line, host, read_only_roots=("~/data",)) == "bind-read-write"
    assert decide(GRAMMAR, line, host, bind_roots=("~/data",)) is None


@given(words=bind_among_others(_READ_ONLY_BINDS))
@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_read_only_bind_under_a_read_only_root_is_allowed_in_any_spelling(words: list[str], host: TmpHost) -> None:
    """A bind docker mounts read-only stays allowed under a read-only root however the line is written."""
    line = [w.replace(HOME, host.home) for w in words]
    assert decide(GRAMMAR, line, host, read_only_roots=("~/data",)) is None


# --- the real docker CLI -------------------------------------------------------------------------------------

needs_docker = pytest.mark.skipif(shutil.which("docker") is None, reason="the docker CLI is not installed")


@needs_docker
@pytest.mark.parametrize(
    ("argv", "table"),
    [(["docker", "--help"], docker.GLOBAL_OPTIONS), (["docker", "run", "--help"], docker.RUN_OPTIONS)],
)
def test_tables_hold_every_option_docker_lists(argv: list[str], table: tuple[Any, ...]) -> None:
    """Every option the installed docker lists in its help is in the table, taking a value exactly when it does."""
    assert_table_holds_listed_options(argv, table, at_least=10)


@needs_docker
def test_docker_knows_every_option_in_the_tables() -> None:
    """The installed docker accepts every spelling in the tables, hidden ones too (it prints help, runs nothing)."""
    assert_cli_knows_every_option(
        "docker", docker.GLOBAL_OPTIONS, docker.RUN_OPTIONS, frozenset(("--help", "-h", "--version", "-v"))
    )


_ORACLE_OPTIONS = [
    ["-d"], ["--rm"], ["-i"], ["-q"], ["--init"], ["--privileged=false"], ["-e", "A=1"], ["-eA=1"], ["--env=A"],
    ["--name", "-n"], ["-w", "/w"], ["-u0"], ["-l", "a=b"], ["-dil", "x"], ["-m", "64m"], ["-c=2"],
    ["-h", "box"], ["--net", "none"], ["--pull=never"], ["--name=-d"],
]  # fmt: skip
_ORACLE_GLOBALS = [[], ["-D"], ["--log-level", "error"], ["-l=error"], ["--debug=false", "--"]]


@needs_docker
@given(
    globals_=st.sampled_from(_ORACLE_GLOBALS),
    options=st.lists(st.sampled_from(_ORACLE_OPTIONS), max_size=4),
    container=st.booleans(),
    dash=st.booleans(),
)
@settings(max_examples=25, deadline=None)
def test_finds_the_image_docker_finds(
    globals_: list[str], options: list[list[str]], container: bool, dash: bool
) -> None:
    """The installed docker reports the same image hostpipe reads (an upper-case image makes it name it)."""
    words = [*globals_, *(["container", "run"] if container else ["run"])]
    words += [w for option in options for w in option] + (["--"] if dash else []) + ["HOSTPIPEIMG", "-d"]
    printed = real_cli(["docker", *words], DOCKER_HOST="unix:///nonexistent/hostpipe.sock")
    # docker validates some values before it looks at the image (a network given twice, say); such a run says
    # nothing about where it reads the image, so it cannot be compared.
    assume("is specified multiple times" not in printed)
    match = re.search(r"repository name \((?:library/)?([^)]*)\)", printed)
    try:
        image = GRAMMAR.parse(tuple(words)).image
    except ArgvRefused as refused:
        assert match is None, (words, refused, printed)
        return
    assert match is not None, (words, printed)
    assert image == match.group(1)
