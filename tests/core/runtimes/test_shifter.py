"""shifter: how its getopt_long argv is read, and which volumes, modules and images the rules refuse."""

from __future__ import annotations

import contextlib
import shlex
from typing import Any

import pytest
from host_tmp import TmpHost, build_host
from hypothesis import given, settings
from hypothesis import strategies as st

from hostpipe.core.runtimes import shifter
from hostpipe.core.runtimes.base import ArgumentRules, ArgvRefused, Invocation, OptionSpec


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> TmpHost:
    return build_host(tmp_path_factory.mktemp("shifter"))


def decide(argv: str, host: TmpHost, **rules: Any) -> str | None:
    """The rule that refuses `argv` (with `{home}` standing for HOME) under `rules`, or None if allowed."""
    try:
        invocation = shifter.parse(tuple(shlex.split(argv.replace("{home}", host.home))))
        shifter.check(invocation, ArgumentRules(**rules), host)
    except ArgvRefused as refused:
        return refused.rule
    return None


# --- reading -------------------------------------------------------------------------------------------------

READINGS = [
    # The lines pods write: the image comes from --image, the command from what follows the options.
    (
        "--image=docker:jlabtsai/stress:p1 --entrypoint",
        "jlabtsai/stress:p1",
        (("--image", "docker:jlabtsai/stress:p1"), ("--entrypoint", None)),
        (),
    ),
    (
        "--image=gurjyan/ersap:v0.2 -- /ersap/run-pipeline.sh",
        "gurjyan/ersap:v0.2",
        (("--image", "gurjyan/ersap:v0.2"),),
        ("/ersap/run-pipeline.sh",),
    ),
    # docker: is shifter's default type, so both spellings name the same image.
    ("--image=godlovedc/lolcow:latest", "godlovedc/lolcow:latest", (("--image", "godlovedc/lolcow:latest"),), ()),
    # The other types keep their prefix so a docker glob never matches them.
    ("--image=id:0123abcd", "id:0123abcd", (("--image", "id:0123abcd"),), ()),
    ("--image=custom:site-image", "custom:site-image", (("--image", "custom:site-image"),), ()),
    ("--image=local:/srv/img", "local:/srv/img", (("--image", "local:/srv/img"),), ()),
    # `-i x`, `-ix` and `--image x` are all the same option.
    ("-i ubuntu:22.04 echo hi", "ubuntu:22.04", (("--image", "ubuntu:22.04"),), ("echo", "hi")),
    ("-iubuntu:22.04 ls", "ubuntu:22.04", (("--image", "ubuntu:22.04"),), ("ls",)),
    ("--image ubuntu ls", "ubuntu", (("--image", "ubuntu"),), ("ls",)),
    # POSIXLY_CORRECT: reading stops at the command, so a later -V belongs to the command.
    ("--image=ubuntu ls --volume /proc:/p", "ubuntu", (("--image", "ubuntu"),), ("ls", "--volume", "/proc:/p")),
    # An optional value is never a separate word: /tmp here is the command.
    (
        "--image=ubuntu --workdir /tmp ls",
        "ubuntu",
        (("--image", "ubuntu"), ("--workdir", None)),
        ("/tmp", "ls"),
    ),
    ("--image=ubuntu -w/tmp ls", "ubuntu", (("--image", "ubuntu"), ("--workdir", "/tmp")), ("ls",)),
    (
        "--image=ubuntu --entrypoint=/bin/x",
        "ubuntu",
        (("--image", "ubuntu"), ("--entrypoint", "/bin/x")),
        (),
    ),
    ("--image=ubuntu --entry", "ubuntu", (("--image", "ubuntu"), ("--entrypoint", None)), ()),
    # A cluster of flags can end in a value option, attached or as the next word.
    ("-vEi ubuntu", "ubuntu", (("--verbose", None), ("--clearenv", None), ("--image", "ubuntu")), ()),
    ("-nvi ubuntu", "ubuntu", (("-n", None), ("--verbose", None), ("--image", "ubuntu")), ()),
    (
        "-e A=1 --env=B=2 --env-file=/e -i ubuntu",
        "ubuntu",
        (("--env", "A=1"), ("--env", "B=2"), ("--env-file", "/e"), ("--image", "ubuntu")),
        (),
    ),
    # A lone `-` is an operand and starts the command.
    ("-i ubuntu - x", "ubuntu", (("--image", "ubuntu"),), ("-", "x")),
]


