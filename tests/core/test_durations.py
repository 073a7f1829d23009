"""Durations in every spelling a policy or a line may use, and every spelling that must be refused."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hostpipe.core.durations import LONGEST, parse_duration

ACCEPTED = [
    # A bare number is seconds, whether TOML gives an int, a float or the line gives a string.
    (90, 90.0),
    (1.5, 1.5),
    ("90", 90.0),
    ("2.5", 2.5),
    (".5", 0.5),
    ("1e3", 1000.0),
    # Zero is a value callers give meaning to ("no timeout"), so it must come through.
    (0, 0.0),
    ("0", 0.0),
    ("0s", 0.0),
    # One unit suffix each.
    ("90s", 90.0),
    ("1.5m", 90.0),
    ("2h", 7200.0),
    ("1d", 86400.0),
    # Compound spellings as people write them, largest unit first.
    ("1h30m", 5400.0),
    ("1d2h3m4s", 86400.0 + 7200.0 + 180.0 + 4.0),
    ("2m0.5s", 120.5),
    # Surrounding whitespace from a hand-edited file is not a different duration.
    (" 15m ", 900.0),
    # The longest duration, in any spelling.
    ("366d", 366 * 86400.0),
    (366 * 86400, 366 * 86400.0),
    ("8784h", 366 * 86400.0),
]

REFUSED = [
    # Negative durations have no meaning for a timeout or a grace period.
    (-1, "negative"),
    (-0.5, "negative"),
    ("-5", "negative"),
    ("-5s", "negative"),
    # NaN and infinity would poison every comparison against them.
    (math.nan, "not a number"),
    (math.inf, "too large"),
    ("inf", "not understood"),
    ("nan", "not understood"),
    # Overflow to infinity, from an int too large for a float or from a huge string.
    (10**400, "too large"),
    ("1e400s", "too large"),
    ("9" * 400, "too large"),
    # Finite but past anything a timer can keep: the event loop's clock, epoll and thread locks all give up
    # long before 1e308 seconds, so a duration is at most 366 days.
    (1e308, "longer than 366 days"),
    ("1e308", "longer than 366 days"),
    ("1e20s", "longer than 366 days"),
    (10**18, "longer than 366 days"),
    ("367d", "longer than 366 days"),
    ("366d1s", "longer than 366 days"),
    ("8785h", "longer than 366 days"),
    # Nothing, or words.
    ("", "empty"),
    ("   ", "empty"),
    ("soon", "not understood"),
    ("s", "not understood"),
    ("10 s", "not understood"),
    ("10sec", "not understood"),
    ("10S", "not understood"),
    ("1w", "not understood"),
    # Units out of order or repeated are most likely typos.
    ("30m1h", "not understood"),
    ("1m1m", "not understood"),
    # float() would take these, but no one writes a duration this way.
    ("1_000", "not understood"),
    ("\u0661\u0662", "not understood"),
    ("+5", "not understood"),
    ("0x10", "not understood"),
    # A TOML `true` is a mistake, not one second.
    (True, "not True"),
]


@pytest.mark.parametrize(("value", "seconds"), ACCEPTED)
def test_reads_seconds_from_every_accepted_spelling(value: str | int | float, seconds: float) -> None:
    """Each accepted spelling gives the number of seconds it says."""
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize(("value", "words"), REFUSED)
def test_refuses_unusable_durations_with_a_clear_message(value: str | int | float, words: str) -> None:
    """Each unusable value raises ValueError saying what is wrong with it and how to write one instead."""
    with pytest.raises(ValueError, match=words) as caught:
        parse_duration(value)
    assert "'90s'" in str(caught.value), "every message shows how to write a duration"


def test_negative_zero_reads_as_plain_zero() -> None:
    """-0.0 is zero seconds and comes back without its sign, so that callers never print "-0.0"."""
    result = parse_duration(-0.0)
    assert result == 0.0
    assert math.copysign(1.0, result) == 1.0


@settings(max_examples=200)
@given(st.floats(min_value=0, max_value=LONGEST, allow_nan=False, allow_infinity=False))
def test_any_number_up_to_the_longest_is_its_own_seconds(value: float) -> None:
    """A number and its written form both read back as exactly that number of seconds."""
    assert parse_duration(value) == value
    assert parse_duration(repr(value)) == value


@settings(max_examples=200)
@given(st.floats(min_value=LONGEST, exclude_min=True, allow_nan=False, allow_infinity=False))
def test_any_number_past_the_longest_is_refused(value: float) -> None:
    """Every finite duration longer than 366 days is refused, as a number and written out."""
    for written in (value, repr(value)):
        with pytest.raises(ValueError, match="longer than 366 days"):
            parse_duration(written)


@settings(max_examples=200)
@given(
    st.integers(min_value=0, max_value=10**6),
    st.sampled_from([("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]),
)
def test_a_whole_number_with_a_unit_is_that_many_units(amount: int, unit: tuple[str, int]) -> None:
    """N followed by a unit suffix is N times that unit in seconds, up to the longest duration."""
    suffix, factor = unit
    if amount * factor > LONGEST:
        with pytest.raises(ValueError, match="longer than 366 days"):
            parse_duration(f"{amount}{suffix}")
    else:
        assert parse_duration(f"{amount}{suffix}") == amount * factor


@settings(max_examples=300)
@given(st.text(max_size=30))
def test_any_text_either_reads_or_raises_value_error(text: str) -> None:
    """No text makes the reader fail in any other way, and what it accepts is finite and not negative."""
    try:
        seconds = parse_duration(text)
    except ValueError:
        return
    assert math.isfinite(seconds)
    assert 0 <= seconds <= LONGEST
