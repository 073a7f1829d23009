"""apptainer and singularity: how their argv is read, and which arguments the rules refuse by default."""

from __future__ import annotations

import contextlib
import shlex
from pathlib import Path
from typing import Any

import pytest
from host_tmp import TmpHost, build_host
from hypothesis import given, settings
from hypothesis import strategies as st

from hostpipe.core.runtimes import apptainer, apptainer_values
from hostpipe.core.runtimes.base import ArgumentRules, ArgvRefused, Grammar, Invocation, Option, OptionSpec


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> TmpHost:
    return build_host(tmp_path_factory.mktemp("apptainer"))


def words(argv: str, host: TmpHost) -> tuple[str, ...]:
    return tuple(shlex.split(argv.replace("{home}", host.home)))


def decide(argv: str, host: TmpHost, grammar: Grammar = apptainer.GRAMMAR, **rules: Any) -> str | None:
    """The rule that refuses `argv` (with `{home}` standing for HOME) under `rules`, or None if allowed."""
    rules = dict(rules)
    for key in ("bind_roots", "read_only_roots"):
        if key in rules:
            rules[key] = tuple(root.replace("{home}", host.home) for root in rules[key])
    try:
        invocation = grammar.parse(words(argv, host))
        grammar.check(invocation, ArgumentRules(**rules), host)
    except ArgvRefused as refused:
        return refused.rule
    return None


# --- reading -------------------------------------------------------------------------------------------------

READINGS = [
    # The plainest line a pod writes.
    ("run docker://sylabsio/lolcow:latest", (), "run", (), "docker://sylabsio/lolcow:latest", ()),
    # exec: the command and its arguments follow the image.
    ("exec lolcow_latest.sif cowsay moo", (), "exec", (), "lolcow_latest.sif", ("cowsay", "moo")),
    # A `--` after the image is apptainer's to pass on to the runscript, not an end of options.
    ("run x.sif -- /ersap/run-pipeline.sh", (), "run", (), "x.sif", ("--", "/ersap/run-pipeline.sh")),
    # A `--` before the image ends the options and is dropped.
    ("run -- x.sif a", (), "run", (), "x.sif", ("a",)),
    # Options after the image belong to the container: nothing binds here.
    ("run x.sif --bind /proc:/p", (), "run", (), "x.sif", ("--bind", "/proc:/p")),
    # Global options come before the subcommand, alone or clustered.
    ("--debug -q run x.sif", (("--debug", "true"), ("--quiet", "true")), "run", (), "x.sif", ()),
    ("-dq run x.sif", (("--debug", "true"), ("--quiet", "true")), "run", (), "x.sif", ()),
    # A global value given after '=' keeps cobra and pflag in step.
    ("--config=/etc/a.conf run x.sif", (("--config", "/etc/a.conf"),), "run", (), "x.sif", ()),
    ("-c /etc/a.conf run x.sif", (("--config", "/etc/a.conf"),), "run", (), "x.sif", ()),
    # Every spelling of a value option reads to the same canonical option.
    ("run --bind=/a x.sif", (), "run", (("--bind", "/a"),), "x.sif", ()),
    ("run --bind /a x.sif", (), "run", (("--bind", "/a"),), "x.sif", ()),
    ("run -B /a x.sif", (), "run", (("--bind", "/a"),), "x.sif", ()),
    ("run -B/a x.sif", (), "run", (("--bind", "/a"),), "x.sif", ()),
    ("run -B=/a x.sif", (), "run", (("--bind", "/a"),), "x.sif", ()),
    # In a subcommand -c is --contain, not the global --config; a cluster can end in a value option.
    ("run -cB /a x.sif", (), "run", (("--contain", "true"), ("--bind", "/a")), "x.sif", ()),
    # A boolean given false is read as false.
    ("exec --fakeroot=false x.sif ls", (), "exec", (("--fakeroot", "false"),), "x.sif", ("ls",)),
    # run has --runscript-timeout; exec does not (see the refusals).
    ("run --runscript-timeout 5m x.sif", (), "run", (("--runscript-timeout", "5m"),), "x.sif", ()),
]


@pytest.mark.parametrize(("argv", "global_options", "subcommand", "options", "image", "args"), READINGS)
def test_reads_argv_the_way_apptainer_does(
    argv: str,
    global_options: tuple[tuple[str, str], ...],
    subcommand: str,
    options: tuple[tuple[str, str], ...],
    image: str,
    args: tuple[str, ...],
) -> None:
    """Global options, subcommand, options, image and container arguments land where apptainer puts them."""
    invocation = apptainer.parse(tuple(shlex.split(argv)))
    assert invocation.kind == "apptainer"
    assert tuple((o.name, o.value) for o in invocation.global_options) == global_options
    assert invocation.subcommand == subcommand
    assert tuple((o.name, o.value) for o in invocation.options) == options
    assert invocation.image == image
    assert invocation.args == args


UNREADABLE = [
    # Nothing to run.
    ("", "missing-subcommand"),
    ("--debug", "missing-subcommand"),
    # Only run and exec are read; shell is interactive and build writes images.
    ("shell x.sif", "unknown-subcommand"),
    ("build x.sif x.def", "unknown-subcommand"),
    ("instance start x.sif web", "unknown-subcommand"),
    ("run", "missing-image"),
    ("exec x.sif", "missing-command"),
    # Unknown options are never guessed at, nor global options after the subcommand.
    ("run --no-such-option x.sif", "unknown-option"),
    ("run --debug x.sif", "unknown-option"),
    ("exec --runscript-timeout 5m x.sif ls", "unknown-option"),
    ("run --bind", "missing-value"),
    ("--debug=maybe run x.sif", "bad-boolean"),
    # cobra would take /etc/a.conf as the subcommand where pflag takes it as -c's value.
    ("-dc /etc/a.conf run x.sif", "ambiguous-spelling"),
    ("-qc /etc/a.conf run x.sif", "ambiguous-spelling"),
    # cobra reads `--` before the subcommand as a flag taking the next word.
    ("-- run x.sif", "ambiguous-spelling"),
    # Images apptainer would not read as written.
    ("run docker:alpine", "bad-image"),
    ("run foo://bar", "bad-image"),
    ("run dockerfile:Dockerfile", "bad-image"),
    ("run ''", "bad-image"),
    ("run oci-archive:", "bad-image"),
    # Bind specifications apptainer's reader treats in surprising ways.
    (r"run -B 'a\,b:/x' x.sif", "bad-bind"),
    ("run -B '/a^b:/x' x.sif", "bad-bind"),
    ("run -B ' /a:/x' x.sif", "bad-bind"),
    ("run -B ro x.sif", "bad-bind"),
    ("run -B /a:/b,ro x.sif", "bad-bind"),
    ("run -B /a::/b x.sif", "bad-bind"),
    ("run -B /a:/b:/c:/d x.sif", "bad-bind"),
    ("run -B /a:/b:bogus x.sif", "bad-bind"),
    ("run -B /a,,/b x.sif", "bad-bind"),
    ("run -B '' x.sif", "bad-bind"),
    ("run --mount type=volume,src=/a,dst=/b x.sif", "bad-mount"),
    ("run --mount 'src=\"/a,b\",dst=/b' x.sif", "bad-mount"),
    ("run --mount dst=/b x.sif", "bad-mount"),
    ("run --mount src=/a,dst=/b,bind-propagation=shared x.sif", "bad-mount"),
    ("run --home /a:/b:/c x.sif", "bad-home"),
    ("run --home :/b x.sif", "bad-home"),
    ("run --overlay /a:weird x.sif", "bad-overlay"),
    ("run --overlay '/a,' x.sif", "bad-overlay"),
    # apptainer before 1.4 reads --env-file as one path, 1.4 and later as a CSV list: read two ways.
    ("run --env-file '\"a,b\"' x.sif", "ambiguous-value"),
    ("run --env-file a,b x.sif", "ambiguous-value"),
    ("run --workdir '' x.sif", "bad-value"),
]


