"""Read a command line the way glibc's getopt_long reads it with POSIXLY_CORRECT set.

shifter is a C program that parses its options with getopt_long and sets POSIXLY_CORRECT first, so reading
stops at the first word that is not an option; that word and everything after it is the command. This
module follows that reading: `--name=value` and `--name value` for a required value, `--name=value` only for
an optional one; `-xvalue` and `-x value` for a required value, `-xvalue` only for an optional one;
clusters of flags (`-vE`); `--` ending the options; a lone `-` or an empty word as the first operand.

getopt never treats `=` specially in a short option: `-i=x` gives `-i` the value `=x`. The reader refuses
every value that starts with `=`, so that a reader used to pflag's `-i=x` and getopt cannot see different
values. It also refuses abbreviated long options (getopt accepts any unique prefix, `--vol` for `--volume`):
a rule should judge what was written, not what getopt guessed.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from hostpipe.core.runtimes.base import ArgvRefused, Option, OptionSpec
from hostpipe.core.runtimes.tables import by_identity


def _index(table: Sequence[OptionSpec]) -> tuple[dict[str, OptionSpec], dict[str, OptionSpec]]:
    long: dict[str, OptionSpec] = {}
    short: dict[str, OptionSpec] = {}
    for spec in table:
        for name in spec.names:
            if name.startswith("--") and len(name) > 2 and "=" not in name:
                long[name[2:]] = spec
            elif len(name) == 2 and name[0] == "-" and name[1] not in "-:;":
                short[name[1]] = spec
            else:
                raise ValueError(f"option table holds a name getopt_long cannot define: {name!r}")
    return long, short


_index_of = by_identity(_index)


def _option(spec: OptionSpec, value: str | None, written: Sequence[str], command: str) -> Option:
    spelling = " ".join(map(shlex.quote, written))  # shlex.join, without its generator
    if value is not None and value.startswith("="):
        raise ArgvRefused(
            "ambiguous-value",
            spelling,
            f"{command} would read the value of {spec.canonical} as {value!r}, with the '='; write "
            f"{spec.canonical}={value[1:]} (or the short option and the value as two words) instead",
        )
    return Option(spec.canonical, value, spelling)


def _read_long(
    word: str, words: Sequence[str], at: int, long: dict[str, OptionSpec], command: str
) -> tuple[Option, int]:
    """The option in `word`, and where reading goes on in `words` (after its value word, if it took one)."""
    name, eq, inline = word[2:].partition("=")
    spec = long.get(name)
    if spec is None:
        prefixed = sorted(f"--{known}" for known in long if name and known.startswith(name))
        if prefixed:
            raise ArgvRefused(
                "abbreviated-option",
                word,
                f"--{name} is an abbreviation {command} would expand (to {' or '.join(prefixed)}); write the "
                "option in full",
            )
        shown = f"--{name}" if name else word
        raise ArgvRefused(
            "unknown-option",
            word,
            f"{shown} is not a known option of {command}; hostpipe refuses options it cannot read",
        )
    if eq:
        if not spec.takes_value:
            raise ArgvRefused(
                "bad-syntax",
                word,
                f"{spec.canonical} of {command} takes no value; {command} would stop with a usage error",
            )
        return _option(spec, inline, (word,), command), at
    if not spec.takes_value or spec.optional_value:
        return _option(spec, None, (word,), command), at
    if at >= len(words):
        raise ArgvRefused("missing-value", word, f"{spec.canonical} of {command} needs a value and none follows it")
    return _option(spec, words[at], (word, words[at]), command), at + 1


def _read_short(
    word: str, words: Sequence[str], at: int, short: dict[str, OptionSpec], command: str, found: list[Option]
) -> int:
    """Adds the options in the cluster `word` to `found`; returns where reading goes on in `words`."""
    letters = word[1:]
    while letters:
        letter, after = letters[0], letters[1:]
        spec = short.get(letter)
        if spec is None:
            shown = f"-{letter}" if len(word) == 2 else f"-{letter} (in {word})"
            raise ArgvRefused(
                "unknown-option",
                word,
                f"{shown} is not a known option of {command}; hostpipe refuses options it cannot read",
            )
        if not spec.takes_value:
            found.append(_option(spec, None, (word,), command))
            letters = after
            continue
        if after:
            found.append(_option(spec, after, (word,), command))
            return at
        if spec.optional_value:
            found.append(_option(spec, None, (word,), command))
            return at
        if at >= len(words):
            raise ArgvRefused("missing-value", word, f"{spec.canonical} of {command} needs a value and none follows it")
        found.append(_option(spec, words[at], (word, words[at]), command))
        return at + 1
    return at


def read_options(
    words: Sequence[str], table: Sequence[OptionSpec], *, command: str
) -> tuple[tuple[Option, ...], tuple[str, ...]]:
    """Split `words` into the options getopt_long reads and the operands after them.

    Reading stops at the first operand (returned with everything after it untouched) or after a `--` (not
    returned). An option with an optional value written without one has value None, and a flag has value
    None. Raises ArgvRefused for anything getopt_long would reject or that this reader will not guess at.
    """
    long, short = _index_of(table)
    options: list[Option] = []
    at, end = 0, len(words)
    while at < end:
        word = words[at]
        if word == "--":
            return tuple(options), tuple(words[at + 1 :])
        if len(word) < 2 or word[0] != "-":
            return tuple(options), tuple(words[at:])
        at += 1
        if word[1] == "-":
            option, at = _read_long(word, words, at, long, command)
            options.append(option)
        else:
            at = _read_short(word, words, at, short, command, options)
    return tuple(options), ()
