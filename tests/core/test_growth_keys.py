"""The policy keys that bound the state folder: retention, log_cap and the rate limit on refused lines."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from hostpipe.core.durations import format_duration, parse_duration
from hostpipe.core.policy import DEFAULT_LOG_CAP, DEFAULT_RETENTION, Policy, builtin_policy
from hostpipe.core.sizes import format_size, parse_size


def problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        Policy.model_validate(data)
    return [(".".join(map(str, e["loc"])), str(e["msg"]).removeprefix("Value error, ")) for e in caught.value.errors()]


def test_defaults_bound_the_state_folder():
    """Without the keys, records and logs are kept 30 days, a log 64 MiB, and refused lines are rate-limited."""
    for policy in (Policy(), builtin_policy()):
        assert (policy.retention, policy.log_cap) == (DEFAULT_RETENTION, DEFAULT_LOG_CAP) == (30 * 86400.0, 64 << 20)
        assert (policy.refused_interval, policy.refused_per_pod, policy.refused_overall) == (60.0, 10, 60)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"retention": "7d"}, ("retention", 7 * 86400.0)),
        ({"retention": 0}, ("retention", 0.0)),
        ({"log_cap": "1MiB"}, ("log_cap", 1 << 20)),
        ({"log_cap": 0}, ("log_cap", 0)),
        ({"log_cap": 65536}, ("log_cap", 65536)),
        ({"refused_interval": "10s"}, ("refused_interval", 10.0)),
        ({"refused_per_pod": 0}, ("refused_per_pod", 0)),
        ({"refused_overall": 1000}, ("refused_overall", 1000)),
    ],
)
def test_keys_read_their_toml_types(data: dict[str, Any], expected: tuple[str, object]):
    """Durations as seconds or duration strings, the cap as bytes or a binary size, counts as integers."""
    field, value = expected
    assert getattr(Policy.model_validate(data), field) == value


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"retention": "1y"}, "not understood"),
        ({"retention": True}, "TOML number of seconds or a duration string"),
        ({"retention": "400d"}, "366 days"),
        ({"log_cap": "64M"}, '"64MiB"'),
        ({"log_cap": "64MB"}, '"64MiB"'),
        ({"log_cap": "1000"}, "smaller than 64KiB"),
        ({"log_cap": 1.5}, "a size must be"),
        ({"log_cap": True}, "a size must be"),
        ({"log_cap": "-1"}, "not understood"),
        ({"refused_interval": 0}, "more than 0"),
        ({"refused_interval": "2d"}, "at most a day"),
        ({"refused_per_pod": "10"}, "TOML integer"),
        ({"refused_overall": 6.0}, "refused_overall = 6"),
        ({"refused_overall": -1}, "greater than or equal to 0"),
    ],
)
def test_keys_refuse_what_could_be_meant_two_ways(data: dict[str, Any], says: str):
    """A wrong type or an ambiguous unit is an error naming the field and what to write."""
    ((where, message),) = problems(data)
    assert where == next(iter(data)) and says in message


@given(st.integers(0, 1 << 50))
def test_sizes_read_back_as_written(size: int):
    """format_size writes what parse_size reads as the same number of bytes."""
    assert parse_size(format_size(size)) == size


@given(st.integers(0, 366 * 86400))
def test_durations_read_back_as_written(seconds: int):
    """format_duration writes what parse_duration reads as the same number of seconds."""
    assert parse_duration(format_duration(float(seconds))) == seconds
