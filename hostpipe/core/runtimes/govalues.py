"""Reading values the way the Go code of docker and podman reads them, or not at all.

docker and podman hand option values to Go's encoding/csv, strconv and docker/go-units, and the kernel reads
mount options with its own memparse. Each reader here accepts a plain subset of what its Go counterpart
accepts, on which both give the same result, and returns None for everything else: a value hostpipe cannot
read exactly as the runtime does is refused, never guessed at. Octal and hex numbers, underscores, exponents,
quotes and line breaks are outside every subset.
"""

from __future__ import annotations

import re

INT64_MAX = 2**63 - 1

_CSV_SPECIAL = frozenset('"\r\n')
_DECIMAL = re.compile(r"[+-]?(?:0|[1-9][0-9]*)")
_RAM = re.compile(r"([0-9]+(?:\.[0-9]+)?) ?(?:([kmgtp])(?:b|ib)?|b)?", re.IGNORECASE)
_KERNEL_SIZE = re.compile(r"(0|[1-9][0-9]*)([kmgtpe]?)", re.IGNORECASE)
_BINARY = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5, "e": 1024**6}


def csv_fields(value: str) -> list[str] | None:
    """The fields Go's csv.Reader reads from `value` as its first record, when a plain comma split agrees.

    Quotes (which csv strips, and which join or split fields a plain split would not) and line breaks (which
    end a record, drop empty lines and fold CRLF) make the two readings differ; then None.
    """
    if any(c in _CSV_SPECIAL for c in value):
        return None
    return value.split(",")


def slice_elements(value: str) -> tuple[str, ...] | None:
    """The elements pflag's StringSlice appends for one occurrence of `value` (none for an empty value)."""
    if value == "":
        return ()
    fields = csv_fields(value)
    return None if fields is None else tuple(fields)


def parse_int(text: str, *, low: int = -(2**63), high: int = INT64_MAX) -> int | None:
    """A plain decimal integer within [low, high], as strconv.ParseInt reads it with base 0 or 10; else None.

    pflag reads int options with base 0, where a leading 0 means octal and 0x hex; such spellings are refused.
    """
    if not _DECIMAL.fullmatch(text):
        return None
    number = int(text)
    return number if low <= number <= high else None


def ram_in_bytes(text: str) -> int | None:
    """Bytes in a size as docker/go-units RAMInBytes reads it (`64m`, `1.5g`, `512 KiB`, `100b`); else None."""
    match = _RAM.fullmatch(text)
    if match is None:
        return None
    number, unit = match.groups()
    # As Go does it: a correctly rounded float64, multiplied in float64, truncated to an integer.
    size = float(number) * float(_BINARY[(unit or "").lower()])
    return int(size) if size < 2.0**63 else None


def kernel_size(text: str) -> int | None:
    """Bytes in a tmpfs `size=` as the kernel's memparse reads it (`64m`, `1G`, `65536`); else None.

    memparse takes a C number in any base (so `010m` is 8 MiB) and tmpfs a trailing `%` of the host's memory;
    both are refused, as is anything after the unit.
    """
    match = _KERNEL_SIZE.fullmatch(text)
    if match is None:
        return None
    number, unit = match.groups()
    return int(number) * _BINARY[unit.lower()]