@pytest.mark.parametrize(("argv", "image", "options", "args"), READINGS)
def test_reads_argv_the_way_getopt_long_does(
    argv: str, image: str, options: tuple[tuple[str, str | None], ...], args: tuple[str, ...]
) -> None:
    """Options, image and command land where shifter's getopt_long loop puts them."""
    invocation = shifter.parse(tuple(shlex.split(argv)))
    assert invocation.kind == "shifter"
    assert invocation.subcommand == ""
    assert invocation.global_options == ()
    assert invocation.image == image
    assert tuple((o.name, o.value) for o in invocation.options) == options
    assert invocation.args == args


UNREADABLE = [
    # No image: shifter could pick one from the environment; hostpipe does not let it.
    ("", "missing-image"),
    ("ls", "missing-image"),
    ("--volume=/a:/b", "missing-image"),
    # getopt gives `-i=x` the value `=x`; pflag users would read x.
    ("-i=ubuntu", "ambiguous-value"),
    ("--image==ubuntu", "ambiguous-value"),
    ("-i =ubuntu", "ambiguous-value"),
    ("-i ubuntu -V=/a:/b", "ambiguous-value"),
    # getopt expands unique prefixes; hostpipe judges only options written in full.
    ("--im=ubuntu", "abbreviated-option"),
    ("-i x --vol /a:/b", "abbreviated-option"),
    ("-i x --entr", "abbreviated-option"),
    ("--privileged -i x", "unknown-option"),
    ("-i x -Z", "unknown-option"),
    ("-i x -W foo", "unknown-option"),
    ("-i x ---x", "unknown-option"),
    ("-i", "missing-value"),
    ("--image", "missing-value"),
    ("-i x -V", "missing-value"),
    ("--help=yes -i x", "bad-syntax"),
    # shifter silently uses the last --image; a reader might stop at the first.
    ("-i a -i b", "repeated-image"),
    # Images shifter would change before running them.
    ("-i 'ubu ntu'", "bad-image"),
    ("-i 'ubuntu$'", "bad-image"),
    ("-i docker:", "bad-image"),
    ("-i id:a/b", "bad-image"),
    ("-i do/cker:evil", "bad-image"),
    ("--image=", "bad-image"),
    # Volumes shifter would reject or read differently.
    ("-i x -V /a", "bad-volume"),
    ("-i x -V a:/b", "bad-volume"),
    ("-i x -V '/a b:/c'", "bad-volume"),
    ("-i x -V /a/../b:/c", "bad-volume"),
    ("-i x -V /a:/b:rec", "bad-volume"),
    ("-i x -V '\"/a:/b\"'", "bad-volume"),
    ("-i x -V ';'", "bad-volume"),
]


@pytest.mark.parametrize(("argv", "rule"), UNREADABLE)
def test_refuses_argv_it_cannot_read_without_doubt(argv: str, rule: str) -> None:
    """An argv shifter would reject, or read differently from how it looks, is refused while reading."""
    with pytest.raises(ArgvRefused) as refused:
        shifter.parse(tuple(shlex.split(argv)))
    assert refused.value.rule == rule


# --- rules ---------------------------------------------------------------------------------------------------