@pytest.mark.parametrize(("argv", "rule"), UNREADABLE)
def test_refuses_argv_it_cannot_read_without_doubt(argv: str, rule: str) -> None:
    """An argv apptainer would reject, or read differently from how it looks, is refused while reading."""
    with pytest.raises(ArgvRefused) as refused:
        apptainer.parse(tuple(shlex.split(argv)))
    assert refused.value.rule == rule


# --- rules ---------------------------------------------------------------------------------------------------

IMG = "docker://alpine:3"

RULES: list[tuple[str, dict[str, Any], str | None]] = [
    # Isolation and tuning options stay allowed under the default rules.
    (f"run --contain --containall --userns --net --network none --writable-tmpfs {IMG}", {}, None),
    (f"run -cCu -e --no-privs --drop-caps CAP_CHOWN --env A=1 --memory 1G --cpus 2 {IMG}", {}, None),
    (f"--debug --nocolor -s run --no-home --compat --pid --ipc --uts --app x {IMG}", {}, None),
    # fakeroot, every spelling, exec and run, with global options before the subcommand.
    (f"run --fakeroot {IMG}", {}, "fakeroot"),
    (f"run -f {IMG}", {}, "fakeroot"),
    (f"run -f=true {IMG}", {}, "fakeroot"),
    (f"run --fakeroot=1 {IMG}", {}, "fakeroot"),
    (f"run -cf {IMG}", {}, "fakeroot"),
    (f"run --fakeroot=false --fakeroot {IMG}", {}, "fakeroot"),
    (f"--debug exec -f {IMG} id", {}, "fakeroot"),
    (f"-q run --fakeroot {IMG}", {"allow_options": ("--fakeroot",)}, None),
    # A boolean set false asks for nothing.
    (f"run --fakeroot=false -f=0 {IMG}", {}, None),
    (f"run --writable {IMG}", {}, "writable"),
    (f"run -w {IMG}", {}, "writable"),
    (f"run -wc {IMG}", {}, "writable"),
    (f"run -w {IMG}", {"allow_options": ("--writable",)}, None),
    (f"run --keep-privs {IMG}", {}, "keep-privs"),
    (f"run --allow-setuid {IMG}", {}, "allow-setuid"),
    (f"run --boot {IMG}", {}, "boot"),
    (f"run --oom-kill-disable {IMG}", {}, "oom-kill-disable"),
    # Every job is a child of the daemon, so --sharens would join other pods' jobs.
    (f"run --sharens {IMG}", {}, "sharens"),
    (f"run --ignore-userns {IMG}", {}, "ignore-userns"),
    (f"run --ignore-subuid {IMG}", {}, "ignore-subuid"),
    (f"run --ignore-fakeroot-command {IMG}", {}, "ignore-fakeroot-command"),
    (f"run --fusemount 'host:sshfs h:/ /mnt' {IMG}", {}, "fusemount"),
    (f"run --fusemount=container:x {IMG}", {"allow_options": ("--fusemount",)}, None),
    # A CDI spec can bind any host path, so bind roots cannot cover it.
    (f"run --cdi-dirs {{home}}/data {IMG}", {"bind_roots": ("~",), "allow_devices": True}, "cdi-dirs"),
    (f"run --docker-host unix:///var/run/docker.sock {IMG}", {}, "docker-host"),
    # A config file replaces the site's apptainer.conf; it is a global option.
    (f"-c /tmp/a.conf run {IMG}", {}, "config"),
    (f"--config=/tmp/a.conf run {IMG}", {}, "config"),
    (f"-c/tmp/a.conf run {IMG}", {}, "config"),
    (f"-qc/tmp/a.conf run {IMG}", {}, "config"),
    (f"--config /tmp/a.conf exec {IMG} ls", {"allow_options": ("--config",)}, None),
    (f"--build-config run {IMG}", {}, "build-config"),
    # Devices.
    (f"run --nv {IMG}", {}, "devices"),
    (f"run --rocm {IMG}", {}, "devices"),
    (f"run --nvccli {IMG}", {}, "devices"),
    (f"run --intel-hpu {IMG}", {}, "devices"),
    (f"run --device=nvidia.com/gpu=all {IMG}", {}, "devices"),
    (f"run --nv --device nvidia.com/gpu=0 {IMG}", {"allow_devices": True}, None),
    (f"run --nv {IMG}", {"allow_options": ("--nv",)}, None),
    # Capabilities: each one added must be allowed, whatever its spelling.
    (f"run --add-caps CAP_NET_ADMIN {IMG}", {}, "add-caps"),
    (f"run --add-caps=net_admin,sys_ptrace {IMG}", {"allow_capabilities": ("NET_ADMIN",)}, "add-caps"),
    (f"run --add-caps=net_admin,CAP_SYS_PTRACE {IMG}", {"allow_capabilities": ("CAP_NET_ADMIN", "sys_ptrace")}, None),
    # Security profiles.
    (f"run --security seccomp:unconfined {IMG}", {}, "security"),
    (f"run --security=apparmor:unconfined {IMG}", {"allow_unconfined": True}, None),
    (f"run --security uid:0 {IMG}", {"allow_unconfined": True}, "security"),
    (f"run --security uid:0,gid:0 {IMG}", {"allow_options": ("--security",)}, None),
    # Networking: a new namespace is fine; published ports and other CNI arguments are not.
    (f"run --net --network-args portmap=8080:80/tcp {IMG}", {}, "ports"),
    (f"run --net --network-args=portmap=8080:80/tcp {IMG}", {"allow_ports": True}, None),
    (f"run --net --network-args IP=10.1.1.1 {IMG}", {"allow_ports": True}, "network-args"),
    (f"run --netns-path /proc/1/ns/net {IMG}", {}, "netns-path"),
    (f"run --netns-path /proc/1/ns/net {IMG}", {"allow_host_namespaces": True}, None),
    # Binds: every spelling, several in one value, repeated, and through --mount, --home, --overlay.
    (f"run --bind /proc:/host_proc {IMG}", {}, "bind-outside-roots"),
    (f"run --bind=/proc {IMG}", {}, "bind-outside-roots"),
    (f"run -B /proc:/host_proc {IMG}", {}, "bind-outside-roots"),
    (f"run -B/proc:/host_proc {IMG}", {}, "bind-outside-roots"),
    (f"run -B=/proc:/host_proc {IMG}", {}, "bind-outside-roots"),
    (f"run -cB /proc:/host_proc {IMG}", {}, "bind-outside-roots"),
    (f"-d exec --bind /proc:/host_proc {IMG} ls", {}, "bind-outside-roots"),
    (f"run -B {{home}}/data:/d,/proc:/p {IMG}", {"bind_roots": ("~",)}, "bind-outside-roots"),
    (f"run -B {{home}}/data:/d -B /proc:/p {IMG}", {"bind_roots": ("~",)}, "bind-outside-roots"),
    (f"run -B {{home}}/data:/d:ro,rw,/proc {IMG}", {"bind_roots": ("~",)}, "bind-outside-roots"),
    (f"run -B {{home}}/data:/d:ro,{{home}}/data/x {IMG}", {"bind_roots": ("~",)}, None),
    (f"run --mount type=bind,src=/proc,dst=/p {IMG}", {}, "bind-outside-roots"),
    (f"run --mount=type=bind,source={{home}}/data,target=/d,ro {IMG}", {"bind_roots": ("~",)}, None),
    (f"run --home /etc:/home/u {IMG}", {}, "bind-outside-roots"),
    (f"run -H {{home}}/data {IMG}", {"bind_roots": ("~/data",)}, None),
    (f"run --overlay /var/lib/x.img {IMG}", {}, "bind-outside-roots"),
    (f"run -o {{home}}/data:ro {IMG}", {"bind_roots": ("~",)}, None),
    (f"run --containlibs /usr/lib/libx.so {IMG}", {}, "bind-outside-roots"),
    (f"run -W /tmp {IMG}", {}, "bind-outside-roots"),
    (f"run --workdir={{home}}/data {IMG}", {"bind_roots": ("~",)}, None),
    # A relative source is relative to the job's working directory, the daemon user's HOME.
    (f"run -B data:/d {IMG}", {"bind_roots": ("~",)}, None),
    (f"run -B data:/d {IMG}", {"bind_roots": ("/srv",)}, "bind-outside-roots"),
    # Symlinks and `..` are resolved before comparing; a root may itself be a symlink or use $HOME.
    (f"run -B {{home}}/link_to_etc/passwd:/p {IMG}", {"bind_roots": ("~",)}, "bind-outside-roots"),
    (f"run -B {{home}}/../outside:/o {IMG}", {"bind_roots": ("~",)}, "bind-outside-roots"),
    (f"run -B {{home}}/data/x:/x {IMG}", {"bind_roots": ("{home}/link_to_data",)}, None),
    (f"run -B {{home}}/data/x:/x {IMG}", {"bind_roots": ("$HOME/data",)}, None),
    (f"run -B {{home}}/a:/x {IMG}", {"bind_roots": ("${HOME}/data",)}, "bind-outside-roots"),
    # Inside HOME by the kernel's reading, outside by Go's filepath.Clean: refused.
    (f"run -B {{home}}/deep_link/../../../outside:/o {IMG}", {"bind_roots": ("~",)}, "bind-outside-roots"),
    # Host files apptainer reads or writes itself.
    (f"run --env-file /etc/environment {IMG}", {}, "path-outside-roots"),
    (f"run --env-file={{home}}/data/a.env,/etc/environment {IMG}", {"bind_roots": ("~",)}, "ambiguous-value"),
    (f"run --env-file={{home}}/data/a.env {IMG}", {"bind_roots": ("~",)}, None),
    (f"run --apply-cgroups /etc/limits.toml {IMG}", {}, "path-outside-roots"),
    (f"run --authfile /root/.docker/config.json {IMG}", {}, "path-outside-roots"),
    (f"run --pem-path /etc/ssl/private/k.pem {IMG}", {}, "path-outside-roots"),
    (f"run --tmpdir /var/tmp {IMG}", {}, "path-outside-roots"),
    # allow_options names options, it does not widen the bind roots.
    (f"run -B /proc {IMG}", {"allow_options": ("--bind",)}, "bind-outside-roots"),
    # Local images and image archives lie on the host too.
    ("run /etc/x.sif", {}, "image-outside-roots"),
    ("exec lolcow_latest.sif cowsay moo", {}, "image-outside-roots"),
    ("exec lolcow_latest.sif cowsay moo", {"bind_roots": ("~",)}, None),
    ("run oci-archive:/etc/img.tar", {"bind_roots": ("~",)}, "image-outside-roots"),
    ("run docker-archive:{home}/img.tar:latest", {"bind_roots": ("~",)}, None),
    ("run oci:img.tar", {"bind_roots": ("~",)}, None),
    # `//` after the scheme may or may not be dropped; both readings must stay inside.
    ("run oci-archive://img.tar", {"bind_roots": ("~",)}, "image-outside-roots"),
    ("run {home}/link_to_etc/x.sif", {"bind_roots": ("~",)}, "image-outside-roots"),
    # Registry images need no root.
    ("run library://alpine:3", {}, None),
    ("run oras://ghcr.io/x/y:1", {}, None),
    ("run https://example.org/x.sif", {}, None),
    # The host's Docker engine and running instances are out of reach.
    ("run docker-daemon:alpine:3", {"bind_roots": ("/",)}, "image-transport"),
    ("exec instance://web ls", {"bind_roots": ("/",)}, "image-transport"),
]


