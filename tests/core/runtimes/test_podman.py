"""podman lines are read the way podman 4.3 reads them, and judged fail-closed against PSS baseline."""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from collections.abc import Iterator
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
    placeholder_or_hidden,
    reads_as_csv,
    real_cli,
    words_of,
    write,
)

from hostpipe.core.runtimes import podman
from hostpipe.core.runtimes.base import ArgumentRules, ArgvRefused

GRAMMAR = podman.GRAMMAR


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> TmpHost:
    built = build_host(tmp_path_factory.mktemp("podman"))
    data = Path(built.home) / "data"
    (data / "sock_link").symlink_to("/run/podman/podman.sock")
    (data / "rootfs").mkdir()
    return built


def parsed(line: str, host: TmpHost) -> Any:
    return GRAMMAR.parse(words_of(line, host))


# --- reading -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "globals_", "options", "image", "args"),
    [
        # The JLab line: options, image, and no command.
        (
            "podman run --name ersap -d --rm --network=host -e ERSAP_HOME=/ersap --entrypoint=/ersap/run.sh "
            "gurjyan/ersap:v0.4",
            [],
            [
                ("--name", "ersap"),
                ("--detach", "true"),
                ("--rm", "true"),
                ("--network", "host"),
                ("--env", "ERSAP_HOME=/ersap"),
                ("--entrypoint", "/ersap/run.sh"),
            ],
            "gurjyan/ersap:v0.4",
            [],
        ),
        # Words after the image are the command.
        ("podman run ubuntu ls -la --privileged", [], [], "ubuntu", ["ls", "-la", "--privileged"]),
        ("podman container run -it ubuntu", [], [("--interactive", "true"), ("--tty", "true")], "ubuntu", []),
        # Global options before the subcommand, in both of cobra's forms.
        (
            "podman --log-level error --syslog=true run ubuntu",
            [("--log-level", "error"), ("--syslog", "true")],
            [],
            "ubuntu",
            [],
        ),
        # Persistent global options are read after `run` too, among run's own options.
        ("podman run --root /x -c 2 ubuntu", [], [("--root", "/x"), ("--cpu-shares", "2")], "ubuntu", []),
        # podman's flag-name aliases: old spellings reach the canonical option.
        (
            "podman run --net none --purge --override-arch=arm64 --healthcheck-command true --ns n ubuntu",
            [],
            [
                ("--network", "none"),
                ("--rm", "true"),
                ("--arch", "arm64"),
                ("--health-cmd", "true"),
                ("--namespace", "n"),
            ],
            "ubuntu",
            [],
        ),
        ("podman --cni-config-dir /x run ubuntu", [("--network-config-dir", "/x")], [], "ubuntu", []),
        # -v is the version before `run` and a volume after it; -h is the hostname after it.
        ("podman run -v /a:/b -h box ubuntu", [], [("--volume", "/a:/b"), ("--hostname", "box")], "ubuntu", []),
        ("podman run --rm -- ubuntu -- x", [], [("--rm", "true")], "ubuntu", ["--", "x"]),
    ],
)
def test_reads_argv_the_way_podman_does(
    line: str, globals_: list[Any], options: list[Any], image: str, args: list[str], host: TmpHost
) -> None:
    """Global options, run options, image and command come out as podman splits them."""
    invocation = parsed(line, host)
    assert (invocation.kind, invocation.subcommand) == ("podman", "run")
    assert [(o.name, o.value) for o in invocation.global_options] == globals_
    assert [(o.name, o.value) for o in invocation.options] == options
    assert invocation.image == image
    assert list(invocation.args) == args


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        ("podman ps", "subcommand"),
        ("podman container ls", "subcommand"),
        ("podman", "subcommand"),
        ("podman run", "missing-image"),
        ("podman run -d", "missing-image"),
        # `-r`/`-c` switch podman to a remote engine in its early scan, before cobra reads anything.
        ("podman -rc conn run ubuntu", "daemon-option"),
        ("podman --log-level error --syslog -c remote run ubuntu", "daemon-option"),
        # ... and that scan takes `run` as the value of a bare flag before it, then reads run's options:
        ("podman --syslog run -c=2 ubuntu", "daemon-option"),
        ("podman --trace run --rm ubuntu -c x", "daemon-option"),
        # cobra gives `--` the next word as a value: `run` is then no subcommand.
        ("podman -- run ubuntu", "subcommand"),
        # cobra takes `--foo` as an option with a value, eating `run`.
        ("podman --log-level --foo run ubuntu", "subcommand"),
        # cobra reads `a-b` as an option and pflag as a stray word: the two readings disagree.
        ("podman a-b run ubuntu", "ambiguous-option"),
        ("podman -rc --url x run ubuntu", "daemon-option"),
        # Options podman does not know, where it does not know them.
        ("podman run --bogus ubuntu", "unknown-option"),
        ("podman run --url x ubuntu", "unknown-option"),
        ("podman run --cni-config-dir /x ubuntu", "unknown-option"),
        ("podman --ns x run ubuntu", "unknown-option"),
        ("podman run --name", "missing-value"),
        ("podman run --rm=maybe ubuntu", "bad-boolean"),
    ],
)
def test_refuses_argv_it_cannot_read_as_podman_run(line: str, rule: str, host: TmpHost) -> None:
    """Lines that are not `podman run IMAGE`, or whose split podman would guess differently, are refused."""
    with pytest.raises(ArgvRefused) as refused:
        parsed(line, host)
    assert refused.value.rule == rule


