"""How apptainer and SingularityCE turn the argument of an option into the values they act on.

Both read their options with pflag, but not with the same pflag types, and the types changed between
releases. A `string` or a `StringArray` takes the argument as one value. A `StringSlice` (and a
`StringToString`) reads it as one line of CSV with Go's encoding/csv: commas separate values, a value in
double quotes may hold commas, `""` inside quotes is one quote, and a quote anywhere else is an error. So
`-B '"/etc:/mnt"'` is the literal path `"/etc` for apptainer 1.x, whose `--bind` is a `StringArray`, and
the bind `/etc:/mnt` for SingularityCE, whose `--bind` is a `StringSlice`. The program named `singularity`
may be either one (apptainer installs a `singularity` link to itself), so a `singularity` line is judged
under both; an `apptainer` line under apptainer's types only.

`TYPES` holds the type of every value option of `run` and `exec` in apptainer 1.0 to 1.5 and SingularityCE
3.7 to 4.5, as their sources define it (cmd/internal/cli/action_flags.go and the other flag files under
cmd/internal/cli, read through pkg/cmdline's type switch). `values` reads one occurrence of an option as
every program the line's command could be reads it, and refuses the argument when they would read
different values, or when one of them could not read it without doubt (a line break, a stray quote).
"""

from __future__ import annotations

from dataclasses import dataclass

from hostpipe.core.runtimes.base import ArgvRefused, Option

STRING = "string"
SLICE = "StringSlice"
ARRAY = "StringArray"
MAP = "StringToString"
INT = "int"

_CSV_TYPES = frozenset({SLICE, MAP})
"""The types whose argument pflag reads as a line of CSV."""


@dataclass(frozen=True)
class Typing:
    """How each program types one option: `(type, releases)` pairs; empty where the program lacks it."""

    apptainer: tuple[tuple[str, str], ...]
    singularity_ce: tuple[tuple[str, str], ...]
    joined: bool = False
    """The program joins the values with commas and splits them again by its own rules (`--bind`), so
    only the joined text matters, not where CSV put the commas."""

    def readings(self, kind: str) -> tuple[tuple[str, str], ...]:
        """The (type, program and releases) that may read a line of `kind` (apptainer or singularity)."""
        own = tuple((kind_, f"apptainer {releases}") for kind_, releases in self.apptainer)
        if kind != "singularity":
            return own
        return own + tuple((kind_, f"SingularityCE {releases}") for kind_, releases in self.singularity_ce)


def _same(kind: str, apptainer: str = "1.0 to 1.5", singularity_ce: str = "3.7 to 4.5") -> Typing:
    return Typing(((kind, apptainer),), ((kind, singularity_ce),))


TYPES: dict[str, Typing] = {
    "--config": _same(STRING),
    "--app": _same(STRING),
    "--bind": Typing(((ARRAY, "1.0 to 1.5"),), ((SLICE, "3.7 to 4.5"),), joined=True),
    "--mount": Typing(((ARRAY, "1.0 to 1.5"),), ((ARRAY, "3.9 to 4.5"),)),
    "--home": _same(STRING),
    "--overlay": _same(SLICE),
    "--scratch": _same(SLICE),
    "--workdir": _same(STRING),
    "--cwd": _same(STRING, "1.3 to 1.5", "4.0 to 4.5"),
    "--pwd": _same(STRING),
    "--hostname": _same(STRING),
    "--network": _same(STRING),
    "--network-args": _same(SLICE),
    "--netns-path": _same(STRING, "1.4 to 1.5", "4.2 to 4.5"),
    "--dns": _same(STRING),
    "--security": _same(SLICE),
    "--apply-cgroups": _same(STRING),
    "--containlibs": _same(SLICE),
    "--fusemount": _same(SLICE),
    "--tmpdir": _same(STRING),
    "--add-caps": _same(STRING),
    "--drop-caps": _same(STRING),
    "--env": Typing(((SLICE, "1.0"), (MAP, "1.1 to 1.5")), ((SLICE, "3.7 to 3.9"), (MAP, "3.10 to 4.5"))),
    "--no-env": Typing(((SLICE, "1.5"),), ()),
    "--env-file": Typing(
        ((STRING, "1.0 to 1.3"), (SLICE, "1.4 to 1.5")), ((STRING, "3.7 to 4.1"), (SLICE, "4.2 to 4.5"))
    ),
    "--no-mount": _same(SLICE),
    "--blkio-weight": _same(INT, "1.1 to 1.5", "3.10 to 4.5"),
    "--blkio-weight-device": _same(SLICE, "1.1 to 1.5", "3.10 to 4.5"),
    "--cpu-shares": _same(INT, "1.1 to 1.5", "3.10 to 4.5"),
    "--cpus": _same(STRING, "1.1 to 1.5", "3.10 to 4.5"),
    "--cpuset-cpus": _same(STRING, "1.1 to 1.5", "3.10 to 4.5"),
    "--cpuset-mems": _same(STRING, "1.1 to 1.5", "3.10 to 4.5"),
    "--memory": _same(STRING, "1.1 to 1.5", "3.10 to 4.5"),
    "--memory-reservation": _same(STRING, "1.1 to 1.5", "3.10 to 4.5"),
    "--memory-swap": _same(STRING, "1.1 to 1.5", "3.10 to 4.5"),
    "--pids-limit": _same(INT, "1.1 to 1.5", "3.10 to 4.5"),
    "--device": _same(SLICE, "1.5", "4.0 to 4.5"),
    "--cdi-dirs": _same(SLICE, "1.5", "4.0 to 4.5"),
    "--pem-path": _same(STRING),
    "--authfile": _same(STRING, "1.4 to 1.5", "4.1 to 4.5"),
    "--docker-host": _same(STRING, "1.2 to 1.5", "3.11 to 4.5"),
    "--docker-username": _same(STRING),
    "--docker-password": _same(STRING),
    "--runscript-timeout": Typing(((STRING, "1.3 to 1.5"),), ()),
}
"""The pflag type of every value option hostpipe reads for `run` and `exec`, by program and release.

An empty side means that program has no such option and fails the job, which needs no judging."""