@pytest.mark.parametrize(("argv", "rules", "expected"), RULES)
def test_refuses_what_rules_forbid_in_any_spelling(
    argv: str, rules: dict[str, Any], expected: str | None, host: TmpHost
) -> None:
    """Each rule refuses its option in every spelling, and the matching relaxation lets it through."""
    assert decide(argv, host, **rules) == expected
    assert decide(argv, host, apptainer.SINGULARITY, **rules) == expected


def test_refusal_names_the_argument_and_the_relaxation(host: TmpHost) -> None:
    """A refusal quotes the argument as written and tells the site which setting relaxes it."""
    invocation = apptainer.parse(("run", "-B", "/proc:/host_proc", IMG))
    with pytest.raises(ArgvRefused) as refused:
        apptainer.check(invocation, ArgumentRules(), host)
    assert refused.value.argument == "-B /proc:/host_proc"
    assert "bind_roots" in refused.value.reason
    invocation = apptainer.parse(("run", "-cf", IMG))
    with pytest.raises(ArgvRefused) as refused:
        apptainer.check(invocation, ArgumentRules(), host)
    assert refused.value.argument == "-cf"
    assert "--fakeroot" in refused.value.reason
    assert "allow_options" in refused.value.reason


def test_singularity_reads_the_same_command_line_under_its_own_kind() -> None:
    """singularity is apptainer under its older name: same reading, its own kind."""
    invocation = apptainer.SINGULARITY.parse(("--debug", "exec", "-B", "/a", "x.sif", "ls"))
    assert invocation.kind == "singularity"
    assert invocation.subcommand == "exec"
    assert apptainer.GRAMMAR.subcommands == apptainer.SINGULARITY.subcommands == ("run", "exec")