# --- rules -------------------------------------------------------------------------------------------------

DATA = {"bind_roots": ("~/data",)}

CASES: list[tuple[str, dict[str, Any], str | None]] = [
    # The rules podman shares with docker, in podman's spellings.
    ("podman run --privileged ubuntu", {}, "privileged"),
    ("podman run --privileged=false ubuntu", {}, None),
    ("podman run --cap-add=sys_admin,chown ubuntu", {}, "capabilities"),
    ("podman run --cap-add CAP_CHOWN,KILL ubuntu", {}, None),
    ("podman run --pid=host ubuntu", {}, "host-namespace"),
    ("podman run --userns host ubuntu", {}, "host-namespace"),
    ("podman run --uts ns:/proc/1/ns/uts ubuntu", {}, "host-namespace"),
    ("podman run --userns=keep-id --ipc private ubuntu", {}, None),
    ("podman run --userns=auto:size=65536 ubuntu", {}, None),
    ("podman run --pod mypod ubuntu", {}, "host-namespace"),
    ("podman run --pod new:fresh ubuntu", {}, None),
    ("podman run --pod-id-file /tmp/pod ubuntu", {}, "host-namespace"),
    # Host network, podman's modes, and slirp4netns reaching the host's loopback.
    ("podman run --network=host ubuntu", {}, "host-network"),
    ("podman run --net host ubuntu", {}, "host-network"),
    ("podman run --network ns:/proc/1/ns/net ubuntu", {}, "host-network"),
    ("podman run --network container:db ubuntu", {}, "host-network"),
    ("podman run --network pod ubuntu", {}, "host-network"),
    ("podman run --network slirp4netns:allow_host_loopback=true ubuntu", {}, "host-network"),
    ("podman run --network a,host ubuntu", {}, "host-network"),
    ("podman run --network slirp4netns:port_handler=slirp4netns ubuntu", {}, None),
    ("podman run --network bridge:ip=10.88.0.5 --network mynet ubuntu", {}, None),
    ("podman run --network=host ubuntu", {"allow_host_network": True}, None),
    ("podman run --device /dev/fuse ubuntu", {}, "devices"),
    ("podman run --gpus all ubuntu", {}, "devices"),
    ("podman run --security-opt label=disable ubuntu", {}, "unconfined"),
    ("podman run --security-opt unmask=ALL ubuntu", {}, "unconfined"),
    ("podman run --security-opt mask=/proc/acpi --security-opt no-new-privileges ubuntu", {}, None),
    # proc-opts replace the options of the container's /proc mount: procfs settings only, never a bind.
    ("podman run --security-opt proc-opts=hidepid=2,subset=pid,nosuid ubuntu", {}, None),
    ("podman run --security-opt proc-opts=rbind ubuntu", {}, "unconfined"),
    ("podman run --security-opt proc-opts=hidepid=2,rshared ubuntu", {}, "unconfined"),
    ("podman run --seccomp-policy=image ubuntu", {}, "unconfined"),
    ("podman run --seccomp-policy=default ubuntu", {}, None),
    ("podman run -p 80:80 ubuntu", {}, "ports"),
    ("podman run -P ubuntu", {}, "ports"),
    # Binds, podman's volume options, and overlay/chown options that would write outside a root.
    ("podman run -v /etc:/e ubuntu", {}, "bind-outside-roots"),
    ("podman run -v @HOME/data:/d:O ubuntu", DATA, None),
    ("podman run -v @HOME/data:/d:U,z ubuntu", DATA, None),
    ("podman run -v @HOME/data:/d:O,upperdir=/etc,workdir=/tmp ubuntu", DATA, "mount-syntax"),
    ("podman run --mount type=bind,src=/etc,dst=/e,relabel=shared ubuntu", {}, "bind-outside-roots"),
    ("podman run --mount type=bind,src=@HOME/data,dst=/d,rshared ubuntu", DATA, "host-namespace"),
    ("podman run --mount type=devpts,dst=/dev/pts ubuntu", {}, None),
    ("podman run --mount type=image,src=fedora,dst=/img ubuntu", {}, "image-mount"),
    ("podman run --mount type=image,src=fedora,dst=/img ubuntu", {"allow_image_mounts": True}, None),
    ("podman run --mount type=volume,src=v,dst=/v,volume-opt=o=bind ubuntu", {}, "mount-syntax"),
    ("podman run --mount type=glob,src=/etc/*,dst=/g ubuntu", {}, "mount-syntax"),
    ("podman run -v @HOME/data/sock_link:/s ubuntu", DATA, "engine-socket"),
    ("podman run -v /run/podman:/p ubuntu", {"bind_roots": ("/",)}, "engine-socket"),
    ("podman run --volumes-from db ubuntu", {}, "volumes-from"),
    # --rootfs makes the image word a host folder.
    ("podman run --rootfs /etc sh", {}, "bind-outside-roots"),
    ("podman run --rootfs @HOME/data/rootfs sh", DATA, None),
    ("podman run --rootfs @HOME/data/rootfs:O sh", DATA, None),
    ("podman run --rootfs=false ubuntu", {}, None),
    # Global options that point podman elsewhere, before `run` and (the persistent ones) after it.
    ("podman --url tcp://x:8080 run ubuntu", {}, "daemon-option"),
    ("podman --connection=other run ubuntu", {}, "daemon-option"),
    ("podman -c other run ubuntu", {}, "daemon-option"),
    ("podman -r run ubuntu", {}, "daemon-option"),
    ("podman --remote=false run ubuntu", {}, "daemon-option"),
    ("podman -H unix:///x run ubuntu", {}, "daemon-option"),
    ("podman --root /tmp/r run ubuntu", {}, "daemon-option"),
    ("podman run --root /tmp/r ubuntu", {}, "daemon-option"),
    ("podman run --runroot=/tmp/r ubuntu", {}, "daemon-option"),
    ("podman --storage-driver vfs run ubuntu", {}, "daemon-option"),
    ("podman run --storage-opt overlay.mount_program=/x ubuntu", {}, "daemon-option"),
    ("podman run --runtime /tmp/evil ubuntu", {}, "daemon-option"),
    ("podman run --runtime-flag=debug ubuntu", {}, "daemon-option"),
    ("podman --conmon /tmp/evil run ubuntu", {}, "daemon-option"),
    ("podman run --hooks-dir /tmp/hooks ubuntu", {}, "daemon-option"),
    ("podman run --namespace other ubuntu", {}, "daemon-option"),
    ("podman run --ns other ubuntu", {}, "daemon-option"),
    ("podman --cni-config-dir /x run ubuntu", {}, "daemon-option"),
    ("podman run --events-backend none ubuntu", {}, "daemon-option"),
    ("podman --root /tmp/r run ubuntu", {"allow_options": ("--root",)}, None),
    ("podman --log-level=debug --syslog run --trace ubuntu", {}, None),
    # Host files podman reads or writes.
    ("podman run --env-file /etc/passwd ubuntu", {}, "host-file"),
    ("podman run --authfile /root/.docker/config.json ubuntu", {}, "host-file"),
    ("podman run --init-path /bin/sh ubuntu", {}, "host-file"),
    ("podman run --pidfile /tmp/pid ubuntu", {}, "host-file"),
    ("podman run --conmon-pidfile /tmp/pid ubuntu", {}, "host-file"),
    ("podman run --cidfile @HOME/data/cid ubuntu", DATA, "cidfile"),
    ("podman run --log-opt path=/etc/cron.d/x ubuntu", {}, "host-file"),
    ("podman run --log-opt path=@HOME/data/log ubuntu", DATA, None),
    ("podman --cpu-profile /tmp/p run ubuntu", {}, "host-file"),
    # podman reads --sysctl as a comma-separated list: every item is judged.
    ("podman run --sysctl net.ipv4.tcp_syncookies=1,kernel.msgmax=1 ubuntu", {}, "sysctl"),
    ("podman run --sysctl net.ipv4.tcp_syncookies=1,net.ipv4.ping_group_range=0 ubuntu", {}, None),
    # Registry checks.
    ("podman run --tls-verify=false ubuntu", {}, "insecure-registry"),
    ("podman run --tls-verify ubuntu", {}, None),
    ("podman run --signature-policy /tmp/p.json ubuntu", {}, "insecure-registry"),
    # podman's own ways out of the container's sandbox or into the daemon's.
    ("podman run --env-host ubuntu", {}, "option-refused"),
    ("podman run --env-host=false ubuntu", {}, None),
    ("podman run --preserve-fds 3 ubuntu", {}, "option-refused"),
    ("podman run --preserve-fds=0 ubuntu", {}, None),
    ("podman run --sdnotify=conmon ubuntu", {}, "option-refused"),
    ("podman run --sdnotify=ignore ubuntu", {}, None),
    ("podman run --secret token ubuntu", {}, "option-refused"),
    ("podman run --replace --name x ubuntu", {}, "option-refused"),
    ("podman run --requires db ubuntu", {}, "option-refused"),
    ("podman run --hostuser me ubuntu", {}, "option-refused"),
    ("podman run --group-add keep-groups ubuntu", {}, "option-refused"),
    ("podman run --group-add 100,video ubuntu", {}, None),
    ("podman run --cgroups=disabled ubuntu", {}, "option-refused"),
    ("podman run --cgroups=enabled ubuntu", {}, None),
    ("podman run --cgroup-conf memory.high=1 ubuntu", {}, "option-refused"),
    ("podman run --annotation run.oci.keep_original_groups=1 ubuntu", {}, "option-refused"),
    ("podman --version run ubuntu", {}, "option-refused"),
    ("podman run --help ubuntu", {}, "option-refused"),
    ("podman run -e CONTAINER_HOST=tcp://x -d --rm --name n --tz local --systemd=false ubuntu", {}, None),
]


