"""Sizes as a policy file writes them: `67108864`, `"64MiB"`, `"512KiB"`, `"1GiB"`.

Binary units only, spelled out: `64M` and `64MB` mean 64 MiB to docker and 64,000,000 bytes to others, so a
size written either way is refused with the spelling to use instead, rather than read one way and meant the
other.
"""

from __future__ import annotations

import re

_UNITS = {"": 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}
_SIZE = re.compile(r"([0-9]+)[ ]?([A-Za-z]*)")
_EXAMPLES = 'a whole number of bytes, or a string such as "512KiB", "64MiB" or "1GiB"'

LARGEST = 1 << 50
"""The largest size hostpipe reads, a pebibyte: larger than any disk a log lives on, small enough to add up."""


def parse_size(value: str | int) -> int:
    """Bytes in `value`: an integer, or a string of digits with one of B, KiB, MiB, GiB, TiB. Raises ValueError."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"a size must be {_EXAMPLES}, not {value!r}")
    if isinstance(value, int):
        return _checked(value, value)
    match = _SIZE.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"size {value!r} is not understood; write {_EXAMPLES}")
    digits, unit = match.groups()
    factor = _UNITS.get(unit)
    if factor is None:
        binary = {"k": "KiB", "m": "MiB", "g": "GiB", "t": "TiB"}.get(unit[:1].lower())
        if binary is None:
            raise ValueError(f"size {value!r} has the unit {unit!r}, which hostpipe does not read; write {_EXAMPLES}")
        raise ValueError(
            f"size {value!r} has the unit {unit!r}, which programs read two ways: write "
            f'"{digits}{binary}" ({digits} times {_UNITS[binary]:,} bytes)'
        )
    return _checked(int(digits) * factor, value)


def _checked(size: int, written: str | int) -> int:
    if size < 0:
        raise ValueError(f"size {written!r} is negative; write 0 or more")
    if size > LARGEST:
        raise ValueError(f"size {written!r} is larger than 1 PiB, the largest hostpipe reads")
    return size


def format_size(size: int) -> str:
    """A size the way a policy file writes it, in the largest unit that divides it."""
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        if size and size % _UNITS[unit] == 0:
            return f"{size // _UNITS[unit]}{unit}"
    return str(size)
