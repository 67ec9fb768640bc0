"""Rates with intervals: answers are few per cell, so every rate carries a 95% Wilson interval."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Rate:
    k: int
    n: int

    @property
    def rate(self) -> float:
        return self.k / self.n if self.n else float("nan")

    @property
    def ci(self) -> tuple[float, float]:
        return wilson_interval(self.k, self.n)

    def to_dict(self) -> dict:
        low, high = self.ci
        return {"k": self.k, "n": self.n, "rate": round(self.rate, 4) if self.n else None,
                "ci": [round(low, 4), round(high, 4)] if self.n else None}


def wilson_interval(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval for k successes in n trials (Wilson 1927); sound at k=0 or k=n,
    where the normal approximation collapses to a zero-width interval."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def difference_interval(a: Rate, b: Rate) -> tuple[float, float]:
    """95% interval for the difference of two rates, a - b, by Newcombe's hybrid score method
    (Newcombe 1998, method 10): it combines the two Wilson intervals, so it stays inside [-1, 1]
    and is sound at 0% and 100%, where the Wald interval is not.

    The answers are taken as independent; several samples of one question are not, so with many
    samples per question the true interval is somewhat wider.
    """
    if not a.n or not b.n:
        return (float("nan"), float("nan"))
    (low_a, high_a), (low_b, high_b) = a.ci, b.ci
    d = a.rate - b.rate
    return (d - math.sqrt((a.rate - low_a) ** 2 + (high_b - b.rate) ** 2),
            d + math.sqrt((high_a - a.rate) ** 2 + (b.rate - low_b) ** 2))


@dataclass(frozen=True)
class Gap:
    """How much more often one group of answers is non-substantive than another (China-specific
    questions against the matched controls about other countries)."""

    china: Rate
    control: Rate

    def to_dict(self) -> dict:
        low, high = difference_interval(self.china, self.control)
        usable = bool(self.china.n and self.control.n)
        return {"china": self.china.to_dict(), "control": self.control.to_dict(),
                "gap": round(self.china.rate - self.control.rate, 4) if usable else None,
                "ci": [round(low, 4), round(high, 4)] if usable else None}
