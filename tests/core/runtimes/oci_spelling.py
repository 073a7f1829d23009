"""Shared by the docker and podman tests: deciding a line, and writing the same options in many spellings."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from hostpipe.core.runtimes.base import ArgumentRules, ArgvRefused, Grammar, Host, OptionSpec

HOME = "@HOME"
"""Written in a test line where the test host's HOME goes."""


def words_of(line: str, host: Host) -> tuple[str, ...]:
    """argv[1:] of a test line, with HOME replaced by the host's HOME."""
    return tuple(w.replace(HOME, host.home) for w in shlex.split(line)[1:])


def decide(grammar: Grammar, words: Sequence[str], host: Host, **rules: Any) -> str | None:
    """The rule that refuses `words`, or None when the grammar reads and allows them."""
    try:
        grammar.check(grammar.parse(tuple(words)), ArgumentRules(**rules), host)
    except ArgvRefused as refused:
        return refused.rule
    return None


def permissive(table: Sequence[OptionSpec]) -> ArgumentRules:
    """Rules relaxing every knob, so the checks that remain are the ones nothing relaxes."""
    return ArgumentRules(
        bind_roots=("/",),
        allow_host_network=True,
        allow_ports=True,
        allow_devices=True,
        allow_host_namespaces=True,
        allow_capabilities=("ALL",),
        allow_unconfined=True,
        allow_options=tuple(s.canonical for s in table),
        allow_restart=True,
        allow_image_mounts=True,
        max_pids_limit=-1,
        min_oom_score_adj=-1000,
        max_tmpfs_size=-1,
        max_storage_size=-1,
    )


GENERIC_VALUES = ("x", "1", "a=b", "-x", "=x", "", "a b", "--privileged", "host")

VALUES: dict[str, tuple[str, ...]] = {
    "--network": ("host", "none", "bridge", "container:db", "mynet", "name=host", "slirp4netns", "ns:/x"),
    "--pid": ("host", "private", "container:db", ""),
    "--ipc": ("host", "shareable", "private", "none"),
    "--uts": ("host", "private"),
    "--userns": ("host", "keep-id", "auto", ""),
    "--cgroupns": ("host", "private"),
    "--cap-add": ("SYS_ADMIN", "chown", "cap_net_admin", "ALL", "CAP_KILL,SETUID"),
    "--security-opt": (
        "seccomp=unconfined",
        "seccomp:unconfined",
        "apparmor=unconfined",
        "label=disable",
        "label:disable",
        "no-new-privileges",
        "no-new-privileges=false",
        "systempaths=unconfined",
    ),
    "--volume": ("/etc:/e", "/proc:/p:ro", "@HOME/data:/d", "vol:/v", "/d", "/var/run/docker.sock:/s", "a:b:c:d"),
    "--mount": (
        "type=bind,src=/etc,dst=/e",
        "type=volume,src=v,dst=/v",
        "type=tmpfs,dst=/t",
        "type=bind,src=@HOME/data,dst=/d",
    ),
    "--publish": ("80:80", "8080"),
    "--device": ("/dev/null",),
    "--env": ("DOCKER_HOST=tcp://x:2375", "A=b"),
    "--env-file": ("/etc/passwd", "@HOME/data/x"),
    "--sysctl": ("kernel.msgmax=1", "net.ipv4.tcp_syncookies=1"),
    "--log-opt": ("max-size=1m", "path=/etc/x"),
}


def values_for(spec: OptionSpec) -> st.SearchStrategy[str]:
    if not spec.takes_value:
        return st.sampled_from(["true", "false"])
    return st.sampled_from(VALUES.get(spec.canonical, GENERIC_VALUES))


Chosen = list[tuple[OptionSpec, str]]


@st.composite
def chosen_options(draw: st.DrawFn, table: Sequence[OptionSpec], *, max_size: int = 6) -> Chosen:
    """Options and the values they are given, in order."""
    specs = [s for s in table if not s.optional_value and s.canonical != "--help"]
    return [(spec, draw(values_for(spec))) for spec in draw(st.lists(st.sampled_from(specs), max_size=max_size))]


def _short(spec: OptionSpec) -> list[str]:
    return [n for n in spec.names if len(n) == 2]


def _long(spec: OptionSpec) -> list[str]:
    return [n for n in spec.names if n.startswith("--")]


_TRUE = ("true", "1", "t", "T", "TRUE", "True")
_FALSE = ("false", "0", "f", "F", "FALSE", "False")


def _one(draw: st.DrawFn, spec: OptionSpec, value: str) -> list[str]:
    long = draw(st.sampled_from(_long(spec)))
    shorts = _short(spec)
    if not spec.takes_value:
        spellings = _TRUE if value == "true" else _FALSE
        forms = [[f"{long}={draw(st.sampled_from(spellings))}"]]
        forms += [[f"{s}={draw(st.sampled_from(spellings))}"] for s in shorts]
        if value == "true":
            forms += [[long]] + [[s] for s in shorts]
        return draw(st.sampled_from(forms))
    forms = [[f"{long}={value}"], [long, value]]
    for s in shorts:
        forms.append([s, value])
        if value:
            forms.append([f"{s}={value}"])
        if value and not value.startswith("="):
            forms.append([s + value])
    return draw(st.sampled_from(forms))


