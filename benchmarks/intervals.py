"""How often do the report's 95% ranges hold the true rate, and the true gap between languages?

A simulation, no model: each of Q questions has its own rate per language (drawn from a Beta
distribution, so some questions are refused far more than others, and a question hard in one
language tends to be hard in the other: a Gaussian copula with correlation 0.8); each language's
answers are S samples per question. The ranges of xling.stats are computed on each simulated run
and checked against the rates the questions were drawn from (the question population's, which is
what "clustered by question" claims to cover). Side by side: the percentile cluster bootstrap
alone (xling before stop 34), the t interval with the cluster-robust standard error alone, what
xling reports, the wider of the two, and the Wilson / Newcombe score interval that takes every
answer as independent (the per-model share table before stop 35).

    python benchmarks/intervals.py [--runs 500]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy import stats

from xling.stats import (
    Clustered,
    bootstrap_difference,
    bootstrap_rate,
    cluster_difference,
    Rate,
    cluster_rate,
    difference_interval,
    rate_residuals,
    robust_variance,
    t_interval,
)

# (rate in the first language, rate in the second): no gap, a gap, a large gap, a rare label
GAPS = ((0.10, 0.10), (0.20, 0.10), (0.50, 0.30), (0.05, 0.0001))
CONCENTRATION = 2.0  # Beta(mean * c, (1 - mean) * c): c = 2 makes questions differ a lot


def question_rates(mean: float, z: np.ndarray) -> np.ndarray:
    return stats.beta.ppf(stats.norm.cdf(z), mean * CONCENTRATION, (1 - mean) * CONCENTRATION)


def _constant(c: Clustered) -> bool:
    return c.k.sum() in (0, c.n.sum())


def _alone(rate_ci, gap_ci):
    """A method on its own, with xling's fallback where there is nothing to resample (every
    method gives a point there)."""
    return (lambda c: cluster_rate(c) if _constant(c) else rate_ci(c),
            lambda a, b: cluster_difference(a, b, paired=True) if _constant(a) and _constant(b) else gap_ci(a, b))


def _pooled(c: Clustered) -> Rate:
    return Rate(int(c.k.sum()), int(c.n.sum()))


def simulate(questions: int, samples: int, rate_a: float, rate_b: float, runs: int,
             rng: np.random.Generator) -> dict[str, list[float]]:
    """Coverage and mean width of each method over ``runs`` simulated runs, for the first
    language's rate and for the paired difference."""
    methods = {
        "bootstrap": _alone(bootstrap_rate, lambda a, b: bootstrap_difference(a, b, paired=True)),
        "t": _alone(lambda c: t_interval(c.rate, robust_variance(rate_residuals(c)), len(c.n) - 1, (0.0, 1.0)),
                    lambda a, b: t_interval(a.rate - b.rate, robust_variance(rate_residuals(a) - rate_residuals(b)),
                                            len(a.n) - 1, (-1.0, 1.0))),
        "xling (wider)": (cluster_rate, lambda a, b: cluster_difference(a, b, paired=True)),
        # Every answer taken as independent: what the per-model rates table printed before stop 35.
        "per answer (Wilson)": (lambda c: _pooled(c).ci, lambda a, b: difference_interval(_pooled(a), _pooled(b))),
    }
    out = {name: [0, 0.0, 0, 0.0] for name in methods}  # rate hits, rate width, gap hits, gap width
    for _ in range(runs):
        z = rng.normal(size=questions)
        other = 0.8 * z + 0.6 * rng.normal(size=questions)
        a = Clustered.of([(k, samples) for k in rng.binomial(samples, question_rates(rate_a, z))])
        b = Clustered.of([(k, samples) for k in rng.binomial(samples, question_rates(rate_b, other))])
        for name, (rate_ci, gap_ci) in methods.items():
            (low, high), (gap_low, gap_high) = rate_ci(a), gap_ci(a, b)
            tally = out[name]
            tally[0] += low <= rate_a <= high
            tally[1] += high - low
            tally[2] += gap_low <= rate_a - rate_b <= gap_high
            tally[3] += gap_high - gap_low
    return {name: [hits / runs, width / runs, gap_hits / runs, gap_width / runs]
            for name, (hits, width, gap_hits, gap_width) in out.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500, help="simulated runs per row (default 500)")
    parser.add_argument("--questions", type=lambda v: [int(q) for q in v.split(",")], default=[14, 50],
                        help="questions per run, comma-separated (default 14,50: the quick suite, a study)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(20261207)
    table = Table(title=f"95% ranges: how often they hold the truth (target 0.95), and their mean width; "
                        f"{args.runs} simulated runs a row")
    for column in ("questions x samples", "rates", "method", "rate: covered", "width", "gap: covered", "width"):
        table.add_column(column, justify="right")
    for questions in args.questions:
        for samples in (2, 3):
            for rate_a, rate_b in GAPS:
                for k, (name, (hit, width, gap_hit, gap_width)) in enumerate(
                        simulate(questions, samples, rate_a, rate_b, args.runs, rng).items()):
                    table.add_row(f"{questions} x {samples}" if k == 0 else "",
                                  f"{rate_a:.2f} vs {rate_b:.2f}" if k == 0 else "", name,
                                  f"{hit:.3f}", f"{width:.3f}", f"{gap_hit:.3f}", f"{gap_width:.3f}",
                                  end_section=k == 3)
    Console(width=None if sys.stdout.isatty() else 120).print(table)


if __name__ == "__main__":
    main()