RULES: list[tuple[str, dict[str, Any], str | None]] = [
    # Options that stay in the container are allowed by default.
    ("-i ubuntu -v -E -e A=1 --env-file=/etc/env -w/work --entrypoint=/bin/sh -n", {}, None),
    # Volumes, every spelling, several in one value and repeated.
    ("-i ubuntu -V /proc:/host_proc", {}, "bind-outside-roots"),
    ("-i ubuntu -V/proc:/host_proc", {}, "bind-outside-roots"),
    ("-i ubuntu --volume=/proc:/host_proc", {}, "bind-outside-roots"),
    ("-i ubuntu --volume /proc:/host_proc", {}, "bind-outside-roots"),
    ("-vV /proc:/host_proc -i ubuntu", {}, "bind-outside-roots"),
    ("-vV/proc:/host_proc -i ubuntu", {}, "bind-outside-roots"),
    ("-i ubuntu -V '{home}/data:/d;/proc:/p'", {"bind_roots": ("~",)}, "bind-outside-roots"),
    ("-i ubuntu -V {home}/data:/d -V /proc:/p", {"bind_roots": ("~",)}, "bind-outside-roots"),
    ("-i ubuntu -V '{home}/data:/d:ro;;{home}/data/x:/x'", {"bind_roots": ("~",)}, None),
    # A per-node cache is a file of any size the line names, on the node's own disk (shifter reads
    # perNodeCacheSizeLimit from udiRoot.conf and never enforces it): refused until a site allows it.
    ("-i ubuntu -V /proc:/c:perNodeCache=size=1G,bs=1M", {}, "per-node-cache"),
    ("-i ubuntu -V {home}/data:/c:perNodeCache=size=100T", {"bind_roots": ("~",)}, "per-node-cache"),
    ("-i ubuntu -V '{home}/data:/d;{home}/data:/c:PERNODECACHE=size=1G'", {"bind_roots": ("~",)}, "per-node-cache"),
    ("-i ubuntu -V {home}/data:/c:pernodecache", {"bind_roots": ("~",)}, "per-node-cache"),
    ("-i ubuntu -V /proc:/c:perNodeCache=size=1G,bs=1M", {"allow_options": ("perNodeCache",)}, "bind-outside-roots"),
    (
        "-i ubuntu -V {home}/data:/c:perNodeCache=size=1G",
        {"bind_roots": ("~",), "allow_options": ("perNodeCache",)},
        None,
    ),
    ("-i ubuntu -V /proc:/host_proc:ro", {"bind_roots": ("/proc",)}, None),
    # Symlinks are followed before comparing with the roots.
    ("-i ubuntu -V {home}/link_to_etc:/e", {"bind_roots": ("~",)}, "bind-outside-roots"),
    ("-i ubuntu -V {home}/link_to_data:/d", {"bind_roots": ("$HOME/data",)}, None),
    # Modules: only those a site lists; `none` turns modules off and is always fine.
    ("-i ubuntu --module=gpu", {}, "module-not-allowed"),
    ("-i ubuntu -m gpu", {}, "module-not-allowed"),
    ("-i ubuntu -mgpu", {}, "module-not-allowed"),
    ("-vm gpu -i ubuntu", {}, "module-not-allowed"),
    ("-i ubuntu -m gpu,mpich", {"modules": ("gpu",)}, "module-not-allowed"),
    ("-i ubuntu -m none -m mpich", {"modules": ("gpu",)}, "module-not-allowed"),
    ("-i ubuntu -m gpu,mpich", {"modules": ("gpu", "mpich")}, None),
    ("-i ubuntu --module=none", {}, None),
    ("-i ubuntu -m ' NONE '", {}, None),
    # A local image is a host folder.
    ("--image=local:/etc", {}, "image-outside-roots"),
    ("--image=local:{home}/img", {"bind_roots": ("~",)}, None),
    ("--image=local:img", {"bind_roots": ("~",)}, None),
    ("--image=local:{home}/link_to_etc", {"bind_roots": ("~",)}, "image-outside-roots"),
    # allow_options names no shifter option that widens bind roots.
    ("-i ubuntu -V /proc:/p", {"allow_options": ("--volume",)}, "bind-outside-roots"),
]


@pytest.mark.parametrize(("argv", "rules", "expected"), RULES)
def test_refuses_what_rules_forbid_in_any_spelling(
    argv: str, rules: dict[str, Any], expected: str | None, host: TmpHost
) -> None:
    """Each rule refuses in every spelling of its option, and the matching relaxation lets it through."""
    assert decide(argv, host, **rules) == expected


def test_refusal_names_the_argument_and_the_relaxation(host: TmpHost) -> None:
    """A refusal quotes the argument as written and tells the site which setting relaxes it."""
    with pytest.raises(ArgvRefused) as refused:
        shifter.check(shifter.parse(("-vV/proc:/p", "-i", "x")), ArgumentRules(), host)
    assert refused.value.argument == "-vV/proc:/p"
    assert "bind_roots" in refused.value.reason
    with pytest.raises(ArgvRefused) as refused:
        shifter.check(shifter.parse(("-i", "x", "-m", "gpu")), ArgumentRules(), host)
    assert refused.value.argument == "-m gpu"
    assert "modules" in refused.value.reason


def test_shifter_has_no_subcommands() -> None:
    """The policy does not ask shifter for a subcommand."""
    assert shifter.GRAMMAR.kind == "shifter"
    assert shifter.GRAMMAR.subcommands == ()


# --- read-only roots --------------------------------------------------------------------------------------