# --- read-only roots --------------------------------------------------------------------------------------

RO = {"read_only_roots": ("~/data",)}
RO_HOME = {"read_only_roots": ("~",)}
PROC = {"bind_roots": ("~",), "read_only_roots": ("/proc",)}

READ_ONLY_RULES: list[tuple[str, dict[str, Any], str | None]] = [
    # -B/--bind: read-only only with `ro` among the bind's options and no `rw` beside it.
    (f"run -B {{home}}/data:/d {IMG}", RO, "bind-read-write"),
    (f"run -B {{home}}/data {IMG}", RO, "bind-read-write"),
    (f"run -B {{home}}/data:/d:ro {IMG}", RO, None),
    (f"run --bind={{home}}/data/x:/x:ro {IMG}", RO, None),
    (f"run -cB{{home}}/data:/d:ro {IMG}", RO, None),
    (f"run --bind {{home}}/data:/d:rw {IMG}", RO, "bind-read-write"),
    (f"run -B {{home}}/data:/d:ro,rw {IMG}", RO, "bind-read-write"),
    (f"run -B {{home}}/data:/d:rw,ro {IMG}", RO, "bind-read-write"),
    # Each bind of a list is judged on its own options.
    (f"run -B {{home}}/data:/d:ro,{{home}}/data/x:/x {IMG}", RO, "bind-read-write"),
    (f"run -B {{home}}/data:/d:ro,{{home}}/data/x:/x:ro {IMG}", RO, None),
    (f"run -B {{home}}/data:/d:ro -B {{home}}/data/x {IMG}", RO, "bind-read-write"),
    # A bind out of an image file takes `ro` after a comma.
    (f"run -B {{home}}/img.tar:/i:image-src=/,ro {IMG}", RO_HOME, None),
    (f"run -B {{home}}/img.tar:/i:image-src=/ {IMG}", RO_HOME, "bind-read-write"),
    # --mount: every ro/readonly field bare or true.
    (f"run --mount type=bind,src={{home}}/data,dst=/d {IMG}", RO, "bind-read-write"),
    (f"run --mount type=bind,src={{home}}/data,dst=/d,ro {IMG}", RO, None),
    (f"run --mount=type=bind,source={{home}}/data,destination=/d,readonly {IMG}", RO, None),
    (f"run --mount type=bind,src={{home}}/data,dst=/d,ro=true {IMG}", RO, None),
    (f"run --mount type=bind,src={{home}}/data,dst=/d,ro=false {IMG}", RO, "bind-read-write"),
    (f"run --mount type=bind,src={{home}}/data,dst=/d,ro,readonly=0 {IMG}", RO, "bind-read-write"),
    # An overlay is the container's writable layer unless given :ro.
    (f"run -o {{home}}/data {IMG}", RO, "bind-read-write"),
    (f"run --overlay {{home}}/data:rw {IMG}", RO, "bind-read-write"),
    (f"run -o {{home}}/data:ro {IMG}", RO, None),
    (f"run --overlay={{home}}/data/x:ro,{{home}}/data:rw {IMG}", RO, "bind-read-write"),
    # The home folder and the work folder are written; --containlibs is not counted as read-only.
    (f"run -H {{home}}/data {IMG}", RO, "bind-read-write"),
    (f"run --home {{home}}/data:/home/u {IMG}", RO, "bind-read-write"),
    (f"run -W {{home}}/data {IMG}", RO, "bind-read-write"),
    (f"run --containlibs {{home}}/data/x {IMG}", RO, "bind-read-write"),
    # Files apptainer reads may lie under a read-only root; its temporary folder may not.
    (f"run --env-file {{home}}/data/a.env {IMG}", RO, None),
    (f"run --apply-cgroups {{home}}/data/limits.toml {IMG}", RO, None),
    (f"run --authfile {{home}}/data/auth.json {IMG}", RO, None),
    (f"run --pem-path {{home}}/data/k.pem {IMG}", RO, None),
    (f"run --tmpdir {{home}}/data {IMG}", RO, "path-outside-roots"),
    (f"run --tmpdir {{home}}/data {IMG}", {"bind_roots": ("~/data",)}, None),
    # Local images and archives are read, unless --writable writes into the image.
    ("exec lolcow_latest.sif cowsay moo", RO_HOME, None),
    ("run {home}/ersap_v0.1.sif", RO_HOME, None),
    ("run docker-archive:{home}/img.tar:latest", RO_HOME, None),
    ("run {home}/link_to_etc/x.sif", RO_HOME, "image-outside-roots"),
    ("run -w lolcow_latest.sif", {"allow_options": ("--writable",), **RO_HOME}, "bind-read-write"),
    ("run --writable=false lolcow_latest.sif", {"allow_options": ("--writable",), **RO_HOME}, None),
    ("run -w lolcow_latest.sif", {"allow_options": ("--writable",), "bind_roots": ("~",)}, None),
    # Symlinks and `..` resolve as for bind roots; a root may be a symlink.
    (f"run -B {{home}}/link_to_data:/d:ro {IMG}", RO, None),
    (f"run -B {{home}}/link_to_data:/d {IMG}", RO, "bind-read-write"),
    (f"run -B {{home}}/data/../data/x:/x {IMG}", RO, "bind-read-write"),
    (f"run -B {{home}}/deep_link/../../../data:/d:ro {IMG}", RO, "bind-outside-roots"),
    (f"run -B {{home}}/data/x:/x {IMG}", {"read_only_roots": ("{home}/link_to_data",)}, "bind-read-write"),
    (f"run -B {{home}}/data/x:/x:ro {IMG}", {"read_only_roots": ("{home}/link_to_data",)}, None),
    # Under a bind root as well, a path stays read-write.
    (f"run -B {{home}}/data/x:/x {IMG}", {"bind_roots": ("~/data/x",), **RO}, None),
    (f"run -B {{home}}/data:/d {IMG}", {"bind_roots": ("~/data/x",), **RO}, "bind-read-write"),
    # The process exporter's line with /proc as a read-only root.
    ("run --bind /proc:/host_proc {home}/process-exporter_pgid-go.sif", PROC, "bind-read-write"),
    ("run --bind /proc:/host_proc:ro {home}/process-exporter_pgid-go.sif", PROC, None),
]


