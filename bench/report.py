"""Tables and the small statistics every section shares (pure: no I/O, no clock)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Stats:
    """Summary of a sample of durations, in milliseconds."""

    n: int
    min: float
    median: float
    p95: float
    max: float

    @classmethod
    def of(cls, samples: Iterable[float]) -> Stats:
        values = sorted(samples)
        if not values:
            raise ValueError("no samples")
        return cls(len(values), values[0], percentile(values, 50), percentile(values, 95), values[-1])


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile of already sorted values (pct in 0..100)."""
    if not values:
        raise ValueError("no values")
    if len(values) == 1:
        return float(values[0])
    rank = (len(values) - 1) * pct / 100.0
    lo, hi = math.floor(rank), math.ceil(rank)
    return float(values[lo] + (values[hi] - values[lo]) * (rank - lo))


@dataclass
class Table:
    """A titled table with a one-line verdict and optional notes, rendered as aligned text."""

    title: str
    headers: Sequence[str]
    rows: list[Sequence[object]] = field(default_factory=list)
    verdict: str = ""
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        if len(cells) != len(self.headers):
            raise ValueError(f"{self.title}: row has {len(cells)} cells, expected {len(self.headers)}")
        self.rows.append(cells)

    def render(self) -> str:
        text = [[cell(c) for c in row] for row in self.rows]
        widths = [max([len(h)] + [len(r[i]) for r in text]) for i, h in enumerate(self.headers)]
        numeric = [all(_is_number(r[i]) for r in text) and bool(text) for i in range(len(self.headers))]

        def line(cells: Sequence[str]) -> str:
            parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric, strict=True)]
            return "  ".join(parts).rstrip()

        rule = "  ".join("-" * w for w in widths)
        out = [f"== {self.title} ==", line(list(self.headers)), rule, *(line(r) for r in text)]
        out += [f"  note: {n}" for n in self.notes]
        if self.verdict:
            out.append(f"verdict: {self.verdict}")
        return "\n".join(out)


def cell(value: object) -> str:
    """How a value reads in a table: floats with sensible precision, None as a dash."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        if value >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10000 else str(value)
    return str(value)


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return text == "-"
    return True
