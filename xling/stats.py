"""Rates with intervals, differences with tests: statsmodels and scipy do the arithmetic.

Two kinds of interval:

- per answer (`Rate.ci`, `difference_interval`): the Wilson score interval and Newcombe's
  hybrid score interval for a difference, which stay sound at 0% and 100%; they take every
  answer as independent (the benchmarks' figures, where each answer is one judged item).
- clustered by question (`cluster_rate`, `cluster_difference`, `Clustered.to_dict`): several
  samples of one question are not independent (a model that refuses a question once tends to
  refuse it again), so a run's rates and comparison tables treat whole questions as the
  observations: the wider of a percentile cluster
  bootstrap (fixed seed) and a t interval with the cluster-robust standard error (t with one
  degree of freedom fewer than questions). Simulated with 14 questions (the quick suite) and a
  true gap between languages, the bootstrap alone held the gap in 91-92% of runs where a 95%
  range should in 95%, the wider of the two in 95-96%; with 50 questions both hold it in 93-96%,
  and with a rare label the bootstrap is the better of the two (`python benchmarks/intervals.py`).
  Where there is nothing to resample (no answer, or every answer, has the label) both give a
  point, and the score interval over questions, which counts each question once, is used instead.

Tests are done on per-question majority labels, where each question is one observation:
McNemar's exact test when the same questions are paired, Fisher's exact test otherwise, with
Holm's correction over a table's family of tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Hashable, Iterable, Sequence

import numpy as np
from scipy.stats import fisher_exact
from scipy.stats import t as student_t
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 20240611
# With fewer questions than this, resampling them says nothing (one question resamples to itself).
MIN_QUESTIONS = 3
CLUSTER_METHOD = (f"the wider of a cluster bootstrap over questions ({BOOTSTRAP_SAMPLES} resamples, seed "
                  f"{BOOTSTRAP_SEED}, percentile) and a t interval with the cluster-robust standard error; "
                  "Wilson / Newcombe score interval over per-question majority labels where no "
                  f"answer or every answer has the label, or under {MIN_QUESTIONS} questions")
TEST_METHOD = ("tests on per-question majority labels (a question counts when at least half its samples have "
               "the label): McNemar's exact test where the same questions are paired, Fisher's exact test "
               "otherwise; p-values adjusted by Holm's method over each table")


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

    def text(self) -> str:
        """ "0.94 (0.72-0.99)": the rate and its 95% Wilson interval, as the benchmarks print them."""
        if not self.n:
            return "-"
        low, high = self.ci
        return f"{self.rate:.2f} ({low:.2f}-{high:.2f})"

    def to_dict(self) -> dict:
        low, high = self.ci
        return {"k": self.k, "n": self.n, "rate": round(self.rate, 4) if self.n else None,
                "ci": [round(low, 4), round(high, 4)] if self.n else None}


def wilson_interval(k: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval for k successes in n trials; sound at k=0 or k=n, where the
    normal approximation collapses to a zero-width interval."""
    if n == 0:
        return (float("nan"), float("nan"))
    low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
    return (max(0.0, float(low)), min(1.0, float(high)))


def difference_interval(a: Rate, b: Rate) -> tuple[float, float]:
    """95% interval for the difference of two independent rates, a - b, by Newcombe's hybrid
    score method (Newcombe 1998, method 10): inside [-1, 1] and sound at 0% and 100%."""
    if not a.n or not b.n:
        return (float("nan"), float("nan"))
    low, high = confint_proportions_2indep(a.k, a.n, b.k, b.n, method="newcomb", compare="diff", alpha=0.05)
    return (float(low), float(high))


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


# --- Clustered by question -----------------------------------------------------------------


@dataclass(frozen=True)
class Clustered:
    """Per question: how many answers have the label (k) out of how many (n)."""

    k: np.ndarray
    n: np.ndarray

    @classmethod
    def of(cls, counts: Sequence[tuple[int, int]]) -> "Clustered":
        return cls(np.array([k for k, _ in counts], dtype=float), np.array([n for _, n in counts], dtype=float))

    @property
    def rate(self) -> float:
        total = self.n.sum()
        return float(self.k.sum() / total) if total else float("nan")

    @property
    def majority(self) -> np.ndarray:
        """Per question: whether at least half its answers have the label."""
        return (self.k * 2 >= self.n) & (self.n > 0)

    @classmethod
    def by_question(cls, answers: Iterable[tuple[Hashable, bool]]) -> "Clustered":
        """From one (question, has the label) pair per answer."""
        counts: dict[Hashable, list[int]] = {}
        for question, hit in answers:
            cell = counts.setdefault(question, [0, 0])
            cell[0] += bool(hit)
            cell[1] += 1
        return cls.of([(k, n) for k, n in counts.values()])

    def to_dict(self) -> dict:
        """As :meth:`Rate.to_dict`, with the interval clustered by question (:func:`cluster_rate`)
        and the number of questions."""
        total = int(self.n.sum())
        low, high = cluster_rate(self) if total else (None, None)
        return {"k": int(self.k.sum()), "n": total, "questions": len(self.n),
                "rate": round(self.rate, 4) if total else None,
                "ci": [round(low, 4), round(high, 4)] if total else None}


