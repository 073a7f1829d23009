"""Read a command line the way Go's spf13/pflag (under cobra) reads it.

docker, podman and apptainer all parse their options with pflag. A rule can only judge an option if hostpipe
splits the argv into options and positionals exactly as the runtime will, so this module follows pflag's own
reading step by step: `--name=value`, `--name value`, `-n value`, `-nvalue`, `-n=value`, clusters of short
flags (`-itd`, `-itv/a:/b`), boolean values spelled the way Go's strconv.ParseBool accepts them, options whose
value is optional (pflag's NoOptDefVal), `--` ending the options, and a lone `-` as a positional. An option
whose table entry says its Go type is a StringSlice is cut into the elements pflag appends (a CSV record).

Where pflag would do something surprising or print help instead of running, the reader refuses instead: an
unknown option, a value flag with nothing after it, a boolean with a value ParseBool rejects, malformed long
options (`---x`, `--=x`), the `-test.` words pflag silently drops, and a StringSlice value whose CSV reading
differs from a plain comma split (quotes, line breaks).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from hostpipe.core.runtimes.base import ArgvRefused, Option, OptionSpec
from hostpipe.core.runtimes.govalues import slice_elements
from hostpipe.core.runtimes.tables import by_identity

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


@dataclass(frozen=True)
class _Index:
    long: dict[str, OptionSpec]
    short: dict[str, OptionSpec]


@lru_cache(maxsize=64)
def _index(table: tuple[OptionSpec, ...]) -> _Index:
    long: dict[str, OptionSpec] = {}
    short: dict[str, OptionSpec] = {}
    for spec in table:
        for name in spec.names:
            if name.startswith("--") and len(name) > 2 and "=" not in name:
                target = long
                key = name[2:]
            elif name.startswith("-") and len(name) == 2 and name[1] not in "-=":
                target = short
                key = name[1]
            else:
                raise ValueError(f"option table holds a name pflag cannot define: {name!r}")
            if key in target:
                raise ValueError(f"option table defines {name} twice")
            target[key] = spec
    return _Index(long, short)


_index_of = by_identity(_index)


def parse_bool(text: str) -> bool | None:
    """The boolean Go's strconv.ParseBool reads from `text`, or None where it reports an error."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def _spelling(words: Sequence[str]) -> str:
    return " ".join(map(shlex.quote, words))  # shlex.join, without its generator


def _unknown(shown: str, argument: str, command: str) -> ArgvRefused:
    return ArgvRefused(
        "unknown-option",
        argument,
        f"{shown} is not a known option of {command}; hostpipe refuses options it cannot read",
    )


def _elements(spec: OptionSpec, value: str, spelling: str, command: str) -> tuple[str, ...] | None:
    """What the option's Go type makes of one value: a StringSlice's CSV fields, else None (one element)."""
    if spec.value_type is None or not spec.value_type.splits:
        return None
    elements = slice_elements(value)
    if elements is None:
        raise ArgvRefused(
            "ambiguous-value",
            spelling,
            f"{spec.canonical} of {command} is a comma-separated list that {command} reads as CSV, where quotes "
            f"and line breaks change what the items are ({value!r}); write each item plainly, without quotes, "
            f"or give {spec.canonical} once per item",
        )
    return elements


def _make(spec: OptionSpec, value: str | None, written: Sequence[str], command: str) -> Option:
    spelling = _spelling(written)
    if spec.takes_value:
        elements = None if value is None else _elements(spec, value, spelling, command)
        return Option(spec.canonical, value, spelling, elements)
    if value is None:
        return Option(spec.canonical, "true", spelling)
    parsed = parse_bool(value)
    if parsed is None:
        raise ArgvRefused(
            "bad-boolean",
            spelling,
            f"{spec.canonical} of {command} is a boolean and {value!r} is not a value it reads "
            "(use true/false, 1/0, t/f)",
        )
    return Option(spec.canonical, "true" if parsed else "false", spelling)


def _missing(spec: OptionSpec, argument: str, command: str) -> ArgvRefused:
    return ArgvRefused("missing-value", argument, f"{spec.canonical} of {command} needs a value and none follows it")


def _read_long(word: str, words: Sequence[str], at: int, index: _Index, command: str) -> tuple[Option, int]:
    """The option in `word`, and where reading goes on in `words` (after its value word, if it took one)."""
    body = word[2:]
    if not body or body[0] in "-=":
        raise ArgvRefused("bad-syntax", word, f"{word!r} is not an option {command} can read")
    name, eq, inline = body.partition("=")
    spec = index.long.get(name)
    if spec is None:
        raise _unknown(f"--{name}", word, command)
    if eq:
        return _make(spec, inline, (word,), command), at
    if not spec.takes_value:
        return _make(spec, None, (word,), command), at
    if spec.optional_value:
        return Option(spec.canonical, None, _spelling((word,))), at
    if at >= len(words):
        raise _missing(spec, word, command)
    value = words[at]
    return _make(spec, value, (word, value), command), at + 1


def _read_short(word: str, words: Sequence[str], at: int, index: _Index, command: str, found: list[Option]) -> int:
    """Adds the options in the cluster `word` to `found`; returns where reading goes on in `words`."""
    letters = word[1:]
    if letters.startswith("test."):
        raise ArgvRefused("bad-syntax", word, f"{word!r} is a word {command} silently ignores; hostpipe refuses it")
    while letters:
        letter, after = letters[0], letters[1:]
        spec = index.short.get(letter)
        if spec is None:
            shown = f"-{letter}" if len(word) == 2 else f"-{letter} (in {word})"
            raise _unknown(shown, word, command)
        if len(letters) > 2 and letters[1] == "=":
            found.append(_make(spec, letters[2:], (word,), command))
            return at
        if not spec.takes_value:
            found.append(_make(spec, None, (word,), command))
            letters = after
            continue
        if spec.optional_value:
            found.append(Option(spec.canonical, None, _spelling((word,))))
            letters = after
            continue
        if after:
            found.append(_make(spec, after, (word,), command))
            return at
        if at >= len(words):
            raise _missing(spec, word, command)
        value = words[at]
        found.append(_make(spec, value, (word, value), command))
        return at + 1
    return at


def read_flags(
    words: Sequence[str],
    table: Sequence[OptionSpec],
    *,
    interspersed: bool,
    command: str = "the command",
) -> tuple[tuple[Option, ...], tuple[str, ...]]:
    """Split `words` into the options pflag reads from them and the positional words it leaves.

    With `interspersed=False` reading stops at the first positional word, which is returned with everything
    after it untouched; with `interspersed=True` options and positionals may mix. The first `--` ends the
    options and is not returned. A boolean option's value is "true" or "false" whatever spelling was used; an
    option with an optional value written without one has value None. `command` names the command in
    refusals. Raises ArgvRefused for anything pflag would reject or read in a surprising way.
    """
    index = _index_of(table)
    options: list[Option] = []
    positionals: list[str] = []
    at, end = 0, len(words)
    while at < end:
        word = words[at]
        at += 1
        if len(word) < 2 or word[0] != "-":
            positionals.append(word)
            if not interspersed:
                positionals.extend(words[at:])
                break
            continue
        if word == "--":
            positionals.extend(words[at:])
            break
        if word[1] == "-":
            option, at = _read_long(word, words, at, index, command)
            options.append(option)
        else:
            at = _read_short(word, words, at, index, command, options)
    return tuple(options), tuple(positionals)