RO = {"read_only_roots": ("~/data",)}
CACHE = {"allow_options": ("perNodeCache",)}

# shifter (src/VolumeMap.c) reads each flag after the second `:` with strcasecmp: `ro` in any case mounts
# the volume read-only; `perNodeCache` makes it a per-node cache, which hostpipe does not count as read-only.
READ_ONLY_RULES: list[tuple[str, dict[str, Any], str | None]] = [
    ("-i ubuntu -V {home}/data:/d", RO, "bind-read-write"),
    ("-i ubuntu -V {home}/data:/d:ro", RO, None),
    ("-i ubuntu -V{home}/data:/d:RO", RO, None),
    ("-i ubuntu --volume={home}/data/x:/x:Ro", RO, None),
    ("-vV {home}/data:/d:ro -i ubuntu", RO, None),
    ("-vV {home}/data:/d -i ubuntu", RO, "bind-read-write"),
    # Each volume of a `;` list is judged on its own flags.
    ("-i ubuntu -V '{home}/data/x:/x:ro;{home}/data:/d'", RO, "bind-read-write"),
    ("-i ubuntu -V '{home}/data:/d:ro;;{home}/data/x:/x:ro'", RO, None),
    ("-i ubuntu -V {home}/data:/d:ro -V {home}/data/x:/x", RO, "bind-read-write"),
    ("-i ubuntu -V {home}/data:/c:ro:perNodeCache=size=1G", {**RO, **CACHE}, "bind-read-write"),
    ("-i ubuntu -V {home}/data:/c:perNodeCache=size=1G", {"bind_roots": ("~/data",), **CACHE}, None),
    # Symlinks resolve as for bind roots; shifter itself refuses `..`.
    ("-i ubuntu -V {home}/link_to_data:/d:ro", RO, None),
    ("-i ubuntu -V {home}/link_to_data:/d", RO, "bind-read-write"),
    ("-i ubuntu -V {home}/link_to_etc:/e:ro", {"read_only_roots": ("~",)}, "bind-outside-roots"),
    ("-i ubuntu -V {home}/data/x:/x", {"read_only_roots": ("$HOME/link_to_data",)}, "bind-read-write"),
    # Under a bind root as well, a volume stays read-write.
    ("-i ubuntu -V {home}/data/x:/x", {"bind_roots": ("~/data/x",), **RO}, None),
    ("-i ubuntu -V {home}/data:/d", {"bind_roots": ("~/data/x",), **RO}, "bind-read-write"),
    # A local image is only read.
    ("--image=local:{home}/img", {"read_only_roots": ("~",)}, None),
    ("--image=local:img", {"read_only_roots": ("~",)}, None),
    ("--image=local:{home}/link_to_etc", {"read_only_roots": ("~",)}, "image-outside-roots"),
    # The process exporter's /proc as a read-only root.
    (
        "--image=jlabtsai/process-exporter:v1.0 -V /proc:/host_proc --entrypoint",
        {"read_only_roots": ("/proc",)},
        "bind-read-write",
    ),
    (
        "--image=jlabtsai/process-exporter:v1.0 -V /proc:/host_proc:ro --entrypoint",
        {"read_only_roots": ("/proc",)},
        None,
    ),
]


@pytest.mark.parametrize(("argv", "rules", "expected"), READ_ONLY_RULES)
def test_read_only_roots_admit_only_read_only_volumes_in_any_spelling(
    argv: str, rules: dict[str, Any], expected: str | None, host: TmpHost
) -> None:
    """Under a read-only root a volume must carry shifter's ro flag; local images are only read."""
    assert decide(argv, host, **rules) == expected


def test_read_write_volume_refusal_quotes_the_argument_and_names_both_fixes(host: TmpHost) -> None:
    """The refusal quotes the volume as written and says to add :ro or to open a bind root."""
    with pytest.raises(ArgvRefused) as refused:
        shifter.check(shifter.parse(("-i", "x", "-V", "/proc:/p")), ArgumentRules(read_only_roots=("/proc",)), host)
    assert (refused.value.rule, refused.value.argument) == ("bind-read-write", "-V /proc:/p")
    assert ":ro" in refused.value.reason
    assert "bind_roots" in refused.value.reason


# --- the lines pods write ------------------------------------------------------------------------------------

ALLOWED_BY_DEFAULT = [
    "--image=godlovedc/lolcow:latest --entrypoint",
    "--image=docker:jlabtsai/stress:p1 --entrypoint",
    "--image=gurjyan/ersap:v0.2 -- /ersap/run-pipeline.sh",
]