@pytest.mark.parametrize(("argv", "rules", "expected"), READ_ONLY_RULES)
def test_read_only_roots_admit_only_read_only_uses_in_any_spelling(
    argv: str, rules: dict[str, Any], expected: str | None, host: TmpHost
) -> None:
    """Under a read-only root a bind must be read-only, and only what apptainer reads is allowed."""
    assert decide(argv, host, **rules) == expected
    assert decide(argv, host, apptainer.SINGULARITY, **rules) == expected


def test_read_write_bind_refusal_quotes_the_argument_and_names_both_fixes(host: TmpHost) -> None:
    """The refusal quotes the bind as written and says to add :ro or to open a bind root."""
    invocation = apptainer.parse(("run", "-B", "/proc:/host_proc", IMG))
    with pytest.raises(ArgvRefused) as refused:
        apptainer.check(invocation, ArgumentRules(read_only_roots=("/proc",)), host)
    assert (refused.value.rule, refused.value.argument) == ("bind-read-write", "-B /proc:/host_proc")
    assert ":ro" in refused.value.reason
    assert "bind_roots" in refused.value.reason


# --- the lines pods write ------------------------------------------------------------------------------------

ALLOWED_BY_DEFAULT = ["run docker://sylabsio/lolcow:latest"]

LOCAL_IMAGES = [
    # A relative image is relative to HOME, the job's working directory.
    "exec lolcow_latest.sif cowsay moo",
    # `~` was already expanded by the line grammar.
    "run {home}/ersap_v0.1.sif -- /ersap/run-pipeline.sh",
]

REFUSED_BY_DEFAULT = [
    ("run --bind /proc:/host_proc {home}/process-exporter_pgid-go.sif", ("/proc", "~")),
    (
        "exec --env SLURM_CONF=/home/u/slurm.conf --bind /run/munge/munge.socket.2:/run/munge/munge.socket.2 "
        "fw-agent_main.sif bash",
        ("/run/munge", "~"),
    ),
]


@pytest.mark.parametrize("argv", ALLOWED_BY_DEFAULT)
def test_allows_registry_images_by_default(argv: str, host: TmpHost) -> None:
    """A registry image with no options runs under the default rules."""
    assert decide(argv, host) is None


@pytest.mark.parametrize("argv", LOCAL_IMAGES)
def test_allows_local_images_only_under_bind_roots(argv: str, host: TmpHost) -> None:
    """A local image file runs only once a site opens its folder."""
    assert decide(argv, host) == "image-outside-roots"
    assert decide(argv, host, bind_roots=("~",)) is None


@pytest.mark.parametrize(("argv", "roots"), REFUSED_BY_DEFAULT)
def test_refuses_host_binds_until_a_site_opens_them(argv: str, roots: tuple[str, ...], host: TmpHost) -> None:
    """Binding /proc or the munge socket is refused by default and allowed once their folders are roots."""
    assert decide(argv, host) == "bind-outside-roots"
    assert decide(argv, host, bind_roots=roots) is None


# --- properties ----------------------------------------------------------------------------------------------

_ALL_SPECS = apptainer.GLOBAL_OPTIONS + apptainer.RUN_OPTIONS
_VALUES = st.sampled_from(
    ["/proc", "/proc:/p", "{home}/data", "{home}/data:/d:ro", "data", "x,y", "", "true", "=x", "-x", "a=b"]
)
_WORDS = st.one_of(
    st.sampled_from([n for spec in _ALL_SPECS for n in spec.names]),
    st.sampled_from(["run", "exec", "--", "-", "x.sif", "docker://a", "instance://x", "docker-daemon:a"]),
    st.builds(lambda spec, v: f"{spec.names[0]}={v}", st.sampled_from(_ALL_SPECS), _VALUES),
    _VALUES,
    st.text(max_size=12),
)


@settings(max_examples=400, deadline=None)
@given(argv=st.lists(_WORDS, max_size=10))
def test_no_argv_crashes_the_reader_or_the_rules(argv: list[str], host: TmpHost) -> None:
    """Whatever the words, reading and checking either succeed or raise ArgvRefused."""
    argv = [w.replace("{home}", host.home) for w in argv]
    for grammar in (apptainer.GRAMMAR, apptainer.SINGULARITY):
        try:
            invocation = grammar.parse(tuple(argv))
        except ArgvRefused:
            continue
        assert isinstance(invocation, Invocation)
        for rules in (ArgumentRules(), ArgumentRules(bind_roots=("~", "/"), allow_devices=True)):
            with contextlib.suppress(ArgvRefused):
                grammar.check(invocation, rules, host)


def _spellings(spec: OptionSpec, value: str | None) -> list[list[str]]:
    """Every way to write one option with `value` (None: a flag set to true)."""
    long = [n for n in spec.names if n.startswith("--")]
    short = [n for n in spec.names if not n.startswith("--")]
    out: list[list[str]] = []
    if value is None:
        out += [[n] for n in long + short] + [[f"{n}=true"] for n in long + short]
        # Clustered behind -c (--contain), which no rule refuses.
        out += [[f"-c{n[1]}"] for n in short]
    else:
        out += [[f"{n}={value}"] for n in long + short] + [[n, value] for n in long + short]
        out += [[f"{n}{value}"] for n in short if value and not value.startswith("=")]
        out += [[f"-c{n[1]}", value] for n in short]
    return out


_OPTION_VALUES = st.sampled_from(["/proc", "/proc:/p", "{home}/data:/d", "data", "/etc/x", "seccomp:unconfined"])


@st.composite
def _options(draw: st.DrawFn) -> list[tuple[OptionSpec, str | None]]:
    specs = draw(st.lists(st.sampled_from(apptainer.RUN_OPTIONS), min_size=1, max_size=4))
    return [(spec, draw(_OPTION_VALUES) if spec.takes_value else None) for spec in specs]


@settings(max_examples=300, deadline=None)
@given(options=_options(), data=st.data())
def test_a_refusal_does_not_depend_on_spelling(
    options: list[tuple[OptionSpec, str | None]], data: st.DataObject, host: TmpHost
) -> None:
    """Writing the same options another way (long/short, '=', attached) gives the same decision."""
    canonical: list[str] = []
    respelled: list[str] = []
    for spec, written in options:
        value = written.replace("{home}", host.home) if written is not None else None
        canonical += [spec.canonical] if value is None else [spec.canonical, value]
        respelled += data.draw(st.sampled_from(_spellings(spec, value)))
    for rules in (ArgumentRules(), ArgumentRules(bind_roots=("~",))):
        assert _rule(["run", *respelled, IMG], rules, host) == _rule(["run", *canonical, IMG], rules, host)