@pytest.mark.parametrize(("line", "rules", "expected"), CASES)
def test_judges_every_rule_in_every_spelling(
    line: str, rules: dict[str, Any], expected: str | None, host: TmpHost
) -> None:
    """Each rule refuses what it should in podman's spellings, and gives way to the knob that relaxes it."""
    assert decide(GRAMMAR, words_of(line, host), host, **rules) == expected


def test_refuses_the_ersap_line_until_a_site_opens_the_host_network(host: TmpHost) -> None:
    """The JLab ERSAP podman line needs the host network: refused by default, allowed once granted."""
    line = (
        "podman run --name ersap -d --rm --network=host -e ERSAP_HOME=/ersap --entrypoint=/ersap/run.sh "
        "gurjyan/ersap:v0.4"
    )
    assert decide(GRAMMAR, words_of(line, host), host) == "host-network"
    assert decide(GRAMMAR, words_of(line, host), host, allow_host_network=True) is None


@pytest.mark.parametrize(
    "line", ["podman run godlovedc/lolcow:latest", "podman run ubuntu ls", "podman run stress:v1.0"]
)
def test_allows_plain_lines_by_default(line: str, host: TmpHost) -> None:
    """The everyday lines pods write are allowed by default rules."""
    assert decide(GRAMMAR, words_of(line, host), host) is None