@pytest.mark.parametrize("argv", ALLOWED_BY_DEFAULT)
def test_allows_plain_image_lines_by_default(argv: str, host: TmpHost) -> None:
    """An image with an entrypoint or a command runs under the default rules."""
    assert decide(argv, host) is None


def test_refuses_proc_volume_until_a_site_opens_it(host: TmpHost) -> None:
    """The process exporter's /proc volume is refused by default and allowed once /proc is a root."""
    argv = "--image=jlabtsai/process-exporter:v1.0 -V /proc:/host_proc --entrypoint"
    assert decide(argv, host) == "bind-outside-roots"
    assert decide(argv, host, bind_roots=("/proc",)) is None


# --- properties ----------------------------------------------------------------------------------------------

_NAMES = [n for spec in shifter.OPTIONS for n in spec.names]
_VALUES = st.sampled_from(
    ["ubuntu", "docker:a/b:1", "local:/etc", "/proc:/p", "{home}/data:/d;/x:/y", "gpu,mpich", "none", "=x", ""]
)
_WORDS = st.one_of(
    st.sampled_from(_NAMES),
    st.sampled_from(["--", "-", "-vE", "-nvi", "ls", "--vol", "-i=x"]),
    st.builds(lambda n, v: f"{n}={v}", st.sampled_from([n for n in _NAMES if n.startswith("--")]), _VALUES),
    st.builds(lambda n, v: f"{n}{v}", st.sampled_from([n for n in _NAMES if not n.startswith("--")]), _VALUES),
    _VALUES,
    st.text(max_size=12),
)


@settings(max_examples=400, deadline=None)
@given(argv=st.lists(_WORDS, max_size=10))
def test_no_argv_crashes_the_reader_or_the_rules(argv: list[str], host: TmpHost) -> None:
    """Whatever the words, reading and checking either succeed or raise ArgvRefused."""
    argv = [w.replace("{home}", host.home) for w in argv]
    try:
        invocation = shifter.parse(tuple(argv))
    except ArgvRefused:
        return
    assert isinstance(invocation, Invocation)
    assert invocation.image
    for rules in (ArgumentRules(), ArgumentRules(bind_roots=("~", "/"), modules=("gpu",))):
        with contextlib.suppress(ArgvRefused):
            shifter.check(invocation, rules, host)


def _spellings(spec: OptionSpec, value: str | None) -> list[list[str]]:
    """Every way getopt_long reads one option with `value` (None: a flag, or an optional value left out)."""
    long = [n for n in spec.names if n.startswith("--")]
    short = [n for n in spec.names if not n.startswith("--")]
    if value is None:
        # Clustered behind -v (--verbose), which no rule refuses.
        return [[n] for n in long + short] + [[f"-v{n[1]}"] for n in short]
    out = [[f"{n}={value}"] for n in long] + [[f"{n}{value}"] for n in short]
    out += [[f"-v{n[1]}{value}"] for n in short]
    if not spec.optional_value:
        out += [[n, value] for n in long + short] + [[f"-v{n[1]}", value] for n in short]
    return out


_OPTION_VALUES = {
    "--volume": st.sampled_from(["/proc:/p", "{home}/data:/d", "{home}/data:/d;/etc:/e", "/srv/x:/x:ro"]),
    "--module": st.sampled_from(["gpu", "none", "gpu,mpich", "mpich"]),
    "--env": st.sampled_from(["A=1", "B=/proc"]),
    "--env-file": st.just("/etc/env"),
    "--workdir": st.sampled_from(["/w", "/proc"]),
    "--entrypoint": st.sampled_from(["/bin/sh", "/x"]),
}


@st.composite
def _options(draw: st.DrawFn) -> list[tuple[OptionSpec, str | None]]:
    chosen = [spec for spec in shifter.OPTIONS if spec.canonical not in ("--image", "--help")]
    specs = draw(st.lists(st.sampled_from(chosen), min_size=1, max_size=4))
    return [(spec, draw(_OPTION_VALUES[spec.canonical]) if spec.takes_value else None) for spec in specs]