def _draws(questions: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, questions, size=(BOOTSTRAP_SAMPLES, questions))


def _resampled_rates(c: Clustered, draws: np.ndarray) -> np.ndarray:
    return c.k[draws].sum(axis=1) / c.n[draws].sum(axis=1)


def rate_residuals(c: Clustered) -> np.ndarray:
    """Each question's share of the pooled rate's error (its linearisation, k - rate * n over the
    total): their sum of squares is the cluster-robust variance of the rate."""
    return (c.k - c.rate * c.n) / c.n.sum()


def robust_variance(residuals: np.ndarray) -> float:
    """The cluster-robust (CR1) variance from per-question residuals."""
    questions = len(residuals)
    return questions / (questions - 1) * float(np.sum(residuals ** 2))


def t_interval(estimate: float, variance: float, df: int, bounds: tuple[float, float]) -> tuple[float, float]:
    """95%: ``estimate`` ± t(``df``) × the standard error, within ``bounds``."""
    half = float(student_t.ppf(0.975, df)) * math.sqrt(variance)
    return (max(bounds[0], estimate - half), min(bounds[1], estimate + half))


def _wider(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    return (min(a[0], b[0]), max(a[1], b[1]))


def bootstrap_rate(c: Clustered) -> tuple[float, float]:
    """The percentile cluster bootstrap's 95% interval of the pooled rate."""
    rates = _resampled_rates(c, _draws(len(c.n), np.random.default_rng(BOOTSTRAP_SEED)))
    low, high = np.percentile(rates, [2.5, 97.5])
    return (float(low), float(high))


def cluster_rate(c: Clustered) -> tuple[float, float]:
    """95% interval of the pooled rate, whole questions the observations (module docstring)."""
    if not len(c.n) or not c.n.sum():
        return (float("nan"), float("nan"))
    if c.k.sum() in (0, c.n.sum()) or len(c.n) < MIN_QUESTIONS:
        return wilson_interval(int(c.majority.sum()), len(c.n))
    return _wider(bootstrap_rate(c), t_interval(c.rate, robust_variance(rate_residuals(c)), len(c.n) - 1, (0.0, 1.0)))


def cluster_difference(a: Clustered, b: Clustered, paired: bool) -> tuple[float, float]:
    """95% interval of rate(a) - rate(b), whole questions the observations (module docstring):
    paired when both sides are the same questions in the same order (one draw, one residual per
    question), independent otherwise."""
    if not len(a.n) or not len(b.n) or not a.n.sum() or not b.n.sum():
        return (float("nan"), float("nan"))
    constant = all(c.k.sum() in (0, c.n.sum()) for c in (a, b))
    if constant or min(len(a.n), len(b.n)) < MIN_QUESTIONS:  # the bootstrap would give a point
        low, high = confint_proportions_2indep(int(a.majority.sum()), len(a.n), int(b.majority.sum()), len(b.n),
                                               method="newcomb", compare="diff", alpha=0.05)
        return (float(low), float(high))
    if paired:  # one residual per question pair
        variance, df = robust_variance(rate_residuals(a) - rate_residuals(b)), len(a.n) - 1
    else:  # the variances add; the smaller side's questions give the degrees of freedom
        variance = robust_variance(rate_residuals(a)) + robust_variance(rate_residuals(b))
        df = min(len(a.n), len(b.n)) - 1
    return _wider(bootstrap_difference(a, b, paired), t_interval(a.rate - b.rate, variance, df, (-1.0, 1.0)))


def bootstrap_difference(a: Clustered, b: Clustered, paired: bool) -> tuple[float, float]:
    """The percentile cluster bootstrap's 95% interval of rate(a) - rate(b)."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    draws_a = _draws(len(a.n), rng)
    draws_b = draws_a if paired else _draws(len(b.n), rng)
    diffs = _resampled_rates(a, draws_a) - _resampled_rates(b, draws_b)
    low, high = np.percentile(diffs, [2.5, 97.5])
    return (float(low), float(high))


def mcnemar_exact(a: np.ndarray, b: np.ndarray) -> float:
    """Exact McNemar p-value for paired booleans (the same questions, two conditions)."""
    table = [[int(np.sum(a & b)), int(np.sum(a & ~b))], [int(np.sum(~a & b)), int(np.sum(~a & ~b))]]
    return float(mcnemar(table, exact=True).pvalue)


def fisher_exact_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Fisher's exact p-value for two independent groups of booleans."""
    table = [[int(a.sum()), int(len(a) - a.sum())], [int(b.sum()), int(len(b) - b.sum())]]
    return float(fisher_exact(table).pvalue)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (family-wise error at 5%), NaNs left out of the family and kept."""
    usable = [i for i, p in enumerate(pvalues) if p == p]
    out = [float("nan")] * len(pvalues)
    if usable:
        adjusted = multipletests([pvalues[i] for i in usable], alpha=0.05, method="holm")[1]
        for i, p in zip(usable, adjusted):
            out[i] = float(p)
    return out


def rounded(value: float, digits: int = 4) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), digits)