def test_every_option_has_a_rule() -> None:
    """No option podman reads is left without a rule."""
    names = {s.canonical for s in podman.GLOBAL_OPTIONS + podman.RUN_OPTIONS}
    assert names <= set(podman.RULES)


# --- read-only roots --------------------------------------------------------------------------------------

RO = {"read_only_roots": ("~/data",)}

# podman 4.3's own readings, checked against the installed podman: -v takes `ro` once and refuses `O` beside
# any other option; --mount takes one of ro/readonly/rw (case-sensitive keys), valued true or false in any
# case, with `rw=false` meaning read-only; `U`, `z`, `Z`, `relabel=` and `chown` change the host files.
READ_ONLY_CASES: list[tuple[str, dict[str, Any], str | None]] = [
    ("podman run -v @HOME/data:/d ubuntu", RO, "bind-read-write"),
    ("podman run -v @HOME/data:/d:ro ubuntu", RO, None),
    ("podman run -v=@HOME/data/x:/x:ro,idmap ubuntu", RO, None),
    ("podman run --volume @HOME/data:/d:rw ubuntu", RO, "bind-read-write"),
    ("podman run -v @HOME/data:/d:ro,rw ubuntu", RO, "bind-read-write"),
    # An overlay keeps the host folder as its lower layer, but hostpipe counts only a read-only bind.
    ("podman run -v @HOME/data:/d:O ubuntu", RO, "bind-read-write"),
    ("podman run -v @HOME/data:/d:O ubuntu", DATA, None),
    # Re-owning or relabelling writes to the host files however the bind is mounted.
    ("podman run -v @HOME/data:/d:U,ro ubuntu", RO, "bind-read-write"),
    ("podman run -v @HOME/data:/d:ro,z ubuntu", RO, "bind-read-write"),
    ("podman run -v @HOME/data:/d:Z,ro ubuntu", RO, "bind-read-write"),
    ("podman run --mount type=bind,src=@HOME/data,dst=/d ubuntu", RO, "bind-read-write"),
    ("podman run --mount type=bind,src=@HOME/data,dst=/d,ro ubuntu", RO, None),
    ("podman run --mount type=bind,src=@HOME/data,dst=/d,readonly ubuntu", RO, None),
    ("podman run --mount type=bind,src=@HOME/data,dst=/d,ro=True ubuntu", RO, None),
    ("podman run --mount type=bind,src=@HOME/data,dst=/d,readonly=TRUE ubuntu", RO, None),
    ("podman run --mount type=bind,src=@HOME/data,dst=/d,rw=false ubuntu", RO, None),
    ("podman run --mount type=bind,src=@HOME/data,dst=/d,rw=False ubuntu", RO, None),
    ("podman run --mount type=bind,src=@HOME/data,dst=/d,rw=true ubuntu", RO, "bind-read-write"),
    ("podman run --mount type=bind,src=@HOME/data,dst=/d,ro=false ubuntu", RO, "bind-read-write"),
    ("podman run --mount type=bind,src=@HOME/data,dst=/d,readwrite=false ubuntu", RO, "bind-read-write"),
    ("podman run --mount type=bind,src=@HOME/data,dst=/d,ro,rw ubuntu", RO, "bind-read-write"),
    ("podman run --mount type=bind,src=@HOME/data,dst=/d,ro,relabel=shared ubuntu", RO, "bind-read-write"),
    ("podman run --mount type=bind,src=@HOME/data,dst=/d,U,ro ubuntu", RO, "bind-read-write"),
    ("podman run --mount type=bind,src=@HOME/data,dst=/d,chown=true,ro ubuntu", RO, "bind-read-write"),
    ("podman run --mount type=bind,src=@HOME/data,dst=/d,ro,Z ubuntu", RO, "bind-read-write"),
    # An image mount names no host path (but mounts an image no `images` pattern judged).
    ("podman run --mount type=image,src=fedora,dst=/img ubuntu", {"allow_image_mounts": True, **RO}, None),
    # Symlinks resolve as for bind roots.
    ("podman run -v @HOME/link_to_data:/d:ro ubuntu", RO, None),
    ("podman run -v @HOME/link_to_data/x:/x ubuntu", RO, "bind-read-write"),
    ("podman run -v @HOME/data/sock_link:/s:ro ubuntu", RO, "engine-socket"),
    # podman writes mount points and /etc files into a --rootfs folder, overlay or not.
    ("podman run --rootfs @HOME/data/rootfs sh", RO, "bind-read-write"),
    ("podman run --rootfs @HOME/data/rootfs:O sh", RO, "bind-read-write"),
    ("podman run --rootfs=1 @HOME/data/rootfs sh", {"bind_roots": ("~/data/rootfs",), **RO}, None),
    # Files podman reads (the init binary it binds read-only among them) versus files it writes.
    ("podman run --env-file @HOME/data/x.env ubuntu", RO, None),
    ("podman run --authfile=@HOME/data/auth.json ubuntu", RO, None),
    ("podman run --init --init-path @HOME/data/init ubuntu", RO, None),
    ("podman run --pidfile @HOME/data/pid ubuntu", RO, "host-file"),
    ("podman run --conmon-pidfile @HOME/data/pid ubuntu", RO, "host-file"),
    ("podman run --log-opt path=@HOME/data/log ubuntu", RO, "host-file"),
    ("podman --cpu-profile @HOME/data/p run ubuntu", RO, "host-file"),
    # The process exporter's /proc.
    ("podman run -v /proc:/host_proc ubuntu", {"read_only_roots": ("/proc",)}, "bind-read-write"),
    ("podman run -v /proc:/host_proc:ro ubuntu", {"read_only_roots": ("/proc",)}, None),
]


