"""How docker and podman command lines are read and judged: the part the two CLIs have in common.

Both are cobra programs: global options, a subcommand (`run`, or `container run`), the subcommand's options
up to the image (pflag, not interspersed), then the image and the command. They differ in how the global
options are split off. docker reads them with pflag, stopping at the first positional word. podman lets
cobra's `Traverse` guess which words are global options and which is the subcommand, with a rule of thumb
that does not always agree with pflag (`-rc conn run` is read as `-rc` then the subcommand `conn`); hostpipe
follows that guess and refuses the argv where the guess and pflag's own reading of the same words differ.

Only `run` is read. Any other subcommand is refused with the rule "subcommand" while parsing, rather than
handed to a policy that might forget to refuse it: hostpipe starts containers, it does not manage them.

The rules live in `oci_checks` and `oci_limits`; a runtime's `Dialect` maps every option it can read to one of
them. A rule judges one element at a time: an option whose Go type cuts its value into several (podman's
StringSlice options, `--env-file A,B`) has every element judged, and a refusal names the element that broke it.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from hostpipe.core.runtimes.base import ArgumentRules, ArgvRefused, Host, Invocation, Option, OptionSpec, ValueType
from hostpipe.core.runtimes.oci_checks import Judge, Rule
from hostpipe.core.runtimes.pflag import read_flags
from hostpipe.core.runtimes.tables import by_identity

SUBCOMMANDS = ("run",)


def switch(*names: str) -> OptionSpec:
    """A boolean option (pflag's BoolVar: `--x`, `--x=false`, never `--x false`)."""
    return OptionSpec(names, takes_value=False, value_type=ValueType.BOOL)


def valued(value_type: ValueType, *names: str) -> OptionSpec:
    """An option that needs a value (`--x v`, `--x=v`, `-xv`, `-x=v`), held in Go as `value_type`."""
    return OptionSpec(names, takes_value=True, value_type=value_type)


@dataclass(frozen=True)
class Dialect:
    """What sets docker and podman apart: their option tables, how globals are split off, their rules."""

    kind: str
    global_options: tuple[OptionSpec, ...]
    """Options read before the subcommand."""
    run_options: tuple[OptionSpec, ...]
    """Options `run` reads (for podman this includes the persistent global options)."""
    cobra_traverse: bool
    """True when cobra's Traverse, not pflag, decides where the global options end (podman)."""
    rules: Mapping[str, Rule]
    """The rule for each option, by canonical name."""


def _bare(table: tuple[OptionSpec, ...]) -> tuple[frozenset[str], frozenset[str]]:
    """The long and short names in `table` that Traverse reads without a value word after them."""
    bare_long = {n[2:] for s in table for n in s.names if n.startswith("--") and not s.takes_value}
    bare_long |= {n[2:] for s in table for n in s.names if n.startswith("--") and s.optional_value}
    bare_short = {n[1] for s in table for n in s.names if len(n) == 2 and (not s.takes_value or s.optional_value)}
    return frozenset(bare_long), frozenset(bare_short)


_bare_names = by_identity(_bare)


def _traverse_split(words: Sequence[str], table: Sequence[OptionSpec]) -> int:
    """The index of the word cobra's Traverse takes for the subcommand (len(words) if none).

    Traverse treats `--name` as taking the next word unless the option has a default for a bare use (pflag's
    NoOptDefVal, which every boolean has), `-x` likewise, and any other word that looks like an option
    (including a word whose second character is `-`) as a whole option.
    """
    bare_long, bare_short = _bare_names(table)
    in_value = False
    for index, word in enumerate(words):
        if word.startswith("--") and "=" not in word:
            in_value = word[2:] not in bare_long
        elif word.startswith("-") and "=" not in word and len(word) == 2 and word[1] not in bare_short:
            in_value = True
        elif in_value:
            in_value = False
        elif not ((len(word) >= 3 and word[1] == "-") or (len(word) >= 2 and word[0] == "-" and word[1] != "-")):
            return index
    return len(words)


def _subcommand_refused(kind: str, words: Sequence[str]) -> ArgvRefused:
    written = shlex.join(words) if words else ""
    what = f"{kind} {written}" if written else f"{kind} without a subcommand"
    return ArgvRefused(
        "subcommand",
        written or kind,
        f"{what} is not something hostpipe can read; it runs containers with `{kind} run` only",
    )


def _run_section(kind: str, rest: tuple[str, ...]) -> tuple[str, ...]:
    """The words after `run` or `container run`; any other subcommand is refused."""
    if rest[:1] == ("run",):
        return rest[1:]
    if rest[:2] == ("container", "run"):
        return rest[2:]
    raise _subcommand_refused(kind, rest[:2] if rest[:1] == ("container",) else rest[:1])


def parse(words: Sequence[str], dialect: Dialect) -> Invocation:
    """Reads argv[1:] of a docker or podman command line into an Invocation. Raises ArgvRefused."""
    kind = dialect.kind
    if dialect.cobra_traverse:
        at = _traverse_split(words, dialect.global_options)
        rest = tuple(words[at:])
        section = _run_section(kind, rest)
        global_options, stray = read_flags(words[:at], dialect.global_options, interspersed=True, command=kind)
        if stray:
            raise ArgvRefused(
                "ambiguous-option",
                shlex.join(words[:at]),
                f"{kind} would split these global options differently from how it reads them "
                f"({stray[0]!r} is left over); write each option with its value as --name=value",
            )
    else:
        global_options, rest = read_flags(words, dialect.global_options, interspersed=False, command=kind)
        section = _run_section(kind, rest)
    options, positionals = read_flags(section, dialect.run_options, interspersed=False, command=f"{kind} run")
    if not positionals or not positionals[0]:
        raise ArgvRefused("missing-image", shlex.join(words), f"`{kind} run` needs an image and this line names none")
    return Invocation(
        kind=kind,
        global_options=global_options,
        subcommand="run",
        options=options,
        image=positionals[0],
        args=tuple(positionals[1:]),
    )


def _judge_items(option: Option, rule: Rule, judge: Judge) -> None:
    """Judges every element the runtime makes of one option; a refusal names the element that broke it."""
    if option.elements is None:
        rule(option, judge)
        return
    for element in option.elements:
        try:
            rule(replace(option, value=element, elements=None), judge)
        except ArgvRefused as refused:
            if option.elements == (option.value,):
                raise
            raise ArgvRefused(
                refused.rule,
                refused.argument,
                f"{refused.reason} [{judge.kind} cuts {option.name} at commas into "
                f"{', '.join(map(repr, option.elements))}; the item refused is {element!r}]",
            ) from refused


def check(invocation: Invocation, rules: ArgumentRules, host: Host, dialect: Dialect) -> None:
    """Judges every option of a parsed invocation in the order written, element by element. Raises ArgvRefused."""
    if invocation.kind != dialect.kind or invocation.subcommand not in SUBCOMMANDS or not invocation.image:
        raise ArgvRefused(
            "subcommand",
            invocation.subcommand,
            f"this is not a `{dialect.kind} run` invocation hostpipe read; it runs nothing else",
        )
    judge = Judge(rules=rules, host=host, kind=dialect.kind)
    for option in invocation.all_options():
        rule = dialect.rules.get(option.name)
        if rule is None:
            raise ArgvRefused(
                "unknown-option",
                option.spelling,
                f"{option.name} has no rule for {dialect.kind}; hostpipe refuses options it cannot judge",
            )
        _judge_items(option, rule, judge)
