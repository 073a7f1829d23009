"""Lookups built from an option table once, not once per line.

Option tables are module-level tuples that every line of a runtime is read against. Building a dict or a set
from a hundred entries on each line, or even hashing every entry to find an earlier result in an lru_cache,
costs more than reading the line itself. `by_identity` finds a table's lookup by the tuple's identity instead.
It keeps the tuple alive next to its lookup, so an id in the cache always belongs to that very tuple, and it
remembers tuples only: their entries are frozen, so the lookup can never go stale.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from hostpipe.core.runtimes.base import OptionSpec

T = TypeVar("T")

_MAX_TABLES = 64
"""More tables than all runtimes define together; a caller building tables on the fly is not remembered."""


def by_identity(build: Callable[[tuple[OptionSpec, ...]], T]) -> Callable[[Sequence[OptionSpec]], T]:
    """`build(table)` for any table, built once for each tuple a caller passes again."""
    known: dict[int, tuple[tuple[OptionSpec, ...], T]] = {}

    def lookup(table: Sequence[OptionSpec]) -> T:
        entry = known.get(id(table))
        if entry is not None and entry[0] is table:
            return entry[1]
        built = build(tuple(table))
        if isinstance(table, tuple) and len(known) < _MAX_TABLES:
            known[id(table)] = (table, built)
        return built

    return lookup