@pytest.mark.parametrize(("line", "rules", "expected"), READ_ONLY_CASES)
def test_read_only_roots_admit_only_read_only_binds_in_every_spelling(
    line: str, rules: dict[str, Any], expected: str | None, host: TmpHost
) -> None:
    """Under a read-only root a bind must be one podman mounts read-only, leaving the host files alone."""
    assert decide(GRAMMAR, words_of(line, host), host, **rules) == expected


def test_rootfs_under_a_read_only_root_names_bind_roots_as_the_way(host: TmpHost) -> None:
    """A --rootfs folder cannot be made read-only by the line: the refusal points at bind_roots."""
    invocation = GRAMMAR.parse(("run", "--rootfs", f"{host.home}/data/rootfs:O", "sh"))
    with pytest.raises(ArgvRefused) as refused:
        GRAMMAR.check(invocation, ArgumentRules(read_only_roots=("~/data",)), host)
    assert (refused.value.rule, refused.value.argument) == ("bind-read-write", "--rootfs")
    assert "bind_roots" in refused.value.reason


# --- properties ----------------------------------------------------------------------------------------------

_VOCABULARY = sorted({n for s in podman.GLOBAL_OPTIONS + podman.RUN_OPTIONS for n in s.names})
_WORDS = st.lists(
    st.one_of(
        st.sampled_from([*_VOCABULARY, "run", "container", "--", "-", "ubuntu", "host", "/etc:/e", "=", ""]),
        st.text(alphabet="-=:/,.abrcvhn\x00 ", max_size=10),
    ),
    max_size=10,
)


