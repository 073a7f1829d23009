"""Durations as people write them in a policy file or a pipe line: `90`, `"90s"`, `"15m"`, `"2h"`, `"1h30m"`.

One reader for every place a duration appears, so that a timeout means the same thing in the policy, in a
line's HOSTPIPE_TIMEOUT and in a JSON request. The result is always seconds as a float; 0 is allowed and its
meaning ("no timeout", "no grace") belongs to the caller.

A duration is also at most `LONGEST` (366 days). A float holds `1e308`, but nothing that counts time does
anything sensible with it: the event loop's clock loses every fraction next to it, a timer that long never
fires, and the operating system's own waits (epoll, a thread's lock) refuse anything past about 24 days or
292 years. A job that must run longer than a year runs without a timeout instead.
"""

from __future__ import annotations

import math
import re

_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
# ASCII digits only: Python's float() also accepts other scripts' digits and "1_000", which no one means here.
_PLAIN = re.compile(_NUMBER)
# Units largest first, each at most once, so that "30m1h" or "1m1m" (most likely typos) are refused.
_COMPOUND = re.compile(rf"(?:(?P<d>{_NUMBER})d)?(?:(?P<h>{_NUMBER})h)?(?:(?P<m>{_NUMBER})m)?(?:(?P<s>{_NUMBER})s)?")
_UNIT_SECONDS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_EXAMPLES = "such as 90 (seconds), '90s', '1.5m', '2h', '1d' or '1h30m'"

LONGEST = 366 * 86400.0
"""The longest duration hostpipe reads, in seconds: a little over a year."""
LONGEST_TEXT = "366 days"


def parse_duration(value: str | int | float) -> float:
    """Seconds in `value`: a number of seconds, or a string with units s, m, h and d. Raises ValueError."""
    if isinstance(value, bool):
        # bool is an int subclass; `timeout = true` is a mistake, not one second.
        raise ValueError(f"a duration must be a number or a string {_EXAMPLES}, not {value!r}")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:
            raise ValueError(f"duration {value!r} is too large; write a finite duration {_EXAMPLES}") from None
        return _checked(seconds, value)
    if not isinstance(value, str):
        raise ValueError(f"a duration must be a number or a string {_EXAMPLES}, not {type(value).__name__}")
    text = value.strip()
    if not text:
        raise ValueError(f"a duration must not be empty; write one {_EXAMPLES}")
    if text.startswith("-"):
        raise ValueError(f"duration {value!r} is negative; write 0 or more, {_EXAMPLES}")
    if _PLAIN.fullmatch(text):
        return _checked(float(text), value)
    match = _COMPOUND.fullmatch(text)
    if match is None or not any(match.groupdict().values()):
        raise ValueError(
            f"duration {value!r} is not understood; write a number of seconds or numbers with the units "
            f"d, h, m, s (largest first, each once), {_EXAMPLES}"
        )
    seconds = sum(
        float(amount) * _UNIT_SECONDS[unit] for unit, amount in match.groupdict().items() if amount is not None
    )
    return _checked(seconds, value)


def _checked(seconds: float, written: str | int | float) -> float:
    if math.isnan(seconds):
        raise ValueError(f"duration {written!r} is not a number; write one {_EXAMPLES}")
    if math.isinf(seconds):
        raise ValueError(f"duration {written!r} is too large; write a finite duration {_EXAMPLES}")
    if seconds < 0:
        raise ValueError(f"duration {written!r} is negative; write 0 or more, {_EXAMPLES}")
    if seconds > LONGEST:
        raise ValueError(
            f"duration {written!r} is longer than {LONGEST_TEXT}, the longest hostpipe accepts; write a shorter "
            f"one {_EXAMPLES}, or none at all for a job that must run longer"
        )
    # -0.0 is 0 seconds; callers compare and print it, so give them the plain zero.
    return seconds if seconds else 0.0


def format_duration(seconds: float) -> str:
    """A duration the way a policy file writes it, in the largest unit that divides it: 30d, 1h, 90s."""
    for unit in ("d", "h", "m"):
        size = _UNIT_SECONDS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{_number(seconds / size)}{unit}"
    return f"{_number(seconds)}s"


def _number(value: float) -> str:
    # repr, not "g": 1000001 is "1e+06" with six significant digits.
    return str(int(value)) if value.is_integer() else repr(value)