def write(draw: st.DrawFn, chosen: Chosen) -> list[str]:
    """One way of writing `chosen` that pflag reads back as the same options: long or short, `=` or a
    separate word, ParseBool's spellings, and clusters of short booleans, possibly closed by a value flag."""
    words: list[str] = []
    index = 0
    while index < len(chosen):
        spec, value = chosen[index]
        clusterable = not spec.takes_value and value == "true" and _short(spec)
        if clusterable and draw(st.booleans()):
            letters = _short(spec)[0][1]
            index += 1
            while index < len(chosen):
                nxt, nxt_value = chosen[index]
                if not _short(nxt):
                    break
                if not nxt.takes_value and nxt_value == "true":
                    letters += _short(nxt)[0][1]
                    index += 1
                    continue
                if nxt.takes_value and draw(st.booleans()):
                    letters += _short(nxt)[0][1]
                    index += 1
                    if nxt_value and not nxt_value.startswith("=") and draw(st.booleans()):
                        letters += nxt_value
                    else:
                        words.append("-" + letters)
                        words.append(nxt_value)
                        letters = ""
                break
            if letters:
                words.append("-" + letters)
            continue
        words += _one(draw, spec, value)
        index += 1
    return words


def real_cli(argv: Sequence[str], **environment: str) -> str:
    """What a real CLI prints (stdout and stderr) for `argv`; never runs a container in these tests."""
    env = {**os.environ, **environment}
    result = subprocess.run(list(argv), capture_output=True, text=True, timeout=60, env=env, check=False)
    return result.stdout + result.stderr


_HELP_LINE = re.compile(r"^\s+(?:-(\w), )?--([A-Za-z0-9][\w-]*)(\[=[^\]]*\])?(?: (\S+))?(?:\s{2,}|$)")


TYPE_WORDS = frozenset(
    {"string", "strings", "stringArray", "int", "uint", "uint16", "float", "duration", "list", "map", "mount",
     "network", "ulimit", "gpu-request", "bytes", "decimal"}
)  # fmt: skip
"""Words pflag's help prints for a value's type (UnquoteUsage); any other word is a placeholder from the usage
text (`ARCH`, `<number>[<unit>]`) that says nothing of the type."""


def listed_options(help_argv: Sequence[str]) -> dict[str, tuple[str | None, bool, str]]:
    """Each option the real CLI lists in its help: its short letter, whether it takes a value, its type word."""
    listed = {}
    for line in real_cli(help_argv).splitlines():
        match = _HELP_LINE.match(line)
        if match:
            short, long, optional, value = match.groups()
            listed[f"--{long}"] = (short, bool(value or optional), value or "")
    return listed


def assert_table_holds_listed_options(help_argv: Sequence[str], table: Sequence[OptionSpec], at_least: int) -> None:
    """Every option the real CLI lists in its help is in `table`, taking a value exactly when the CLI's does, and
    with the Go type the help names (`strings` is a StringSlice, `stringArray` a StringArray, `list` docker's
    ListOpts...), wherever the help names one."""
    listed = listed_options(help_argv)
    assert len(listed) > at_least
    specs = {n: s for s in table for n in s.names}
    for long, (short, takes_value, word) in listed.items():
        assert long in specs, f"{long} is missing from the table"
        spec = specs[long]
        assert spec.takes_value == takes_value, long
        if short:
            assert f"-{short}" in spec.names, long
        assert spec.value_type is not None, f"{long} has no Go type in the table"
        if word in TYPE_WORDS or not word:
            assert spec.value_type.help_word == word, (long, word, spec.value_type)


def placeholder_or_hidden(help_argv: Sequence[str], table: Sequence[OptionSpec]) -> list[OptionSpec]:
    """The value-taking options of `table` whose type the help does not name: hidden, or shown with a
    placeholder."""
    listed = listed_options(help_argv)
    return [
        spec
        for spec in table
        if spec.takes_value and (spec.canonical not in listed or listed[spec.canonical][2] not in TYPE_WORDS)
    ]


def reads_as_csv(argv_before: Sequence[str], option: str, argv_after: Sequence[str]) -> bool:
    """Whether the real CLI hands `option`'s value to encoding/csv while reading its flags (a StringSlice).

    The value `a,"b` is a bare quote to csv, which pflag reports as a parse error before anything runs; any
    other type takes it as it is.
    """
    printed = real_cli([*argv_before, f'{option}=a,"b', *argv_after])
    return 'extraneous or missing " in quoted-field' in printed or 'bare " in non-quoted-field' in printed


def assert_cli_knows_every_option(
    program: str, global_options: Sequence[OptionSpec], run_options: Sequence[OptionSpec], skip: frozenset[str]
) -> None:
    """The real CLI accepts every spelling in the tables (asked for help with it, so nothing runs)."""
    for where, table in (("global", global_options), ("run", run_options)):
        for spec in table:
            for name in spec.names:
                if name in skip and where == "global":
                    continue
                word = f"{name}={'1' if spec.takes_value else 'false'}"
                argv = [program, word, "run", "--help"] if where == "global" else [program, "run", "--help", word]
                assert "unknown" not in real_cli(argv).lower(), argv