@given(words=_WORDS)
@settings(max_examples=500, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_no_argv_crashes_the_reader_or_the_rules(words: list[str], host: TmpHost) -> None:
    """Whatever the words, reading and judging them ends in an Invocation, a pass, or ArgvRefused."""
    for rules in (ArgumentRules(), permissive(podman.RUN_OPTIONS + podman.GLOBAL_OPTIONS)):
        with contextlib.suppress(ArgvRefused):
            GRAMMAR.check(GRAMMAR.parse(tuple(words)), rules, host)


@st.composite
def respelled(draw: st.DrawFn) -> tuple[Chosen, list[str], list[str], list[str]]:
    chosen = draw(chosen_options(podman.RUN_OPTIONS))
    harmless_globals = draw(
        # A bare boolean flag right before `run` is left out: podman's early remote-mode scan takes `run` as that
        # flag's value and reads on into run's own options, where -c then means --connection.
        st.sampled_from([[], ["--log-level", "error"], ["--log-level=warn", "--syslog=true"], ["-D", "--noout=true"]])
    )
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


_SPECS = {spec.canonical: spec for spec in podman.RUN_OPTIONS}
_READ_WRITE_BINDS = [
    ("--volume", "@HOME/data:/d"),
    ("--volume", "@HOME/data/x:/x:rw"),
    ("--volume", "./data:/d:O"),
    ("--volume", "@HOME/link_to_data:/d:U,ro"),
    ("--mount", "type=bind,src=@HOME/data,dst=/d"),
    ("--mount", "type=bind,source=@HOME/data,target=/d,ro=false"),
    ("--mount", "type=bind,src=@HOME/data/x,dst=/x,rw=true"),
    ("--mount", "type=bind,src=@HOME/data,dst=/d,ro,relabel=private"),
]
_ALONGSIDE = [
    ("--rm", "true"),
    ("--interactive", "true"),
    ("--tty", "true"),
    ("--env", "A=b"),
    ("--workdir", "/w"),
    ("--volume", "@HOME/data/x:/ro:ro"),
    ("--mount", "type=bind,src=@HOME/data,dst=/ro2,rw=false"),
]


@st.composite
def read_write_bind_among_others(draw: st.DrawFn) -> list[str]:
    """`run`, then a read-write bind among harmless options and read-only binds, in a random spelling."""
    chosen = [(_SPECS[name], value) for name, value in draw(st.lists(st.sampled_from(_ALONGSIDE), max_size=4))]
    name, value = draw(st.sampled_from(_READ_WRITE_BINDS))
    chosen.insert(draw(st.integers(0, len(chosen))), (_SPECS[name], value))
    prefix = draw(st.sampled_from([["run"], ["container", "run"], ["--log-level", "error", "run"]]))
    return [*prefix, *write(draw, chosen), "ubuntu"]


@given(words=read_write_bind_among_others())
@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_read_write_bind_under_a_read_only_root_stays_refused_in_any_spelling(words: list[str], host: TmpHost) -> None:
    """However the line is written, a read-write bind of a read-only root is refused as such.

    podman's early scan for remote-mode flags reads letters in a short option's attached value (`-v/x/rc`) as
    flags, which hostpipe refuses first as a daemon option; such spellings say nothing about binds.
    """
    line = [w.replace(HOME, host.home) for w in words]
    decision = decide(GRAMMAR, line, host, read_only_roots=("~/data",))
    assume(decision != "daemon-option")
    assert decision == "bind-read-write"
    assert decide(GRAMMAR, line, host, bind_roots=("~/data",)) is None


# --- the real podman -----------------------------------------------------------------------------------------

needs_podman = pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed")


@needs_podman
@pytest.mark.parametrize(
    ("argv", "table"),
    [(["podman", "--help"], podman.GLOBAL_OPTIONS), (["podman", "run", "--help"], podman.RUN_OPTIONS)],
)
def test_tables_hold_every_option_podman_lists(argv: list[str], table: tuple[Any, ...]) -> None:
    """Every option the installed podman lists in its help is in the table, taking a value exactly when it does."""
    assert_table_holds_listed_options(argv, table, at_least=20)


@needs_podman
def test_podman_knows_every_option_in_the_tables() -> None:
    """The installed podman accepts every spelling in the tables, hidden ones too (it prints help, runs nothing)."""
    assert_cli_knows_every_option(
        "podman", podman.GLOBAL_OPTIONS, podman.RUN_OPTIONS, frozenset(("--help", "--version", "-v"))
    )


@needs_podman
@pytest.mark.parametrize(
    ("help_argv", "table", "before", "after"),
    [
        (["podman", "run", "--help"], podman.RUN_OPTIONS, ["podman", "run", "--help"], []),
        (["podman", "--help"], podman.GLOBAL_OPTIONS, ["podman"], ["run", "--help"]),
    ],
)
def test_types_the_help_does_not_name_match_how_podman_reads_them(
    help_argv: list[str], table: tuple[Any, ...], before: list[str], after: list[str]
) -> None:
    """Hidden options and options shown with a placeholder (`--tmpfs tmpfs`, `DEVICE_NAME:WEIGHT`) are read as
    CSV by the installed podman exactly when the table says StringSlice (it prints help; nothing runs)."""
    unnamed = placeholder_or_hidden(help_argv, table)
    assert len(unnamed) >= 5
    for spec in unnamed:
        assert reads_as_csv(before, spec.canonical, after) == spec.value_type.splits, spec.canonical


_ORACLE_GLOBALS = [[], ["--log-level", "error"], ["--log-level=error"], ["--syslog=false"], ["--trace"]]
_ORACLE_OPTIONS = [
    ["-d"], ["--rm"], ["-i"], ["-t"], ["-q"], ["--init"], ["--privileged=false"], ["-e", "A=1"], ["-eA=1"],
    ["--name", "n1"], ["-w", "/w"], ["-u0"], ["-l", "a=b"], ["-dil", "x"], ["-m", "64m"], ["-c=2"],
    ["-h", "box"], ["--net", "none"], ["--purge"], ["--healthcheck-command", "true"], ["--log-level=error"],
]  # fmt: skip


@pytest.fixture(scope="module")
def storage() -> Iterator[list[str]]:
    """podman options keeping its store in a temporary folder, so the oracle touches nothing else.

    podman refuses a runroot path longer than 50 characters, so the folder sits directly in /tmp.
    """
    base = Path(tempfile.mkdtemp(prefix="hostpipe-podman-", dir="/tmp"))
    yield ["--root", str(base / "root"), "--runroot", str(base / "run"), "--storage-driver", "vfs"]
    shutil.rmtree(base, ignore_errors=True)


@needs_podman
@given(
    globals_=st.sampled_from(_ORACLE_GLOBALS),
    options=st.lists(st.sampled_from(_ORACLE_OPTIONS), max_size=4),
    container=st.booleans(),
    dash=st.booleans(),
)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_finds_the_image_podman_finds(
    storage: list[str], globals_: list[str], options: list[list[str]], container: bool, dash: bool
) -> None:
    """The installed podman looks up the same image hostpipe reads (it then fails: the image does not exist)."""
    words = [*storage, *globals_, *(["container", "run"] if container else ["run"]), "--pull=never"]
    words += [w for option in options for w in option] + (["--"] if dash else []) + ["hostpipe-no-image", "-d"]
    printed = real_cli(["podman", *words])
    # podman validates some values before it looks up the image (`--net none` given twice, say); such a run
    # says nothing about where it reads the image, so it cannot be compared.
    assume("cannot set multiple networks" not in printed)
    match = re.search(r"Error: (\S+): image not known", printed)
    try:
        image = GRAMMAR.parse(tuple(words)).image
    except ArgvRefused as refused:
        assert match is None, (words, refused, printed)
        return
    assert match is not None, (words, printed)
    assert image == match.group(1)