def _rule(argv: list[str], rules: ArgumentRules, host: TmpHost) -> str | None:
    try:
        apptainer.check(apptainer.parse(tuple(argv)), rules, host)
    except ArgvRefused as refused:
        return refused.rule
    return None


_SPECS = {spec.canonical: spec for spec in apptainer.RUN_OPTIONS}
_READ_WRITE_BINDS = [
    ("--bind", "{home}/data:/d"),
    ("--bind", "{home}/data"),
    ("--bind", "{home}/data/x:/x:rw"),
    ("--bind", "{home}/data:/d:ro,rw"),
    ("--bind", "{home}/data/x:/x:ro,{home}/data:/d"),
    ("--mount", "type=bind,src={home}/data,dst=/d"),
    ("--mount", "type=bind,src={home}/data,dst=/d,ro=false"),
    ("--overlay", "{home}/data"),
    ("--home", "{home}/data"),
    ("--workdir", "{home}/data"),
]
_ALONGSIDE = [
    ("--contain", None),
    ("--cleanenv", None),
    ("--no-home", None),
    ("--env", "A=1"),
    ("--bind", "{home}/data/x:/ro:ro"),
    ("--overlay", "{home}/data/x:ro"),
    ("--env-file", "{home}/data/a.env"),
]


@settings(max_examples=300, deadline=None)
@given(
    alongside=st.lists(st.sampled_from(_ALONGSIDE), max_size=3),
    bind=st.sampled_from(_READ_WRITE_BINDS),
    at=st.integers(0, 3),
    data=st.data(),
)
def test_read_write_bind_under_a_read_only_root_stays_refused_in_any_spelling(
    alongside: list[tuple[str, str | None]],
    bind: tuple[str, str],
    at: int,
    data: st.DataObject,
    host: TmpHost,
) -> None:
    """However the line is written, a read-write use of a read-only root is refused as bind-read-write."""
    options = [*alongside]
    options.insert(min(at, len(options)), bind)
    argv = ["run"]
    for name, written in options:
        value = written.replace("{home}", host.home) if written is not None else None
        argv += data.draw(st.sampled_from(_spellings(_SPECS[name], value)))
    argv.append(IMG)
    assert _rule(argv, ArgumentRules(read_only_roots=("~/data",)), host) == "bind-read-write"
    assert _rule(argv, ArgumentRules(bind_roots=("~/data",)), host) is None


def test_option_tables_hold_each_name_once() -> None:
    """No spelling is defined twice within the root command or a subcommand."""
    for table in (apptainer.GLOBAL_OPTIONS, apptainer.RUN_OPTIONS, apptainer.EXEC_OPTIONS):
        names = [n for spec in table for n in spec.names]
        assert len(names) == len(set(names))


def test_host_helper_builds_a_real_tree(tmp_path: Path) -> None:
    """The test host resolves symlinks on disk, so the symlink cases above test something real."""
    host = build_host(tmp_path)
    assert host.realpath(f"{host.home}/link_to_etc") == "/etc"


# --- how each program reads a value --------------------------------------------------------------------------

SOURCE_TYPES: dict[str, tuple[str, str]] = {
    "--app": ("SSSSSSSS", "SSSSSSSSSSS"),
    "--bind": ("AAAAAAAA", "LLLLLLLLLLL"),
    "--mount": ("AAAAAAAA", "--AAAAAAAAA"),
    "--home": ("SSSSSSSS", "SSSSSSSSSSS"),
    "--overlay": ("LLLLLLLL", "LLLLLLLLLLL"),
    "--scratch": ("LLLLLLLL", "LLLLLLLLLLL"),
    "--workdir": ("SSSSSSSS", "SSSSSSSSSSS"),
    "--cwd": ("---SSSSS", "-----SSSSSS"),
    "--pwd": ("SSSSSSSS", "SSSSSSSSSSS"),
    "--hostname": ("SSSSSSSS", "SSSSSSSSSSS"),
    "--network": ("SSSSSSSS", "SSSSSSSSSSS"),
    "--network-args": ("LLLLLLLL", "LLLLLLLLLLL"),
    "--netns-path": ("-----SSS", "--------SSS"),
    "--dns": ("SSSSSSSS", "SSSSSSSSSSS"),
    "--security": ("LLLLLLLL", "LLLLLLLLLLL"),
    "--apply-cgroups": ("SSSSSSSS", "SSSSSSSSSSS"),
    "--containlibs": ("LLLLLLLL", "LLLLLLLLLLL"),
    "--fusemount": ("LLLLLLLL", "LLLLLLLLLLL"),
    "--tmpdir": ("SSSSSSSS", "SSSSSSSSSSS"),
    "--add-caps": ("SSSSSSSS", "SSSSSSSSSSS"),
    "--drop-caps": ("SSSSSSSS", "SSSSSSSSSSS"),
    "--env": ("LMMMMMMM", "LLLMMMMMMMM"),
    "--no-env": ("-------L", "-----------"),
    "--env-file": ("SSSSSLLL", "SSSSSSSSLLL"),
    "--no-mount": ("LLLLLLLL", "LLLLLLLLLLL"),
    "--blkio-weight": ("-IIIIIII", "---IIIIIIII"),
    "--blkio-weight-device": ("-LLLLLLL", "---LLLLLLLL"),
    "--cpu-shares": ("-IIIIIII", "---IIIIIIII"),
    "--cpus": ("-SSSSSSS", "---SSSSSSSS"),
    "--cpuset-cpus": ("-SSSSSSS", "---SSSSSSSS"),
    "--cpuset-mems": ("-SSSSSSS", "---SSSSSSSS"),
    "--memory": ("-SSSSSSS", "---SSSSSSSS"),
    "--memory-reservation": ("-SSSSSSS", "---SSSSSSSS"),
    "--memory-swap": ("-SSSSSSS", "---SSSSSSSS"),
    "--pids-limit": ("-IIIIIII", "---IIIIIIII"),
    "--device": ("-------L", "-----LLLLLL"),
    "--cdi-dirs": ("-------L", "-----LLLLLL"),
    "--pem-path": ("SSSSSSSS", "SSSSSSSSSSS"),
    "--authfile": ("-----SSS", "------SSSSS"),
    "--docker-host": ("--SSSSSS", "----SSSSSSS"),
    "--docker-username": ("SSSSSSSS", "SSSSSSSSSSS"),
    "--docker-password": ("SSSSSSSS", "SSSSSSSSSSS"),
    "--runscript-timeout": ("----SSSS", "-----------"),
}
"""The pflag type of each value option of `run` and `exec`, as the sources define it, one letter per release:
apptainer v1.0.0, v1.1.0, v1.2.0, v1.3.0, v1.3.6, v1.4.0, v1.4.5, v1.5.3 and SingularityCE v3.7.0, v3.8.0,
v3.9.0, v3.10.0, v3.11.5, v4.0.0, v4.1.0, v4.1.5, v4.2.0, v4.3.7, v4.5.1 (cmd/internal/cli/*.go: each
cmdline.Flag's DefaultValue, and SingularityCE's `StringArray: true`, through pkg/cmdline/flag.go's type
switch; only flags registered for the exec and run commands). S string, A StringArray, L StringSlice,
M StringToString, I int, - no such option in that release."""

