"""How stored view rows add up to the answer of a bucket, a breakdown row or a range: counts
summed, unique visitors as a union of HLL sketches (never a sum), ratios computed after
merging (never an average of ratios)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from store.views import MEASURE_COLUMNS
from views.catalogue import MEASURES
from views.sketches import union_estimate

SUM_COLUMNS = tuple(c for c in MEASURE_COLUMNS if c not in ("visitors", "visitors_sketch"))


@dataclass
class Measures:
    """Measures of several view rows (or of other ``Measures``) added together."""

    sums: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SUM_COLUMNS, 0))
    visitors: int = 0  # right for a single row; a union of sketches otherwise
    sketches: list[bytes] = field(default_factory=list)
    rows: int = 0
    exact_visitors: bool = False  # counted exactly (from the archive), not from sketches

    def add(self, row: Any) -> None:
        for col in SUM_COLUMNS:
            self.sums[col] += getattr(row, col) or 0
        self.visitors = row.visitors or 0
        if row.visitors_sketch:
            self.sketches.append(row.visitors_sketch)
        self.rows += 1

    def merge(self, other: Measures) -> None:
        for col in SUM_COLUMNS:
            self.sums[col] += other.sums[col]
        self.visitors = other.visitors
        self.sketches.extend(other.sketches)
        self.rows += other.rows

    @classmethod
    def counted(cls, values: dict[str, int]) -> Measures:
        """Measures counted directly from events (the archive): visitors exact."""
        m = cls(exact_visitors=True, rows=1)
        for col, value in values.items():
            if col == "visitors":
                m.visitors = int(value or 0)
            elif col in m.sums:
                m.sums[col] = int(value or 0)
        return m

    @property
    def empty(self) -> bool:
        return not any(self.sums.values()) and not self.visitors

    def unique_visitors(self) -> int:
        """Exact for a single stored row (or a count from the archive); a union of the
        sketches for more."""
        if self.exact_visitors or self.rows <= 1 or not self.sketches:
            return self.visitors
        return union_estimate(self.sketches)

    def value(self, metric: str) -> int | float | None:
        m = MEASURES[metric]
        if m.merge == "sketch":
            return self.unique_visitors()
        if m.merge == "sum":
            total = self.sums[m.column]
            return total if m.scale == 1.0 else round(total * m.scale, 3)
        num, den = (self.sums[c] for c in m.ratio)
        return round(num / den * m.scale, 4) if den else None

    def values(self, metrics: list[str], unavailable: dict[str, str] | None = None) -> dict[str, int | float | None]:
        return {m: None if unavailable and m in unavailable else self.value(m) for m in metrics}
