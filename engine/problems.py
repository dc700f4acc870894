"""Problems: what validation reports, one per broken rule, with where and why."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One broken rule. ``path`` points into the scorecard (``groups[2].measures[0].weight``)
    or names a file, column and rows for data problems."""

    path: str
    message: str

    def within(self, prefix: str) -> Problem:
        return Problem(f"{prefix}: {self.path}" if self.path else prefix, self.message)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ScorecardError(ValueError):
    """A scorecard that cannot be used, with every problem found."""

    def __init__(self, problems: Sequence[Problem], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        head = f"{source}: " if source else ""
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{head}invalid scorecard ({len(self.problems)} problem(s)):\n{lines}")


class InputError(ValueError):
    """Bad input data (a file, a column, a value): exits 2 on the command line."""

    def __init__(self, problems: Sequence[Problem] | str) -> None:
        if isinstance(problems, str):
            problems = [Problem("", problems)]
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def format_path(loc: Sequence[Any]) -> str:
    """``("groups", 2, "measures", 0, "map")`` -> ``groups[2].measures[0].map``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