_LETTER = {
    apptainer_values.STRING: "S",
    apptainer_values.ARRAY: "A",
    apptainer_values.SLICE: "L",
    apptainer_values.MAP: "M",
    apptainer_values.INT: "I",
}


def test_value_types_are_those_the_sources_define() -> None:
    """Every value option's types, in apptainer and in SingularityCE, are the ones their sources give it."""
    value_options = {n for spec in apptainer.RUN_OPTIONS if spec.takes_value for n in spec.names if n[1] == "-"}
    assert set(SOURCE_TYPES) == value_options
    assert set(apptainer_values.TYPES) == value_options | {"--config"}
    for name, (in_apptainer, in_singularity_ce) in SOURCE_TYPES.items():
        typing = apptainer_values.TYPES[name]
        assert {_LETTER[kind] for kind, _ in typing.apptainer} == set(in_apptainer) - {"-"}, name
        assert {_LETTER[kind] for kind, _ in typing.singularity_ce} == set(in_singularity_ce) - {"-"}, name
    # Where a type changed between releases, the releases named are the ones that changed.
    env_file = apptainer_values.TYPES["--env-file"]
    assert env_file.apptainer == (("string", "1.0 to 1.3"), ("StringSlice", "1.4 to 1.5"))
    assert env_file.singularity_ce == (("string", "3.7 to 4.1"), ("StringSlice", "4.2 to 4.5"))


CSV_READINGS: list[tuple[str, tuple[str, ...] | None]] = [
    # pflag reads an empty argument as no values at all.
    ("", ()),
    ("a", ("a",)),
    ("a,b", ("a", "b")),
    ("a,", ("a", "")),
    (",", ("", "")),
    (" a , b", (" a ", " b")),
    # Quotes hold commas; a doubled quote inside them is one quote.
    ('"a,b"', ("a,b",)),
    ('"a""b"', ('a"b',)),
    ('"",x', ("", "x")),
    ('"/etc:/mnt"', ("/etc:/mnt",)),
    ('a,"b,c",d', ("a", "b,c", "d")),
    # encoding/csv's errors, and what Go releases read differently: refused.
    ('a"b', None),
    (' "a"', None),
    ('"a"b', None),
    ('"a', None),
    ("a\nb", None),
    ("a\r\nb", None),
    ('"a\nb"', None),
]


@pytest.mark.parametrize(("text", "fields"), CSV_READINGS)
def test_reads_csv_as_pflag_string_slices_do(text: str, fields: tuple[str, ...] | None) -> None:
    """A StringSlice argument reads as Go's encoding/csv reads one record; anything in doubt reads as None."""
    assert apptainer_values.csv_fields(text) == fields


@settings(max_examples=300)
@given(st.text(alphabet=st.characters(blacklist_characters='"\r\n'), max_size=30))
def test_csv_without_quotes_or_line_breaks_splits_at_every_comma(text: str) -> None:
    """Without quotes and line breaks there is nothing to read but the commas."""
    assert apptainer_values.csv_fields(text) == (tuple(text.split(",")) if text else ())


LIST_VALUES: list[tuple[str, dict[str, Any], str | None, str | None]] = [
    # (argv, rules, rule for apptainer, rule for singularity). SingularityCE's --bind is a CSV list and
    # unquotes "/etc:/mnt" into a bind of /etc; apptainer's takes the quote as part of a relative path.
    (f"run -B '\"/etc:/mnt\"' {IMG}", {"bind_roots": ("~",)}, "bad-bind", "ambiguous-value"),
    (f"run --bind='\"/etc\",/srv' {IMG}", {"bind_roots": ("~",)}, "bad-bind", "ambiguous-value"),
    (f"run -B '\"{{home}}/data:/d\"' {IMG}", {"bind_roots": ("~",)}, "bad-bind", "ambiguous-value"),
    (f"run -B {{home}}/data:/d,{{home}}/data/x {IMG}", {"bind_roots": ("~",)}, None, None),
    # StringSlice everywhere: each value is judged once CSV has unquoted it.
    (f"run --overlay '\"/etc/x.img\"' {IMG}", {"bind_roots": ("~",)}, "bind-outside-roots", "bind-outside-roots"),
    (
        f"run -o '\"{{home}}/data:ro\",/etc/x.img' {IMG}",
        {"bind_roots": ("~",)},
        "bind-outside-roots",
        "bind-outside-roots",
    ),
    (f"run -o '\"{{home}}/a,b:ro\"' {IMG}", {"read_only_roots": ("~",)}, None, None),
    (
        f"run --containlibs '\"/usr/lib/x.so\"' {IMG}",
        {"bind_roots": ("~",)},
        "bind-outside-roots",
        "bind-outside-roots",
    ),
    (f"run --security '\"seccomp:unconfined\"' {IMG}", {}, "security", "security"),
    (f"run --network-args '\"portmap=80:80/tcp\"' {IMG}", {}, "ports", "ports"),
    (f"run -o '{{home}}/data\"x' {IMG}", {"bind_roots": ("~",)}, "bad-value", "bad-value"),
    (f"run -o '\"{{home}}/data' {IMG}", {"bind_roots": ("~",)}, "bad-value", "bad-value"),
    # A string in some releases and a list in others: a comma or a quote is read two ways.
    (f"run --env-file {{home}}/data/a.env {IMG}", {"bind_roots": ("~",)}, None, None),
    (f"run --env-file '{{home}}/data/a,b.env' {IMG}", {"bind_roots": ("~",)}, "ambiguous-value", "ambiguous-value"),
    (f"run --env-file '\"{{home}}/data/a.env\"' {IMG}", {"bind_roots": ("~",)}, "ambiguous-value", "ambiguous-value"),
    # A plain string apptainer splits itself is read as it is.
    (f"run --add-caps '\"CAP_NET_ADMIN\"' {IMG}", {"allow_capabilities": ("NET_ADMIN",)}, "bad-value", "bad-value"),
]


@pytest.mark.parametrize(("argv", "rules", "as_apptainer", "as_singularity"), LIST_VALUES)
def test_judges_every_value_each_program_would_read_and_refuses_two_readings(
    argv: str, rules: dict[str, Any], as_apptainer: str | None, as_singularity: str | None, host: TmpHost
) -> None:
    """apptainer lines are read as apptainer types values; singularity lines as apptainer or SingularityCE."""
    assert decide(argv, host, **rules) == as_apptainer
    assert decide(argv, host, apptainer.SINGULARITY, **rules) == as_singularity


