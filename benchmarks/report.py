"""Figures with their targets, printed as a table for people and written as JSON for programs.

A figure without a target is information (for instance the old loop's own numbers, which hostpipe is compared
against); a figure whose value could not be measured fails its target rather than passing silently.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
}


@dataclass(frozen=True)
class Figure:
    case: str
    name: str
    value: float | None
    unit: str = ""
    target: tuple[str, float] | None = None
    note: str = ""

    @property
    def passed(self) -> bool | None:
        if self.target is None:
            return None
        if self.value is None:
            return False
        op, bound = self.target
        return _COMPARE[op](self.value, bound)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def _number(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value == int(value) and abs(value) < 1e12:
        return str(int(value))
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _row(figure: Figure) -> list[str]:
    value = f"{_number(figure.value)} {figure.unit}".strip()
    target = f"{figure.target[0]} {_number(figure.target[1])} {figure.unit}".strip() if figure.target else ""
    verdict = {None: "", True: "pass", False: "FAIL"}[figure.passed]
    return [figure.case, figure.name, value, target, verdict, figure.note]


def table(figures: Sequence[Figure]) -> str:
    """A plain-text table: case, figure, value, target, pass/FAIL, note."""
    rows = [["case", "figure", "value", "target", "", "note"], *(_row(f) for f in figures)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def write_json(path: Path, figures: Sequence[Figure], details: dict[str, Any], meta: dict[str, Any]) -> None:
    """Write figures, per-case details and run metadata to `path` (a temp file renamed into place)."""
    document = {"meta": meta, "figures": [f.as_dict() for f in figures], "details": details}
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(json.dumps(document, indent=2, default=str) + "\n")
    temp.replace(path)