def csv_fields(text: str) -> tuple[str, ...] | None:
    """The values Go's encoding/csv reads from `text` as pflag's StringSlice does; None where it is in doubt.

    pflag reads an empty argument as no values at all. A line break is refused: encoding/csv would end the
    record there (dropping the rest) or, inside quotes, carry it into a value, depending on where it falls.
    A quote that does not open a value, or an opening quote without its closing one, is refused too: Go
    reports the first as an error, and releases of Go disagree about the second.
    """
    if not text:
        return ()
    if "\n" in text or "\r" in text:
        return None
    fields: list[str] = []
    at, end = 0, len(text)
    while True:
        if at < end and text[at] == '"':
            at += 1
            parts: list[str] = []
            while True:
                close = text.find('"', at)
                if close < 0:
                    return None
                parts.append(text[at:close])
                at = close + 1
                if at < end and text[at] == '"':
                    parts.append('"')
                    at += 1
                    continue
                break
            fields.append("".join(parts))
            if at == end:
                return tuple(fields)
            if text[at] != ",":
                return None
            at += 1
            continue
        comma = text.find(",", at)
        field = text[at:] if comma < 0 else text[at:comma]
        if '"' in field:
            return None
        fields.append(field)
        if comma < 0:
            return tuple(fields)
        at = comma + 1


def _read(option: Option, kind: str, program: str) -> tuple[str, ...]:
    value = option.value or ""
    if kind not in _CSV_TYPES:
        return (value,)
    fields = csv_fields(value)
    if fields is None:
        raise ArgvRefused(
            "bad-value",
            option.spelling,
            f"{program} reads {option.name} as a line of CSV, and {value!r} holds a line break or a quote "
            "that CSV cannot read without doubt; write the values without line breaks, each either bare "
            'or in double quotes ("a,b")',
        )
    return fields


def values(option: Option, kind: str) -> tuple[str, ...]:
    """The values every program that may run a line of `kind` reads from this occurrence of `option`.

    For an option whose program joins its values again (`--bind`), the one joined text is returned. Raises
    ArgvRefused ("ambiguous-value") when two of those programs would read different values.
    """
    typing = TYPES.get(option.name)
    if typing is None:
        return (option.value or "",)
    found: dict[tuple[str, ...], str] = {}
    for type_, program in typing.readings(kind):
        read = _read(option, type_, program)
        if typing.joined:
            read = (",".join(read),)
        found.setdefault(read, program)
    if len(found) > 1:
        (first, by_first), (second, by_second), *_ = found.items()
        avoid = "quotes" if typing.joined else "commas or quotes"
        raise ArgvRefused(
            "ambiguous-value",
            option.spelling,
            f"{by_first} reads {option.name} {option.value!r} as {_shown(first)} and {by_second} as "
            f"{_shown(second)}, and hostpipe cannot tell which of them this host's {kind} is; write it without {avoid}",
        )
    if not found:
        return (option.value or "",)
    return next(iter(found))


def _shown(read: tuple[str, ...]) -> str:
    if len(read) == 1:
        return repr(read[0])
    return "the values " + ", ".join(map(repr, read))
