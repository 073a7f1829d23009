"""hostpipe reads numbers, sizes and CSV as the Go code of docker and podman does, or not at all."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hostpipe.core.runtimes.govalues import csv_fields, kernel_size, parse_int, ram_in_bytes, slice_elements


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("0", 0),
        ("4096", 4096),
        ("-1", -1),
        ("+7", 7),
        ("-1000", -1000),
        (str(2**63 - 1), 2**63 - 1),
        # pflag reads ints with base 0: a leading 0 is octal, 0x hex, and underscores may group digits.
        ("010", None),
        ("0x10", None),
        ("0o7", None),
        ("1_000", None),
        (" 1", None),
        ("1.0", None),
        ("", None),
        ("-", None),
        (str(2**63), None),
    ],
)
def test_reads_only_plain_decimal_integers(text: str, number: int | None) -> None:
    """Only spellings that read the same in base 0 and base 10 are read; the rest are refused."""
    assert parse_int(text) == number


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("64m", 64 * 1024**2),
        ("64M", 64 * 1024**2),
        ("64mb", 64 * 1024**2),
        ("64MiB", 64 * 1024**2),
        ("64 m", 64 * 1024**2),
        ("1.5g", 1610612736),
        ("0.5k", 512),
        ("100b", 100),
        ("100", 100),
        ("2.9", 2),
        ("0", 0),
        # What go-units reads but hostpipe does not: exponents, hex floats, infinities, signs, two spaces.
        ("1e3", None),
        ("0x10", None),
        ("inf", None),
        ("+64m", None),
        ("-1", None),
        ("64  m", None),
        ("1.5.3g", None),
        ("64mib", 64 * 1024**2),
        ("64mbb", None),
        ("64x", None),
        ("", None),
        ("m", None),
    ],
)
def test_reads_docker_sizes_as_go_units_does(text: str, size: int | None) -> None:
    """RAMInBytes: a number, an optional space, and k/m/g/t/p with an optional b or ib, in any case."""
    assert ram_in_bytes(text) == size


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("65536", 65536),
        ("64k", 65536),
        ("64m", 64 * 1024**2),
        ("1G", 1024**3),
        ("0", 0),
        # memparse reads C numbers (010 is octal, 0x10 hex); tmpfs reads a trailing % of the host's memory.
        ("010m", None),
        ("0x10", None),
        ("50%", None),
        ("64mb", None),
        ("1m2", None),
        ("", None),
        ("-1", None),
    ],
)
def test_reads_kernel_sizes_as_memparse_does(text: str, size: int | None) -> None:
    """A tmpfs `size=`: a plain decimal with an optional k/m/g/t/p/e; anything memparse reads otherwise is refused."""
    assert kernel_size(text) == size


@pytest.mark.parametrize(
    ("value", "fields"),
    [
        ("a,b", ["a", "b"]),
        ("a", ["a"]),
        (",", ["", ""]),
        ('"a,b"', None),
        ("a\nb", None),
        ("a\rb", None),
    ],
)
def test_csv_is_read_only_where_a_plain_split_agrees(value: str, fields: list[str] | None) -> None:
    """Go's csv and a comma split agree unless quotes or line breaks are in the value."""
    assert csv_fields(value) == fields


def test_an_empty_slice_value_has_no_elements() -> None:
    """pflag's StringSlice appends nothing for an empty value (its readAsCSV special case)."""
    assert slice_elements("") == ()
    assert slice_elements("a,") == ("a", "")


@given(number=st.integers(min_value=0, max_value=10**6), unit=st.sampled_from(["", "k", "K", "m", "g"]))
def test_kernel_and_docker_sizes_agree_on_plain_sizes(number: int, unit: str) -> None:
    """For a plain number and unit both readers give the same bytes (docker's units are binary too)."""
    text = f"{number}{unit}"
    if text.startswith("0") and number:
        return
    assert kernel_size(text) == ram_in_bytes(text)