def test_two_readings_are_named_in_the_refusal() -> None:
    """An ambiguous value's refusal names both programs, both readings, and how to write it instead."""
    with pytest.raises(ArgvRefused) as refused:
        apptainer.SINGULARITY.parse(("run", "-B", '"/etc:/mnt"', IMG))
    reason = refused.value.reason
    assert refused.value.argument == "-B '\"/etc:/mnt\"'"
    assert "apptainer 1.0 to 1.5" in reason and "SingularityCE 3.7 to 4.5" in reason
    assert "'\"/etc:/mnt\"'" in reason and "'/etc:/mnt'" in reason and "without quotes" in reason


# --- resource options -----------------------------------------------------------------------------------------

RESOURCES: list[tuple[str, str | None]] = [
    # Limits bound the job itself.
    (f"run --memory 1G --memory-swap 2G --cpus 2 --cpuset-cpus 0-1 --pids-limit 100 {IMG}", None),
    # Weights and reservations are claims against every other process on the host.
    (f"run --cpu-shares 262144 {IMG}", "cpu-shares"),
    (f"run --cpu-shares=512 {IMG}", "cpu-shares"),
    (f"run --blkio-weight 1000 {IMG}", "blkio-weight"),
    (f"run --blkio-weight-device /dev/sda:1000 {IMG}", "blkio-weight-device"),
    (f"run --memory-reservation 64G {IMG}", "memory-reservation"),
]


@pytest.mark.parametrize(("argv", "expected"), RESOURCES)
def test_refuses_resource_claims_against_the_host_until_a_site_allows_them(
    argv: str, expected: str | None, host: TmpHost
) -> None:
    """cgroup weights and memory reservations are refused by name; allow_options lets each through."""
    for grammar in (apptainer.GRAMMAR, apptainer.SINGULARITY):
        assert decide(argv, host, grammar) == expected
        if expected is not None:
            assert decide(argv, host, grammar, allow_options=(f"--{expected}",)) is None


def test_refusal_hints_are_valid_toml(host: TmpHost) -> None:
    """A refusal says how to relax it as the TOML line a site writes, not `key: value`."""
    cases = {
        ("run", "--nv", IMG): "allow_devices = true",
        ("run", "-f", IMG): 'allow_options = ["--fakeroot"]',
        ("run", "--add-caps", "SYS_ADMIN", IMG): 'allow_capabilities = ["CAP_SYS_ADMIN"]',
        ("run", "--security", "seccomp:x", IMG): "allow_unconfined = true",
        ("run", "--net", "--network-args", "portmap=1:1/tcp", IMG): "allow_ports = true",
        ("run", "--netns-path", "/proc/1/ns/net", IMG): "allow_host_namespaces = true",
        ("run", "--cpu-shares", "9", IMG): 'allow_options = ["--cpu-shares"]',
    }
    for argv, setting in cases.items():
        with pytest.raises(ArgvRefused) as refused:
            apptainer.check(apptainer.parse(argv), ArgumentRules(), host)
        assert setting in refused.value.reason and "[runtimes.apptainer]" in refused.value.reason
        assert ": true" not in refused.value.reason and ": [" not in refused.value.reason


# --- what hostpipe adds to every line ----------------------------------------------------------------------

JOB_WORDS: list[tuple[str, str, tuple[str, ...]]] = [
    # Neither the daemon user's HOME nor the working folder (HOME too) is bound, whatever the line says.
    ("run docker://x", "none", ("--no-mount=home,cwd",)),
    ("exec --no-home x.sif ls", "none", ("--no-mount=home,cwd",)),
    ("run --contain docker://x", "none", ("--no-mount=home,cwd",)),
    # A site that wants the home folder read-only gets it read-only.
    ("run docker://x", "read-only", ("--no-mount=home,cwd", "--bind={home}:{home}:ro")),
    # A site that wants apptainer's own home bind keeps it, without the working folder.
    ("run docker://x", "read-write", ("--no-mount=cwd",)),
    # A line's own --home (under a bind root) is its home: only the working folder is left out.
    ("run -H {home}/data docker://x", "none", ("--no-mount=cwd",)),
    ("run --home={home}/data:/home/me docker://x", "read-only", ("--no-mount=cwd",)),
]


@pytest.mark.parametrize(("argv", "home_bind", "words"), JOB_WORDS)
def test_adds_no_mount_of_home_and_working_folder_unless_the_site_binds_home(
    argv: str, home_bind: str, words: tuple[str, ...], host: TmpHost
) -> None:
    """job_words gives the words that keep the daemon user's HOME out of a job, as the site's home_bind says."""
    invocation = apptainer.parse(tuple(shlex.split(argv.replace("{home}", host.home))))
    expected = tuple(word.replace("{home}", host.home) for word in words)
    assert apptainer.job_words(invocation, home_bind, host.home) == expected


@pytest.mark.parametrize(
    "argv",
    [
        ("/usr/bin/apptainer", "exec", "-B", "/a", "x.sif", "ls"),
        ("/usr/bin/apptainer", "--debug", "-q", "--config=/x.conf", "run", "--", "x.sif", "--", "a"),
        ("/usr/bin/singularity", "-s", "run", "-cB/a", "docker://x"),
    ],
)
def test_added_words_go_right_after_the_subcommand_and_read_back_as_options(argv: tuple[str, ...]) -> None:
    """The words land after the subcommand, where apptainer reads them as its own options; nothing else moves."""
    words = ("--no-mount=home,cwd", "--bind=/h:/h:ro")
    added = apptainer.with_job_words(argv, words)
    at = argv.index("exec" if "exec" in argv else "run") + 1
    assert added == (*argv[:at], *words, *argv[at:])
    before, after = apptainer.parse(argv[1:]), apptainer.parse(added[1:])
    assert (after.subcommand, after.image, after.args) == (before.subcommand, before.image, before.args)
    assert after.options[:2] == (
        Option("--no-mount", "home,cwd", "--no-mount=home,cwd"),
        Option("--bind", "/h:/h:ro", "--bind=/h:/h:ro"),
    )
    assert after.options[2:] == before.options


@pytest.mark.parametrize("home", ["/home/a,b", "/home/a:b", "/home/a b", "relative", '/home/"x"'])
def test_read_only_home_bind_refuses_a_home_it_cannot_write_as_a_bind(home: str) -> None:
    """HOME that no bind specification can name is refused, rather than bound as something else."""
    invocation = apptainer.parse(("run", "docker://x"))
    with pytest.raises(ArgvRefused) as refused:
        apptainer.job_words(invocation, "read-only", home)
    assert refused.value.rule == "home-bind"
    assert apptainer.job_words(invocation, "none", home) == ("--no-mount=home,cwd",)