@settings(max_examples=300, deadline=None)
@given(options=_options(), image=st.sampled_from(["ubuntu", "docker:a/b:1", "local:/etc"]), data=st.data())
def test_a_refusal_does_not_depend_on_spelling(
    options: list[tuple[OptionSpec, str | None]], image: str, data: st.DataObject, host: TmpHost
) -> None:
    """Writing the same options another way (long/short, '=', attached, clustered) gives the same decision."""
    canonical: list[str] = ["--image", image]
    respelled: list[str] = data.draw(st.sampled_from([["-i", image], [f"-i{image}"], [f"--image={image}"]]))
    for spec, written in options:
        value = written.replace("{home}", host.home) if written is not None else None
        canonical += [spec.canonical] if value is None else [f"{spec.canonical}={value}"]
        respelled += data.draw(st.sampled_from(_spellings(spec, value)))
    for rules in (ArgumentRules(), ArgumentRules(bind_roots=("~",), modules=("gpu",))):
        assert _rule(respelled, rules, host) == _rule(canonical, rules, host)


def _rule(argv: list[str], rules: ArgumentRules, host: TmpHost) -> str | None:
    try:
        shifter.check(shifter.parse(tuple(argv)), rules, host)
    except ArgvRefused as refused:
        return refused.rule
    return None


_SPECS = {spec.canonical: spec for spec in shifter.OPTIONS}
_READ_WRITE_VOLUMES = [
    "{home}/data:/d",
    "{home}/data/x:/x:ro;{home}/data:/d",
    "{home}/link_to_data:/d",
    "{home}/data:/c:ro:perNodeCache=size=1G",
]
_ALONGSIDE = [
    ("--verbose", None),
    ("--clearenv", None),
    ("-n", None),
    ("--env", "A=1"),
    ("--volume", "{home}/data/x:/ro:ro"),
    ("--entrypoint", "/bin/sh"),
]


@settings(max_examples=300, deadline=None)
@given(
    alongside=st.lists(st.sampled_from(_ALONGSIDE), max_size=3),
    volume=st.sampled_from(_READ_WRITE_VOLUMES),
    at=st.integers(0, 3),
    data=st.data(),
)
def test_read_write_volume_under_a_read_only_root_stays_refused_in_any_spelling(
    alongside: list[tuple[str, str | None]], volume: str, at: int, data: st.DataObject, host: TmpHost
) -> None:
    """However the line is written, a volume of a read-only root without ro is refused as bind-read-write."""
    options = [*alongside]
    options.insert(min(at, len(options)), ("--volume", volume))
    argv: list[str] = data.draw(st.sampled_from([["-i", "ubuntu"], ["-iubuntu"], ["--image=ubuntu"]]))
    for name, written in options:
        value = written.replace("{home}", host.home) if written is not None else None
        argv += data.draw(st.sampled_from(_spellings(_SPECS[name], value)))
    cache = ("perNodeCache",)
    assert _rule(argv, ArgumentRules(read_only_roots=("~/data",), allow_options=cache), host) == "bind-read-write"
    assert _rule(argv, ArgumentRules(bind_roots=("~/data",), allow_options=cache), host) is None


def test_option_table_holds_each_name_once() -> None:
    """No spelling is defined twice in shifter's table."""
    assert len(_NAMES) == len(set(_NAMES))


def test_per_node_cache_refusal_says_why_and_how_a_site_allows_it(host: TmpHost) -> None:
    """The refusal of a per-node cache names the disk it fills and the TOML line that allows it."""
    with pytest.raises(ArgvRefused) as refused:
        shifter.check(shifter.parse(("-i", "x", "-V", "/a:/c:perNodeCache=size=10T")), ArgumentRules(), host)
    assert (refused.value.rule, refused.value.argument) == ("per-node-cache", "-V /a:/c:perNodeCache=size=10T")
    assert "node's own disk" in refused.value.reason
    assert 'allow_options = ["perNodeCache"] in [runtimes.shifter]' in refused.value.reason


def test_refusal_hints_are_valid_toml(host: TmpHost) -> None:
    """A refusal says how to relax it as the TOML line a site writes, not `key: value`."""
    with pytest.raises(ArgvRefused) as refused:
        shifter.check(shifter.parse(("-i", "x", "-m", "gpu")), ArgumentRules(), host)
    assert 'modules = ["gpu"] in [runtimes.shifter]' in refused.value.reason
    with pytest.raises(ArgvRefused) as refused:
        shifter.check(shifter.parse(("-i", "x", "-V", "/etc:/e")), ArgumentRules(), host)
    assert "bind_roots in [runtimes.shifter]" in refused.value.reason
